//! The engine: pinned transmit threads walking the permutation, a busy-polling receive thread
//! that validates, classifies and deduplicates, an output thread, a monitor, the cooldown, and
//! orderly stops (Ctrl-C, limits, a closed output): sending stops, receiving goes on, every
//! result is flushed, and each thread's place in the permutation is returned for `--resume`.

pub(crate) mod carry;
pub(crate) mod connect;
pub mod dedup;
pub(crate) mod governor;
pub mod grab;
mod grab_link;
mod lifecycle;
pub(crate) mod monitor;
pub(crate) mod packet_trace;
mod phases;
pub(crate) mod port_worker;
pub(crate) mod rate;
pub(crate) mod silence;
pub(crate) mod stats;
pub(crate) mod tls;
pub(crate) mod trace_table;
pub(crate) mod watermark;

use std::{
    net::IpAddr,
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed},
        Arc, Mutex,
    },
    time::{Duration, Instant, SystemTime},
};

use crossbeam_channel::{Receiver, Sender};
use serde::{Deserialize, Serialize};

use crate::{
    cookie::{CookieJar, ProbeCookie},
    io::{IoError, RxQueue, TxQueue},
    output::{Record, ReplyFacts, RunEnd, Sink},
    permute::Cycle,
    probe::{traceroute::TracerouteScan, Classified, ClassifyCtx, PortScan, ProbeModule, Verdict},
    targets::TargetSpace,
    wire::{
        template::{FrameTemplate, Frames},
        Family, IpPacket,
    },
};

use self::{
    dedup::Dedup, packet_trace::PacketTrace, rate::RateLimiter, stats::Stats,
    trace_table::TraceTable,
};

/// Everything the engine needs to run one scan.
pub(crate) struct Plan {
    /// Files written after the privilege drop (the status file) go through it.
    pub(crate) keeper: crate::io::keeper::Keeper,
    /// Shared with the config: a hitlist's addresses are held once.
    pub(crate) space: Arc<TargetSpace>,
    pub(crate) cycle: Cycle,
    /// 0-based shard index and shard count.
    pub(crate) shard: (u32, u32),
    /// The probe module (raw scans); `None` for connect scans, which the kernel does.
    pub(crate) module: Option<RawModule>,
    /// Link and source facts for each family the targets hold.
    pub(crate) frames: Frames,
    pub(crate) jar: CookieJar,
    /// Probes per second over all threads; 0 = unlimited.
    pub(crate) rate: u64,
    pub(crate) wait: Duration,
    /// Core for each transmit thread (`None`: unpinned). Its length is the thread count.
    pub(crate) tx_cores: Vec<Option<usize>>,
    pub(crate) rx_core: Option<usize>,
    /// Probes per transmit kick (`--tx-batch`, [`TX_BATCH`] by default).
    pub(crate) tx_batch: usize,
    pub(crate) status: monitor::StatusOptions,
    /// Extra passes over the whole permutation (`--retries`).
    pub(crate) retries: u32,
    /// Report every target that never answered, with the state silence means for this scan.
    pub(crate) report_silent: bool,
    pub(crate) limits: Limits,
    /// Where each thread starts (`--resume`); `None` for a fresh scan.
    pub(crate) resume: Option<Vec<Position>>,
    /// The receive side's hold on the senders: the send rate at `--rate 0`, and a pause at any
    /// rate while the writer is behind (see `governor.rs`).
    pub(crate) governor: governor::Governor,
    /// Hand every validated reply's frame to the sinks (`--pcap-replies`).
    pub(crate) keep_replies: bool,
    /// Print every packet sent and received (`--packet-trace`).
    pub(crate) packet_trace: bool,
    /// Complete the handshake with open ports and collect their banners (`--banners`, `-sV`).
    pub(crate) grab: Option<grab::GrabOptions>,
    /// Name services from their banners (`-sV`).
    pub(crate) namer: Option<Arc<crate::service::Namer>>,
    /// The application layer's grabs (`--grab`).
    pub(crate) apps: Option<Arc<crate::app::AppPlan>>,
    /// Where each transmit thread is now, for checkpoints taken while the scan runs.
    pub(crate) live: Option<Arc<LivePositions>>,
    /// From a resume: probes past its positions that answered, and results the interrupted
    /// run did not write (`carry.rs`).
    pub(crate) answered_before: Vec<u64>,
    pub(crate) carried: Vec<Record>,
}

/// Each transmit thread's position as it walks, readable from any thread. Updated once per
/// transmit batch.
#[derive(Debug)]
pub(crate) struct LivePositions {
    slots: Vec<(std::sync::atomic::AtomicU32, AtomicU64)>,
}

impl LivePositions {
    pub(crate) fn new(threads: usize) -> Self {
        Self {
            slots: (0..threads).map(|_| Default::default()).collect(),
        }
    }

    fn set(&self, thread: usize, p: Position) {
        if let Some((pass, walked)) = self.slots.get(thread) {
            // A new pass starts at 0: walked first, so a reader never pairs the new pass with
            // the old pass's count.
            if pass.load(Relaxed) != p.pass {
                walked.store(0, std::sync::atomic::Ordering::Release);
                pass.store(p.pass, std::sync::atomic::Ordering::Release);
            }
            walked.store(p.walked, std::sync::atomic::Ordering::Release);
        }
    }

    /// Takes every thread's position from a snapshot made elsewhere (a worker's shard process).
    pub(crate) fn store(&self, positions: &[Position]) {
        for (t, p) in positions.iter().enumerate() {
            self.set(t, *p);
        }
    }

