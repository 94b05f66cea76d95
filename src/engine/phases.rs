//! A raw scan's phases in the engine's lifecycle (`lifecycle.rs`): its threads are started
//! (version worker, receive, transmit), then sending (phase 1), the cooldown and the silent UDP
//! ports' detection (phase 2, 2b), what only the whole of the replies tells (phase 3: paths,
//! silence, where a resume starts), and what it reached. [`Run`] holds what the threads share.

use std::{
    cell::Cell,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed},
        Arc, Mutex,
    },
    thread::{Scope, ScopedJoinHandle},
    time::{Duration, Instant},
};

use crossbeam_channel::{bounded, unbounded, Sender};

use super::{
    carry, cooldown,
    dedup::Dedup,
    grab,
    grab_link::{GrabLink, VersionLink},
    lifecycle::{Channel, Lifecycle, Phases, Reached},
    monitor::Progress,
    packet_trace::PacketTrace,
    pin, port_worker, receive, serve_injections, silence,
    trace_table::TraceTable,
    transmit, watermark, EngineError, Interrupts, NamedSink, OutMsg, Outcome, Plan, Position,
    RawModule, RxSide, StopReason, TxExtras, OUT_QUEUE,
};
use crate::{
    io::{RxQueue, TxQueue},
    output::Record,
};

use super::stats::Stats;

/// What the receive thread hands back: who answered, and the traceroute table with its hold.
type RxResult = (Option<Dedup>, (TraceTable, Option<u64>));

/// What the threads of one raw scan share, besides the lifecycle's.
pub(super) struct Run<'p> {
    life: Lifecycle<'p>,
    threads: u32,
    stop_tx: AtomicBool,
    stop_rx: AtomicBool,
    sending_done: AtomicBool,
    positions: Mutex<Vec<Position>>,
    answered_after: Mutex<Vec<u64>>,
    tracer: Option<PacketTrace>,
    walks_done: AtomicUsize,
    /// Frames the banner grabber sends, through the transmit threads' rings.
    inject: Option<Channel<Vec<u8>>>,
    inject_done: AtomicBool,
    /// Connections open, for the cooldown to wait on.
    grabbing: AtomicUsize,
    /// -sU -sV --report-silent: silent UDP ports are version-probed too, after the cooldown.
    silent_udp_wanted: bool,
    probe_silent: AtomicBool,
    silent_done: AtomicBool,
    /// Silence is known only at the end: nothing of the scan is written until then.
    silence_hold: Option<u64>,
}

/// The raw scan's threads while it runs (phase 1 to phase 3).
pub(super) struct Threads<'s> {
    senders: Vec<ScopedJoinHandle<'s, ()>>,
    receiver: Option<ScopedJoinHandle<'s, RxResult>>,
    /// Positions sampled while sending, for a cut cooldown (`carry`).
    history: carry::PositionHistory,
}

impl<'p> Run<'p> {
    pub(super) fn new(
        plan: &'p Plan,
        threads: u32,
        stats: &'p Stats,
        interrupts: &'p Interrupts,
    ) -> Self {
        let life = Lifecycle::new(plan, stats, interrupts, progress(plan, threads, stats));
        let versioned = plan.namer.is_some() && plan.grab.is_some();
        let silence_hold = plan.report_silent.then(|| {
            let ms = watermark::unix_ms(life.started);
            life.holds.hold(ms);
            ms
        });
        Run {
            threads,
            stop_tx: AtomicBool::new(false),
            stop_rx: AtomicBool::new(false),
            sending_done: AtomicBool::new(false),
            positions: Mutex::new(vec![Position { pass: 0, walked: 0 }; threads as usize]),
            answered_after: Mutex::new(Vec::new()),
            tracer: plan.packet_trace.then(|| PacketTrace::new(life.start)),
            walks_done: AtomicUsize::new(0),
            inject: plan.grab.as_ref().map(|_| unbounded::<Vec<u8>>()),
            inject_done: AtomicBool::new(false),
            grabbing: AtomicUsize::new(0),
            silent_udp_wanted: versioned
                && plan.report_silent
                && plan
                    .raw()
                    .senders()
                    .iter()
                    .any(|m| m.result_proto() == crate::probe::Proto::Udp),
            probe_silent: AtomicBool::new(false),
            silent_done: AtomicBool::new(false),
            silence_hold,
            life,
        }
    }

