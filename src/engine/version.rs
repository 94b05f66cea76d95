//! The version worker (`-sV`): a thread of its own that runs nmap's detection
//! (`service::detect`) for every open port. The receive thread's grabber holds the
//! conversations and sends each probe's answer here; this thread matches it against
//! nmap-service-probes (the slow part: thousands of PCRE patterns), orders the next probe or
//! finishes the port's record and hands it to the writer. Memory is bounded by the grabber's
//! table (`--max-connections`): a port is either in a conversation or here, never queued.

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
    probe::{PortState, Proto, Reason},
    service::{
        detect::{Detection, End, Step},
        Grab, Namer, Service, ServiceProbes,
    },
};

/// How one port's detection stands, with what it collected.
struct Port {
    detection: Detection,
    /// The record as last sent with an order: what is reported if the grabber ends before
    /// answering (the order may never be carried out).
    record: Option<crate::output::Record>,
    /// The answer that named the service, else the first non-empty one (the banner).
    banner: Vec<u8>,
    banner_probe: Option<String>,
}

/// What the worker needs besides its channels.
pub(crate) struct VersionWork<'a> {
    pub(crate) db: Arc<ServiceProbes>,
    pub(crate) namer: &'a Namer,
    pub(crate) intensity: u8,
    /// Longest wait for one probe's answer (`--banner-timeout`), below the probe's own.
    pub(crate) max_wait: Duration,
    /// Whether `ssl` matches are followed into TLS.
    pub(crate) tls: bool,
}

/// Runs until the grabber's end of `answers` closes; every port still in detection then gets
/// its record with what was found.
pub(crate) fn run(
    work: VersionWork,
    answers: Receiver<Answer>,
    orders: Sender<Order>,
    out: Sender<OutMsg>,
    detecting: &AtomicUsize,
    stats: &Stats,
) {
    let db = &work.db;
    let mut ports: HashMap<(IpAddr, u16), Port> = HashMap::new();
    for mut a in answers.iter() {
        let udp = a.record.proto == Proto::Udp;
        let mut first = None;
        let port = ports.entry(a.key).or_insert_with(|| {
            let mut detection = if udp {
                Detection::udp(a.key.1, work.intensity)
            } else {
                Detection::new(a.key.1, work.intensity, work.tls)
            };
            // TCP: the NULL probe is the connection the scan opened; UDP: nothing sent yet.
            first = Some(detection.start(db));
            Port {
                detection,
                record: None,
                banner: Vec::new(),
                banner_probe: None,
            }
        });
        let probe_name = port.detection.current().map(|i| db.probes[i].name.clone());
        // An answer to a UDP probe makes a silent port open, as nmap says.
        if udp && !a.data.is_empty() && a.record.state != PortState::Open {
            stats.recount_state(a.record.state, PortState::Open);
            a.record.state = PortState::Open;
            a.record.reason = Reason::UdpResponse;
        }
        let step = match first.filter(|_| a.opening) {
            Some(step) => step,
            None => port.detection.answer(db, &a.data, a.end, a.elapsed),
        };
        let named = matches!(step, Step::Done(Some(_)));
        if !a.data.is_empty() && (port.banner.is_empty() || named) {
            port.banner = a.data;
            port.banner_probe = probe_name;
        }
        match step {
            Step::Probe { probe, reuse, tls } => {
                let p = &db.probes[probe];
                let wait =
                    Duration::from_millis(p.total_wait_ms.unwrap_or(5000)).min(work.max_wait);
                port.record = Some((*a.record).clone());
                let _ = orders.send(Order::Probe {
                    key: a.key,
                    record: a.record,
                    name: p.name.clone(),
                    payload: p.payload.clone(),
                    wait,
                    reuse,
                    tls,
                });
            }
            Step::Done(service) => {
                let p = ports.remove(&a.key).expect("a port in detection");
                let _ = orders.send(Order::Close { key: a.key });
                finish(&work, *a.record, p, service.map(|s| *s), &out, stats);
                detecting.fetch_sub(1, Relaxed);
            }
        }
    }
    // The grabber is gone: a port whose order it never carried out ends with what was found.
    for (_, mut p) in ports.drain() {
        let Some(record) = p.record.take() else {
            continue;
        };
        let service = match p.detection.answer(db, &[], End::Aborted, Duration::ZERO) {
            Step::Done(s) => s.map(|s| *s),
            Step::Probe { .. } => None,
        };
        finish(&work, record, p, service, &out, stats);
        detecting.fetch_sub(1, Relaxed);
    }
}

/// The port's record with its banner and service (the port table's name when nothing matched),
/// to the writer.
fn finish(
    work: &VersionWork,
    mut record: crate::output::Record,
    p: Port,
    service: Option<Service>,
    out: &Sender<OutMsg>,
    stats: &Stats,
) {
    let service = service.or_else(|| {
        let proto = record.proto.service_proto()?;
        work.namer
            .table
            .name(proto, record.port)
            .map(Service::from_table)
    });
    record.grab = Some(Arc::new(Grab {
        banner: p.banner,
        probe: p.banner_probe,
        service,
    }));
    Stats::add(&stats.banners, 1);
    // Held since the grabber took it: its hold ends once it is written.
    let _ = out.send(OutMsg::Held(record));
}