    /// Every thread's position now: every probe before it was handed to the transport.
    pub(crate) fn snapshot(&self) -> Vec<Position> {
        use std::sync::atomic::Ordering::Acquire;
        self.slots
            .iter()
            .map(|(pass, walked)| loop {
                let p = pass.load(Acquire);
                let w = walked.load(Acquire);
                if pass.load(Acquire) == p {
                    break Position { pass: p, walked: w };
                }
            })
            .collect()
    }
}

/// A raw scan's module, by what its replies are: verdicts on ports, or hops of paths. A port
/// scan has one module per slot of the space's ports (`-sS -sU` has two: docs/design.md, "One
/// permutation over several protocols").
#[derive(Clone)]
pub(crate) enum RawModule {
    Ports(Vec<Arc<dyn PortScan>>),
    Trace(Arc<TracerouteScan>),
}

impl RawModule {
    /// The sending side of each slot.
    pub(crate) fn senders(&self) -> Vec<&dyn ProbeModule> {
        match self {
            RawModule::Ports(ms) => ms.iter().map(|m| m.as_ref() as &dyn ProbeModule).collect(),
            RawModule::Trace(t) => vec![t.as_ref()],
        }
    }

    /// Every reply some slot reads, for the receive path's steering.
    pub(crate) fn replies(&self) -> crate::probe::Replies {
        self.senders()
            .iter()
            .fold(Default::default(), |a, m| a.union(m.replies()))
    }

    /// The slot whose results are of `proto` (0 when one protocol is scanned).
    #[inline]
    pub(crate) fn slot_of(&self, proto: crate::probe::Proto) -> usize {
        match self {
            RawModule::Ports(ms) if ms.len() > 1 => ms
                .iter()
                .position(|m| m.result_proto() == proto)
                .unwrap_or(0),
            _ => 0,
        }
    }
}

/// A port scan's verdict on `ip` from whichever slot's module reads it: modules of other
/// protocols find such a packet unrelated.
#[inline]
fn classify_ports(ms: &[Arc<dyn PortScan>], ip: &IpPacket, ctx: &ClassifyCtx) -> Classified {
    for m in ms {
        match m.classify(ip, ctx) {
            Classified::Unrelated => continue,
            c => return c,
        }
    }
    Classified::Unrelated
}

impl Plan {
    /// Frames one pass over the whole space sends (before sharding): per address family, its
    /// addresses times the probe variants of every port (UDP payloads, traceroute TTLs).
    /// `None` for connect scans, whose retries depend on what times out.
    pub(crate) fn frames_per_pass(&self) -> Option<u64> {
        let senders = self.module.as_ref()?.senders();
        let ports = self.space.ports();
        let family = |frame: Option<&crate::wire::template::FrameParams>, addrs: u64| -> u64 {
            let Some(frame) = frame.filter(|_| addrs > 0) else {
                return 0;
            };
            // Modules whose templates do not differ per port have one list for every port.
            let mut per_slot: Vec<Option<u64>> = vec![None; senders.len()];
            let per_address: u64 = ports
                .iter()
                .map(|(slot, port)| {
                    let m = senders[slot];
                    if m.per_port_templates() {
                        m.variants(frame, port).len() as u64
                    } else {
                        *per_slot[slot].get_or_insert_with(|| m.variants(frame, 0).len() as u64)
                    }
                })
                .sum();
            addrs.saturating_mul(per_address)
        };
        Some(
            family(self.frames.v4.as_ref(), self.space.ipv4_addresses())
                .saturating_add(family(self.frames.v6.as_ref(), self.space.ipv6_addresses())),
        )
    }

    /// The probe module of a raw scan (the engine runs only those).
    pub(crate) fn raw(&self) -> &RawModule {
        self.module
            .as_ref()
            .expect("raw scans always have a probe module")
    }

    /// The walker of thread `t` of `threads`, moved to its resume position.
    pub(crate) fn walker(&self, t: u32, threads: u32, pass: u32) -> crate::permute::Walker {
        let mut w = self.cycle.walker(self.shard.0, self.shard.1, t, threads);
        if let Some(p) = self.resume.as_ref().and_then(|r| r.get(t as usize)) {
            if p.pass == pass {
                w.advance(p.walked);
            } else if p.pass > pass {
                w.advance(u64::MAX);
            }
        }
        w
    }

    fn first_pass(&self, t: u32) -> u32 {
        self.resume
            .as_ref()
            .and_then(|r| r.get(t as usize))
            .map(|p| p.pass)
            .unwrap_or(0)
    }
}

/// Limits that end a scan early, as cleanly as Ctrl-C.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Limits {
    /// Stop sending after this long.
    pub(crate) max_runtime: Option<Duration>,
    /// Stop once this many results are written.
    pub(crate) max_results: Option<u64>,
    /// Which states are written (every state is counted).
    pub(crate) show: crate::output::Show,
}

/// A transmit thread's place in the permutation: its pass (`--retries`) and the positions it has
/// walked in that pass. Every probe before it was sent; none after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Position {
    pub(crate) pass: u32,
    pub(crate) walked: u64,
}

/// Why a scan ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StopReason {
    Completed,
    Interrupted,
    MaxRuntime,
    MaxResults,
    /// Results went to a closed pipe: stop quietly.
    OutputClosed,
}

