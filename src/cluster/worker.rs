//! `xdpscan worker`: takes shards from the work queue one at a time and scans each on this
//! machine's interface, publishing results as they come (docs/design.md, "Distributed scans").
//!
//! While a shard runs, the worker tells the broker every 3 s that it is still at work (the
//! consumer's ack wait is 15 s, so a dead worker's shard goes to another within about 20 s),
//! and about every second saves a checkpoint: a resume file whose positions were reached at
//! least `--wait` (plus half a second) before the newest result the broker has acknowledged, so
//! every reply those probes could bring is stored. A shard is acknowledged only after its
//! cooldown, when every result is stored; it is marked done first.

use std::{
    collections::VecDeque,
    sync::{atomic::Ordering::Relaxed, Arc},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use async_nats::jetstream::{self, consumer::pull, AckKind};
use futures_util::StreamExt;

use super::{
    args::WorkerCli,
    broker, broker_err, consumer_name,
    metrics::WorkerMetrics,
    owner,
    publish::{self, Ledger, Naming, NatsSink},
    results_subject, shard_key,
    shard_process::ShardOrder,
    shard_process::{Ended, Launcher, ShardProcess, Signals, Started},
    DistError, JobSpec, ShardRecord, ShardState, ShardTask,
};
use crate::{
    engine::{stats::Stats, Interrupts, LivePositions, Position},
    io::privilege,
    resume::ResumeFile,
};

/// What a new shard's attach needs, kept through the drop: the XDP program's load (CAP_BPF,
/// and CAP_PERFMON for the verifier to take its packet-pointer reads) and link
/// (CAP_NET_ADMIN), the AF_XDP socket (CAP_NET_RAW, ARP too) and its UMEM (CAP_IPC_LOCK). Each
/// shard's scan sheds them once attached (`io::privilege`).
const ATTACH_CAPS: [u32; 5] = [
    privilege::cap::NET_ADMIN,
    privilege::cap::NET_RAW,
    privilege::cap::BPF,
    privilege::cap::PERFMON,
    privilege::cap::IPC_LOCK,
];

/// Seconds between "still at work" signals; the consumer waits `ACK_WAIT` for one.
const PROGRESS_EVERY: Duration = Duration::from_secs(3);
pub(crate) const ACK_WAIT: Duration = Duration::from_secs(15);

/// Runs the worker; returns its exit status.
pub fn run(cli: WorkerCli, interrupts: Interrupts) -> Result<u8, DistError> {
    if let Some(j) = &cli.job {
        super::check_job_name(j)?;
    }
    let run_as =
        privilege::resolve(cli.user.as_deref()).map_err(|e| DistError::Usage(e.to_string()))?;
    privilege::drop_to(run_as.as_ref(), &ATTACH_CAPS)
        .map_err(|e| DistError::Broker(e.to_string()))?;
    // The launcher keeps the attach capabilities; this process, which talks to the broker and
    // serves metrics, keeps none (`shard_process`).
    let launcher = Launcher::start()?;
    privilege::keep_only(&[]).map_err(|e| broker_err("dropping privileges", e))?;
    let metrics = Arc::new(WorkerMetrics::default());
    if let Some(addr) = cli.metrics {
        super::metrics::serve(addr, metrics.clone())?;
    }
    let rt = broker::runtime()?;
    let code = rt.block_on(work(cli, &launcher, interrupts, metrics));
    let _ = std::fs::remove_dir_all(scratch_dir());
    code
}

/// Where a worker keeps the checkpoint a shard resumes from: a directory of its own, made new
/// (mode 0700) under an unpredictable name, never one found already there.
fn scratch_dir() -> std::path::PathBuf {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let random = crate::cookie::random_u64();
        std::env::temp_dir().join(format!(
            "xdpscan-worker-{}-{random:016x}",
            std::process::id()
        ))
    })
    .clone()
}

/// Makes the scratch directory; an existing entry of that name is an error, not a directory
/// to use.
fn make_scratch(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && owned_dir(dir) => Ok(()),
        r => r,
    }
}

/// Ours from an earlier shard of this process: a real directory (not a link), our user's, 0700.
fn owned_dir(dir: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(dir)
        .is_ok_and(|m| m.is_dir() && m.uid() == privilege::euid() && m.mode() & 0o777 == 0o700)
}

fn worker_name(cli: &WorkerCli) -> String {
    if let Some(n) = &cli.name {
        return n.clone();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "worker".into());
    format!("{host}-{}", std::process::id())
}

