//! A worker's privilege separation (docs/design.md, "Least privilege"): the threads that talk
//! to the broker and serve metrics hold no capability, and the threads that parse hostile
//! packets share no memory with them.
//!
//! At start, while the worker has one thread, it forks the *launcher*, which keeps the
//! capabilities a shard's attach needs and does nothing but fork, on request, one *shard
//! process* per shard. The shard process parses the shard's command line, resolves its plan,
//! attaches, sheds every capability (as a scan does) and scans; it hands its results to the
//! worker over the launcher's socket, which the worker publishes. The worker itself sheds every
//! capability once the launcher is forked.
//!
//! One stream socket carries it all, one line per frame, in this order for each shard:
//!
//! | from | line | meaning |
//! |---|---|---|
//! | worker | `["xdpscan", ARGS...]` | a shard's command line |
//! | shard | `S {json}` | the plan is resolved ([`Started`]); waits for `G` |
//! | worker | `G` (or anything else: stop) | go |
//! | shard | `R wire-line` | a result (`output::ndjson::to_wire_line`) |
//! | shard | `W ms` | every result of a reply received before `ms` is above |
//! | shard | `L {json}` | positions and counters now ([`Live`]) |
//! | shard | `E {json}` | the scan's end, or the error that stopped it ([`Ended`]) |
//! | launcher | `X status` | the shard process has exited |
//!
//! Frames come in the order the shard wrote them, so a watermark is read after every result it
//! covers: the checkpoint rule of `cluster::worker` holds across the socket.

use std::{
    io::{BufRead, BufReader, BufWriter, Read, Write},
    os::unix::net::UnixStream,
    sync::{atomic::AtomicUsize, Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use serde::{Deserialize, Serialize};

use super::{publish::NatsSink, DistError};
use crate::{
    engine::{stats::Stats, LivePositions, Position},
    io::{
        privilege::{self, Forked},
        sys,
    },
    output::{ndjson, Record, RunEnd, Sink},
    resume::{ResumeFile, FORMAT},
    scan::{self, Hooks},
};

/// The longest frame read (a result with a banner, a trace or a version is far shorter).
const MAX_FRAME: u64 = 16 << 20;
/// How often a shard process reports its positions and counters.
const LIVE_EVERY: Duration = Duration::from_millis(250);

/// What the worker needs of a shard's plan, from the shard process that resolved it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Started {
    pub(crate) pid: u32,
    /// Probes in the whole space (every shard).
    pub(crate) probes: u64,
    /// Probes this shard sends, retries included.
    pub(crate) total: u64,
    pub(crate) wait_ms: u64,
    /// A checkpoint of this shard, positions aside.
    pub(crate) checkpoint: ResumeFile,
}

/// Where the shard's transmit threads are, and its counters.
#[derive(Debug, Serialize, Deserialize)]
struct Live {
    positions: Vec<Position>,
    counts: Vec<u64>,
}

/// How a shard process ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Ended {
    /// Every probe of the shard was sent.
    pub(crate) complete: bool,
    pub(crate) positions: Vec<Position>,
    pub(crate) send_secs: f64,
    counts: Vec<u64>,
    /// What stopped it, when something did.
    pub(crate) error: Option<String>,
}

/// The worker's end of the launcher.
#[derive(Clone)]
pub(crate) struct Launcher {
    conn: Arc<Mutex<Conn>>,
}

struct Conn {
    out: UnixStream,
    frames: BufReader<UnixStream>,
}

impl Conn {
    /// The next frame: its tag and the rest of the line. `None` when the launcher is gone.
    fn frame(&mut self) -> Option<(u8, String)> {
        let mut line = Vec::new();
        let n = (&mut self.frames)
            .take(MAX_FRAME)
            .read_until(b'\n', &mut line)
            .ok()?;
        if n == 0 || line.last() != Some(&b'\n') {
            return None;
        }
        line.pop();
        let tag = *line.first()?;
        let rest = String::from_utf8_lossy(line.get(2..).unwrap_or_default()).into_owned();
        Some((tag, rest))
    }