    fn set_position(&self, t: usize, p: Position) {
        self.positions.lock().unwrap_or_else(|e| e.into_inner())[t] = p;
    }

    /// Runs the scan to its end: every phase, then the outcome.
    pub(super) fn execute<T: TxQueue, R: RxQueue>(
        self,
        txs: Vec<T>,
        rx: Option<R>,
        sinks: Vec<NamedSink>,
    ) -> Result<Outcome, EngineError> {
        let phases = RawPhases {
            run: &self,
            queues: Cell::new(Some((txs, rx))),
        };
        let ended = self.life.drive(&phases, sinks);
        let plan = self.life.plan;
        let positions = self
            .positions
            .into_inner()
            .unwrap_or_else(|p| p.into_inner());
        let threads = self.threads;
        let complete = (0..threads as usize).all(|t| {
            let p = positions[t];
            let all = plan
                .cycle
                .walker(plan.shard.0, plan.shard.1, t as u32, threads);
            p.pass == plan.retries && p.walked == all.positions()
        });
        let reached = Reached {
            positions,
            complete,
            governor: Some(plan.governor.report()).filter(|r| plan.governor.active || r.pauses > 0),
            answered_after: self
                .answered_after
                .into_inner()
                .unwrap_or_else(|p| p.into_inner()),
        };
        self.life.outcome(ended, reached)
    }

