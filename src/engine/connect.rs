//! The connect scan (`-sT`): the kernel does each handshake, so it runs as an ordinary user and
//! with no AF_XDP. The same permutation, shards, rate, excludes and outputs as the raw scans;
//! many connects in flight; each timed-out connect is retried `--retries` times.

use std::{
    cell::Cell,
    collections::{HashMap, HashSet, VecDeque},
    net::IpAddr,
    sync::atomic::{AtomicBool, Ordering::Relaxed},
    thread::Scope,
    time::{Duration, Instant},
};

use crossbeam_channel::{unbounded, Sender};

use crate::{
    io::connect::{ConnectOutcome, Connector},
    output::Record,
    probe::{PortState, Proto, Reason},
};

use super::{
    lifecycle::{Channel, Lifecycle, Phases, Reached},
    monitor,
    packet_trace::PacketTrace,
    rate::RateLimiter,
    stats::Stats,
    EngineError, Interrupts, NamedSink, OutMsg, Outcome, Plan, Position, StopReason,
};

/// Connect-scan settings besides the plan.
#[derive(Debug, Clone)]
pub(crate) struct ConnectOptions {
    pub(crate) timeout: Duration,
    pub(crate) max_in_flight: usize,
    pub(crate) bind_ip: Option<std::net::IpAddr>,
    pub(crate) interface: Option<String>,
}

/// nmap's reading of a connect's errno.
pub(crate) fn classify(outcome: ConnectOutcome) -> Option<(PortState, Reason)> {
    Some(match outcome {
        ConnectOutcome::Connected => (PortState::Open, Reason::SynAck),
        // A RST in SYN_SENT reads as ECONNREFUSED; ECONNRESET means the handshake completed and
        // the peer reset the connection before we looked: the port is open.
        ConnectOutcome::Failed(libc::ECONNRESET) => (PortState::Open, Reason::SynAck),
        ConnectOutcome::Failed(libc::ECONNREFUSED) => (PortState::Closed, Reason::ConnRefused),
        ConnectOutcome::Failed(libc::EHOSTUNREACH) => (PortState::Filtered, Reason::HostUnreach),
        ConnectOutcome::Failed(libc::ENETUNREACH) => (PortState::Filtered, Reason::NetUnreach),
        ConnectOutcome::Failed(libc::ENOPROTOOPT) => (PortState::Filtered, Reason::ProtoUnreach),
        ConnectOutcome::Failed(libc::EACCES | libc::EPERM) => {
            (PortState::Filtered, Reason::AdminProhibited)
        }
        // No answer by another name (ETIMEDOUT when the kernel gave up first) or a local
        // failure (EAGAIN, ENOMEM): silence, retried as a timeout is, never a result written
        // as "no-response" without --report-silent.
        ConnectOutcome::Failed(_) | ConnectOutcome::TimedOut => return None,
    })
}

/// Runs a connect scan through the engine's lifecycle (`lifecycle.rs`): phase 1 starts the
/// walk's connections, phase 2 waits for those still in flight (and their retries).
pub(crate) fn run(
    plan: &Plan,
    opts: &ConnectOptions,
    sinks: Vec<NamedSink>,
    stats: &Stats,
    interrupts: &Interrupts,
) -> Result<Outcome, EngineError> {
    let conn = Connector::new(opts.bind_ip, opts.interface.clone())
        .map_err(|e| crate::io::IoError::os("epoll", e))?;
    let total = plan
        .cycle
        .walker(plan.shard.0, plan.shard.1, 0, 1)
        .positions();
    let progress = monitor::Progress {
        total_positions: total,
        send_done_ms: Default::default(),
        wait: opts.timeout,
        finished: AtomicBool::new(false),
    };
    let life = Lifecycle::new(plan, stats, interrupts, progress);
    let phases = ConnectPhases {
        life: &life,
        opts,
        conn: Cell::new(Some(conn)),
        walked: Cell::new(0),
        complete: Cell::new(false),
        finished_after: Cell::new(Vec::new()),
        total,
    };
    let ended = life.drive(&phases, sinks);
    let reached = Reached {
        positions: vec![Position {
            pass: 0,
            walked: phases.walked.get(),
        }],
        complete: phases.complete.get(),
        governor: None,
        answered_after: phases.finished_after.take(),
    };
    life.outcome(ended, reached)
}

/// The connect engine's phases.
struct ConnectPhases<'l, 'p> {
    life: &'l Lifecycle<'p>,
    opts: &'l ConnectOptions,
    /// Taken by `start`.
    conn: Cell<Option<Connector>>,
    /// Where a resume starts, set by `conclude`: the walk's position, or the first one whose
    /// target is unfinished.
    walked: Cell<u64>,
    /// Indices past `walked` that are finished: the resume skips them.
    finished_after: Cell<Vec<u64>>,
    complete: Cell<bool>,
    total: u64,
}