    /// Reads up to the launcher's `X` after the shard process's last frame.
    fn reap(&mut self) -> Option<i32> {
        loop {
            match self.frame()? {
                (b'X', code) => return code.parse().ok(),
                _ => continue,
            }
        }
    }
}

impl Launcher {
    /// Forks the launcher. Call it while the process has one thread, after the drop to the
    /// worker's user with the attach capabilities kept: the launcher keeps them.
    pub(crate) fn start() -> Result<Self, DistError> {
        let (ours, theirs) =
            UnixStream::pair().map_err(|e| super::broker_err("launcher: socketpair", e))?;
        match privilege::fork_apart(c"xdpscan-launch")
            .map_err(|e| DistError::Broker(e.to_string()))?
        {
            Forked::Child => {
                drop(ours);
                launcher(theirs)
            }
            Forked::Parent(_) => {
                drop(theirs);
                let frames = BufReader::new(
                    ours.try_clone()
                        .map_err(|e| super::broker_err("launcher: socket", e))?,
                );
                Ok(Self {
                    conn: Arc::new(Mutex::new(Conn { out: ours, frames })),
                })
            }
        }
    }

    /// Starts a shard process for `order` and waits for its plan: `Err` with the reason when
    /// it cannot be resolved here (the interface, the route) or the launcher is gone.
    pub(crate) fn spawn(&self, order: &ShardOrder) -> Result<ShardProcess, String> {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let request = serde_json::to_string(order).map_err(|e| e.to_string())?;
        writeln!(conn.out, "{request}").map_err(|e| format!("the launcher is gone: {e}"))?;
        loop {
            match conn.frame() {
                Some((b'S', json)) => {
                    let started: Started = serde_json::from_str(&json)
                        .map_err(|e| format!("the shard process: {e}"))?;
                    return Ok(ShardProcess {
                        conn: self.conn.clone(),
                        started,
                    });
                }
                Some((b'E', json)) => {
                    let ended: Option<Ended> = serde_json::from_str(&json).ok();
                    conn.reap();
                    return Err(ended
                        .and_then(|e| e.error)
                        .unwrap_or_else(|| "the shard process failed".into()));
                }
                Some((b'X', code)) => {
                    return Err(format!("the shard process ended with status {code}"))
                }
                Some(_) => continue,
                None => return Err("the launcher is gone".into()),
            }
        }
    }
}

/// What a shard process is asked to scan: the typed request (the job's, with the worker's
/// fields in place) and the command line its checkpoints record for people.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct ShardOrder {
    pub(crate) request: Box<crate::cli::Cli>,
    pub(crate) command_line: Vec<String>,
}

/// A shard process whose plan is resolved and that waits for `go`.
pub(crate) struct ShardProcess {
    conn: Arc<Mutex<Conn>>,
    pub(crate) started: Started,
}

impl ShardProcess {
    /// The shard is not ours after all: the process ends without scanning.
    pub(crate) fn cancel(self) {
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(conn.out, "Q");
        conn.reap();
    }

    /// Starts the scan; returns what [`Relay::run`] needs, and the process's pid for signals.
    pub(crate) fn go(self) -> Result<(Relay, Signals), String> {
        {
            let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
            writeln!(conn.out, "G").map_err(|e| format!("the launcher is gone: {e}"))?;
        }
        Ok((
            Relay {
                conn: self.conn,
                pid: self.started.pid,
            },
            Signals {
                pid: self.started.pid,
                sent: 0,
            },
        ))
    }
}

/// Signals for a running shard process.
pub(crate) struct Signals {
    pid: u32,
    /// SIGINTs sent so far.
    sent: usize,
}

impl Signals {
    /// Sends SIGINTs until the shard process has had `count` (1 stops sending, 2 also cuts the
    /// cooldown short, as at the terminal).
    pub(crate) fn forward(&mut self, count: usize) {
        while self.sent < count {
            let _ = sys::interrupt(self.pid);
            self.sent += 1;
        }
    }
}

/// Carries a running shard's results to the worker's sink.
pub(crate) struct Relay {
    conn: Arc<Mutex<Conn>>,
    pid: u32,
}

