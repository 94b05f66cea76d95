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
    let mut conn = Connector::new(opts.bind_ip, opts.interface.clone())
        .map_err(|e| crate::io::IoError::os("epoll", e))?;
    let max_in_flight = Connector::raise_fd_limit(opts.max_in_flight);
    let mut walker = plan.walker(0, 1, 0);
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
    let mut stop = StopReason::Completed;
    let mut send_duration = Duration::ZERO;

    let result = std::thread::scope(|s| {
        // No marks: a connection retried may end long after its position was passed, so a
        // job's -sT shard is never checkpointed part-way (`watermark.rs`).
        let holds = super::watermark::Holds::default();
        let out_st = &out_state;
        let out = s.spawn(move || write_outputs(rec_rx, sinks, out_st, plan.limits, start, &holds));
        let mon = s.spawn(|| monitor::run(stats, &progress, start, &plan.status, &plan.governor));

        let mut limiter = RateLimiter::new(plan.rate as f64);
        let mut retry: VecDeque<(IpAddr, u16)> = VecDeque::new();
        let mut attempts: std::collections::HashMap<(IpAddr, u16), u32> = Default::default();
        let mut exhausted = false;
        let tracer = plan
            .packet_trace
            .then(|| super::packet_trace::PacketTrace::new(start));
        let mut report = |ip: IpAddr,
                          port: u16,
                          outcome: ConnectOutcome,
                          retry: &mut VecDeque<(IpAddr, u16)>| {
            if let Some(t) = &tracer {
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
                    attempts.remove(&(ip, port));
                    Stats::add(&stats.validated, 1);
                    stats.count_state(state);
                    let _ = rec_tx.send(OutMsg::Result(record(state, reason)));
                }
                None => {
                    let n = attempts.entry((ip, port)).or_insert(1);
                    if *n <= plan.retries {
                        *n += 1;
                        retry.push_back((ip, port));
                    } else {
                        attempts.remove(&(ip, port));
                        if plan.report_silent {
                            stats.count_state(PortState::Filtered);
                            let _ = rec_tx.send(OutMsg::Result(record(
                                PortState::Filtered,
                                Reason::NoResponse,
                            )));
                        }
                    }
                }
            }
        };
        let result = (|| -> Result<(), EngineError> {
            loop {
                if stop == StopReason::Completed {
                    if interrupts.load(Relaxed) > 0 {
                        stop = StopReason::Interrupted;
                    } else if plan
                        .limits
                        .max_runtime
                        .is_some_and(|m| start.elapsed() >= m)
                    {
                        stop = StopReason::MaxRuntime;
                    } else if out_state.limit_hit.load(Relaxed) {
                        stop = StopReason::MaxResults;
                    } else if out_state.broken_pipe.load(Relaxed) {
                        stop = StopReason::OutputClosed;
                    }
                }
                if out_state.dead() {
                    conn.abandon();
                    return Ok(());
                }
                let stopping = stop != StopReason::Completed;
                let sending = !stopping && (!exhausted || !retry.is_empty());
                if sending && conn.in_flight() < max_in_flight {
                    let room = max_in_flight - conn.in_flight();
                    let n = limiter.allowance(room.min(64), || interrupts.load(Relaxed) > 0);
                    for _ in 0..n {
                        let next = retry.pop_front().or_else(|| {
                            let i = walker.next();
                            if i.is_none() {
                                exhausted = true;
                            }
                            i.map(|i| plan.space.get(i))
                        });
                        let Some((ip, port)) = next else { break };
                        Stats::add(&stats.sent, 1);
                        limiter.sent(1);
                        if let Some(t) = &tracer {
                            t.conn(ip, port, "Operation now in progress");
                        }
                        if let Some(o) = conn
                            .start(ip, port, opts.timeout)
                            .map_err(|e| crate::io::IoError::os("connect", e))?
                        {
                            report(ip, port, o, &mut retry);
                        }
                    }
                    let w = walker.walked();
                    Stats::add(&stats.walked, w.saturating_sub(Stats::get(&stats.walked)));
                }
                let done_sending = stopping || (exhausted && retry.is_empty());
                if done_sending && send_duration.is_zero() {
                    send_duration = start.elapsed();
                    progress
                        .send_done_ms
                        .store(send_duration.as_millis().max(1) as u64, Relaxed);
                }
                if done_sending && conn.in_flight() == 0 {
                    return Ok(());
                }
                // A second signal abandons the connects still in flight.
                if interrupts.load(Relaxed) > 1 {
                    conn.abandon();
                    return Ok(());
                }
                let wait = if sending && conn.in_flight() < max_in_flight {
                    Duration::ZERO
                } else {
                    Duration::from_millis(5)
                };
                conn.poll(wait, |ip, port, o| report(ip, port, o, &mut retry))
                    .map_err(|e| crate::io::IoError::os("epoll", e))?;
            }
        })();
        let complete = stop == StopReason::Completed && walker.walked() == total;
        out_state.complete.store(complete, Relaxed);
        drop(rec_tx);
        let _ = out.join();
        progress.finished.store(true, Relaxed);
        let _ = mon.join();
        result
    });
    result?;
    if out_state.broken_pipe.load(Relaxed) {
        stop = StopReason::OutputClosed;
    }
    if let Some(e) = out_state
        .error
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
    {
        return Err(e);
    }
    if send_duration.is_zero() {
        send_duration = start.elapsed();
    }
    let walked = walker.walked();
    let carried = std::mem::take(&mut *out_state.carried.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(Outcome {
        started,
        duration: start.elapsed(),
        send_duration,
        stop,
        positions: vec![Position { pass: 0, walked }],
        complete: walked == total,
        governor: None,
        answered_after: Vec::new(),
        carried,
    })
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