impl Phases for ConnectPhases<'_, '_> {
    type Running<'s>
        = Connects<'s>
    where
        Self: 's;

    fn queue(&self) -> Channel<OutMsg> {
        // Unbounded: a stalled reader costs memory (results are few), never a connection's
        // timing.
        unbounded()
    }

    fn start<'s, 'e>(&'s self, _: &'s Scope<'s, 'e>, results: &Sender<OutMsg>) -> Connects<'s> {
        let life = self.life;
        let plan = life.plan;
        let walker = plan.walker(0, 1, 0);
        Stats::add(&life.stats.walked, walker.walked());
        let skip = plan.answered_before.iter().copied().collect();
        Connects {
            life,
            timeout: self.opts.timeout,
            max_in_flight: Connector::raise_fd_limit(self.opts.max_in_flight),
            conn: self.conn.take().expect("started once"),
            walker,
            limiter: RateLimiter::new(plan.rate as f64),
            retry: VecDeque::new(),
            unfinished: Default::default(),
            skip,
            exhausted: false,
            tracer: plan.packet_trace.then(|| PacketTrace::new(life.start)),
            results: results.clone(),
            polled: Vec::new(),
        }
    }

    fn send(&self, c: &mut Connects<'_>, stop: &mut StopReason) {
        while c.step(stop, true) {}
    }

    fn drain(&self, c: &mut Connects<'_>, stop: &mut StopReason) -> Option<Instant> {
        while c.step(stop, false) {}
        None
    }

    fn conclude(&self, c: Connects<'_>, _: Option<Instant>, stop: StopReason, _: &Sender<OutMsg>) {
        let walked = c.walker.walked();
        let (resume_at, finished_after) = c.resume_point(walked);
        self.walked.set(resume_at);
        self.finished_after.set(finished_after);
        let complete = stop == StopReason::Completed && resume_at == self.total;
        self.complete.set(complete);
        self.life.out_state.complete.store(complete, Relaxed);
    }
}

/// A target started and not finished.
struct Unfinished {
    index: u64,
    /// Its position in the walk.
    ordinal: u64,
    /// Connects so far.
    attempts: u32,
}

/// A connect scan under way: the connections in flight, the walk, the retries.
struct Connects<'l> {
    life: &'l Lifecycle<'l>,
    timeout: Duration,
    max_in_flight: usize,
    conn: Connector,
    walker: crate::permute::Walker,
    limiter: RateLimiter,
    /// Targets whose connect timed out, to try again (`--retries`).
    retry: VecDeque<(IpAddr, u16)>,
    /// Every target started and not yet finished (in flight or waiting for its retry): what a
    /// resume must probe again.
    unfinished: HashMap<(IpAddr, u16), Unfinished>,
    /// Indices a resumed run finds finished already (`Plan::answered_before`).
    skip: HashSet<u64>,
    /// The walk is over.
    exhausted: bool,
    tracer: Option<PacketTrace>,
    /// To the writer.
    results: Sender<OutMsg>,
    /// What the last poll finished, reported after it.
    polled: Vec<(IpAddr, u16, ConnectOutcome)>,
}

