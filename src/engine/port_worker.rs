//! The port worker (`-sV`, `--grab`): a thread of its own for what is said on every open
//! port. The receive thread's grabber holds the conversations and sends each exchange's
//! answer here; this thread runs the application layer's grabs (`app::PortGrab`: TLS, HTTP,
//! SSH, `auto`) and then nmap's detection (`service::detect`, thousands of PCRE patterns),
//! orders the next exchange or finishes the port's record and hands it to the writer. So the
//! receive thread never parses a certificate or runs a pattern (docs/design.md, "Version
//! detection"). Memory is bounded by the grabber's table (`--max-connections`): a port is
//! either in a conversation or here, never queued.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{
        atomic::{AtomicUsize, Ordering::Relaxed},
        Arc,
    },
    time::Duration,
};

use crossbeam_channel::{Receiver, Sender};

use super::{
    grab::{Answer, Order},
    stats::Stats,
    OutMsg,
};
use crate::{
    app::{AppPlan, AppResult, PortGrab, Reply, Step as GrabStep, TlsUse, Whole},
    output::Record,
    probe::{PortState, Proto, Reason},
    service::{
        detect::{Detection, End, Step},
        Grab, Namer, Service, ServiceProbes,
    },
};

/// How one port stands, with what it collected.
struct Port {
    /// `--grab`: the application layer's machine, while it runs.
    grab: Option<PortGrab>,
    /// `-sV`: nmap's detection, once the grab (if any) is over.
    detection: Option<Detection>,
    /// The scan connection's answer, which `-sV` reads as its NULL probe's after a grab.
    greeting: Option<(Vec<u8>, End, Duration)>,
    /// The record as last sent with an order: what is reported if the grabber ends before
    /// answering (the order may never be carried out).
    record: Option<Record>,
    /// The answer that named the service, else the first non-empty one (the banner).
    banner: Vec<u8>,
    banner_probe: Option<String>,
    apps: Vec<AppResult>,
}

/// `-sV`'s part of the work.
pub(crate) struct VersionWork<'a> {
    pub(crate) db: Arc<ServiceProbes>,
    pub(crate) namer: &'a Namer,
    pub(crate) intensity: u8,
    /// Whether `ssl` matches are followed into TLS.
    pub(crate) tls: bool,
}

/// What the worker needs besides its channels.
pub(crate) struct PortWork<'a> {
    pub(crate) version: Option<VersionWork<'a>>,
    pub(crate) apps: Option<&'a AppPlan>,
    /// Longest wait for one exchange's answer (`--banner-timeout`), below a probe's own.
    pub(crate) max_wait: Duration,
}

/// The worker's channels and counters.
pub(crate) struct Links<'a> {
    pub(crate) answers: Receiver<Answer>,
    pub(crate) orders: Sender<Order>,
    pub(crate) out: Sender<OutMsg>,
    pub(crate) detecting: &'a AtomicUsize,
    pub(crate) stats: &'a Stats,
}

/// Runs until the grabber's end of `answers` closes; every port still in work then gets its
/// record with what was found.
pub(crate) fn run(work: PortWork, links: Links) {
    let mut ports: HashMap<(IpAddr, u16), Port> = HashMap::new();
    let mut seed = crate::cookie::random_u64();
    for mut a in links.answers.iter() {
        let udp = a.record.proto == Proto::Udp;
        let new = !ports.contains_key(&a.key);
        let port = ports.entry(a.key).or_insert_with(|| {
            seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
            Port {
                grab: work
                    .apps
                    .filter(|_| !udp)
                    .and_then(|p| PortGrab::new(p, a.key.0, a.key.1, seed)),
                detection: None,
                greeting: None,
                record: None,
                banner: Vec::new(),
                banner_probe: None,
                apps: Vec::new(),
            }
        });
        // An answer to a UDP probe makes a silent port open, as nmap says.
        if udp && !a.data.is_empty() && a.record.state != PortState::Open {
            links.stats.recount_state(a.record.state, PortState::Open);
            a.record.state = PortState::Open;
            a.record.reason = Reason::UdpResponse;
        }
        if new && port.grab.is_some() {
            port.greeting = Some((a.data.clone(), a.end, a.elapsed));
        }
        if port.banner.is_empty() && !a.data.is_empty() && port.grab.is_some() {
            port.banner = a.data.clone();
            port.banner_probe = (!new).then(|| "grab".to_string());
        }
        if let Some(step) = grab_step(&work, port, &a, new) {
            port.record = Some((*a.record).clone());
            let _ = links.orders.send(step);
            continue;
        }
        let step = version_step(&work, port, &mut a, new, udp, &links.orders);
        match step {
            Some(Step::Probe { probe, reuse, tls }) => {
                let v = work.version.as_ref().expect("a probe comes from -sV");
                let p = &v.db.probes[probe];
                let wait =
                    Duration::from_millis(p.total_wait_ms.unwrap_or(5000)).min(work.max_wait);
                port.record = Some((*a.record).clone());
                let _ = links.orders.send(Order::Probe {
                    key: a.key,
                    record: a.record,
                    name: p.name.clone(),
                    payload: p.payload.clone(),
                    wait,
                    reuse,
                    tls: if tls { TlsUse::Session } else { TlsUse::No },
                    whole: Whole::Quiet,
                });
            }
            Some(Step::Done(service)) => {
                let p = ports.remove(&a.key).expect("a port in work");
                end_port(&work, &links, a.key, *a.record, p, service.map(|s| *s));
            }
            None => {
                let p = ports.remove(&a.key).expect("a port in work");
                end_port(&work, &links, a.key, *a.record, p, None);
            }
        }
    }
    // The grabber is gone: a port whose order it never carried out ends with what was found.
    for (key, mut p) in ports.drain() {
        let Some(record) = p.record.take() else {
            continue;
        };
        if let Some(mut g) = p.grab.take() {
            p.apps = g.abort();
        }
        let service = match (&work.version, p.detection.as_mut()) {
            (Some(v), Some(d)) => match d.answer(&v.db, &[], End::Aborted, Duration::ZERO) {
                Step::Done(s) => s.map(|s| *s),
                Step::Probe { .. } => None,
            },
            _ => None,
        };
        end_port(&work, &links, key, record, p, service);
    }
}

