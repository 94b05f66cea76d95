//! Every scan's lifecycle, the same for the raw engine (`phases.rs`) and the connect engine
//! (`connect.rs`): the writer and the monitor start and the interrupted run's carried results
//! go first; then the engine sends (phase 1), drains what is still in flight (phase 2: the
//! cooldown, or the connections still open), and does what only the whole tells (phase 3);
//! then the writer flushes every result, and the outcome is read off the output's state the
//! same way for both. An engine supplies its phases ([`Phases`]); the order, the stops and the
//! flush are here once (ARCHITECTURE.md, "The engine").

use std::{
    sync::{atomic::Ordering::Relaxed, Arc, Mutex},
    thread::Scope,
    time::{Duration, Instant, SystemTime},
};

use crossbeam_channel::{Receiver, Sender};

use super::{
    governor::GovernorReport, monitor, monitor::Progress, stats::Stats, stop_reason, watermark,
    write_outputs, EngineError, Interrupts, NamedSink, OutMsg, Outcome, OutputState, Plan,
    Position, StopReason,
};

/// A channel's two ends.
pub(super) type Channel<T> = (Sender<T>, Receiver<T>);

/// What every scan shares with its threads, whichever engine runs it.
pub(super) struct Lifecycle<'p> {
    pub(super) plan: &'p Plan,
    pub(super) stats: &'p Stats,
    pub(super) interrupts: &'p Interrupts,
    pub(super) start: Instant,
    pub(super) started: SystemTime,
    pub(super) progress: Progress,
    pub(super) out_state: OutputState,
    /// Results taken but not yet written (`watermark.rs`).
    pub(super) holds: Arc<watermark::Holds>,
    errors: Mutex<Vec<EngineError>>,
}

/// One engine's part in the lifecycle, called in this order by [`Lifecycle::drive`].
pub(super) trait Phases {
    /// What runs from phase 1 to phase 3 (threads, connections in flight).
    type Running<'s>
    where
        Self: 's;

    /// The results queue to the writer.
    fn queue(&self) -> Channel<OutMsg>;

    /// Starts what the scan runs on besides the writer and the monitor.
    fn start<'s, 'e>(&'s self, s: &'s Scope<'s, 'e>, results: &Sender<OutMsg>)
        -> Self::Running<'s>;

    /// Phase 1: until every probe is out or the scan must stop (`stop` says why).
    fn send(&self, running: &mut Self::Running<'_>, stop: &mut StopReason);

    /// Phase 2: what is still in flight. Returns the time it was cut short, if it was.
    fn drain(&self, running: &mut Self::Running<'_>, stop: &mut StopReason) -> Option<Instant>;

    /// Phase 3: what only the whole of the replies tells; sets whether the run is complete.
    fn conclude(
        &self,
        running: Self::Running<'_>,
        cut: Option<Instant>,
        stop: StopReason,
        results: &Sender<OutMsg>,
    );
}

/// Where the scan stood when every phase was over.
pub(super) struct Ended {
    pub(super) stop: StopReason,
    pub(super) send_duration: Duration,
}

/// What only the engine knows of its end.
pub(super) struct Reached {
    pub(super) positions: Vec<Position>,
    pub(super) complete: bool,
    pub(super) governor: Option<GovernorReport>,
    pub(super) answered_after: Vec<u64>,
}

impl<'p> Lifecycle<'p> {
    pub(super) fn new(
        plan: &'p Plan,
        stats: &'p Stats,
        interrupts: &'p Interrupts,
        progress: Progress,
    ) -> Self {
        Lifecycle {
            plan,
            stats,
            interrupts,
            start: Instant::now(),
            started: SystemTime::now(),
            progress,
            out_state: OutputState::new(),
            holds: Arc::default(),
            errors: Mutex::new(Vec::new()),
        }
    }

    /// An error of some thread's: the first one ends the run as its outcome.
    pub(super) fn fail(&self, e: EngineError) {
        self.errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(e);
    }

    /// Why sending must stop now, if it must.
    pub(super) fn stop_reason(&self) -> Option<StopReason> {
        stop_reason(self.plan, self.start, self.interrupts, &self.out_state)
    }

    /// Runs every phase of `phases`, with the writer and the monitor beside them; returns once
    /// every result is written.
    pub(super) fn drive<P: Phases>(&self, phases: &P, sinks: Vec<NamedSink>) -> Ended {
        let (rec_tx, rec_rx) = phases.queue();
        let mut stop = StopReason::Completed;
        let mut send_duration = Duration::ZERO;
        std::thread::scope(|s| {
            let out = s.spawn(|| {
                let p = self.plan;
                write_outputs(
                    rec_rx,
                    sinks,
                    &self.out_state,
                    p.limits,
                    self.start,
                    &self.holds,
                )
            });
            // The interrupted run's results past --max-results come first.
            for r in &self.plan.carried {
                self.stats.count_state(r.state);
                let _ = rec_tx.send(OutMsg::Result(r.clone()));
            }
            let mon = s.spawn(|| {
                let p = self.plan;
                monitor::run(
                    self.stats,
                    &self.progress,
                    self.start,
                    &p.status,
                    &p.governor,
                    &p.keeper,
                )
            });
            let mut running = phases.start(s, &rec_tx);
            phases.send(&mut running, &mut stop);
            send_duration = self.start.elapsed();
            let sent_ms = send_duration.as_millis().max(1) as u64;
            self.progress.send_done_ms.store(sent_ms, Relaxed);
            let cut = phases.drain(&mut running, &mut stop);
            phases.conclude(running, cut, stop, &rec_tx);
            drop(rec_tx); // the writer ends once it has every result
            let _ = out.join();
            self.progress.finished.store(true, Relaxed);
            let _ = mon.join();
        });
        Ended {
            stop,
            send_duration,
        }
    }

    /// How the scan ended: the output's error, else the first thread's, else the stop reason
    /// with what the engine reached and what a resume needs.
    pub(super) fn outcome(self, ended: Ended, reached: Reached) -> Result<Outcome, EngineError> {
        let out = self.out_state;
        let carried = std::mem::take(&mut *out.carried.lock().unwrap_or_else(|p| p.into_inner()));
        let mut stop = ended.stop;
        if stop == StopReason::Completed && out.limit_hit.load(Relaxed) {
            stop = StopReason::MaxResults;
        }
        if out.broken_pipe.load(Relaxed) {
            stop = StopReason::OutputClosed;
        }
        if let Some(e) = out.error.into_inner().unwrap_or_else(|p| p.into_inner()) {
            return Err(e);
        }
        let mut errs = self.errors.into_inner().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = errs.drain(..).next() {
            return Err(e);
        }
        Ok(Outcome {
            started: self.started,
            duration: self.start.elapsed(),
            send_duration: ended.send_duration,
            stop,
            positions: reached.positions,
            complete: reached.complete,
            governor: reached.governor,
            answered_after: reached.answered_after,
            carried,
        })
    }
}