    /// The port worker (`-sV`, `--grab`), which reads answers off the receive thread
    /// (`port_worker.rs`), and the grabber's link to it.
    fn spawn_version<'s>(
        &'s self,
        s: &'s Scope<'s, '_>,
        rec_tx: &Sender<OutMsg>,
    ) -> Option<VersionLink> {
        let plan = self.life.plan;
        let grab = plan.grab.as_ref()?;
        if plan.namer.is_none() && plan.apps.is_none() {
            return None;
        }
        let detecting = Arc::new(AtomicUsize::new(0));
        let (rec_tx, counted) = (rec_tx.clone(), detecting.clone());
        let (answers, orders) = (unbounded::<grab::Answer>(), unbounded::<grab::Order>());
        let (answer_rx, order_tx) = (answers.1, orders.0);
        let max_wait = grab.timeout;
        s.spawn(move || {
            let work = port_worker::PortWork {
                version: plan.namer.as_deref().map(|namer| port_worker::VersionWork {
                    db: namer.probes.clone(),
                    namer,
                    intensity: namer.intensity,
                    tls: true,
                }),
                apps: plan.apps.as_deref(),
                max_wait,
            };
            let links = port_worker::Links {
                answers: answer_rx,
                orders: order_tx,
                out: rec_tx,
                detecting: &counted,
                stats: self.life.stats,
            };
            port_worker::run(work, links)
        });
        Some(VersionLink {
            answers: answers.0,
            orders: orders.1,
            detecting,
        })
    }

    /// The receive thread: classify, grab, dedup, record (`receive`).
    fn spawn_receiver<'s, R: RxQueue + 's>(
        &'s self,
        s: &'s Scope<'s, '_>,
        mut rxq: R,
        rec_tx: &Sender<OutMsg>,
        inject_tx: Option<Sender<Vec<u8>>>,
        version_link: Option<VersionLink>,
    ) -> ScopedJoinHandle<'s, RxResult> {
        let rec_tx = rec_tx.clone();
        s.spawn(move || {
            let plan = self.life.plan;
            pin(plan.rx_core);
            let mut side = RxSide {
                dedup: self.dedup_before(),
                tracer: self.tracer.as_ref(),
                traces: TraceTable::default(),
                trace_hold: None,
                holds: &self.life.holds,
                grabber: plan.grab.clone().zip(inject_tx).map(|(o, tx)| {
                    let seed = crate::cookie::random_u64();
                    let g = grab::Grabber::new(o, plan.frames, Instant::now(), seed)
                        .with_holds(self.life.holds.clone());
                    GrabLink::new(g, tx, version_link, plan.jar.ports())
                }),
                grabbing: &self.grabbing,
                silent_udp: self.silent_udp_wanted.then_some(silence::SilentUdp {
                    go: &self.probe_silent,
                    done: &self.silent_done,
                    thread: 0,
                    threads: self.threads,
                    walker: None,
                    held: None,
                }),
            };
            let stop = (&self.stop_rx, &self.sending_done);
            if let Err(e) = receive(
                plan,
                &mut rxq,
                self.life.stats,
                stop.0,
                stop.1,
                &rec_tx,
                &mut side,
            ) {
                self.life.fail(e.into());
            }
            let drops = &self.life.stats.drops;
            Stats::add(drops, rxq.drops().saturating_sub(Stats::get(drops)));
            (Some(side.dedup), (side.traces, side.trace_hold))
        })
    }

    /// The duplicate filter, with what the interrupted run reported or carried marked.
    fn dedup_before(&self) -> Dedup {
        let plan = self.life.plan;
        let raw = plan.raw();
        let mut dedup = Dedup::for_space(plan.space.len());
        for &i in &plan.answered_before {
            dedup.mark(i);
        }
        for r in &plan.carried {
            if let Some(i) = plan.space.index_of(r.ip, raw.slot_of(r.proto), r.port) {
                dedup.mark(i);
            }
        }
        dedup
    }

    /// One pinned transmit thread per queue; each serves the grabber's frames once its walk
    /// is done.
    fn spawn_senders<'s, T: TxQueue + 's>(
        &'s self,
        s: &'s Scope<'s, '_>,
        txs: Vec<T>,
    ) -> Vec<ScopedJoinHandle<'s, ()>> {
        let inject_rx = self.inject.as_ref().map(|(_, rx)| rx);
        txs.into_iter()
            .enumerate()
            .zip(self.life.plan.tx_cores.iter().copied())
            .map(|((t, mut txq), core)| {
                s.spawn(move || {
                    pin(core);
                    let tracer = self.tracer.as_ref();
                    let extra = TxExtras {
                        tracer,
                        inject: inject_rx,
                    };
                    let walked = transmit(
                        self.life.plan,
                        &mut txq,
                        t as u32,
                        self.threads,
                        self.life.stats,
                        &self.stop_tx,
                        extra,
                    );
                    let ok = match walked {
                        Ok(p) => {
                            self.set_position(t, p);
                            true
                        }
                        Err((e, p)) => {
                            self.set_position(t, p);
                            self.stop_tx.store(true, Relaxed);
                            self.life.fail(e.into());
                            false
                        }
                    };
                    self.walks_done.fetch_add(1, Relaxed);
                    if let (true, Some(rx)) = (ok, inject_rx) {
                        if let Err(e) = serve_injections(&mut txq, rx, &self.inject_done, tracer) {
                            self.life.fail(e.into());
                        }
                    }
                })
            })
            .collect()
    }

    /// Phase 1, sending: waits for the transmit threads; a signal, a limit or a dead output
    /// stops them. Samples the positions for a cut cooldown (`carry`).
    fn send(
        &self,
        senders: &[ScopedJoinHandle<'_, ()>],
        stop: &mut StopReason,
    ) -> carry::PositionHistory {
        let plan = self.life.plan;
        let mut history = carry::PositionHistory::default();
        let mut sampled = Instant::now();
        while self.walks_done.load(Relaxed) < self.threads as usize
            && senders.iter().any(|h| !h.is_finished())
        {
            if let Some(live) = plan
                .live
                .as_ref()
                .filter(|_| sampled.elapsed().as_millis() >= 100)
            {
                sampled = Instant::now();
                history.sample(sampled, live.snapshot(), plan.wait);
            }
            if !self.stop_tx.load(Relaxed) {
                if let Some(w) = self.life.stop_reason() {
                    *stop = w;
                    self.stop_tx.store(true, Relaxed);
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.sending_done.store(true, Relaxed);
        if let Some(live) = &plan.live {
            history.sample(Instant::now(), live.snapshot(), plan.wait);
        }
        history
    }

    /// Phase 2, the cooldown: replies still in flight. Phase 2b (-sU -sV --report-silent): the
    /// silent UDP ports of a complete run go through version detection before they are
    /// reported (an answer makes them open). Returns when a cut cooldown stopped.
    fn cool_down(&self, stop: &mut StopReason) -> Option<Instant> {
        let cut = cooldown(
            self.life.plan,
            self.life.interrupts,
            &self.life.out_state,
            &self.grabbing,
            stop,
        );
        if self.silent_udp_wanted && *stop == StopReason::Completed && !self.stop_tx.load(Relaxed) {
            self.probe_silent.store(true, Relaxed);
            let seen = self.life.interrupts.load(Relaxed);
            while !self.silent_done.load(Relaxed) || self.grabbing.load(Relaxed) > 0 {
                if self.life.interrupts.load(Relaxed) > seen || self.life.out_state.dead() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        cut
    }

    /// Phase 3, what only the whole of the replies tells: paths, one record per target, and
    /// silence, for this shard's targets only; and where a resume starts (a cut cooldown gives
    /// back what the last `--wait` sent).
    fn after_cooldown(
        &self,
        dedup: Option<Dedup>,
        (traces, trace_hold): (TraceTable, Option<u64>),
        cut: Option<Instant>,
        history: &carry::PositionHistory,
        stop: StopReason,
        rec_tx: &Sender<OutMsg>,
    ) {
        let plan = self.life.plan;
        let mut emit = |r: Record| {
            self.life.stats.count_state(r.state);
            rec_tx.send(OutMsg::Result(r)).is_ok()
        };
        if let RawModule::Trace(t) = plan.raw() {
            for r in traces.into_records(t, plan.frames.primary().ttl, &plan.frames) {
                if !emit(r) {
                    break;
                }
            }
        }
        if let Some(ms) = trace_hold {
            let _ = rec_tx.send(OutMsg::Release(ms));
        }
        let stopped = self
            .positions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let started_at: Vec<Position> = (0..self.threads as usize)
            .map(|t| {
                plan.resume
                    .as_ref()
                    .and_then(|r| r.get(t).copied())
                    .unwrap_or(Position { pass: 0, walked: 0 })
            })
            .collect();
        let effective = match cut {
            Some(at) => history.safe_at(at, plan.wait).unwrap_or(started_at.clone()),
            None => stopped.clone(),
        };
        if let Some(answered) = dedup.as_ref().and_then(|d| d.answered()) {
            if cut.is_some() {
                let mut given_back = Vec::new();
                for t in 0..self.threads {
                    let (safe, stop) = (effective[t as usize], stopped[t as usize]);
                    let th = self.threads;
                    given_back.extend(carry::answered_between(plan, answered, t, th, safe, stop));
                }
                *self
                    .answered_after
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = given_back;
            }
            if plan.report_silent {
                // What this run can tell, complete or not (a resumed run tells the rest).
                let ranges: Vec<(u64, u64)> = (0..self.threads as usize)
                    .map(|t| carry::silent_range(plan, started_at[t], effective[t]))
                    .collect();
                // Silent UDP ports probed in phase 2b were reported by the version worker.
                silence::report(answered, plan, &ranges, self.silent_udp_wanted, &mut emit);
            }
        }
        *self.positions.lock().unwrap_or_else(|p| p.into_inner()) = effective;
        let complete =
            stop == StopReason::Completed && !self.stop_tx.load(Relaxed) && cut.is_none();
        if let Some(ms) = self.silence_hold {
            let _ = rec_tx.send(OutMsg::Release(ms));
        }
        self.life.out_state.complete.store(complete, Relaxed);
    }
}

/// The raw engine's phases, over the transmit and receive queues it is given.
struct RawPhases<'r, 'p, T, R> {
    run: &'r Run<'p>,
    /// Taken by `start`, which moves each queue into its thread.
    queues: Cell<Option<(Vec<T>, Option<R>)>>,
}

impl<T: TxQueue, R: RxQueue> Phases for RawPhases<'_, '_, T, R> {
    type Running<'s>
        = Threads<'s>
    where
        Self: 's;

    fn queue(&self) -> Channel<OutMsg> {
        // Bounded, so memory does not grow when the writer lags: at 3/4 full the senders
        // pause until it is below half (`Governor::backpressure`).
        bounded(OUT_QUEUE)
    }

    fn start<'s, 'e>(&'s self, s: &'s Scope<'s, 'e>, results: &Sender<OutMsg>) -> Threads<'s> {
        let run = self.run;
        let (txs, rx) = self.queues.take().expect("started once");
        let version_link = run.spawn_version(s, results);
        let inject_tx = run.inject.as_ref().map(|(tx, _)| tx.clone());
        let receiver = rx.map(|rxq| run.spawn_receiver(s, rxq, results, inject_tx, version_link));
        Threads {
            senders: run.spawn_senders(s, txs),
            receiver,
            history: carry::PositionHistory::default(),
        }
    }

    fn send(&self, threads: &mut Threads<'_>, stop: &mut StopReason) {
        threads.history = self.run.send(&threads.senders, stop);
    }

    fn drain(&self, threads: &mut Threads<'_>, stop: &mut StopReason) -> Option<Instant> {
        match threads.receiver.is_some() {
            true => self.run.cool_down(stop),
            false => None,
        }
    }

    fn conclude(
        &self,
        threads: Threads<'_>,
        cut: Option<Instant>,
        stop: StopReason,
        results: &Sender<OutMsg>,
    ) {
        let run = self.run;
        run.stop_rx.store(true, Relaxed);
        // A thread that panicked said so on stderr (main's hook); the scan then fails, after
        // everything received is written.
        let (dedup, traces) = match threads.receiver.map(|h| h.join()) {
            Some(Err(_)) => {
                run.life.fail(EngineError::Crashed("the receive thread"));
                Default::default()
            }
            Some(Ok(kept)) => kept,
            None => Default::default(),
        };
        run.inject_done.store(true, Relaxed);
        for h in threads.senders {
            if h.join().is_err() {
                run.life.fail(EngineError::Crashed("a transmit thread"));
            }
        }
        run.after_cooldown(dedup, traces, cut, &threads.history, stop, results);
    }
}

/// The monitor's progress: every position of every pass, those walked before a resume
/// already counted.
fn progress(plan: &Plan, threads: u32, stats: &Stats) -> Progress {
    let per_pass: Vec<u64> = (0..threads)
        .map(|t| {
            plan.cycle
                .walker(plan.shard.0, plan.shard.1, t, threads)
                .positions()
        })
        .collect();
    if let Some(r) = &plan.resume {
        let done: u64 = r
            .iter()
            .zip(&per_pass)
            .map(|(p, n)| p.pass as u64 * n + p.walked)
            .sum();
        Stats::add(&stats.walked, done);
    }
    Progress {
        total_positions: per_pass.iter().sum::<u64>() * (plan.retries as u64 + 1),
        send_done_ms: Default::default(),
        wait: plan.wait,
        finished: AtomicBool::new(false),
    }
}