impl Connects<'_> {
    /// One turn: starts connections as the rate and `--max-inflight` allow (retries too, while
    /// draining) and reads what finished. False once this phase is over: in phase 1
    /// (`sending`) when the walk and its retries are out, in phase 2 when nothing is in
    /// flight; in both when the scan stops for good.
    fn step(&mut self, stop: &mut StopReason, sending: bool) -> bool {
        let life = self.life;
        if *stop == StopReason::Completed {
            if let Some(w) = life.stop_reason() {
                *stop = w;
            }
        }
        // A dead output, or a second signal, abandons the connects still in flight.
        if life.out_state.dead() || life.interrupts.load(Relaxed) > 1 {
            self.conn.abandon();
            return false;
        }
        let starting =
            *stop == StopReason::Completed && (!self.exhausted || !self.retry.is_empty());
        if sending && !starting {
            return false;
        }
        if !starting && self.conn.in_flight() == 0 {
            return false;
        }
        let room = self.conn.in_flight() < self.max_in_flight;
        if starting && room {
            if let Err(e) = self.start_some() {
                life.fail(e);
                self.conn.abandon();
                return false;
            }
        }
        let wait = match starting && self.conn.in_flight() < self.max_in_flight {
            true => Duration::ZERO,
            false => Duration::from_millis(5),
        };
        let mut polled = std::mem::take(&mut self.polled);
        if let Err(e) = self
            .conn
            .poll(wait, |ip, port, o| polled.push((ip, port, o)))
        {
            life.fail(crate::io::IoError::os("epoll", e).into());
            self.conn.abandon();
            return false;
        }
        for (ip, port, o) in polled.drain(..) {
            self.report(ip, port, o);
        }
        self.polled = polled;
        true
    }

    /// Starts the connections there is room and rate for: retries first, then the walk.
    fn start_some(&mut self) -> Result<(), EngineError> {
        let room = self.max_in_flight - self.conn.in_flight();
        let (stats, interrupts) = (self.life.stats, self.life.interrupts);
        let n = self
            .limiter
            .allowance(room.min(64), || interrupts.load(Relaxed) > 0);
        for _ in 0..n {
            let next = self.retry.pop_front().or_else(|| self.next_target());
            let Some((ip, port)) = next else { break };
            Stats::add(&stats.sent, 1);
            self.limiter.sent(1);
            if let Some(t) = &self.tracer {
                t.conn(ip, port, "Operation now in progress");
            }
            if let Some(o) = self
                .conn
                .start(ip, port, self.timeout)
                .map_err(|e| crate::io::IoError::os("connect", e))?
            {
                self.report(ip, port, o);
            }
        }
        let w = self.walker.walked();
        let walked = &stats.walked;
        Stats::add(walked, w.saturating_sub(Stats::get(walked)));
        Ok(())
    }

    /// The walk's next target not finished already, taken as unfinished.
    fn next_target(&mut self) -> Option<(IpAddr, u16)> {
        loop {
            let Some(index) = self.walker.next() else {
                self.exhausted = true;
                return None;
            };
            if self.skip.contains(&index) {
                continue;
            }
            let target = self.life.plan.space.get(index);
            let ordinal = self.walker.walked() - 1;
            let u = Unfinished {
                index,
                ordinal,
                attempts: 0,
            };
            self.unfinished.insert(target, u);
            return Some(target);
        }
    }

    /// Where a resume starts and which indices past it are finished: the first unfinished
    /// target's position (all of the walk when none is), and every index walked from there
    /// that is not unfinished (docs/design.md, "Resume adds up").
    fn resume_point(&self, walked: u64) -> (u64, Vec<u64>) {
        let Some(first) = self.unfinished.values().map(|u| u.ordinal).min() else {
            return (walked, Vec::new());
        };
        let plan = self.life.plan;
        let open: HashSet<u64> = self.unfinished.values().map(|u| u.index).collect();
        let mut w = plan.cycle.walker(plan.shard.0, plan.shard.1, 0, 1);
        w.advance(first);
        let mut finished: Vec<u64> = w.stop_at(walked).filter(|i| !open.contains(i)).collect();
        finished.sort_unstable();
        (first, finished)
    }

    fn write(&self, r: Record) {
        let _ = self.results.send(OutMsg::Result(r));
    }

    /// A connection's end: its result, or a retry while `--retries` allows (then silence).
    fn report(&mut self, ip: IpAddr, port: u16, outcome: ConnectOutcome) {
        let (plan, stats) = (self.life.plan, self.life.stats);
        if let Some(t) = &self.tracer {
            let what = match outcome {
                ConnectOutcome::Connected => "Connected".to_string(),
                ConnectOutcome::Failed(e) => std::io::Error::from_raw_os_error(e).to_string(),
                ConnectOutcome::TimedOut => "Timed out".to_string(),
            };
            t.conn(ip, port, &what);
        }
        let record = |state, reason| Record {
            local: plan
                .frames
                .for_addr(ip)
                .map_or(plan.frames.primary().src, |f| f.src),
            ..Record::new(
                ip,
                port,
                Proto::Tcp,
                state,
                reason,
                crate::probe::ScanType::Connect,
            )
        };
        match classify(outcome) {
            Some((state, reason)) => {
                self.unfinished.remove(&(ip, port));
                Stats::add(&stats.validated, 1);
                stats.count_state(state);
                self.write(record(state, reason));
            }
            None => {
                let tries = self.unfinished.get_mut(&(ip, port)).map(|u| {
                    u.attempts += 1;
                    u.attempts
                });
                if tries.is_some_and(|n| n <= plan.retries) {
                    self.retry.push_back((ip, port));
                } else {
                    self.unfinished.remove(&(ip, port));
                    if plan.report_silent {
                        stats.count_state(PortState::Filtered);
                        self.write(record(PortState::Filtered, Reason::NoResponse));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_to_nmap_state() {
        assert_eq!(
            classify(ConnectOutcome::Connected),
            Some((PortState::Open, Reason::SynAck))
        );
        assert_eq!(
            classify(ConnectOutcome::Failed(libc::ECONNREFUSED)),
            Some((PortState::Closed, Reason::ConnRefused))
        );
        assert_eq!(
            classify(ConnectOutcome::Failed(libc::EHOSTUNREACH)),
            Some((PortState::Filtered, Reason::HostUnreach))
        );
        assert_eq!(
            classify(ConnectOutcome::Failed(libc::ECONNRESET)),
            Some((PortState::Open, Reason::SynAck))
        );
        assert_eq!(classify(ConnectOutcome::TimedOut), None);
        assert_eq!(classify(ConnectOutcome::Failed(libc::ETIMEDOUT)), None);
        assert_eq!(classify(ConnectOutcome::Failed(libc::EAGAIN)), None);
    }
}