/// How the scan ended.
#[derive(Debug)]
pub struct Outcome {
    pub(crate) started: SystemTime,
    pub(crate) duration: Duration,
    pub(crate) send_duration: Duration,
    pub stop: StopReason,
    /// Where each transmit thread stopped.
    pub(crate) positions: Vec<Position>,
    /// Every probe of this shard was sent.
    pub(crate) complete: bool,
    /// What the governor decided: at `--rate 0`, or whenever the writer made it pause.
    pub(crate) governor: Option<governor::GovernorReport>,
    /// Answered probes past `positions` (a cut cooldown gave them back): the resumed run
    /// takes their replies for duplicates.
    pub(crate) answered_after: Vec<u64>,
    /// Results past `--max-results`, for the resumed run to write.
    pub(crate) carried: Vec<Record>,
}

impl Outcome {
    pub(crate) fn interrupted(&self) -> bool {
        self.stop != StopReason::Completed
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("writing {0}: {1}")]
    Output(String, std::io::Error),
    /// A thread panicked (its message is on stderr already).
    #[error("{0} stopped on an internal error; the results received are written")]
    Crashed(&'static str),
}

/// Signals received (SIGINT, SIGTERM): the first stops sending, the next ends the cooldown.
pub(crate) type Interrupts = Arc<AtomicUsize>;

/// What travels to the output thread.
pub(crate) enum OutMsg {
    Result(Record),
    /// A result that was held (grabber, version worker): its hold ends once it is written.
    Held(Record),
    /// Every reply read before this time (ms) is ahead in the queue or held (`watermark.rs`).
    Mark(u64),
    /// Ends a hold taken at this time (traceroute paths, silence), sent after its results.
    Release(u64),
    /// A validated reply's frame, for `--pcap-replies`.
    Reply(Vec<u8>, SystemTime),
}

/// A sink and the name errors give it.
pub(crate) type NamedSink = (String, Box<dyn Sink>);

/// State the output thread shares with the rest.
pub(crate) struct OutputState {
    pub(crate) broken_pipe: AtomicBool,
    pub(crate) limit_hit: AtomicBool,
    pub(crate) written: AtomicU64,
    pub(crate) error: Mutex<Option<EngineError>>,
    /// Every probe was sent (set before the results channel closes).
    pub(crate) complete: AtomicBool,
    /// Results past `--max-results`: not written, handed to the resume (`carry.rs`).
    pub(crate) carried: Mutex<Vec<Record>>,
}

impl OutputState {
    pub(crate) fn new() -> Self {
        Self {
            broken_pipe: AtomicBool::new(false),
            limit_hit: AtomicBool::new(false),
            written: AtomicU64::new(0),
            error: Mutex::new(None),
            complete: AtomicBool::new(false),
            carried: Mutex::new(Vec::new()),
        }
    }

    fn dead(&self) -> bool {
        self.broken_pipe.load(Relaxed)
            || self.limit_hit.load(Relaxed)
            || self.error.lock().map(|e| e.is_some()).unwrap_or(true)
    }
}

impl Default for OutputState {
    fn default() -> Self {
        Self::new()
    }
}

/// The output thread: the only writer of results, so a slow pipe never stalls the receive ring.
/// Stops writing at the first failure or at `--max-results`, then closes every document. It
/// tells the sinks how far the results are written (`watermark.rs`).
pub(crate) fn write_outputs(
    rx: Receiver<OutMsg>,
    mut sinks: Vec<NamedSink>,
    st: &OutputState,
    limits: Limits,
    start: Instant,
    holds: &watermark::Holds,
) {
    let mut failed = false;
    let mut mark = watermark::Watermark::default();
    let fail = |name: &str, e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            st.broken_pipe.store(true, Relaxed);
        } else {
            let mut slot = st.error.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert(EngineError::Output(name.to_string(), e));
        }
    };
    loop {
        let m = match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(m) => m,
            // A moment without results: sinks flush what waited too long.
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => OutMsg::Mark(0),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        };
        // (result, hold it ends, whether the mark may have moved)
        let (record, release, moved) = match m {
            OutMsg::Result(r) => (Some(r), None, false),
            OutMsg::Held(r) => {
                let ms = watermark::unix_ms(r.ts);
                (Some(r), Some(ms), true)
            }
            OutMsg::Release(ms) => (None, Some(ms), true),
            OutMsg::Mark(ms) => {
                mark.saw(ms);
                (None, None, true)
            }
            OutMsg::Reply(frame, ts) => {
                if !failed {
                    for (name, sink) in sinks.iter_mut() {
                        if let Err(e) = sink.write_reply(&frame, ts) {
                            fail(name, e);
                            failed = true;
                            break;
                        }
                    }
                }
                continue;
            }
        };
        if let Some(r) = record {
            // After a failure keep draining, so senders never block.
            if !failed && write_record(&r, &mut sinks, st, limits, &fail) {
                failed = true;
            }
        }
        // The hold ends only now that its result is in the sinks' hands.
        if let Some(ms) = release {
            holds.release(ms);
        }
        if !failed && moved {
            let safe = mark.safe(holds);
            for (name, sink) in sinks.iter_mut() {
                if let Err(e) = sink.watermark(safe) {
                    fail(name, e);
                    failed = true;
                    break;
                }
            }
        }
    }
    let end = RunEnd {
        end: SystemTime::now(),
        elapsed: start.elapsed(),
        results: st.written.load(Relaxed),
        error: st.error.lock().map(|e| e.is_some()).unwrap_or(true),
        complete: st.complete.load(Relaxed),
    };
    for (name, sink) in sinks.iter_mut() {
        if let Err(e) = sink.finish(&end) {
            fail(name, e);
        }
    }
}