impl Relay {
    /// Hands every result to `sink` until the shard process ends, keeping `stats` and `live`
    /// current; closes the sink (every result stored) before it returns.
    pub(crate) fn run(
        self,
        mut sink: NatsSink,
        stats: &Stats,
        live: &LivePositions,
    ) -> Result<Ended, String> {
        let started = Instant::now();
        let mut conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let mut ended: Option<Ended> = None;
        let mut results = 0u64;
        let mut failed: Option<String> = None;
        while let Some((tag, rest)) = conn.frame() {
            let handled = match tag {
                b'R' => ndjson::from_line(&rest)
                    .map_err(|e| std::io::Error::other(format!("a result from the shard: {e}")))
                    .and_then(|r| {
                        results += 1;
                        sink.write(&r)
                    }),
                b'W' => rest.parse().map_or(Ok(()), |ms| sink.watermark(ms)),
                b'L' => {
                    if let Ok(l) = serde_json::from_str::<Live>(&rest) {
                        stats.set_counts(&l.counts);
                        live.store(&l.positions);
                    }
                    Ok(())
                }
                b'E' => {
                    ended = serde_json::from_str(&rest).ok();
                    Ok(())
                }
                b'X' => break,
                _ => Ok(()),
            };
            if let Err(e) = handled {
                // The broker refused: the shard stops at once; what was stored stays stored.
                if failed.is_none() {
                    failed = Some(e.to_string());
                    let _ = sys::interrupt(self.pid);
                    let _ = sys::interrupt(self.pid);
                }
            }
        }
        drop(conn);
        if let Some(e) = &ended {
            stats.set_counts(&e.counts);
        }
        let complete = ended
            .as_ref()
            .is_some_and(|e| e.complete && e.error.is_none());
        let closed = sink.finish(&RunEnd {
            end: SystemTime::now(),
            elapsed: started.elapsed(),
            results,
            error: !complete,
            complete,
        });
        if let Some(e) = failed {
            return Err(e);
        }
        closed.map_err(|e| e.to_string())?;
        let ended = ended.ok_or("the shard process ended without a report")?;
        match &ended.error {
            Some(e) => Err(e.clone()),
            None => Ok(ended),
        }
    }
}

/// The launcher's life: a shard process per request, until the worker closes its end.
fn launcher(sock: UnixStream) -> ! {
    let Ok(read_half) = sock.try_clone() else {
        std::process::exit(1)
    };
    let mut requests = BufReader::new(read_half);
    let mut line = String::new();
    loop {
        line.clear();
        match (&mut requests).take(MAX_FRAME).read_line(&mut line) {
            Ok(0) | Err(_) => std::process::exit(0),
            Ok(_) => {}
        }
        // A `G` or `Q` left by a shard process that died first is not a request.
        let Ok(order) = serde_json::from_str::<ShardOrder>(line.trim_end()) else {
            continue;
        };
        let status = match privilege::fork_apart(c"xdpscan-shard") {
            Ok(Forked::Child) => shard_process(order, sock),
            Ok(Forked::Parent(pid)) => sys::wait_exit(pid).unwrap_or(1),
            Err(e) => {
                let _ = frame(&sock, 'E', &json(&failure(e.to_string())));
                1
            }
        };
        if frame(&sock, 'X', &status.to_string()).is_err() {
            std::process::exit(0);
        }
    }
}

fn frame(mut to: &UnixStream, tag: char, body: &str) -> std::io::Result<()> {
    to.write_all(format!("{tag} {body}\n").as_bytes())
}

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn failure(error: String) -> Ended {
    Ended {
        complete: false,
        positions: Vec::new(),
        send_secs: 0.0,
        counts: Vec::new(),
        error: Some(error),
    }
}

/// A shard process: resolves the plan, waits for the go, scans, reports, exits.
fn shard_process(order: ShardOrder, sock: UnixStream) -> ! {
    let code = match scan_shard(order, &sock) {
        Ok(()) => 0,
        Err(e) => {
            let _ = frame(&sock, 'E', &json(&failure(e)));
            1
        }
    };
    std::process::exit(code)
}

