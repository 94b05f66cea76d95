//! The engine: pinned transmit threads walking the permutation, a busy-polling receive thread
//! that validates, classifies and deduplicates, an output thread, a monitor, the cooldown, and
//! orderly shutdown on Ctrl-C (sending stops, receiving goes on, every result is flushed).

pub mod connect;
pub mod dedup;
pub mod monitor;
pub mod rate;
pub mod stats;

use std::{
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed},
        Arc, Mutex,
    },
    time::{Duration, Instant, SystemTime},
};

use crossbeam_channel::bounded;

use crate::{
    cookie::{CookieJar, ProbeCookie},
    io::{IoError, RxQueue, TxQueue},
    output::{Record, Sink},
    permute::Cycle,
    probe::{Classified, ClassifyCtx, ProbeModule, Verdict},
    target::TargetSpace,
    wire::{
        ethernet,
        template::{FrameParams, FrameTemplate},
        EthernetFrame, Ipv4Packet, ETHERTYPE_IPV4,
    },
};

use self::{dedup::Dedup, monitor::Progress, rate::RateLimiter, stats::Stats};

/// Everything the engine needs to run one scan.
pub struct Plan {
    pub space: TargetSpace,
    pub cycle: Cycle,
    /// 0-based shard index and shard count.
    pub shard: (u32, u32),
    /// The probe module (raw scans); `None` for connect scans, which the kernel does.
    pub module: Option<Arc<dyn ProbeModule>>,
    pub frame: FrameParams,
    pub jar: CookieJar,
    /// Probes per second over all threads; 0 = unlimited.
    pub rate: u64,
    pub wait: Duration,
    /// Core for each transmit thread (`None`: unpinned). Its length is the thread count.
    pub tx_cores: Vec<Option<usize>>,
    pub rx_core: Option<usize>,
    pub status: bool,
    /// Extra passes over the whole permutation (`--retries`).
    pub retries: u32,
    /// Report every target that never answered, with the state silence means for this scan.
    pub report_silent: bool,
}

impl Plan {
    /// The probe module of a raw scan (the engine runs only those).
    pub fn raw_module(&self) -> &dyn ProbeModule {
        self.module
            .as_deref()
            .expect("raw scans always have a probe module")
    }
}

/// The most targets `--report-silent` keeps a bit for (2 GiB of bitmap).
pub const SILENT_MAX_TARGETS: u64 = 1 << 34;

/// How the scan ended.
#[derive(Debug)]
pub struct Outcome {
    pub started: SystemTime,
    pub duration: Duration,
    pub send_duration: Duration,
    pub interrupted: bool,
    /// Output went to a closed pipe: stop quietly.
    pub broken_pipe: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("writing results: {0}")]
    Output(std::io::Error),
}

/// Signals received (SIGINT, SIGTERM): the first stops sending, the next ends the cooldown.
pub type Interrupts = Arc<AtomicUsize>;