/// Writes one result to every sink, unless filtered or past `--max-results`; true on a failure.
fn write_record(
    r: &Record,
    sinks: &mut [NamedSink],
    st: &OutputState,
    limits: Limits,
    fail: &impl Fn(&str, std::io::Error),
) -> bool {
    if !limits.show.contains(r.state) {
        return false;
    }
    if limits
        .max_results
        .is_some_and(|m| st.written.load(Relaxed) >= m)
    {
        st.limit_hit.store(true, Relaxed);
        // Its probe is behind the resume position: the resumed run writes it.
        st.carried
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(r.clone());
        return false;
    }
    for (name, sink) in sinks.iter_mut() {
        if let Err(e) = sink.write(r) {
            fail(name, e);
            return true;
        }
    }
    let n = st.written.fetch_add(1, Relaxed) + 1;
    if limits.max_results.is_some_and(|m| n >= m) {
        st.limit_hit.store(true, Relaxed);
    }
    false
}

/// Runs a scan to the end. Results already received are always written and flushed, also when
/// sending fails or the user interrupts.
pub(crate) fn run<T: TxQueue, R: RxQueue>(
    plan: &Plan,
    txs: Vec<T>,
    rx: Option<R>,
    sinks: Vec<NamedSink>,
    stats: &Stats,
    interrupts: &Interrupts,
) -> Result<Outcome, EngineError> {
    assert_eq!(
        txs.len(),
        plan.tx_cores.len(),
        "one transmit queue per thread"
    );
    phases::Run::new(plan, txs.len() as u32, stats, interrupts).execute(txs, rx, sinks)
}

/// Why sending must stop now, if it must: a signal, `--max-runtime`, `--max-results`, or an
/// output that closed or failed.
fn stop_reason(
    plan: &Plan,
    start: Instant,
    interrupts: &Interrupts,
    out: &OutputState,
) -> Option<StopReason> {
    if interrupts.load(Relaxed) > 0 {
        Some(StopReason::Interrupted)
    } else if plan
        .limits
        .max_runtime
        .is_some_and(|m| start.elapsed() >= m)
    {
        Some(StopReason::MaxRuntime)
    } else if out.limit_hit.load(Relaxed) {
        Some(StopReason::MaxResults)
    } else if out.broken_pipe.load(Relaxed) {
        Some(StopReason::OutputClosed)
    } else if out.dead() {
        Some(StopReason::Interrupted)
    } else {
        None
    }
}

/// Waits `--wait` for replies still in flight, longer while banner connections are open (each
/// expires by itself). A further signal ends it (and marks a completed scan interrupted), as
/// does a dead output; `--max-results` does not (what still comes is carried to the resume).
/// Returns when it was cut short of `--wait`: the replies of the last `--wait`'s probes may
/// not all have come (`carry.rs`).
fn cooldown(
    plan: &Plan,
    interrupts: &Interrupts,
    out: &OutputState,
    grabbing: &AtomicUsize,
    stop: &mut StopReason,
) -> Option<Instant> {
    let seen = interrupts.load(Relaxed);
    let end = Instant::now() + plan.wait;
    let cut = |now: Instant| (now < end).then_some(now);
    loop {
        let now = Instant::now();
        if now >= end && grabbing.load(Relaxed) == 0 {
            return None;
        }
        if interrupts.load(Relaxed) > seen || (*stop == StopReason::Completed && seen > 0) {
            if *stop == StopReason::Completed {
                *stop = StopReason::Interrupted;
            }
            return cut(now);
        }
        if out.broken_pipe.load(Relaxed) || out.error.lock().map(|e| e.is_some()).unwrap_or(true) {
            return cut(now);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn pin(core: Option<usize>) {
    if let Some(id) = core {
        core_affinity::set_for_current(core_affinity::CoreId { id });
    }
}

/// Results waiting for the output thread, at most (about 130 bytes each).
const OUT_QUEUE: usize = 1 << 16;

/// Largest batch handed to the transport at once (one kick). Below veth's 256-frame XDP ring:
/// in the lab a kick's probes are answered within the same softirq run, and 256 probes' worth of
/// replies overflowed that ring before our XDP program saw them (docs/design.md, "Lab facts").
pub(crate) const TX_BATCH: usize = 128;

/// Per family, the template lists: one per port for modules whose templates differ per port
/// (UDP payloads, IP protocols), else one per slot; a list holds one template per probe variant
/// (several payloads for one port).
struct TemplateBook {
    /// `list_of[pi]`: port position pi's list.
    list_of: Vec<u32>,
    /// IPv4's lists, then IPv6's (empty for a family the scan does not hold); with a source
    /// pool, its family's lists once per address, in pool order.
    templates: [Vec<Vec<FrameTemplate>>; 2],
    /// Lists per source address.
    lists: usize,
}

impl TemplateBook {
    fn new(plan: &Plan, senders: &[&dyn ProbeModule]) -> Self {
        let ports = plan.space.ports();
        let mut list_of: Vec<u32> = Vec::with_capacity(ports.len());
        let mut slot_list = vec![u32::MAX; senders.len()];
        let mut keys: Vec<(usize, u16)> = Vec::new();
        for (slot, port) in ports.iter() {
            if senders[slot].per_port_templates() {
                keys.push((slot, port));
                list_of.push(keys.len() as u32 - 1);
            } else {
                if slot_list[slot] == u32::MAX {
                    keys.push((slot, 0));
                    slot_list[slot] = keys.len() as u32 - 1;
                }
                list_of.push(slot_list[slot]);
            }
        }
        let templates_of = |family: Family| {
            let mut lists = Vec::new();
            for frame in plan.frames.each_source(family) {
                for &(slot, p) in &keys {
                    lists.push(senders[slot].variants(&frame, p));
                }
            }
            lists
        };
        TemplateBook {
            list_of,
            templates: [templates_of(Family::V4), templates_of(Family::V6)],
            lists: keys.len(),
        }
    }
}

/// The target whose variants are being sent: (module, dst, port, template list, next variant,
/// cookie). A target's variants go out together, so a stop never splits one.
type Pending<'a> = (
    &'a dyn ProbeModule,
    IpAddr,
    u16,
    &'a [FrameTemplate],
    usize,
    ProbeCookie,
);

/// What one transmit thread writes into each frame: the rest of a target's variants, else the
/// walk's next target. Plain references, copied into each pass so they live in registers.
#[derive(Clone, Copy)]
struct ProbeWriter<'a> {
    plan: &'a Plan,
    space: &'a TargetSpace,
    ports: &'a crate::targets::ProbePorts,
    jar: &'a CookieJar,
    senders: &'a [&'a dyn ProbeModule],
    tags: &'a [u8],
    book: &'a TemplateBook,
    /// One protocol (the usual case): slot 0, and the list found without a lookup.
    one_slot: bool,
    per_port: bool,
    srcs: [Option<IpAddr>; 2],
    tracer: Option<&'a PacketTrace>,
}

