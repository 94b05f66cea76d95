//! `xdpscan worker --metrics ADDR`: Prometheus' text format at `/metrics` (probes sent, replies,
//! drops, the send rate, shard progress, results stored and waiting, broker reachability).

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpListener},
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Arc, Mutex,
    },
    time::Instant,
};

use super::{broker_err, publish::Ledger, DistError, ShardTask};
use crate::engine::stats::Stats;

/// What the page shows; the worker updates it.
#[derive(Default)]
pub(crate) struct WorkerMetrics {
    current: Mutex<Option<Current>>,
    /// Parts per million of the running shard's positions walked.
    progress_ppm: AtomicU64,
    pub(crate) shards_done: AtomicU64,
    /// Totals of finished shards, so counters never go down.
    past_sent: AtomicU64,
    past_replies: AtomicU64,
    past_drops: AtomicU64,
    past_stored: AtomicU64,
}

struct Current {
    job: String,
    shard: u32,
    stats: Arc<Stats>,
    ledger: Arc<Ledger>,
    started: Instant,
}

impl WorkerMetrics {
    pub(crate) fn start_shard(
        &self,
        job: &str,
        task: ShardTask,
        stats: Arc<Stats>,
        ledger: Arc<Ledger>,
    ) {
        self.progress_ppm.store(0, Relaxed);
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(Current {
            job: job.to_string(),
            shard: task.index,
            stats,
            ledger,
            started: Instant::now(),
        });
    }

    pub(crate) fn progress(&self, walked: u64, total: u64) {
        let ppm = if total == 0 {
            0
        } else {
            (walked as u128 * 1_000_000 / total as u128) as u64
        };
        self.progress_ppm.store(ppm.min(1_000_000), Relaxed);
    }

    pub(crate) fn end_shard(&self) {
        if let Some(c) = self
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            self.past_sent.fetch_add(Stats::get(&c.stats.sent), Relaxed);
            self.past_replies
                .fetch_add(Stats::get(&c.stats.validated), Relaxed);
            self.past_drops
                .fetch_add(Stats::get(&c.stats.drops), Relaxed);
            self.past_stored
                .fetch_add(c.ledger.stored.load(Relaxed), Relaxed);
        }
    }

    /// The page, in Prometheus' text exposition format.
    pub(crate) fn render(&self) -> String {
        let cur = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let (sent, replies, drops, stored, waiting, rate, connected, label) = match cur.as_ref() {
            Some(c) => {
                let sent = Stats::get(&c.stats.sent);
                (
                    sent,
                    Stats::get(&c.stats.validated),
                    Stats::get(&c.stats.drops),
                    c.ledger.stored.load(Relaxed),
                    c.ledger.waiting(),
                    sent as f64 / c.started.elapsed().as_secs_f64().max(1e-3),
                    c.ledger.connected.load(Relaxed) as u8,
                    format!("{{job=\"{}\",shard=\"{}\"}}", c.job, c.shard + 1),
                )
            }
            None => (0, 0, 0, 0, 0, 0.0, 1, String::new()),
        };
        let mut s = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            s.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            ));
        };
        metric(
            "xdpscan_probes_sent_total",
            "counter",
            "Probes handed to the transport.",
            (self.past_sent.load(Relaxed) + sent).to_string(),
        );
        metric(
            "xdpscan_replies_total",
            "counter",
            "Replies that validated.",
            (self.past_replies.load(Relaxed) + replies).to_string(),
        );
        metric(
            "xdpscan_drops_total",
            "counter",
            "Frames the kernel or NIC dropped before the scanner read them.",
            (self.past_drops.load(Relaxed) + drops).to_string(),
        );
        metric(
            "xdpscan_results_stored_total",
            "counter",
            "Results the broker acknowledged.",
            (self.past_stored.load(Relaxed) + stored).to_string(),
        );
        metric(
            "xdpscan_results_waiting",
            "gauge",
            "Results waiting for the broker's acknowledgement.",
            waiting.to_string(),
        );
        metric(
            "xdpscan_send_rate_pps",
            "gauge",
            "Probes per second over the running shard.",
            format!("{rate:.1}"),
        );
        metric(
            "xdpscan_broker_connected",
            "gauge",
            "1 while the broker acknowledges publishes.",
            connected.to_string(),
        );
        metric(
            "xdpscan_shards_done_total",
            "counter",
            "Shards this worker completed.",
            self.shards_done.load(Relaxed).to_string(),
        );
        s.push_str("# HELP xdpscan_shard_progress_ratio Share of the running shard walked.\n# TYPE xdpscan_shard_progress_ratio gauge\n");
        s.push_str(&format!(
            "xdpscan_shard_progress_ratio{label} {:.6}\n",
            self.progress_ppm.load(Relaxed) as f64 / 1e6
        ));
        s
    }
}