/// The grabber's ending in the application layer's words.
fn ending(e: End) -> crate::app::End {
    match e {
        End::Quiet => crate::app::End::Quiet,
        End::Closed => crate::app::End::Closed,
        End::Failed => crate::app::End::Failed,
        End::Aborted => crate::app::End::Aborted,
    }
}

/// `--grab`'s turn: the next exchange as an order, or `None` once the grab is over (its
/// results kept) or when there is none.
fn grab_step(work: &PortWork, port: &mut Port, a: &Answer, new: bool) -> Option<Order> {
    let plan = work.apps?;
    let g = port.grab.as_mut()?;
    let step = if new {
        g.greeting(plan, &a.data, ending(a.end))
    } else {
        let reply = Reply {
            data: &a.data,
            end: ending(a.end),
            tls: a.tls.as_deref(),
        };
        g.reply(plan, reply)
    };
    match step {
        GrabStep::Send(ex) => Some(Order::Probe {
            key: a.key,
            record: a.record.clone(),
            name: ex.name.to_string(),
            payload: ex.payload,
            wait: work.max_wait,
            reuse: ex.reuse,
            tls: ex.tls,
            whole: ex.whole,
        }),
        GrabStep::Done => {
            port.apps = std::mem::take(&mut port.grab.take()?.results);
            None
        }
    }
}

/// `-sV`'s turn: the next probe or the name. After a grab, detection starts from the scan
/// connection's greeting on a connection of its own. `None`: there is no detection to run.
fn version_step(
    work: &PortWork,
    port: &mut Port,
    a: &mut Answer,
    new: bool,
    udp: bool,
    orders: &Sender<Order>,
) -> Option<Step> {
    let v = work.version.as_ref()?;
    let db = &v.db;
    let mut first = None;
    let mut answer = (std::mem::take(&mut a.data), a.end, a.elapsed);
    if port.detection.is_none() {
        let mut detection = if udp {
            Detection::udp(a.key.1, v.intensity)
        } else {
            Detection::new(a.key.1, v.intensity, v.tls)
        };
        // TCP: the NULL probe is the connection the scan opened; UDP: nothing sent yet.
        first = Some(detection.start(db));
        port.detection = Some(detection);
        if let Some(g) = port.greeting.take().filter(|_| !new) {
            // The grab used that connection: detection reads its greeting, and sends its
            // probes on connections of its own.
            let _ = orders.send(Order::Close { key: a.key });
            answer = g;
        }
    }
    let d = port.detection.as_mut().expect("made above");
    let probe_name = d.current().map(|i| db.probes[i].name.clone());
    let step = match first.filter(|_| a.opening) {
        Some(step) => step,
        None => d.answer(db, &answer.0, answer.1, answer.2),
    };
    let named = matches!(step, Step::Done(Some(_)));
    if !answer.0.is_empty() && (port.banner.is_empty() || named) {
        port.banner = answer.0;
        port.banner_probe = probe_name;
    }
    Some(step)
}

/// The port is done: close what is open, and its record goes to the writer.
fn end_port(
    work: &PortWork,
    links: &Links,
    key: (IpAddr, u16),
    record: Record,
    p: Port,
    service: Option<Service>,
) {
    let _ = links.orders.send(Order::Close { key });
    finish(work, record, p, service, &links.out, links.stats);
    links.detecting.fetch_sub(1, Relaxed);
}

/// The port's record with its banner, grabs and service (the port table's name when nothing
/// matched), to the writer.
fn finish(
    work: &PortWork,
    mut record: Record,
    p: Port,
    service: Option<Service>,
    out: &Sender<OutMsg>,
    stats: &Stats,
) {
    let service = service.or_else(|| {
        let v = work.version.as_ref()?;
        let proto = record.proto.service_proto()?;
        v.namer
            .table
            .name(proto, record.port)
            .map(Service::from_table)
    });
    record.grab = Some(Arc::new(Grab {
        banner: p.banner,
        probe: p.banner_probe,
        service,
        app: p.apps,
    }));
    Stats::add(&stats.banners, 1);
    // Held since the grabber took it: its hold ends once it is written.
    let _ = out.send(OutMsg::Held(record));
}