impl<'a> ProbeWriter<'a> {
    /// Writes one probe into `frame`; 0 when nothing is left (`exhausted` set when the walk
    /// ended) or when stopping.
    #[inline(always)]
    fn fill(
        &self,
        pending: &mut Option<Pending<'a>>,
        frame: &mut [u8],
        walker: &mut crate::permute::Walker,
        stopping: bool,
        exhausted: &mut bool,
    ) -> usize {
        if let Some((module, dst, port, list, k, c)) = pending.as_mut() {
            if let Some(tpl) = list.get(*k) {
                *k += 1;
                let n = module.write(frame, tpl, *dst, *port, c);
                self.traced(frame, n);
                return n;
            }
            *pending = None;
        }
        if stopping {
            return 0;
        }
        loop {
            let Some(i) = walker.next() else {
                *exhausted = true;
                return 0;
            };
            let (dst, port, pi) = self.space.get_indexed(i);
            let fam = Family::of(&dst).index();
            // Config resolves a source for every family the space holds.
            let src = self.srcs[fam].expect("a source address for each family");
            let (slot, li) = if self.one_slot {
                (0, if self.per_port { pi } else { 0 })
            } else {
                (self.ports.slot_of(pi), self.book.list_of[pi] as usize)
            };
            let module = self.senders[slot];
            // `k`: the source address the cookie picks (0 without a pool).
            let (c, k) = self.jar.probe_cookie(src, dst, port, self.tags[slot]);
            let list = &self.book.templates[fam][k as usize * self.book.lists + li];
            // The first variant goes out now, straight from registers; only further variants
            // wait in `pending` (a round trip through it costs a store-to-load stall per probe).
            let Some(tpl) = list.first() else { continue };
            if list.len() > 1 {
                *pending = Some((module, dst, port, list, 1, c));
            }
            let n = module.write(frame, tpl, dst, port, &c);
            self.traced(frame, n);
            return n;
        }
    }

    #[inline(always)]
    fn traced(&self, frame: &[u8], n: usize) {
        if let Some(t) = self.tracer {
            t.sent(&frame[..n]);
        }
    }
}

/// A transmit thread's pacing: its share of `--rate` (or the governor's limit) and the pauses
/// the governor asks for.
struct Pacer {
    limiter: RateLimiter,
    threads: u32,
    was_paused: bool,
}

impl Pacer {
    /// How many probes may go now; 0 when none (paused, or not yet time).
    #[inline]
    fn allowance(&mut self, plan: &Plan, stop: &AtomicBool, stopping: bool) -> usize {
        if plan.governor.active {
            self.limiter
                .retarget(plan.governor.limit() as f64 / self.threads as f64);
        }
        if plan.governor.paused() && !stop.load(Relaxed) {
            // The writer is behind: replies already in flight fill the rest of its queue.
            std::thread::sleep(Duration::from_micros(200));
            self.was_paused = true;
            return 0;
        }
        if self.was_paused {
            // Pacing counts from here: no burst to make up for the pause.
            self.limiter.restart();
            self.was_paused = false;
        }
        if stopping {
            plan.tx_batch
        } else {
            self.limiter.allowance(plan.tx_batch, || stop.load(Relaxed))
        }
    }
}

/// Sends this thread's share; returns where it stopped (also on error).
fn transmit<T: TxQueue>(
    plan: &Plan,
    txq: &mut T,
    thread: u32,
    threads: u32,
    stats: &Stats,
    stop: &AtomicBool,
    extra: TxExtras,
) -> Result<Position, (IoError, Position)> {
    let senders = plan.raw().senders();
    let book = TemplateBook::new(plan, &senders);
    let tags: Vec<u8> = senders.iter().map(|m| m.cookie_tag()).collect();
    let writer = ProbeWriter {
        plan,
        space: &plan.space,
        ports: plan.space.ports(),
        jar: &plan.jar,
        tags: &tags,
        senders: &senders,
        book: &book,
        one_slot: senders.len() == 1,
        per_port: senders.len() == 1 && senders[0].per_port_templates(),
        srcs: [plan.frames.v4.map(|f| f.src), plan.frames.v6.map(|f| f.src)],
        tracer: extra.tracer,
    };
    let mut pacer = Pacer {
        limiter: RateLimiter::new(plan.rate as f64 / threads as f64),
        threads,
        was_paused: false,
    };
    let mut pos = Position {
        pass: plan.first_pass(thread),
        walked: 0,
    };
    for pass in pos.pass..=plan.retries {
        let mut walker = plan.walker(thread, threads, pass);
        pos = Position {
            pass,
            walked: walker.walked(),
        };
        if let Some(l) = &plan.live {
            l.set(thread as usize, pos);
        }
        let mut pass_run = PassRun {
            thread,
            stats,
            stop,
            inject: extra.inject,
        };
        let exhausted = pass_run
            .send(txq, writer, &mut pacer, &mut walker, &mut pos)
            .map_err(|e| (e, pos))?;
        if stop.load(Relaxed) && !exhausted {
            break;
        }
        if pass < plan.retries {
            pos = Position {
                pass: pass + 1,
                walked: 0,
            };
        }
    }
    txq.drain(Duration::from_secs(2)).map_err(|e| (e, pos))?;
    Ok(pos)
}