/// Runs a scan to the end. Results already received are always written and flushed, also when
/// sending fails or the user interrupts.
pub fn run<T: TxQueue, R: RxQueue>(
    plan: &Plan,
    txs: Vec<T>,
    rx: Option<R>,
    mut sinks: Vec<Box<dyn Sink>>,
    stats: &Stats,
    interrupts: &Interrupts,
) -> Result<Outcome, EngineError> {
    assert_eq!(
        txs.len(),
        plan.tx_cores.len(),
        "one transmit queue per thread"
    );
    let start = Instant::now();
    let started = SystemTime::now();
    let threads = txs.len() as u32;
    let walker = |t: u32| plan.cycle.walker(plan.shard.0, plan.shard.1, t, threads);
    let progress = Progress {
        total_positions: (0..threads).map(|t| walker(t).positions()).sum::<u64>()
            * (plan.retries as u64 + 1),
        send_done_ms: Default::default(),
        wait: plan.wait,
        finished: AtomicBool::new(false),
    };
    let stop_tx = AtomicBool::new(false);
    let stop_rx = AtomicBool::new(false);
    let broken_pipe = AtomicBool::new(false);
    let errors: Mutex<Vec<EngineError>> = Mutex::new(Vec::new());
    let (rec_tx, rec_rx) = bounded::<Record>(1 << 16);
    let mut interrupted = false;
    let mut send_duration = Duration::ZERO;
    let fail = |e: EngineError| errors.lock().unwrap_or_else(|p| p.into_inner()).push(e);

    std::thread::scope(|s| {
        // Output: the only writer of results, so a slow pipe never stalls the receive ring.
        let out = s.spawn(|| {
            'records: for r in rec_rx.iter() {
                for sink in sinks.iter_mut() {
                    if let Err(e) = sink.write(&r) {
                        if e.kind() == std::io::ErrorKind::BrokenPipe {
                            broken_pipe.store(true, Relaxed);
                        } else {
                            fail(EngineError::Output(e));
                        }
                        stop_tx.store(true, Relaxed);
                        stop_rx.store(true, Relaxed);
                        break 'records;
                    }
                }
            }
            drop(rec_rx);
            for sink in sinks.iter_mut() {
                if let Err(e) = sink.finish() {
                    if e.kind() != std::io::ErrorKind::BrokenPipe {
                        fail(EngineError::Output(e));
                    }
                }
            }
        });

        let rx_thread = rx.map(|mut rxq| {
            let stop_rx = &stop_rx;
            let fail = &fail;
            let rec_tx = rec_tx.clone();
            s.spawn(move || {
                pin(plan.rx_core);
                let mut answered = plan
                    .report_silent
                    .then(|| vec![0u64; plan.space.len().div_ceil(64) as usize]);
                if let Err(e) = receive(plan, &mut rxq, stats, stop_rx, &rec_tx, answered.as_mut())
                {
                    fail(e.into());
                }
                Stats::add(
                    &stats.drops,
                    rxq.drops().saturating_sub(Stats::get(&stats.drops)),
                );
                answered
            })
        });

        let mon = plan
            .status
            .then(|| s.spawn(|| monitor::run(stats, &progress, start)));

        let senders: Vec<_> = txs
            .into_iter()
            .enumerate()
            .zip(plan.tx_cores.iter().copied())
            .map(|((t, mut txq), core)| {
                let stop_tx = &stop_tx;
                let fail = &fail;
                s.spawn(move || {
                    pin(core);
                    if let Err(e) = transmit(plan, &mut txq, t as u32, threads, stats, stop_tx) {
                        stop_tx.store(true, Relaxed);
                        fail(e.into());
                    }
                })
            })
            .collect();

        // Sending: wait for the threads, turning the first signal into "stop sending".
        while senders.iter().any(|h| !h.is_finished()) {
            if interrupts.load(Relaxed) > 0 && !stop_tx.load(Relaxed) {
                interrupted = true;
                stop_tx.store(true, Relaxed);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for h in senders {
            let _ = h.join();
        }
        send_duration = start.elapsed();
        progress
            .send_done_ms
            .store(send_duration.as_millis().max(1) as u64, Relaxed);

        // Cooldown: replies still in flight. A signal now (another one, if sending was
        // interrupted) ends it; so does a dead output.
        let seen = interrupts.load(Relaxed);
        let end = Instant::now() + plan.wait;
        while Instant::now() < end && !stop_rx.load(Relaxed) && rx_thread.is_some() {
            if interrupts.load(Relaxed) > seen || (!interrupted && seen > 0) {
                interrupted = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        stop_rx.store(true, Relaxed);
        let answered = rx_thread.and_then(|h| h.join().ok()).flatten();
        // Silence, reported after the cooldown for this shard's targets only. Not after an
        // interruption: unsent targets did not stay silent.
        if let Some(bits) = answered.filter(|_| !interrupted && !stop_tx.load(Relaxed)) {
            let module = plan.raw_module();
            let (state, reason) = module.silence();
            let (name, proto) = (module.name(), module.result_proto());
            'silent: for t in 0..threads {
                for i in walker(t) {
                    if bits[(i / 64) as usize] & (1 << (i % 64)) == 0 {
                        let (ip, port) = plan.space.get(i);
                        stats.count_state(state);
                        let r = Record {
                            ip: ip.into(),
                            port,
                            proto,
                            state,
                            reason,
                            ttl: 0,
                            responder: None,
                            scan: name,
                            ts: SystemTime::now(),
                        };
                        if rec_tx.send(r).is_err() {
                            break 'silent;
                        }
                    }
                }
            }
        }
        drop(rec_tx);
        let _ = out.join();
        progress.finished.store(true, Relaxed);
        if let Some(m) = mon {
            let _ = m.join();
        }
    });

    let mut errs = errors.into_inner().unwrap_or_else(|p| p.into_inner());
    if let Some(e) = errs.drain(..).next() {
        return Err(e);
    }
    Ok(Outcome {
        started,
        duration: start.elapsed(),
        send_duration,
        interrupted,
        broken_pipe: broken_pipe.load(Relaxed),
    })
}

fn pin(core: Option<usize>) {
    if let Some(id) = core {
        core_affinity::set_for_current(core_affinity::CoreId { id });
    }
}

/// Largest batch handed to the transport at once.
const TX_BATCH: usize = 64;

fn transmit<T: TxQueue>(
    plan: &Plan,
    txq: &mut T,
    thread: u32,
    threads: u32,
    stats: &Stats,
    stop: &AtomicBool,
) -> Result<(), IoError> {
    let module = plan.raw_module();
    let tag = module.cookie_tag();
    let src = plan.frame.src_ip;
    let space = &plan.space;
    // One list of templates for every port, or one per port (UDP payloads, IP protocols); a
    // list holds one template per probe variant (several payloads for one port).
    let per_port = module.per_port_templates();
    let templates: Vec<Vec<FrameTemplate>> = if per_port {
        space
            .ports()
            .as_slice()
            .iter()
            .map(|&p| module.variants(&plan.frame, p))
            .collect()
    } else {
        vec![module.variants(&plan.frame, 0)]
    };
    let mut limiter = RateLimiter::new(plan.rate as f64 / threads as f64);
    // The target whose variants are being sent: (dst, port, template list, next variant, cookie).
    let mut pending: Option<(u32, u16, usize, usize, ProbeCookie)> = None;
    for _pass in 0..=plan.retries {
        let mut walker = plan
            .cycle
            .walker(plan.shard.0, plan.shard.1, thread, threads);
        let mut walked_reported = 0;
        let mut exhausted = false;
        while !exhausted && !stop.load(Relaxed) {
            let allowed = limiter.allowance(TX_BATCH, || stop.load(Relaxed));
            if allowed == 0 {
                break;
            }
            let n = txq.send_batch(allowed, |frame| loop {
                if let Some((dst, port, list, k, c)) = pending.as_mut() {
                    if let Some(tpl) = templates[*list].get(*k) {
                        *k += 1;
                        return module.write(frame, tpl, *dst, *port, c);
                    }
                    pending = None;
                }
                match walker.next() {
                    Some(i) => {
                        let (dst, port, pi) = space.get_indexed(i);
                        let c = plan.jar.cookie(src, dst, port, tag);
                        pending = Some((dst, port, if per_port { pi } else { 0 }, 0, c));
                    }
                    None => {
                        exhausted = true;
                        return 0;
                    }
                }
            })?;
            limiter.sent(n);
            Stats::add(&stats.sent, n as u64);
            let w = walker.walked();
            Stats::add(&stats.walked, w - walked_reported);
            walked_reported = w;
            if n == 0 && !exhausted {
                std::hint::spin_loop(); // ring full: the kernel is still sending
            }
        }
        if stop.load(Relaxed) {
            break;
        }
    }
    txq.drain(Duration::from_secs(2))
}

fn receive<R: RxQueue>(
    plan: &Plan,
    rxq: &mut R,
    stats: &Stats,
    stop: &AtomicBool,
    out: &crossbeam_channel::Sender<Record>,
    mut answered: Option<&mut Vec<u64>>,
) -> Result<(), IoError> {
    let ctx = ClassifyCtx {
        jar: plan.jar.clone(),
        src_ip: plan.frame.src_ip,
    };
    let module = plan.raw_module();
    let name = module.name();
    let mut dedup = Dedup::default();
    let mut handle = |frame: &[u8]| {
        Stats::add(&stats.received, 1);
        let Some(ip) = ipv4_of(frame) else { return };
        if ip.dst() != ctx.src_ip {
            return;
        }
        let mut report = |v: Verdict| {
            Stats::add(&stats.validated, 1);
            if dedup.first(v.ip, v.port, v.proto) {
                if let Some(bits) = answered.as_mut() {
                    if let Some(i) = plan.space.index_of(v.ip, v.port) {
                        bits[(i / 64) as usize] |= 1 << (i % 64);
                    }
                }
                stats.count_state(v.state);
                // Blocks when the writer lags: results are never dropped.
                let _ = out.send(Record::from_verdict(&v, name, SystemTime::now()));
            } else {
                Stats::add(&stats.duplicates, 1);
            }
        };
        match module.classify(&ip, &ctx) {
            Classified::Verdict(v) => report(v),
            Classified::Invalid => Stats::add(&stats.invalid, 1),
            Classified::Unrelated => {}
        }
    };
    let mut idle = 0u32;
    let mut last_drops = Instant::now();
    loop {
        let n = rxq.recv_batch(&mut handle)?;
        if last_drops.elapsed() > Duration::from_millis(500) {
            let d = rxq.drops();
            Stats::add(&stats.drops, d.saturating_sub(Stats::get(&stats.drops)));
            last_drops = Instant::now();
        }
        if n > 0 {
            idle = 0;
            continue;
        }
        if stop.load(Relaxed) {
            // One last sweep so nothing already in the ring is left behind.
            if rxq.recv_batch(&mut handle)? == 0 {
                return Ok(());
            }
            continue;
        }
        idle += 1;
        if idle > 256 {
            rxq.wait(Duration::from_millis(2))?;
        } else {
            std::hint::spin_loop();
        }
    }
}

/// The IPv4 packet in an Ethernet frame (one 802.1Q tag allowed).
#[inline]
fn ipv4_of(frame: &[u8]) -> Option<Ipv4Packet<&[u8]>> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    let (ty, payload) = if eth.ethertype() == ethernet::ETHERTYPE_VLAN && frame.len() >= 18 {
        (u16::from_be_bytes([frame[16], frame[17]]), &frame[18..])
    } else {
        (eth.ethertype(), &frame[ethernet::HEADER_LEN..])
    };
    if ty != ETHERTYPE_IPV4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(payload).ok()?;
    (ip.frag_offset() == 0 && ip.verify_checksum()).then_some(ip)
}
