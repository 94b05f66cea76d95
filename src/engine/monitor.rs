//! The once-a-second status line on stderr (ZMap's layout): elapsed, progress, ETA, send rate
//! (current and average), replies, hit rate, drops.

use std::{
    io::Write,
    sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
    time::{Duration, Instant},
};

use super::stats::Stats;

/// What the monitor reads besides the counters.
pub struct Progress {
    pub total_positions: u64,
    /// Milliseconds since start when sending ended (0 while sending).
    pub send_done_ms: AtomicU64,
    /// Cooldown length, for the countdown.
    pub wait: Duration,
    pub finished: AtomicBool,
}

pub fn fmt_rate(pps: f64) -> String {
    if pps >= 1e6 {
        format!("{:.2} Mpps", pps / 1e6)
    } else if pps >= 1e3 {
        format!("{:.1} kpps", pps / 1e3)
    } else {
        format!("{pps:.0} pps")
    }
}

pub fn fmt_clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// Runs until `progress.finished`; prints one line per second.
pub fn run(stats: &Stats, progress: &Progress, start: Instant) {
    let mut last = (Instant::now(), 0u64, 0u64);
    let mut err = std::io::stderr();
    loop {
        for _ in 0..10 {
            if progress.finished.load(Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let now = Instant::now();
        let sent = Stats::get(&stats.sent);
        let rx = Stats::get(&stats.validated);
        let dt = now.duration_since(last.0).as_secs_f64().max(1e-9);
        let cur = (sent - last.1) as f64 / dt;
        let cur_rx = (rx - last.2) as f64 / dt;
        last = (now, sent, rx);
        let elapsed = now.duration_since(start);
        let done_ms = progress.send_done_ms.load(Relaxed);
        let send_secs = if done_ms > 0 {
            done_ms as f64 / 1e3
        } else {
            elapsed.as_secs_f64()
        };
        let avg = sent as f64 / send_secs.max(1e-9);
        let walked = Stats::get(&stats.walked);
        let frac = if progress.total_positions == 0 {
            1.0
        } else {
            walked as f64 / progress.total_positions as f64
        };
        let eta = if done_ms > 0 {
            let left = progress
                .wait
                .saturating_sub(elapsed.saturating_sub(Duration::from_millis(done_ms)));
            format!(
                "cooldown {}s left",
                left.as_secs() + u64::from(left.subsec_nanos() > 0)
            )
        } else if frac > 0.0 {
            let total = elapsed.as_secs_f64() / frac;
            format!(
                "ETA {}",
                fmt_clock(Duration::from_secs_f64(
                    (total - elapsed.as_secs_f64()).max(0.0)
                ))
            )
        } else {
            "ETA -".to_string()
        };
        let hit = if sent == 0 {
            0.0
        } else {
            100.0 * rx as f64 / sent as f64
        };
        let _ = writeln!(
            err,
            "{} {:.0}% ({}); sent {} {} (avg {}); replies {} {}; hit {:.2}%; drops {}",
            fmt_clock(elapsed),
            (frac * 100.0).min(100.0),
            eta,
            sent,
            fmt_rate(cur),
            fmt_rate(avg),
            rx,
            fmt_rate(cur_rx),
            hit,
            Stats::get(&stats.drops),
        );
    }
}