/// One pass of a transmit thread's walk, batch by batch.
struct PassRun<'a> {
    thread: u32,
    stats: &'a Stats,
    stop: &'a AtomicBool,
    /// Frames from the banner grabber, sent before the next probe.
    inject: Option<&'a Receiver<Vec<u8>>>,
}

impl PassRun<'_> {
    /// Sends until the walk ends (true) or a stop leaves no target half sent (false); `pos`
    /// follows the walk.
    fn send<T: TxQueue>(
        &mut self,
        txq: &mut T,
        writer: ProbeWriter,
        pacer: &mut Pacer,
        walker: &mut crate::permute::Walker,
        pos: &mut Position,
    ) -> Result<bool, IoError> {
        let (plan, stats, inject, tracer) = (writer.plan, self.stats, self.inject, writer.tracer);
        let mut walked_reported = walker.walked();
        let mut exhausted = false;
        // Empty whenever the walk is: a target's variants end before the next target is drawn.
        let mut pending = None;
        loop {
            let stopping = self.stop.load(Relaxed);
            if exhausted || (stopping && pending.is_none()) {
                return Ok(exhausted);
            }
            let allowed = pacer.allowance(plan, self.stop, stopping);
            if allowed == 0 {
                continue;
            }
            // The banner grabber's segments ride along; only probes count toward the rate. The
            // channel is looked at once per batch, not once per frame.
            let mut waiting = inject.map_or(0, |r| r.len());
            let mut injected = 0;
            let n = txq.send_batch(allowed, |frame| {
                if waiting > 0 {
                    waiting -= 1;
                    if let Some(f) = inject.and_then(|r| r.try_recv().ok()) {
                        injected += 1;
                        return put_frame(frame, &f, tracer);
                    }
                }
                writer.fill(&mut pending, frame, walker, stopping, &mut exhausted)
            })? - injected;
            pacer.limiter.sent(n);
            Stats::add(&stats.sent, n as u64);
            let w = walker.walked();
            Stats::add(&stats.walked, w - walked_reported);
            walked_reported = w;
            pos.walked = w;
            if let Some(l) = &plan.live {
                l.set(self.thread as usize, *pos);
            }
            if n == 0 && !exhausted && !stopping {
                std::hint::spin_loop(); // ring full: the kernel is still sending
            }
        }
    }
}
/// What a transmit thread carries besides its walk.
#[derive(Clone, Copy)]
struct TxExtras<'a> {
    tracer: Option<&'a PacketTrace>,
    /// Frames from the banner grabber, sent before the next probe.
    inject: Option<&'a Receiver<Vec<u8>>>,
}

/// Copies a ready-made frame (the banner grabber's) into a transmit buffer.
fn put_frame(buf: &mut [u8], f: &[u8], tracer: Option<&PacketTrace>) -> usize {
    let n = f.len().min(buf.len());
    buf[..n].copy_from_slice(&f[..n]);
    if let Some(t) = tracer {
        t.sent(&buf[..n]);
    }
    n
}

/// After its walk, a transmit thread keeps sending the banner grabber's frames until the
/// receive side is done.
fn serve_injections<T: TxQueue>(
    txq: &mut T,
    inject: &Receiver<Vec<u8>>,
    done: &AtomicBool,
    tracer: Option<&PacketTrace>,
) -> Result<(), IoError> {
    let mut held: Option<Vec<u8>> = None;
    while !done.load(Relaxed) {
        let f = match held.take() {
            Some(f) => f,
            None => match inject.recv_timeout(Duration::from_millis(5)) {
                Ok(f) => f,
                Err(_) => continue,
            },
        };
        let mut first = Some(f);
        let n = txq.send_batch(TX_BATCH, |buf| {
            match first.take().or_else(|| inject.try_recv().ok()) {
                Some(f) => put_frame(buf, &f, tracer),
                None => 0,
            }
        })?;
        if n == 0 {
            held = first; // ring full: try again
            std::thread::sleep(Duration::from_micros(100));
        }
    }
    txq.drain(Duration::from_secs(1))
}

/// What the receive thread keeps: who answered, traceroute paths and banner connections.
struct RxSide<'a> {
    /// Who answered: the duplicate filter, and `--report-silent`'s record.
    dedup: Dedup,
    tracer: Option<&'a PacketTrace>,
    traces: TraceTable,
    /// The hold the first traceroute hop took: paths are written after the cooldown.
    trace_hold: Option<u64>,
    holds: &'a watermark::Holds,
    grabber: Option<grab_link::GrabLink>,
    /// Connections open, for the cooldown to wait on.
    grabbing: &'a AtomicUsize,
    /// `-sU -sV --report-silent`: silent UDP ports handed to version detection after the
    /// cooldown (see `silence::SilentUdp`).
    silent_udp: Option<silence::SilentUdp<'a>>,
}