/// Bytes of request head read at most; a longer one is cut off and answered 404.
const MAX_REQUEST: u64 = 8 << 10;
/// Scrapes served at once; a connection past these is closed at once.
const MAX_CLIENTS: usize = 8;
/// The longest a client may take over its request.
const REQUEST_TIME: std::time::Duration = std::time::Duration::from_secs(2);

/// Serves the page on `addr`: a listening thread, and a short-lived thread per scrape (at most
/// `MAX_CLIENTS`), each reading at most `MAX_REQUEST` bytes within `REQUEST_TIME`, so a client
/// that streams bytes neither grows memory nor blocks other scrapes. Neither thread keeps a
/// capability.
pub(crate) fn serve(addr: SocketAddr, m: Arc<WorkerMetrics>) -> Result<(), DistError> {
    let l = TcpListener::bind(addr).map_err(|e| broker_err(format!("--metrics {addr}"), e))?;
    let active = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    std::thread::spawn(move || {
        crate::io::privilege::shed_thread_caps();
        for conn in l.incoming().flatten() {
            if active.fetch_add(1, Relaxed) >= MAX_CLIENTS {
                active.fetch_sub(1, Relaxed);
                continue;
            }
            let (m, active) = (m.clone(), active.clone());
            std::thread::spawn(move || {
                answer(conn, &m);
                active.fetch_sub(1, Relaxed);
            });
        }
    });
    Ok(())
}

fn answer(conn: std::net::TcpStream, m: &WorkerMetrics) {
    let started = std::time::Instant::now();
    let _ = conn.set_read_timeout(Some(REQUEST_TIME));
    let mut r = BufReader::new((&conn).take(MAX_REQUEST));
    let mut first = String::new();
    if r.read_line(&mut first).is_err() {
        return;
    }
    // The rest of the request head, within the same bounds.
    let mut line = String::new();
    while started.elapsed() < REQUEST_TIME && r.read_line(&mut line).is_ok_and(|n| n > 2) {
        line.clear();
    }
    let path = first.split_whitespace().nth(1).unwrap_or("");
    let (status, body, ctype) = if path == "/metrics" || path.starts_with("/metrics?") {
        ("200 OK", m.render(), "text/plain; version=0.0.4")
    } else {
        ("404 Not Found", "see /metrics\n".to_string(), "text/plain")
    };
    let mut w = &conn;
    let _ = write!(
        w,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 20, item 19: a client streaming an endless request line neither grows memory
    /// past the bound nor keeps another scrape from being answered.
    #[test]
    fn a_streaming_client_blocks_no_scrape() {
        use std::io::{Read, Write};
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = probe.local_addr().unwrap();
        drop(probe);
        serve(addr, Arc::new(WorkerMetrics::default())).unwrap();
        let mut hog = std::net::TcpStream::connect(addr).unwrap();
        let chunk = vec![b'A'; 4096];
        let mut sent = 0;
        // The server stops reading at its bound: the write ends with an error or the socket
        // buffers fill; either way far less than this is ever held.
        hog.set_write_timeout(Some(std::time::Duration::from_millis(500)))
            .unwrap();
        while sent < 64 << 20 && hog.write_all(&chunk).is_ok() {
            sent += chunk.len();
        }
        assert!(sent < 64 << 20, "the server kept reading an endless line");
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
        let mut page = String::new();
        c.read_to_string(&mut page).unwrap();
        assert!(page.starts_with("HTTP/1.1 200 OK"), "{page}");
    }

    #[test]
    fn the_page_is_prometheus_text() {
        let m = WorkerMetrics::default();
        let stats = Arc::new(Stats::default());
        Stats::add(&stats.sent, 42);
        m.start_shard(
            "j1",
            ShardTask { index: 2, count: 8 },
            stats,
            Arc::new(Ledger::default()),
        );
        m.progress(1, 4);
        let page = m.render();
        assert!(page.contains("\nxdpscan_probes_sent_total 42\n"), "{page}");
        assert!(page.contains("xdpscan_shard_progress_ratio{job=\"j1\",shard=\"3\"} 0.250000"));
        for l in page.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = l.rsplit_once(' ').unwrap();
            assert!(name.starts_with("xdpscan_"), "{l}");
            assert!(value.parse::<f64>().is_ok(), "{l}");
        }
        m.end_shard();
        assert!(m.render().contains("\nxdpscan_probes_sent_total 42\n"));
    }
}
