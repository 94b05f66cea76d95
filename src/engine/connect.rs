//! The connect scan (`-sT`): the kernel does each handshake, so it runs as an ordinary user and
//! with no AF_XDP. The same permutation, shards, rate, excludes and outputs as the raw scans;
//! many connects in flight; each timed-out connect is retried `--retries` times.

use std::{
    collections::VecDeque,
    net::IpAddr,
    sync::atomic::{AtomicBool, Ordering::Relaxed},
    time::{Duration, Instant, SystemTime},
};

use crossbeam_channel::unbounded;

use crate::{
    io::connect::{ConnectOutcome, Connector},
    output::Record,
    probe::{PortState, Proto, Reason},
};

use super::{
    monitor, rate::RateLimiter, stats::Stats, write_outputs, EngineError, Interrupts, NamedSink,
    OutMsg, Outcome, OutputState, Plan, Position, StopReason,
};

/// Connect-scan settings besides the plan.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub timeout: Duration,
    pub max_in_flight: usize,
    pub bind_ip: Option<std::net::IpAddr>,
    pub interface: Option<String>,
}

/// nmap's reading of a connect's errno.
pub fn classify(outcome: ConnectOutcome) -> Option<(PortState, Reason)> {
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
        ConnectOutcome::Failed(_) => (PortState::Filtered, Reason::NoResponse),
        ConnectOutcome::TimedOut => return None,
    })
}

pub fn run(
    plan: &Plan,
    opts: &ConnectOptions,
    sinks: Vec<NamedSink>,
    stats: &Stats,
    interrupts: &Interrupts,
) -> Result<Outcome, EngineError> {
    let start = Instant::now();
    let started = SystemTime::now();
    let conn = Connector::new(opts.bind_ip, opts.interface.clone())
        .map_err(|e| crate::io::IoError::os("epoll", e))?;
    let walker = plan.walker(0, 1, 0);
    let total = plan
        .cycle
        .walker(plan.shard.0, plan.shard.1, 0, 1)
        .positions();
    Stats::add(&stats.walked, walker.walked());
    let progress = monitor::Progress {
        total_positions: total,
        send_done_ms: Default::default(),
        wait: opts.timeout,
        finished: AtomicBool::new(false),
    };
    // Unbounded: a stalled reader costs memory (results are few), never lost replies.
    let (rec_tx, rec_rx) = unbounded::<OutMsg>();
    let out_state = OutputState::new();
    let mut c = Connects {
        plan,
        stats,
        interrupts,
        start,
        timeout: opts.timeout,
        max_in_flight: Connector::raise_fd_limit(opts.max_in_flight),
        conn,
        walker,
        limiter: RateLimiter::new(plan.rate as f64),
        retry: VecDeque::new(),
        attempts: Default::default(),
        exhausted: false,
        tracer: plan
            .packet_trace
            .then(|| super::packet_trace::PacketTrace::new(start)),
        rec_tx: Some(rec_tx),
        stop: StopReason::Completed,
        send_duration: Duration::ZERO,
        polled: Vec::new(),
    };
    let result = std::thread::scope(|s| {
        // No marks: a connection retried may end long after its position was passed, so a
        // job's -sT shard is never checkpointed part-way (`watermark.rs`).
        let holds = super::watermark::Holds::default();
        let out_st = &out_state;
        let out = s.spawn(move || write_outputs(rec_rx, sinks, out_st, plan.limits, start, &holds));
        let mon = s.spawn(|| {
            monitor::run(
                stats,
                &progress,
                start,
                &plan.status,
                &plan.governor,
                &plan.keeper,
            )
        });
        let result = c.drive(&out_state, &progress);
        let complete = c.stop == StopReason::Completed && c.walker.walked() == total;
        out_state.complete.store(complete, Relaxed);
        drop(c.rec_tx.take()); // the writer ends once it has every result
        let _ = out.join();
        progress.finished.store(true, Relaxed);
        let _ = mon.join();
        result
    });
    result?;
    if out_state.broken_pipe.load(Relaxed) {
        c.stop = StopReason::OutputClosed;
    }
    if let Some(e) = out_state
        .error
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
    {
        return Err(e);
    }
    if c.send_duration.is_zero() {
        c.send_duration = start.elapsed();
    }
    let walked = c.walker.walked();
    let carried = std::mem::take(&mut *out_state.carried.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(Outcome {
        started,
        duration: start.elapsed(),
        send_duration: c.send_duration,
        stop: c.stop,
        positions: vec![Position { pass: 0, walked }],
        complete: walked == total,
        governor: None,
        answered_after: Vec::new(),
        carried,
    })
}

/// A connect scan under way: the connections in flight, the walk, the retries.
struct Connects<'p> {
    plan: &'p Plan,
    stats: &'p Stats,
    interrupts: &'p Interrupts,
    start: Instant,
    timeout: Duration,
    max_in_flight: usize,
    conn: Connector,
    walker: crate::permute::Walker,
    limiter: RateLimiter,
    /// Targets whose connect timed out, to try again (`--retries`).
    retry: VecDeque<(IpAddr, u16)>,
    attempts: std::collections::HashMap<(IpAddr, u16), u32>,
    /// The walk is over.
    exhausted: bool,
    tracer: Option<super::packet_trace::PacketTrace>,
    /// To the writer; dropped when the scan is over.
    rec_tx: Option<crossbeam_channel::Sender<OutMsg>>,
    stop: StopReason,
    send_duration: Duration,
    /// What the last poll finished, reported after it.
    polled: Vec<(IpAddr, u16, ConnectOutcome)>,
}