/// The reply path, stage by stage: parse, grab (a banner conversation's segments), classify,
/// dedup (a batch at once), record. Batch in two passes: first everything that needs no
/// duplicate check, collecting the port verdicts; then the filter decides on all of them at once
/// (see `dedup.rs`), and the verdicts are reported from their frames, still in the ring.
struct ReplyPath<'a> {
    plan: &'a Plan,
    ctx: ClassifyCtx,
    /// Each slot's scan type, as its records name it.
    names: Vec<crate::probe::ScanType>,
    stats: &'a Stats,
    out: &'a Sender<OutMsg>,
    sending_done: &'a AtomicBool,
    /// This batch's port verdicts: (frame index, verdict, slot).
    pending: Vec<(usize, Verdict, usize)>,
    firsts: Vec<dedup::Seen>,
}

impl<'a> ReplyPath<'a> {
    fn new(
        plan: &'a Plan,
        stats: &'a Stats,
        out: &'a Sender<OutMsg>,
        sending_done: &'a AtomicBool,
    ) -> Self {
        ReplyPath {
            plan,
            ctx: ClassifyCtx {
                jar: plan.jar.clone(),
                src_v4: plan.frames.src_v4(),
                src_v6: plan.frames.src_v6(),
            },
            names: plan.raw().senders().iter().map(|m| m.scan()).collect(),
            stats,
            out,
            sending_done,
            pending: Vec::with_capacity(256),
            firsts: Vec::with_capacity(256),
        }
    }

    /// One batch read from the ring.
    fn batch(&mut self, frames: &[&[u8]], side: &mut RxSide) {
        Stats::add(&self.stats.received, frames.len() as u64);
        self.pending.clear();
        for (k, &frame) in frames.iter().enumerate() {
            if let Some((v, slot)) = self.classify(frame, side) {
                self.pending.push((k, v, slot));
            }
        }
        if self.pending.is_empty() {
            return;
        }
        side.dedup.first_batch(
            &self.plan.space,
            self.pending
                .iter()
                .map(|(_, v, slot)| (v.ip, *slot, v.port, v.proto)),
            &mut self.firsts,
        );
        let now = SystemTime::now();
        for (&(k, v, slot), &seen) in self.pending.iter().zip(self.firsts.iter()) {
            self.record(frames[k], v, slot, seen, now, side);
        }
    }

    /// Parse, grab, classify: a port verdict waiting for the duplicate check, or `None` when
    /// the frame is done with (not ours, a conversation's, a hop, invalid).
    #[inline]
    fn classify(&self, frame: &[u8], side: &mut RxSide) -> Option<(Verdict, usize)> {
        let stats = self.stats;
        if let Some(t) = side.tracer {
            t.rcvd(frame);
        }
        let Some(ip) = IpPacket::from_frame(frame) else {
            if crate::wire::ethernet::carries_ip(frame) {
                Stats::add(&stats.malformed, 1);
            }
            return None;
        };
        if !self.ctx.is_ours(ip.dst()) || self.grab(&ip, frame, side) {
            return None;
        }
        let classified = match self.plan.raw() {
            RawModule::Ports(ms) => classify_ports(ms, &ip, &self.ctx),
            RawModule::Trace(t) => {
                self.hop(t.classify(&ip, &self.ctx), frame, side);
                return None;
            }
        };
        match classified {
            Classified::Reply(v) => return Some((v, self.plan.raw().slot_of(v.proto))),
            Classified::Invalid => Stats::add(&stats.invalid, 1),
            // Addressed to our port range, yet no module's reply: unsolicited as well (over
            // AF_PACKET the host's own traffic to our address comes here too: not counted).
            Classified::Unrelated => {
                if self.ctx.jar.ports().contains(ReplyFacts::of(&ip).our_port) {
                    Stats::add(&stats.invalid, 1);
                }
            }
        }
        None
    }

    /// Segments of a banner conversation belong to the grabber, and so do answers to its UDP
    /// probes (-sU -sV): true when it took this one.
    #[inline]
    fn grab(&self, ip: &IpPacket, frame: &[u8], side: &mut RxSide) -> bool {
        let Some(g) = side.grabber.as_mut().map(|l| &mut l.grabber) else {
            return false;
        };
        if ip.protocol() == crate::wire::PROTO_UDP
            && g.versioned()
            && g.datagram(ip, Instant::now())
        {
            self.keep(frame, SystemTime::now());
            return true;
        }
        if ip.protocol() != crate::wire::PROTO_TCP {
            return false;
        }
        let Some(done) = g.segment(ip, Instant::now()) else {
            return false;
        };
        self.keep(frame, SystemTime::now());
        if let Some(r) = done {
            Stats::add(&self.stats.banners, 1);
            let _ = self.out.send(OutMsg::Held(r));
        }
        side.grabbing.store(g.active(), Relaxed);
        true
    }

    /// A traceroute reply: a hop of some path, kept in the trace table.
    fn hop(&self, c: Classified<crate::probe::traceroute::Hop>, frame: &[u8], side: &mut RxSide) {
        let stats = self.stats;
        match c {
            Classified::Reply(h) if !TraceTable::admits(&self.plan.space, &h) => {
                Stats::add(&stats.invalid, 1);
            }
            Classified::Reply(h) => {
                Stats::add(&stats.validated, 1);
                self.keep(frame, SystemTime::now());
                if !side.traces.add(&h) {
                    Stats::add(&stats.duplicates, 1);
                } else if side.trace_hold.is_none() {
                    let ms = watermark::unix_ms(SystemTime::now());
                    side.holds.hold(ms);
                    side.trace_hold = Some(ms);
                }
            }
            Classified::Invalid => Stats::add(&stats.invalid, 1),
            Classified::Unrelated => {}
        }
    }

