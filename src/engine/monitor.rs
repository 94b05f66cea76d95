//! Status once a second on stderr: a live progress bar on a terminal, ZMap's status line
//! otherwise, or masscan-style JSON lines; optionally ZMap's status CSV to a file.

use std::{
    io::{IsTerminal, Write},
    path::PathBuf,
    sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{governor::Governor, stats::Stats};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum StatusMode {
    /// A progress bar on a terminal, status lines otherwise.
    #[default]
    Auto,
    Lines,
    Json,
    Quiet,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct StatusOptions {
    pub(crate) mode: StatusMode,
    /// ZMap's status CSV (`--status-file`), one row per second.
    pub(crate) file: Option<PathBuf>,
}

impl StatusOptions {}

/// What the monitor reads besides the counters.
pub(crate) struct Progress {
    pub(crate) total_positions: u64,
    /// Milliseconds since start when sending ended (0 while sending).
    pub(crate) send_done_ms: AtomicU64,
    /// Cooldown length, for the countdown.
    pub(crate) wait: Duration,
    pub(crate) finished: AtomicBool,
}

pub(crate) fn fmt_rate(pps: f64) -> String {
    if pps >= 1e6 {
        format!("{:.2} Mpps", pps / 1e6)
    } else if pps >= 1e3 {
        format!("{:.1} kpps", pps / 1e3)
    } else {
        format!("{pps:.0} pps")
    }
}

/// A count as people read it: digits grouped by thousands (`242,627,506,341,120`).
pub(crate) fn fmt_count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `1 address`, `2 addresses`: a grouped count and its noun, singular or plural.
pub(crate) fn fmt_counted(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", fmt_count(n), if n == 1 { one } else { many })
}

/// A duration estimate: `about 0:52`, `about 1:02:03`, days past a hundred hours.
pub(crate) fn fmt_estimate(secs: f64) -> String {
    if secs >= 100.0 * 3600.0 {
        format!("about {:.0} days", secs / 86_400.0)
    } else if secs < 1.0 {
        "under a second".into()
    } else {
        format!("about {}", fmt_clock(Duration::from_secs_f64(secs)))
    }
}

pub(crate) fn fmt_clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// One second's view of the counters.
struct Snapshot {
    elapsed: Duration,
    frac: f64,
    remaining: Option<Duration>,
    cooldown_left: Option<Duration>,
    sent: u64,
    sent_now: f64,
    sent_avg: f64,
    replies: u64,
    replies_now: f64,
    replies_avg: f64,
    received: u64,
    received_now: f64,
    hits: u64,
    drops: u64,
    drops_now: f64,
}

const STATUS_CSV_HEADER: &str = "real-time,time-elapsed,time-remaining,percent-complete,hit-rate,active-send-threads,sent-total,sent-last-one-sec,sent-avg-per-sec,recv-success-total,recv-success-last-one-sec,recv-success-avg-per-sec,recv-total,recv-total-last-one-sec,recv-total-avg-per-sec,pcap-drop-total,drop-last-one-sec,drop-avg-per-sec,sendto-fail-total,sendto-fail-last-one-sec,sendto-fail-avg-per-sec\n";

/// Runs until `progress.finished`.
pub(crate) fn run(
    stats: &Stats,
    progress: &Progress,
    start: Instant,
    opts: &StatusOptions,
    governor: &Governor,
    keeper: &crate::io::keeper::Keeper,
) {
    let mode = match opts.mode {
        StatusMode::Auto if std::io::stderr().is_terminal() => None, // the bar
        StatusMode::Auto => Some(StatusMode::Lines),
        m => Some(m),
    };
    let bar = mode.is_none().then(|| {
        let b = ProgressBar::with_draw_target(
            Some(progress.total_positions.max(1)),
            ProgressDrawTarget::stderr(),
        );
        b.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{wide_bar}] {percent:>3}% {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    });
    let mut csv = opts.file.as_ref().and_then(|p| {
        let mut f = keeper.create(p).ok()?;
        f.write_all(STATUS_CSV_HEADER.as_bytes()).ok()?;
        Some(f)
    });
    if mode == Some(StatusMode::Quiet) && csv.is_none() {
        while !progress.finished.load(Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
        return;
    }
    let mut last = (Instant::now(), 0u64, 0u64, 0u64, 0u64);
    let mut err = std::io::stderr();
    loop {
        // Tick every 100 ms for the bar, report every second.
        for _ in 0..10 {
            if progress.finished.load(Relaxed) {
                if let Some(b) = &bar {
                    b.finish_and_clear();
                }
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
            if let Some(b) = &bar {
                b.set_position(Stats::get(&stats.walked).min(progress.total_positions));
            }
        }
        let s = snapshot(stats, progress, start, &mut last);
        if let Some(b) = &bar {
            b.set_message(bar_message(&s));
        }
        match mode {
            Some(StatusMode::Lines) => {
                let _ = writeln!(err, "{}", status_line(&s, governor));
            }
            Some(StatusMode::Json) => {
                let _ = writeln!(err, "{}", status_json(&s, governor));
            }
            _ => {}
        }
        if let Some(f) = csv.as_mut() {
            let _ = f.write_all(status_csv_row(&s).as_bytes());
        }
    }
}

fn hit_percent(s: &Snapshot) -> f64 {
    if s.sent == 0 {
        0.0
    } else {
        100.0 * s.hits as f64 / s.sent as f64
    }
}

/// The progress bar's message.
fn bar_message(s: &Snapshot) -> String {
    let tail = match s.cooldown_left {
        Some(l) => format!("cooldown {}s", l.as_secs()),
        None => format!(
            "ETA {}",
            s.remaining.map(fmt_clock).unwrap_or_else(|| "-".into())
        ),
    };
    format!(
        "{} sent, {}; {} hits; {}",
        s.sent,
        fmt_rate(s.sent_now),
        s.hits,
        tail
    )
}

/// One status line (when stderr is not a terminal).
fn status_line(s: &Snapshot, governor: &Governor) -> String {
    let eta = match (s.cooldown_left, s.remaining) {
        (Some(l), _) => format!(
            "cooldown {}s left",
            l.as_secs() + u64::from(l.subsec_nanos() > 0)
        ),
        (None, Some(r)) => format!("ETA {}", fmt_clock(r)),
        (None, None) => "ETA -".into(),
    };
    format!(
        "{} {:.0}% ({}); sent {} {} (avg {}); replies {} {}; hit {:.2}%; drops {}{}",
        fmt_clock(s.elapsed),
        (s.frac * 100.0).min(100.0),
        eta,
        s.sent,
        fmt_rate(s.sent_now),
        fmt_rate(s.sent_avg),
        s.replies,
        fmt_rate(s.replies_now),
        hit_percent(s),
        s.drops,
        rate_note(governor, s),
    )
}

/// One `--status-json` object.
fn status_json(s: &Snapshot, governor: &Governor) -> serde_json::Value {
    serde_json::json!({
        "state": if s.cooldown_left.is_some() { "waiting" } else { "running" },
        "time": SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs(),
        "elapsed": s.elapsed.as_secs_f64(),
        "percent": (s.frac * 100.0).min(100.0),
        "remaining": s.cooldown_left.or(s.remaining).map(|d| d.as_secs_f64()),
        "rate": { "kpps": s.sent_now / 1e3, "pps": s.sent_now, "avg_pps": s.sent_avg },
        "sent": s.sent,
        "replies": s.replies,
        "hits": s.hits,
        "drops": s.drops,
        "governor_limit_pps": governor.active.then(|| governor.limit()),
    })
}

/// One `--status-file` row (ZMap's status-updates CSV).
fn status_csv_row(s: &Snapshot) -> String {
    let now = humantime::format_rfc3339_seconds(SystemTime::now());
    let el = s.elapsed.as_secs_f64().max(1e-9);
    format!(
        "{now},{},{},{:.6},{:.6},{},{},{:.0},{:.0},{},{:.0},{:.0},{},{:.0},{:.0},{},{:.0},{:.0},0,0,0\n",
        s.elapsed.as_secs(),
        s.cooldown_left.or(s.remaining).map(|d| d.as_secs()).unwrap_or(0),
        (s.frac * 100.0).min(100.0),
        hit_percent(s),
        u8::from(s.cooldown_left.is_none()),
        s.sent,
        s.sent_now,
        s.sent_avg,
        s.replies,
        s.replies_now,
        s.replies_avg,
        s.received,
        s.received_now,
        s.received as f64 / el,
        s.drops,
        s.drops_now,
        s.drops as f64 / el,
    )
}

/// What the status line adds about the rate: the governor's limit at `--rate 0`, or a warning
/// while the receive side loses replies at an asked rate.
fn rate_note(governor: &Governor, s: &Snapshot) -> String {
    if governor.paused() {
        return "; sending paused: the output writer is behind".into();
    }
    match (governor.active, governor.limit()) {
        (true, 0) => "; rate: no limit (receive side keeps up)".into(),
        (true, l) => format!(
            "; rate: limited to {} by the receive side",
            fmt_rate(l as f64)
        ),
        (false, _) if s.drops_now > 0.0 && s.cooldown_left.is_none() => format!(
            "; the receive side is losing {} of replies: lower --rate",
            fmt_rate(s.drops_now)
        ),
        _ => String::new(),
    }
}

fn snapshot(
    stats: &Stats,
    progress: &Progress,
    start: Instant,
    last: &mut (Instant, u64, u64, u64, u64),
) -> Snapshot {
    let now = Instant::now();
    let sent = Stats::get(&stats.sent);
    let replies = Stats::get(&stats.validated);
    let received = Stats::get(&stats.received);
    let drops = Stats::get(&stats.drops);
    let dt = now.duration_since(last.0).as_secs_f64().max(1e-9);
    let per = |a: u64, b: u64| a.saturating_sub(b) as f64 / dt;
    let (sent_now, replies_now, received_now, drops_now) = (
        per(sent, last.1),
        per(replies, last.2),
        per(received, last.3),
        per(drops, last.4),
    );
    *last = (now, sent, replies, received, drops);
    let elapsed = now.duration_since(start);
    let done_ms = progress.send_done_ms.load(Relaxed);
    let send_secs = if done_ms > 0 {
        done_ms as f64 / 1e3
    } else {
        elapsed.as_secs_f64()
    };
    let walked = Stats::get(&stats.walked);
    let frac = if progress.total_positions == 0 {
        1.0
    } else {
        walked as f64 / progress.total_positions as f64
    };
    let cooldown_left = (done_ms > 0).then(|| {
        progress
            .wait
            .saturating_sub(elapsed.saturating_sub(Duration::from_millis(done_ms)))
    });
    let remaining = (frac > 0.0).then(|| {
        let total = elapsed.as_secs_f64() / frac;
        Duration::from_secs_f64((total - elapsed.as_secs_f64()).max(0.0))
    });
    Snapshot {
        elapsed,
        frac,
        remaining,
        cooldown_left,
        sent,
        sent_now,
        sent_avg: sent as f64 / send_secs.max(1e-9),
        replies,
        replies_now,
        replies_avg: replies as f64 / elapsed.as_secs_f64().max(1e-9),
        received,
        received_now,
        hits: stats.results(),
        drops,
        drops_now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_group_by_thousands_and_take_their_number() {
        assert_eq!(fmt_count(0), "0");
        assert_eq!(fmt_count(999), "999");
        assert_eq!(fmt_count(1000), "1,000");
        assert_eq!(fmt_count(242_627_506_341_120), "242,627,506,341,120");
        assert_eq!(fmt_counted(1, "address", "addresses"), "1 address");
        assert_eq!(fmt_counted(1024, "port", "ports"), "1,024 ports");
        assert_eq!(fmt_estimate(0.2), "under a second");
        assert_eq!(fmt_estimate(52.4), "about 0:52");
        assert_eq!(fmt_estimate(3723.0), "about 1:02:03");
        assert_eq!(fmt_estimate(86_400.0 * 300.0), "about 300 days");
    }
    use crate::engine::governor;

    fn snap(drops_now: f64, cooling: bool) -> Snapshot {
        Snapshot {
            elapsed: Duration::from_secs(3),
            frac: 0.5,
            remaining: None,
            cooldown_left: cooling.then(|| Duration::from_secs(2)),
            sent: 1000,
            sent_now: 1000.0,
            sent_avg: 1000.0,
            replies: 10,
            replies_now: 10.0,
            replies_avg: 10.0,
            received: 10,
            received_now: 10.0,
            hits: 10,
            drops: drops_now as u64,
            drops_now,
        }
    }

    #[test]
    fn the_status_line_says_what_limits_the_rate() {
        let asked = Governor::new(false);
        assert_eq!(rate_note(&asked, &snap(0.0, false)), "");
        assert_eq!(
            rate_note(&asked, &snap(2500.0, false)),
            "; the receive side is losing 2.5 kpps of replies: lower --rate"
        );
        // Once sending is over, lowering the rate helps nothing.
        assert_eq!(rate_note(&asked, &snap(2500.0, true)), "");
        let governed = Governor::new(true);
        assert_eq!(
            rate_note(&governed, &snap(0.0, false)),
            "; rate: no limit (receive side keeps up)"
        );
        let mut c = governor::Controller::new(0, 0);
        std::thread::sleep(governor::TICK);
        c.tick(&governed, 1_000_000, 5);
        assert!(rate_note(&governed, &snap(0.0, false)).starts_with("; rate: limited to "));
        governed.backpressure(60_000, 65_536);
        assert_eq!(
            rate_note(&governed, &snap(0.0, false)),
            "; sending paused: the output writer is behind"
        );
    }
}