fn scan_shard(order: ShardOrder, sock: &UnixStream) -> Result<(), String> {
    let interrupts = Arc::new(AtomicUsize::new(0));
    sys::count_signals(&[libc::SIGINT, libc::SIGTERM], interrupts.clone())
        .map_err(|e| format!("signal handlers: {e}"))?;
    let mut cfg = crate::config::ScanConfig::from_cli(&order.request).map_err(|e| e.to_string())?;
    // The worker has dropped to its user already; the shard process sheds its capabilities
    // once attached.
    cfg.spec.run_as = None;
    cfg.spec.args = order.command_line;
    let threads = cfg.spec.pacing.tx_cores.len();
    let cycle = crate::permute::Cycle::new(cfg.spec.targets.space.len(), cfg.spec.pacing.seed);
    let total = (0..threads as u32)
        .map(|t| {
            cycle
                .walker(
                    cfg.spec.cluster.shard.0,
                    cfg.spec.cluster.shard.1,
                    t,
                    threads as u32,
                )
                .positions()
        })
        .sum::<u64>()
        * (cfg.spec.pacing.retries as u64 + 1);
    let started = Started {
        pid: std::process::id(),
        probes: cfg.spec.targets.space.len(),
        total,
        wait_ms: cfg.spec.pacing.wait.as_millis() as u64,
        checkpoint: ResumeFile {
            xdpscan_resume: FORMAT,
            fingerprint: cfg.spec.resume.fingerprint.clone(),
            seed: cfg.spec.pacing.seed,
            shard: cfg.spec.cluster.shard,
            threads,
            positions: Vec::new(),
            command_line: cfg.spec.args.clone(),
            scan_id: cfg.spec.cluster.scan_id,
            answered: Vec::new(),
            carried: Vec::new(),
        },
    };
    frame(sock, 'S', &json(&started)).map_err(|e| e.to_string())?;
    if !go_given(sock) {
        return Ok(());
    }
    let stats = Arc::new(Stats::default());
    let live = Arc::new(LivePositions::new(threads));
    let out = sock.try_clone().map_err(|e| e.to_string())?;
    let hooks = Hooks {
        sinks: vec![(
            "worker".into(),
            Box::new(PipeSink {
                out: BufWriter::with_capacity(64 << 10, out),
                stats: stats.clone(),
                live: live.clone(),
                last_live: Instant::now(),
            }),
        )],
        openers: Vec::new(),
        no_default_stdout: true,
        stats: Some(stats.clone()),
        live: Some(live),
    };
    let ended = match scan::run_with(&cfg, &interrupts, hooks) {
        Ok(r) => Ended {
            complete: r.outcome.complete,
            positions: r.outcome.positions,
            send_secs: r.outcome.send_duration.as_secs_f64(),
            counts: stats.counts(),
            error: None,
        },
        Err(e) => Ended {
            counts: stats.counts(),
            ..failure(e.to_string())
        },
    };
    frame(sock, 'E', &json(&ended)).map_err(|e| e.to_string())
}

/// Reads the worker's answer to `S`, one byte at a time (nothing past it is ours to read).
fn go_given(mut sock: &UnixStream) -> bool {
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while let Ok(1) = sock.read(&mut byte) {
        if byte[0] == b'\n' {
            break;
        }
        answer.push(byte[0]);
    }
    answer == b"G"
}

/// The shard process's output: every result, watermark and position report, to the worker.
struct PipeSink {
    out: BufWriter<UnixStream>,
    stats: Arc<Stats>,
    live: Arc<LivePositions>,
    last_live: Instant,
}

impl Sink for PipeSink {
    fn write(&mut self, r: &Record) -> std::io::Result<()> {
        writeln!(self.out, "R {}", ndjson::to_wire_line(r))
    }

    fn watermark(&mut self, safe_ms: u64) -> std::io::Result<()> {
        writeln!(self.out, "W {safe_ms}")?;
        if self.last_live.elapsed() >= LIVE_EVERY {
            self.last_live = Instant::now();
            let live = Live {
                positions: self.live.snapshot(),
                counts: self.stats.counts(),
            };
            writeln!(self.out, "L {}", json(&live))?;
        }
        self.out.flush()
    }

    fn finish(&mut self, _end: &RunEnd) -> std::io::Result<()> {
        self.out.flush()
    }
}