    /// After the duplicate check: a first answer becomes a record (an open port's waits for its
    /// banner), a repeat is counted.
    #[inline]
    fn record(
        &self,
        frame: &[u8],
        v: Verdict,
        slot: usize,
        seen: dedup::Seen,
        now: SystemTime,
        side: &mut RxSide,
    ) {
        let stats = self.stats;
        if seen == dedup::Seen::Outside {
            // Its cookie matched, yet no probe went to that pair: forged or by chance.
            Stats::add(&stats.invalid, 1);
            return;
        }
        Stats::add(&stats.validated, 1);
        let Some(ip) = IpPacket::from_frame(frame) else {
            return; // parsed in the first pass
        };
        self.keep(frame, now);
        let synack = v.reason == crate::probe::Reason::SynAck;
        if seen != dedup::Seen::First {
            Stats::add(&stats.duplicates, 1);
            if let (Some(l), true) = (side.grabber.as_mut(), synack) {
                l.grabber.repeat_synack(&ip);
            }
            return;
        }
        stats.count_state(v.state);
        if !self.plan.limits.show.contains(v.state) {
            return; // counted, never written (--open, --show, --noshow)
        }
        let mut r = Record::from_verdict(&v, self.names[slot], now);
        r.local = ip.dst();
        r.facts = ReplyFacts::of(&ip);
        r.cooldown = self.sending_done.load(Relaxed);
        // An open port's record waits for its banner.
        let udp_open =
            v.proto == crate::probe::Proto::Udp && v.state == crate::probe::PortState::Open;
        let r = match side.grabber.as_mut().map(|l| &mut l.grabber) {
            Some(g) if synack || (udp_open && g.versioned()) => {
                let r = if synack {
                    g.open(&ip, r, Instant::now())
                } else {
                    g.open_udp(r)
                };
                side.grabbing.store(g.active(), Relaxed);
                if r.is_some() {
                    Stats::add(&stats.banners_skipped, 1);
                }
                r
            }
            _ => Some(r),
        };
        // Blocks when the writer lags: results are never dropped.
        if let Some(r) = r {
            let _ = self.out.send(OutMsg::Result(r));
        }
    }

    /// `--pcap-replies`: every validated reply's frame to the sinks.
    #[inline]
    fn keep(&self, frame: &[u8], now: SystemTime) {
        if self.plan.keep_replies {
            let _ = self.out.send(OutMsg::Reply(frame.to_vec(), now));
        }
    }

    /// Between reads: the worker's orders, the grabber's timers, silent UDP ports for -sV;
    /// then what the grabber made goes out.
    fn tick(&self, side: &mut RxSide) {
        let Some(link) = side.grabber.as_mut() else {
            return;
        };
        let now = Instant::now();
        link.take_orders(now);
        for r in link.grabber.tick(now) {
            Stats::add(&self.stats.banners, 1);
            let _ = self.out.send(OutMsg::Held(r));
        }
        if let (Some(su), Some(answered)) = (side.silent_udp.as_mut(), side.dedup.answered()) {
            su.feed(self.plan, answered, &mut link.grabber, self.stats);
        }
        link.flush();
        side.grabbing.store(link.grabber.active(), Relaxed);
    }

    /// The end: open conversations end with what they have (and a RST).
    fn close(&self, side: &mut RxSide) {
        if let Some(link) = side.grabber.as_mut() {
            for r in link.close_all(Instant::now()) {
                Stats::add(&self.stats.banners, 1);
                let _ = self.out.send(OutMsg::Held(r));
            }
            side.grabbing.store(0, Relaxed);
        }
    }
}

fn receive<R: RxQueue>(
    plan: &Plan,
    rxq: &mut R,
    stats: &Stats,
    stop: &AtomicBool,
    sending_done: &AtomicBool,
    out: &Sender<OutMsg>,
    side: &mut RxSide,
) -> Result<(), IoError> {
    let mut path = ReplyPath::new(plan, stats, out, sending_done);
    let mut idle = 0u32;
    let (batch, ring) = rxq.capacity();
    let mut ctl = governor::Controller::new(Stats::get(&stats.sent), rxq.drops());
    // Consecutive full batches: how far behind the ring we are.
    let mut behind = 0usize;
    let mut last_mark = 0u64;
    loop {
        let read_from = watermark::unix_ms(SystemTime::now());
        let n = rxq.recv_batch(|f| path.batch(f, side))?;
        behind = if n >= batch { behind + 1 } else { 0 };
        ctl.saw_ring(behind * batch, ring);
        // Results the writer has not taken yet count as replies still in flight.
        let queued = out.len();
        ctl.saw_ring(queued, OUT_QUEUE);
        plan.governor.backpressure(queued, OUT_QUEUE);
        path.tick(side);
        // A read short of a batch emptied the ring: every reply that came before it is now
        // ahead in the queue or held (`watermark.rs`). Ten marks a second are plenty.
        if n < batch && read_from >= last_mark + 100 {
            last_mark = read_from;
            let _ = out.send(OutMsg::Mark(read_from));
        }
        if ctl.due() {
            let d = rxq.drops();
            Stats::add(&stats.drops, d.saturating_sub(Stats::get(&stats.drops)));
            ctl.tick(&plan.governor, Stats::get(&stats.sent), d);
        }
        if n > 0 {
            idle = 0;
            continue;
        }
        if stop.load(Relaxed) {
            // One last sweep so nothing already in the ring is left behind.
            if rxq.recv_batch(|f| path.batch(f, side))? == 0 {
                path.close(side);
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