async fn work(
    cli: WorkerCli,
    launcher: &Launcher,
    interrupts: Interrupts,
    metrics: Arc<WorkerMetrics>,
) -> Result<u8, DistError> {
    let client = broker::connect_patiently(&cli.nats.url, &cli.nats.auth, 12).await?;
    let js = broker::jetstream(&client);
    if let Some(j) = &cli.job {
        broker::job(&js, j).await?;
    }
    let name = worker_name(&cli);
    // Progress unless -q; a shard given back is always said.
    let say = |m: Said| match m {
        Said::GivenBack(m) => eprintln!("xdpscan worker {name}: {m}"),
        Said::Progress(m) if !cli.quiet => eprintln!("xdpscan worker {name}: {m}"),
        Said::Progress(_) => {}
    };
    loop {
        if interrupts.load(Relaxed) > 0 {
            return Ok(0);
        }
        // The broker may be away for a moment (a restart, a cluster node lost): wait for it.
        let specs = match specs(&js, cli.job.as_deref()).await {
            Ok(s) => s,
            Err(_) => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut took = false;
        for spec in &specs {
            if broker::job_done(&js, spec).await.unwrap_or(false) {
                continue;
            }
            let Some(msg) = next_task(&js, &spec.job).await? else {
                continue;
            };
            took = true;
            let ctx = ShardCtx {
                cli: &cli,
                js: &js,
                launcher,
                interrupts: &interrupts,
                metrics: &metrics,
                name: &name,
            };
            match shard(&ctx, spec, msg, &say).await? {
                Next::Continue => {}
                Next::Exit(code) => return Ok(code),
            }
            break;
        }
        if !took {
            if cli.exit_when_idle && !specs.is_empty() {
                let mut all = true;
                for s in &specs {
                    all &= broker::job_done(&js, s).await.unwrap_or(false);
                }
                if all {
                    say(Said::Progress("every shard is done".into()));
                    return Ok(0);
                }
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

/// The jobs this worker serves.
async fn specs(js: &jetstream::Context, job: Option<&str>) -> Result<Vec<JobSpec>, DistError> {
    let jobs = match job {
        Some(j) => vec![j.to_string()],
        None => all_jobs(js).await?,
    };
    let mut specs = Vec::new();
    for j in &jobs {
        specs.push(broker::job(js, j).await?);
    }
    Ok(specs)
}

async fn all_jobs(js: &jetstream::Context) -> Result<Vec<String>, DistError> {
    let Ok(b) = broker::bucket(js, super::JOBS_BUCKET, 1, false).await else {
        return Ok(Vec::new());
    };
    let mut keys = match b.keys().await {
        Ok(k) => k,
        Err(_) => return Ok(Vec::new()),
    };
    let mut out = Vec::new();
    while let Some(k) = keys.next().await {
        if let Ok(k) = k {
            out.push(k);
        }
    }
    out.sort();
    Ok(out)
}

async fn next_task(
    js: &jetstream::Context,
    job: &str,
) -> Result<Option<jetstream::Message>, DistError> {
    let Ok(stream) = js.get_stream(super::WORK_STREAM).await else {
        return Ok(None);
    };
    let Ok(consumer) = stream
        .get_consumer::<pull::Config>(&consumer_name(job))
        .await
    else {
        return Ok(None);
    };
    let mut batch = match consumer
        .fetch()
        .max_messages(1)
        .expires(Duration::from_millis(700))
        .messages()
        .await
    {
        Ok(b) => b,
        Err(_) => return Ok(None),
    };
    match batch.next().await {
        Some(Ok(m)) => Ok(Some(m)),
        _ => Ok(None),
    }
}

/// What a worker says: progress (silent with -q), or a shard given back (always said).
enum Said {
    Progress(String),
    GivenBack(String),
}

enum Next {
    Continue,
    Exit(u8),
}

/// The scan of one shard: the job's typed request with the worker's own fields in place: this
/// machine's interface, source and next hop, the shard, quiet, and the checkpoint to resume
/// from. The job's seed is in its request.
fn shard_request(
    cli: &WorkerCli,
    spec: &JobSpec,
    task: ShardTask,
    resume: Option<&std::path::Path>,
    resume_out: &std::path::Path,
) -> Result<ShardOrder, DistError> {
    let mut r = spec.request()?.clone();
    if let Some(i) = &cli.interface {
        r.net.interface = Some(i.clone());
    }
    if let Some(s) = cli.source_ip {
        r.net.source_ip = Some(crate::cookie::SourcePool::single(s));
    }
    if let Some(g) = &cli.gateway_mac {
        r.net.gateway_mac = Some(
            crate::cli::parse_mac(g)
                .map_err(|e| DistError::Usage(format!("--gateway-mac: {e}")))?,
        );
    }
    r.pacing.seed = Some(spec.seed);
    r.cluster.shard = Some(crate::cli::ShardArg::Fixed(task.index, task.count));
    r.cluster.shards = None;
    r.outputs.quiet = true;
    r.resume.file = resume_out.to_path_buf();
    r.resume.from = resume.map(std::path::Path::to_path_buf);
    let mut command_line = spec.args.clone();
    command_line.extend([
        "--seed".into(),
        spec.seed.to_string(),
        "--shard".into(),
        format!("{}/{}", task.index + 1, task.count),
    ]);
    Ok(ShardOrder {
        request: Box::new(r),
        command_line,
    })
}

/// What every shard of this worker shares.
struct ShardCtx<'a> {
    cli: &'a WorkerCli,
    js: &'a jetstream::Context,
    launcher: &'a Launcher,
    interrupts: &'a Interrupts,
    metrics: &'a WorkerMetrics,
    name: &'a str,
}

/// `shard 3/8 of JOB`, as the worker's messages name it.
fn shard_name(spec: &JobSpec, task: ShardTask) -> String {
    format!("shard {}/{} of {}", task.index + 1, task.count, spec.job)
}

/// The shard goes back to the queue, for this worker a second later or for another.
async fn give_back(msg: &jetstream::Message) {
    let _ = msg
        .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
        .await;
}

/// A shard's record as read, with the bucket to write it in: `None` (the shard given back)
/// when the broker is away, or the record cannot be read (that is not "no record", which
/// would start the shard again from scratch).
async fn shard_record(
    js: &jetstream::Context,
    key: &str,
    msg: &jetstream::Message,
) -> Option<(jetstream::kv::Store, owner::Read)> {
    let read = match broker::bucket(js, super::SHARDS_BUCKET, 1, false).await {
        Ok(shards) => owner::read(&shards, key).await.map(|r| (shards, r)).ok(),
        Err(_) => None,
    };
    if read.is_none() {
        give_back(msg).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    read
}

/// Takes one shard: its checkpoint, a shard process for its plan, the claim, the scan.
async fn shard(
    ctx: &ShardCtx<'_>,
    spec: &JobSpec,
    msg: jetstream::Message,
    say: &impl Fn(Said),
) -> Result<Next, DistError> {
    let Ok(task) = serde_json::from_slice::<ShardTask>(&msg.payload) else {
        let _ = msg.ack_with(AckKind::Term).await;
        return Ok(Next::Continue);
    };
    let key = shard_key(&spec.job, task.index);
    let Some((shards, read)) = shard_record(ctx.js, &key, &msg).await else {
        return Ok(Next::Continue);
    };
    if read
        .record
        .as_ref()
        .is_some_and(|r| r.state == ShardState::Done)
    {
        let _ = msg.double_ack().await;
        return Ok(Next::Continue);
    }
    let _ = msg.ack_with(AckKind::Progress).await;

    let dir = scratch_dir();
    make_scratch(&dir).map_err(|e| broker_err(format!("{}", dir.display()), e))?;
    let files = ShardFiles {
        resume_in: dir.join(format!("{key}.checkpoint.json")),
        resume_out: dir.join(format!("{key}.resume.json")),
    };
    let checkpoint = read.record.as_ref().and_then(|r| r.checkpoint.as_ref());
    if let Some(c) = checkpoint {
        std::fs::write(&files.resume_in, serde_json::to_vec(c).unwrap_or_default())
            .map_err(|e| broker_err(format!("{}", files.resume_in.display()), e))?;
    }
    let resuming = checkpoint.is_some();
    let order = match shard_request(
        ctx.cli,
        spec,
        task,
        resuming.then_some(files.resume_in.as_path()),
        &files.resume_out,
    ) {
        Ok(o) => o,
        Err(e) => {
            // Stored by another layout, or this worker's --gateway-mac: no shard of it here.
            give_back(&msg).await;
            files.remove();
            return Err(e);
        }
    };
    // The shard process resolves the plan (the interface, the route, the next hop's MAC).
    let launcher = ctx.launcher.clone();
    let spawned = tokio::task::spawn_blocking(move || launcher.spawn(&order))
        .await
        .unwrap_or_else(|_| Err("the launcher's thread panicked".into()));
    let process = match spawned {
        Ok(p) => p,
        Err(e) => {
            // This machine cannot run it (its interface, its route): another may.
            give_back(&msg).await;
            files.remove();
            say(Said::GivenBack(format!(
                "{} given back: {}",
                shard_name(spec, task),
                e.lines().next().unwrap_or("").trim_start_matches("error: ")
            )));
            return Ok(Next::Exit(1));
        }
    };
    say(Said::Progress(format!(
        "{}{}",
        shard_name(spec, task),
        if resuming { " (resuming)" } else { "" }
    )));
    let taken = Taken {
        spec,
        task,
        msg,
        shards,
        key,
        read,
        files,
    };
    run_shard(ctx, taken, process, say).await
}

/// A shard's scratch files: the checkpoint it resumes from, the resume file its scan keeps.
struct ShardFiles {
    resume_in: std::path::PathBuf,
    resume_out: std::path::PathBuf,
}

impl ShardFiles {
    fn remove(&self) {
        let _ = std::fs::remove_file(&self.resume_in);
        let _ = std::fs::remove_file(&self.resume_out);
    }
}

/// A shard taken from the queue, its record read.
struct Taken<'a> {
    spec: &'a JobSpec,
    task: ShardTask,
    msg: jetstream::Message,
    shards: jetstream::kv::Store,
    key: String,
    read: owner::Read,
    files: ShardFiles,
}

/// The record of the shard, as this worker writes it.
struct Recorder<'a> {
    name: &'a str,
    started: Started,
    stats: Arc<Stats>,
    ledger: Arc<Ledger>,
    since: Instant,
}

impl Recorder<'_> {
    fn record(&self, state: ShardState, positions: Option<&Vec<Position>>) -> ShardRecord {
        let checkpoint = |p: &Vec<Position>| ResumeFile {
            positions: p.clone(),
            ..self.started.checkpoint.clone()
        };
        let sent = Stats::get(&self.stats.sent);
        ShardRecord {
            state,
            worker: self.name.to_string(),
            checkpoint: positions.map(|p| serde_json::to_value(checkpoint(p)).unwrap_or_default()),
            probes: self.started.probes,
            walked: positions.map_or(0, |p| p.iter().map(|q| q.walked).sum()),
            total: self.started.total,
            sent,
            results: self.ledger.stored.load(Relaxed),
            rate_pps: sent as f64 / self.since.elapsed().as_secs_f64().max(1e-3),
            send_secs: 0.0,
            updated: crate::output::rfc3339(SystemTime::now()),
        }
    }
}

/// Claims the shard and, when it is ours, scans it in its shard process.
async fn run_shard(
    ctx: &ShardCtx<'_>,
    t: Taken<'_>,
    process: ShardProcess,
    say: &impl Fn(Said),
) -> Result<Next, DistError> {
    let attempt = crate::cookie::random_u64();
    let ledger = Arc::new(Ledger::default());
    let (sink, rx) = NatsSink::new(
        results_subject(&t.spec.job),
        Naming::Batches {
            prefix: format!("{}.{}.{attempt:x}", t.spec.job, t.task.index),
        },
        ctx.cli.publish_buffer,
        ledger.clone(),
    );
    let pump = tokio::spawn(publish::pump(
        ctx.js.clone(),
        results_subject(&t.spec.job),
        rx,
        ledger.clone(),
    ));
    let stats = Arc::new(Stats::default());
    let live = Arc::new(LivePositions::new(process.started.checkpoint.threads));
    ctx.metrics
        .start_shard(&t.spec.job, t.task, stats.clone(), ledger.clone());
    let rec = Recorder {
        name: ctx.name,
        started: process.started.clone(),
        stats: stats.clone(),
        ledger: ledger.clone(),
        since: Instant::now(),
    };
    // A shard taken again keeps its checkpoint until a newer one is safe.
    let last_saved = saved_positions(t.read.record.clone());
    let owner = claim(&t, &rec, last_saved.as_ref()).await;
    let owner = match owner {
        Ok(o) => o,
        Err((m, lost)) => {
            let _ = tokio::task::spawn_blocking(move || process.cancel()).await;
            drop(sink);
            let _ = pump.await;
            ctx.metrics.end_shard();
            t.files.remove();
            say(if lost.is_none() {
                Said::GivenBack(m)
            } else {
                Said::Progress(m)
            });
            match lost {
                Some(now) => stand_down(&t.msg, now.as_ref()).await,
                None => give_back(&t.msg).await,
            }
            return Ok(Next::Continue);
        }
    };
    let (relay, signals) = match process.go() {
        Ok(r) => r,
        Err(e) => {
            drop(sink);
            let _ = pump.await;
            ctx.metrics.end_shard();
            t.files.remove();
            give_back(&t.msg).await;
            say(Said::GivenBack(format!(
                "{} given back: {e}",
                shard_name(t.spec, t.task)
            )));
            return Ok(Next::Exit(1));
        }
    };
    let scan_thread = {
        let (stats, live) = (stats.clone(), live.clone());
        std::thread::spawn(move || relay.run(sink, &stats, &live))
    };
    let mut watch = Watch {
        owner,
        last_saved,
        lost: false,
        signals,
    };
    watch
        .until_done(ctx, &t, &rec, &live, &scan_thread, say)
        .await;
    let outcome = scan_thread
        .join()
        .unwrap_or_else(|_| Err("the relay thread panicked".into()));
    drain_pump(pump, &t.msg).await;
    t.files.remove();
    ctx.metrics.end_shard();
    conclude(ctx, &t, &rec, watch, outcome, say).await
}

/// The last acknowledgements may take a while (a broker away): the shard stays ours until the
/// pump is done.
async fn drain_pump(mut pump: tokio::task::JoinHandle<()>, msg: &jetstream::Message) {
    loop {
        tokio::select! {
            _ = &mut pump => break,
            _ = tokio::time::sleep(PROGRESS_EVERY) => {
                let _ = msg.ack_with(AckKind::Progress).await;
            }
        }
    }
}

/// The positions of the checkpoint a shard's record holds, if any.
fn saved_positions(record: Option<ShardRecord>) -> Option<Vec<Position>> {
    record?
        .checkpoint
        .and_then(|c| serde_json::from_value::<ResumeFile>(c).ok())
        .map(|f| f.positions)
}

/// Takes the shard: the record says by whom, keeping the checkpoint it had; written over the
/// revision read, so a worker that wrote in between (or a Done) wins. Not ours: why, and the
/// record another worker wrote (none when the broker refused).
async fn claim(
    t: &Taken<'_>,
    rec: &Recorder<'_>,
    last_saved: Option<&Vec<Position>>,
) -> Result<owner::Owner, (String, Option<Option<ShardRecord>>)> {
    let claim = owner::Owner::claim(
        t.shards.clone(),
        t.key.clone(),
        &t.read,
        &rec.record(ShardState::Running, last_saved),
    )
    .await;
    match claim {
        Ok((o, owner::Wrote::Yes)) => Ok(o),
        Ok((_, owner::Wrote::Lost(now))) => Err((
            format!(
                "{}: {}; not taken",
                shard_name(t.spec, t.task),
                lost_reason(now.as_ref())
            ),
            Some(now),
        )),
        Err(e) => Err((
            format!("{} given back: {e}", shard_name(t.spec, t.task)),
            None,
        )),
    }
}

/// A running shard, watched: progress acks, checkpoints, and the loss of the shard.
struct Watch {
    owner: owner::Owner,
    last_saved: Option<Vec<Position>>,
    lost: bool,
    signals: Signals,
}

impl Watch {
    /// Until the scan ends: tells the broker the shard is at work, saves a checkpoint about
    /// every second (positions every reply of which is stored), passes signals on.
    async fn until_done(
        &mut self,
        ctx: &ShardCtx<'_>,
        t: &Taken<'_>,
        rec: &Recorder<'_>,
        live: &LivePositions,
        scan_thread: &std::thread::JoinHandle<Result<Ended, String>>,
        say: &impl Fn(Said),
    ) {
        let wait_ms = rec.started.wait_ms;
        let mut history: VecDeque<(u64, Vec<Position>)> = VecDeque::new();
        let mut last_progress = Instant::now();
        let mut last_save = Instant::now();
        // This shard's own signals: the process's Ctrl-C, or 2 when the shard is lost.
        let mut stop = 0;
        while !scan_thread.is_finished() {
            tokio::time::sleep(Duration::from_millis(250)).await;
            stop = stop.max(ctx.interrupts.load(Relaxed));
            if self.lost {
                stop = stop.max(2);
            }
            self.signals.forward(stop);
            let now_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis() as u64;
            // Stamped now, though taken up to 250 ms ago in the shard process: later is safe.
            history.push_back((now_ms, live.snapshot()));
            let keep_ms = wait_ms + 30_000;
            while history.front().is_some_and(|(t, _)| t + keep_ms < now_ms) {
                history.pop_front();
            }
            ctx.metrics.progress(
                history
                    .back()
                    .map_or(0, |(_, p)| p.iter().map(|q| q.walked).sum()),
                rec.started.total,
            );
            if last_progress.elapsed() >= PROGRESS_EVERY {
                let _ = t.msg.ack_with(AckKind::Progress).await;
                last_progress = Instant::now();
            }
            if !self.lost && last_save.elapsed() >= Duration::from_secs(1) {
                last_save = Instant::now();
                let safe = rec.ledger.stored_until_ms();
                let candidate = history
                    .iter()
                    .rev()
                    .find(|(t, _)| t + wait_ms + 500 <= safe)
                    .map(|(_, p)| p.clone());
                if let Some(p) = candidate {
                    self.save(t, rec, p, say).await;
                }
            }
        }
    }

    /// Saves `p` as the shard's checkpoint when it is newer than the last saved.
    async fn save(
        &mut self,
        t: &Taken<'_>,
        rec: &Recorder<'_>,
        p: Vec<Position>,
        say: &impl Fn(Said),
    ) {
        if self.last_saved.as_ref() == Some(&p) || !newer(&p, self.last_saved.as_ref()) {
            return;
        }
        match self
            .owner
            .save(&rec.record(ShardState::Running, Some(&p)))
            .await
        {
            Ok(owner::Wrote::Yes) => self.last_saved = Some(p),
            Ok(owner::Wrote::Lost(now)) => {
                // Done by the worker we were redelivered from, or taken over.
                say(Said::Progress(format!(
                    "{}: {}; standing down",
                    shard_name(t.spec, t.task),
                    lost_reason(now.as_ref())
                )));
                self.lost = true;
            }
            Err(_) => {} // the broker is away: the next second tries again
        }
    }
}

/// After the scan: Done, back to the queue at its checkpoint, or given back on an error.
async fn conclude(
    ctx: &ShardCtx<'_>,
    t: &Taken<'_>,
    rec: &Recorder<'_>,
    mut watch: Watch,
    outcome: Result<Ended, String>,
    say: &impl Fn(Said),
) -> Result<Next, DistError> {
    let alive = || async {
        let _ = t.msg.ack_with(AckKind::Progress).await;
    };
    match outcome {
        Ok(end) if end.complete => {
            let mut done = rec.record(ShardState::Done, Some(&end.positions));
            done.send_secs = end.send_secs;
            done.rate_pps = done.sent as f64 / done.send_secs.max(1e-3);
            // Every result is stored: Done even over a worker that took the shard meanwhile.
            watch.owner.finish(&done, alive).await;
            let mut tries = 0;
            while t.msg.double_ack().await.is_err() && tries < 20 {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            ctx.metrics.shards_done.fetch_add(1, Relaxed);
            say(Said::Progress(format!(
                "{} done: {} probes, {} results stored",
                shard_name(t.spec, t.task),
                Stats::get(&rec.stats.sent),
                rec.ledger.stored.load(Relaxed)
            )));
            Ok(Next::Continue)
        }
        // Another worker has it (or it is done): its message is that worker's now.
        Ok(_) if watch.lost => Ok(Next::Continue),
        Ok(end) => {
            // Stopped early (Ctrl-C): every result is stored, so the positions it reached are
            // a checkpoint; the shard goes back for another worker.
            let back = rec.record(ShardState::Running, Some(&end.positions));
            let mut tries = 0;
            while watch.owner.save(&back).await.is_err() && tries < 20 {
                tries += 1;
                alive().await;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            let _ = t.msg.ack_with(AckKind::Nak(None)).await;
            say(Said::GivenBack(format!(
                "stopped; {} given back at its checkpoint",
                shard_name(t.spec, t.task)
            )));
            Ok(Next::Exit(0))
        }
        Err(e) => {
            give_back(&t.msg).await;
            say(Said::GivenBack(format!(
                "{} given back: {e}",
                shard_name(t.spec, t.task)
            )));
            Ok(Next::Exit(1))
        }
    }
}

fn lost_reason(now: Option<&ShardRecord>) -> String {
    match now {
        Some(r) if r.state == ShardState::Done => format!("done by {}", r.worker),
        Some(r) => format!("taken over by {}", r.worker),
        None => "its record is gone".into(),
    }
}

/// The shard is done, or another worker wrote its record since we read it. A Done shard's
/// message is finished; otherwise the other worker holds it and this one lets it be.
async fn stand_down(msg: &jetstream::Message, now: Option<&ShardRecord>) {
    if now.is_some_and(|r| r.state == ShardState::Done) {
        let _ = msg.double_ack().await;
    }
}

/// Whether `p` is ahead of `old` in every thread (checkpoints never go back).
fn newer(p: &[Position], old: Option<&Vec<Position>>) -> bool {
    match old {
        None => true,
        Some(o) => {
            o.len() == p.len()
                && p.iter()
                    .zip(o)
                    .all(|(a, b)| (a.pass, a.walked) >= (b.pass, b.walked))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workers_own_fields_replace_the_jobs() {
        use clap::Parser;
        let request = crate::cli::Cli::try_parse_from([
            "xdpscan",
            "198.18.0.0/24",
            "-i",
            "eth0",
            "-p",
            "80",
            "--seed",
            "5",
        ])
        .unwrap();
        let spec = JobSpec {
            version: super::super::JOB_VERSION,
            job: "j".into(),
            shards: 4,
            seed: 5,
            args: vec!["198.18.0.0/24".into(), "-i".into(), "eth0".into()],
            request: Some(Box::new(request.clone())),
            submitted: String::new(),
            queued: true,
        };
        let worker = WorkerCli::try_parse_from([
            "xdpscan worker",
            "--interface",
            "eth2",
            "--gateway-mac",
            "02:00:00:00:00:09",
        ])
        .unwrap();
        let task = ShardTask { index: 2, count: 4 };
        let out = std::path::Path::new("/tmp/o.json");
        let o = shard_request(&worker, &spec, task, None, out).unwrap();
        let r = &o.request;
        assert_eq!(r.net.interface.as_deref(), Some("eth2"));
        assert_eq!(
            r.net.gateway_mac.map(|m| m.to_string()).as_deref(),
            Some("02:00:00:00:00:09")
        );
        assert_eq!(r.cluster.shard, Some(crate::cli::ShardArg::Fixed(2, 4)));
        assert_eq!((r.pacing.seed, r.outputs.quiet), (Some(5), true));
        assert_eq!(
            (r.resume.file.as_path(), r.resume.from.as_ref()),
            (out, None)
        );
        // Everything else is the job's, and survives the broker's JSON.
        assert_eq!(r.targets, request.targets);
        let back: crate::cli::Cli =
            serde_json::from_slice(&serde_json::to_vec(&**r).unwrap()).unwrap();
        assert_eq!(&back, &**r);
        // A job of the old layout (argv only) is refused with its reason.
        let old = JobSpec {
            version: 1,
            request: None,
            ..spec
        };
        let e = shard_request(&worker, &old, task, None, out).unwrap_err();
        assert!(matches!(e, DistError::JobVersion { version: 1, .. }), "{e}");
    }

    /// Issue 20, item 18: the scratch directory's name cannot be guessed, and a directory
    /// planted under it (another user's, or open to all) is refused.
    #[test]
    fn the_scratch_directory_is_never_one_found_there() {
        let dir = scratch_dir();
        assert_eq!(dir, scratch_dir(), "one per process");
        assert!(dir.to_str().unwrap().len() > "xdpscan-worker-".len() + 17);
        let planted = std::env::temp_dir().join(format!("xdpscan-planted-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&planted);
        std::fs::create_dir(&planted).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(make_scratch(&planted).is_err());
        std::fs::remove_dir(&planted).unwrap();
        make_scratch(&planted).unwrap();
        make_scratch(&planted).unwrap();
        std::fs::remove_dir(&planted).unwrap();
    }

    #[test]
    fn checkpoints_only_move_forward() {
        let p = |w: u64| vec![Position { pass: 0, walked: w }];
        assert!(newer(&p(5), None));
        assert!(newer(&p(5), Some(&p(4))));
        assert!(!newer(&p(3), Some(&p(4))));
        assert!(!newer(&p(3), Some(&vec![])));
    }
}