impl Connects<'_> {
    /// Starts connections as the rate and `--max-inflight` allow and reads what finished,
    /// until every connection of the walk (and its retries) has ended or the scan stops.
    fn drive(
        &mut self,
        out_state: &OutputState,
        progress: &monitor::Progress,
    ) -> Result<(), EngineError> {
        loop {
            self.check_stop(out_state);
            if out_state.dead() {
                self.conn.abandon();
                return Ok(());
            }
            let stopping = self.stop != StopReason::Completed;
            let sending = !stopping && (!self.exhausted || !self.retry.is_empty());
            if sending && self.conn.in_flight() < self.max_in_flight {
                self.start_some()?;
            }
            let done_sending = stopping || (self.exhausted && self.retry.is_empty());
            if done_sending && self.send_duration.is_zero() {
                self.send_duration = self.start.elapsed();
                let ms = self.send_duration.as_millis().max(1) as u64;
                progress.send_done_ms.store(ms, Relaxed);
            }
            if done_sending && self.conn.in_flight() == 0 {
                return Ok(());
            }
            // A second signal abandons the connects still in flight.
            if self.interrupts.load(Relaxed) > 1 {
                self.conn.abandon();
                return Ok(());
            }
            let wait = if sending && self.conn.in_flight() < self.max_in_flight {
                Duration::ZERO
            } else {
                Duration::from_millis(5)
            };
            let mut polled = std::mem::take(&mut self.polled);
            self.conn
                .poll(wait, |ip, port, o| polled.push((ip, port, o)))
                .map_err(|e| crate::io::IoError::os("epoll", e))?;
            for (ip, port, o) in polled.drain(..) {
                self.report(ip, port, o);
            }
            self.polled = polled;
        }
    }

    /// A signal, `--max-runtime`, `--max-results` or a closed output stops the scan.
    fn check_stop(&mut self, out_state: &OutputState) {
        if self.stop != StopReason::Completed {
            return;
        }
        let plan = self.plan;
        if self.interrupts.load(Relaxed) > 0 {
            self.stop = StopReason::Interrupted;
        } else if plan
            .limits
            .max_runtime
            .is_some_and(|m| self.start.elapsed() >= m)
        {
            self.stop = StopReason::MaxRuntime;
        } else if out_state.limit_hit.load(Relaxed) {
            self.stop = StopReason::MaxResults;
        } else if out_state.broken_pipe.load(Relaxed) {
            self.stop = StopReason::OutputClosed;
        }
    }

    /// Starts the connections there is room and rate for: retries first, then the walk.
    fn start_some(&mut self) -> Result<(), EngineError> {
        let room = self.max_in_flight - self.conn.in_flight();
        let interrupts = self.interrupts;
        let n = self
            .limiter
            .allowance(room.min(64), || interrupts.load(Relaxed) > 0);
        for _ in 0..n {
            let next = self.retry.pop_front().or_else(|| {
                let i = self.walker.next();
                if i.is_none() {
                    self.exhausted = true;
                }
                i.map(|i| self.plan.space.get(i))
            });
            let Some((ip, port)) = next else { break };
            Stats::add(&self.stats.sent, 1);
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
        let walked = &self.stats.walked;
        Stats::add(walked, w.saturating_sub(Stats::get(walked)));
        Ok(())
    }

    fn write(&self, r: Record) {
        if let Some(tx) = &self.rec_tx {
            let _ = tx.send(OutMsg::Result(r));
        }
    }

    /// A connection's end: its result, or a retry while `--retries` allows (then silence).
    fn report(&mut self, ip: IpAddr, port: u16, outcome: ConnectOutcome) {
        let plan = self.plan;
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
                self.attempts.remove(&(ip, port));
                Stats::add(&self.stats.validated, 1);
                self.stats.count_state(state);
                self.write(record(state, reason));
            }
            None => {
                let n = self.attempts.entry((ip, port)).or_insert(1);
                if *n <= plan.retries {
                    *n += 1;
                    self.retry.push_back((ip, port));
                } else {
                    self.attempts.remove(&(ip, port));
                    if plan.report_silent {
                        self.stats.count_state(PortState::Filtered);
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
    }
}
