//! The engine: pinned transmit threads walking the permutation, a busy-polling receive thread
//! that validates, classifies and deduplicates, an output thread, a monitor, the cooldown, and
//! orderly shutdown on Ctrl-C (sending stops, receiving goes on, every result is flushed).

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
    cookie::CookieJar,
    io::{IoError, RxQueue, TxQueue},
    output::{Record, Sink},
    permute::Cycle,
    probe::{Classified, ClassifyCtx, ProbeModule},
    target::TargetSpace,
    wire::{ethernet, template::FrameParams, EthernetFrame, Ipv4Packet, ETHERTYPE_IPV4},
};

use self::{dedup::Dedup, monitor::Progress, rate::RateLimiter, stats::Stats};

/// Everything the engine needs to run one scan.
pub struct Plan {
    pub space: TargetSpace,
    pub cycle: Cycle,
    /// 0-based shard index and shard count.
    pub shard: (u32, u32),
    pub module: Arc<dyn ProbeModule>,
    pub frame: FrameParams,
    pub jar: CookieJar,
    /// Probes per second over all threads; 0 = unlimited.
    pub rate: u64,
    pub wait: Duration,
    /// Core for each transmit thread (`None`: unpinned). Its length is the thread count.
    pub tx_cores: Vec<Option<usize>>,
    pub rx_core: Option<usize>,
    pub status: bool,
}

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
    let walkers: Vec<_> = (0..threads)
        .map(|t| plan.cycle.walker(plan.shard.0, plan.shard.1, t, threads))
        .collect();
    let progress = Progress {
        total_positions: walkers.iter().map(|w| w.positions()).sum(),
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
                if let Err(e) = receive(plan, &mut rxq, stats, stop_rx, &rec_tx) {
                    fail(e.into());
                }
                Stats::add(
                    &stats.drops,
                    rxq.drops().saturating_sub(Stats::get(&stats.drops)),
                );
            })
        });
        drop(rec_tx);

        let mon = plan
            .status
            .then(|| s.spawn(|| monitor::run(stats, &progress, start)));

        let senders: Vec<_> = txs
            .into_iter()
            .zip(walkers)
            .zip(plan.tx_cores.iter().copied())
            .map(|((mut txq, walker), core)| {
                let stop_tx = &stop_tx;
                let fail = &fail;
                s.spawn(move || {
                    pin(core);
                    if let Err(e) = transmit(plan, &mut txq, walker, threads, stats, stop_tx) {
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
        if let Some(h) = rx_thread {
            let _ = h.join();
        }
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
    mut walker: crate::permute::Walker,
    threads: u32,
    stats: &Stats,
    stop: &AtomicBool,
) -> Result<(), IoError> {
    let module = &*plan.module;
    let tpl = module.template(&plan.frame);
    let proto = module.ip_proto();
    let src = plan.frame.src_ip;
    let mut limiter = RateLimiter::new(plan.rate as f64 / threads as f64);
    let mut walked_reported = 0;
    let mut exhausted = false;
    while !exhausted && !stop.load(Relaxed) {
        let allowed = limiter.allowance(TX_BATCH, || stop.load(Relaxed));
        if allowed == 0 {
            break;
        }
        let n = txq.send_batch(allowed, |frame| match walker.next() {
            Some(i) => {
                let (dst, port) = plan.space.get(i);
                let c = plan.jar.cookie(src, dst, port, proto);
                module.write(frame, &tpl, dst, port, &c)
            }
            None => {
                exhausted = true;
                0
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
    txq.drain(Duration::from_secs(2))
}

fn receive<R: RxQueue>(
    plan: &Plan,
    rxq: &mut R,
    stats: &Stats,
    stop: &AtomicBool,
    out: &crossbeam_channel::Sender<Record>,
) -> Result<(), IoError> {
    let ctx = ClassifyCtx {
        jar: plan.jar.clone(),
        src_ip: plan.frame.src_ip,
    };
    let module = &*plan.module;
    let name = module.name();
    let mut dedup = Dedup::default();
    let mut handle = |frame: &[u8]| {
        Stats::add(&stats.received, 1);
        let Some(ip) = ipv4_of(frame) else { return };
        if ip.dst() != ctx.src_ip {
            return;
        }
        match module.classify(&ip, &ctx) {
            Classified::Verdict(v) => {
                Stats::add(&stats.validated, 1);
                if dedup.first(v.ip, v.port, v.proto) {
                    stats.count_state(v.state);
                    // Blocks when the writer lags: results are never dropped.
                    let _ = out.send(Record::from_verdict(&v, name, SystemTime::now()));
                } else {
                    Stats::add(&stats.duplicates, 1);
                }
            }
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
