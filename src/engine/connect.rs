//! The connect scan (`-sT`): the kernel does each handshake, so it runs as an ordinary user and
//! with no AF_XDP. The same permutation, shards, rate, excludes and outputs as the raw scans;
//! many connects in flight; each timed-out connect is retried `--retries` times.

use std::{
    collections::VecDeque,
    sync::atomic::{AtomicBool, Ordering::Relaxed},
    time::{Duration, Instant, SystemTime},
};

use crossbeam_channel::bounded;

use crate::{
    io::connect::{ConnectOutcome, Connector},
    output::{Record, Sink},
    probe::{PortState, Proto, Reason},
};

use super::{monitor, rate::RateLimiter, stats::Stats, EngineError, Interrupts, Outcome, Plan};

/// Connect-scan settings besides the plan.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub timeout: Duration,
    pub max_in_flight: usize,
    pub bind_ip: Option<std::net::Ipv4Addr>,
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
    mut sinks: Vec<Box<dyn Sink>>,
    stats: &Stats,
    interrupts: &Interrupts,
) -> Result<Outcome, EngineError> {
    let start = Instant::now();
    let started = SystemTime::now();
    let mut conn = Connector::new(opts.bind_ip, opts.interface.clone())
        .map_err(|e| crate::io::IoError::os("epoll", e))?;
    let max_in_flight = Connector::raise_fd_limit(opts.max_in_flight);
    let walker = plan.cycle.walker(plan.shard.0, plan.shard.1, 0, 1);
    let progress = monitor::Progress {
        total_positions: walker.positions(),
        send_done_ms: Default::default(),
        wait: opts.timeout,
        finished: AtomicBool::new(false),
    };
    let (rec_tx, rec_rx) = bounded::<Record>(1 << 16);
    let broken_pipe = AtomicBool::new(false);
    let dead_output = AtomicBool::new(false);
    let mut out_err = None;
    let mut interrupted = false;
    let mut send_duration = Duration::ZERO;

    std::thread::scope(|s| {
        let out = s.spawn(|| {
            let mut err = None;
            'records: for r in rec_rx.iter() {
                for sink in sinks.iter_mut() {
                    if let Err(e) = sink.write(&r) {
                        if e.kind() == std::io::ErrorKind::BrokenPipe {
                            broken_pipe.store(true, Relaxed);
                        } else {
                            err = Some(e);
                        }
                        dead_output.store(true, Relaxed);
                        break 'records;
                    }
                }
            }
            drop(rec_rx);
            for sink in sinks.iter_mut() {
                if let Err(e) = sink.finish() {
                    if e.kind() != std::io::ErrorKind::BrokenPipe && err.is_none() {
                        err = Some(e);
                    }
                }
            }
            err
        });
        let mon = plan
            .status
            .then(|| s.spawn(|| monitor::run(stats, &progress, start)));

        let mut limiter = RateLimiter::new(plan.rate as f64);
        let mut walker = walker;
        // (ip, port, attempts so far) to (re)try, from retries.
        let mut retry: VecDeque<(u32, u16, u32)> = VecDeque::new();
        let mut attempts: std::collections::HashMap<(u32, u16), u32> = Default::default();
        let mut exhausted = false;
        let mut report =
            |ip: u32, port: u16, outcome: ConnectOutcome, retry: &mut VecDeque<(u32, u16, u32)>| {
                Stats::add(&stats.validated, 1);
                match classify(outcome) {
                    Some((state, reason)) => {
                        attempts.remove(&(ip, port));
                        stats.count_state(state);
                        let _ = rec_tx.send(Record {
                            ip: ip.into(),
                            port,
                            proto: Proto::Tcp,
                            state,
                            reason,
                            ttl: 0,
                            responder: None,
                            scan: "connect",
                            ts: SystemTime::now(),
                        });
                    }
                    None => {
                        let n = attempts.entry((ip, port)).or_insert(1);
                        if *n <= plan.retries {
                            *n += 1;
                            retry.push_back((ip, port, *n));
                        } else {
                            attempts.remove(&(ip, port));
                            if plan.report_silent {
                                let (state, reason) = (PortState::Filtered, Reason::NoResponse);
                                stats.count_state(state);
                                let _ = rec_tx.send(Record {
                                    ip: ip.into(),
                                    port,
                                    proto: Proto::Tcp,
                                    state,
                                    reason,
                                    ttl: 0,
                                    responder: None,
                                    scan: "connect",
                                    ts: SystemTime::now(),
                                });
                            }
                        }
                    }
                }
            };
        let result = (|| -> Result<(), EngineError> {
            loop {
                if interrupts.load(Relaxed) > 0 && !interrupted {
                    interrupted = true;
                }
                if dead_output.load(Relaxed) {
                    conn.abandon();
                    return Ok(());
                }
                let sending = !interrupted && (!exhausted || !retry.is_empty());
                if sending && conn.in_flight() < max_in_flight {
                    let room = max_in_flight - conn.in_flight();
                    let n = limiter.allowance(room.min(64), || interrupts.load(Relaxed) > 0);
                    for _ in 0..n {
                        let next = retry.pop_front().map(|(ip, p, _)| (ip, p)).or_else(|| {
                            let i = walker.next();
                            if i.is_none() {
                                exhausted = true;
                            }
                            i.map(|i| plan.space.get(i))
                        });
                        let Some((ip, port)) = next else { break };
                        Stats::add(&stats.sent, 1);
                        limiter.sent(1);
                        if let Some(o) = conn
                            .start(ip, port, opts.timeout)
                            .map_err(|e| crate::io::IoError::os("connect", e))?
                        {
                            report(ip, port, o, &mut retry);
                        }
                    }
                    Stats::add(
                        &stats.walked,
                        walker.walked() - Stats::get(&stats.walked).min(walker.walked()),
                    );
                }
                let done_sending = interrupted || (exhausted && retry.is_empty());
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
        drop(rec_tx);
        out_err = out.join().ok().flatten();
        progress.finished.store(true, Relaxed);
        if let Some(m) = mon {
            let _ = m.join();
        }
        result
    })?;
    if let Some(e) = out_err {
        return Err(EngineError::Output(e));
    }
    if send_duration.is_zero() {
        send_duration = start.elapsed();
    }
    Ok(Outcome {
        started,
        duration: start.elapsed(),
        send_duration,
        interrupted,
        broken_pipe: broken_pipe.load(Relaxed),
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
