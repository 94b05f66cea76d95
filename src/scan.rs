//! Runs one configured scan: builds the plan, opens the outputs and the transport (with the
//! AF_PACKET fallback), drives the engine, then writes the resume file (when the scan stopped
//! early), the metadata document, and the summary line.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use crate::{
    cli::TransportChoice,
    config::{ScanConfig, ScanSpec},
    cookie::CookieJar,
    engine::{
        self,
        connect::ConnectOptions,
        monitor::{fmt_count, fmt_counted, fmt_estimate, fmt_rate},
        stats::Stats,
        EngineError, Interrupts, NamedSink, Outcome, Plan, RawModule, StopReason,
    },
    io::{
        keeper,
        netinfo::Link,
        packet,
        pcap::{DryRunTx, PcapWriter},
        privilege, xdp, IoError, TransportKind,
    },
    output::{
        formats::{Format, Layout, OpenCtx},
        metadata, RunInfo,
    },
    permute::Cycle,
    probe::{traceroute::TracerouteScan, PortState, Proto, ScanType},
    resume::{ResumeFile, FORMAT},
    wire::template::{FrameParams, Frames},
};

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("cannot open {path} for results: {source}")]
    OutputOpen {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write {what} {path}: {source}")]
    FileCheck {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Privileges(String),
    #[error("{name}: {error}")]
    SinkOpen { name: String, error: String },
    #[error(transparent)]
    Transport(#[from] IoError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// How the scan ended, for the exit status.
pub struct Report {
    pub outcome: Outcome,
}

/// What a caller adds to a scan (the distributed worker): more sinks, its own counters, and a
/// view of where the transmit threads are.
#[derive(Default)]
pub struct Hooks {
    pub(crate) sinks: Vec<NamedSink>,
    /// Sinks opened with the scan's own files, after the fork of `run_with` and never in a dry
    /// run (which names them in its start line): `--publish`, registered by `main`.
    pub openers: Vec<SinkOpener>,
    /// No NDJSON on stdout when no output option is given (the results go to `sinks`).
    pub(crate) no_default_stdout: bool,
    pub(crate) stats: Option<Arc<Stats>>,
    pub(crate) live: Option<Arc<crate::engine::LivePositions>>,
}

/// Opens a caller's sink for the scan of this id (which names the results), or says why not.
pub(crate) type OpenSink = Box<dyn FnOnce(u64) -> Result<Box<dyn crate::output::Sink>, String>>;

/// A sink the caller adds by name.
pub struct SinkOpener {
    /// Where the results go, as the start line and errors name it (`--publish nats://...`).
    pub name: String,
    pub open: OpenSink,
}

pub fn run_with(
    cfg: &ScanConfig,
    interrupts: &Interrupts,
    hooks: Hooks,
) -> Result<Report, ScanError> {
    if !cfg.spec.outputs.quiet {
        for n in &cfg.spec.notes {
            eprintln!("xdpscan: {n}");
        }
    }
    // Forked now, while the process has one thread and no socket (docs/design.md, "Least
    // privilege").
    let keeper = match cfg.spec.run_as {
        Some(_) => keeper::Keeper::start(late_files(cfg))?,
        None => keeper::Keeper::default(),
    };
    let report = run_scan(cfg, interrupts, hooks, &keeper);
    keeper.stop();
    report
}

/// Every file the scan may write after the privilege drop.
fn late_files(cfg: &ScanConfig) -> keeper::Allowed {
    let mut a = keeper::Allowed::default();
    a.files.push(cfg.spec.resume.file.clone());
    a.files.push(ResumeFile::tmp_path(&cfg.spec.resume.file));
    a.files.extend(cfg.spec.resume.resumed_from.clone());
    a.files.extend(cfg.spec.outputs.metadata.clone());
    a.files.extend(cfg.spec.outputs.status.file.clone());
    for doc in cfg.spec.outputs.paths(|f| f.layout == Layout::Grouped) {
        let (files, dir) = crate::output::grouped::late_paths(doc);
        a.files.extend(files);
        a.dirs.push(dir);
    }
    a
}

/// From here on: the user of `--user`, and no capability (`io::privilege`).
fn drop_privileges(cfg: &ScanConfig) -> Result<(), ScanError> {
    privilege::drop_to(cfg.spec.run_as.as_ref(), &[])
        .map_err(|e| ScanError::Privileges(e.to_string()))
}

/// The probe modules of a raw scan (`None` for `-sT`, which the kernel does).
fn raw_module(spec: &ScanSpec) -> Option<RawModule> {
    match spec.probing.traceroute {
        Some((proto, ttls)) => Some(RawModule::Trace(Arc::new(TracerouteScan::new(
            proto,
            ttls,
            spec.probing.source_ports,
        )))),
        None => spec
            .probing
            .slots
            .iter()
            .map(|t| {
                t.module(spec.probing.scanflags, &spec.probing.payloads)
                    .map(Arc::from)
            })
            .collect::<Option<Vec<_>>>()
            .map(RawModule::Ports),
    }
}

/// The SYN probes a connect scan's connections would start with, for its dry run.
fn connect_stand_in(spec: &ScanSpec) -> RawModule {
    RawModule::Ports(
        spec.probing
            .slots
            .iter()
            .map(|&t| Arc::from(t.stand_in(spec.probing.scanflags, &spec.probing.payloads)))
            .collect(),
    )
}

/// The slot of `spec`'s ports that results of `proto` belong to.
pub(crate) fn slot_of(spec: &ScanSpec, proto: Proto) -> usize {
    raw_module(spec).map_or(0, |m| m.slot_of(proto))
}

/// What the documents say about the scan `spec` describes.
pub(crate) fn run_info(spec: &ScanSpec) -> RunInfo {
    // What each slot probed, as nmap's <scaninfo> and grepable header list them.
    let protos: Vec<(ScanType, Proto)> = match raw_module(spec) {
        Some(m) => m
            .senders()
            .iter()
            .map(|s| (s.scan(), s.result_proto()))
            .collect(),
        None => vec![(spec.probing.scan, Proto::Tcp)],
    };
    RunInfo {
        version: env!("CARGO_PKG_VERSION"),
        args: spec.args.clone(),
        start: std::time::SystemTime::now(),
        port_lists: protos
            .iter()
            .enumerate()
            .filter(|(_, (_, p))| *p != Proto::Icmp)
            .map(|(slot, &(scan, p))| (scan, p, spec.targets.space.ports().list(slot)))
            .collect(),
        port_table: spec.services.port_table.clone(),
        addresses: (spec.cluster.shard.1 == 1).then(|| spec.targets.space.addresses()),
        resuming: spec.resume.positions.is_some(),
    }
}

/// Every file written after the scan (metadata, status, resume) can be written: checked before
/// the first probe, so a scan never runs to lose its state at the end. Nothing is changed: a
/// file made for the check is removed.
fn check_late_files(cfg: &ScanConfig) -> Result<(), ScanError> {
    let files = [
        (
            "the metadata file (-m)",
            cfg.spec.outputs.metadata.as_deref(),
        ),
        (
            "the status file (--status-file)",
            cfg.spec.outputs.status.file.as_deref(),
        ),
        (
            "the resume file (--resume-file)",
            Some(cfg.spec.resume.file.as_path()),
        ),
    ];
    for (what, path) in files {
        let Some(path) = path.filter(|p| p.as_os_str() != "-") else {
            continue;
        };
        let opened = crate::output::file::check_writable(path);
        // The default resume file may be unwritable where the scan runs: said only if a stopped
        // scan needs it (`run_scan`), not to every scan.
        if opened.is_err() && path == std::path::Path::new(crate::cli::DEFAULT_RESUME_FILE) {
            continue;
        }
        opened.map_err(|source| ScanError::FileCheck {
            what,
            path: path.display().to_string(),
            source,
        })?;
    }
    Ok(())
}

fn run_scan(
    cfg: &ScanConfig,
    interrupts: &Interrupts,
    hooks: Hooks,
    keeper: &keeper::Keeper,
) -> Result<Report, ScanError> {
    check_late_files(cfg)?;
    // A dry run sends nothing in every mode: `-sT` builds the SYNs its connections would open.
    let connect = cfg.spec.probing.scan == ScanType::Connect && !cfg.spec.outputs.dry_run;
    let plan = engine_plan(cfg, hooks.live.clone(), connect, keeper)?;
    let info = run_info(&cfg.spec);
    let mut sinks = open_sinks(&cfg.spec.outputs, &info, !hooks.no_default_stdout, keeper)?;
    sinks.extend(hooks.sinks);
    // A dry run has no results and opens no connection, to a broker neither.
    let withheld: Vec<String> = hooks.openers.iter().map(|o| o.name.clone()).collect();
    for o in hooks
        .openers
        .into_iter()
        .filter(|_| !cfg.spec.outputs.dry_run)
    {
        let sink = (o.open)(cfg.spec.cluster.scan_id).map_err(|error| ScanError::SinkOpen {
            name: o.name.clone(),
            error,
        })?;
        sinks.push((o.name, sink));
    }
    let stats_arc = hooks.stats.unwrap_or_default();
    let stats = &*stats_arc;
    if !cfg.spec.outputs.quiet {
        announce(cfg, &plan, &withheld);
    }
    let (outcome, kind) = run_engine(cfg, &plan, sinks, stats, interrupts, connect)?;
    // A scan that stopped early leaves a resume file (not when its reader went away).
    let resume_path = (!outcome.complete && outcome.stop != StopReason::OutputClosed)
        .then(|| save_resume(cfg, &outcome, keeper));
    if let Some(path) = &cfg.spec.outputs.metadata {
        let resume = resume_path.clone().flatten();
        let m = metadata_of(cfg, &plan, stats, &outcome, kind, resume);
        if let Err(e) = metadata::write(path, &m, keeper) {
            return Err(EngineError::Output(path.display().to_string(), e).into());
        }
    }
    say_how_it_ended(cfg, stats, &outcome, kind, resume_path.flatten(), keeper);
    Ok(Report { outcome })
}

/// The scan's jar, choosing among the source pool's addresses when `-S` gave several.
fn pooled(jar: CookieJar, source: Option<crate::cookie::SourcePool>) -> CookieJar {
    match source {
        Some(pool) => jar.with_pool(pool),
        None => jar,
    }
}

/// The engine's plan of this scan (`live`: the caller's view of the transmit threads).
fn engine_plan(
    cfg: &ScanConfig,
    live: Option<Arc<engine::LivePositions>>,
    connect: bool,
    keeper: &keeper::Keeper,
) -> Result<Plan, ScanError> {
    let params = |f: &crate::config::FamilyNet| FrameParams {
        src_mac: cfg.net.src_mac,
        dst_mac: f.gateway_mac,
        src: f.src,
        ttl: cfg.spec.probing.ttl,
    };
    Ok(Plan {
        keeper: keeper.clone(),
        cycle: Cycle::new(cfg.spec.targets.space.len(), cfg.spec.pacing.seed),
        space: cfg.spec.targets.space.clone(), // an Arc: the addresses are not copied
        shard: cfg.spec.cluster.shard,
        frames: Frames {
            v4: cfg.net.family(false).map(params),
            v6: cfg.net.family(true).map(params),
            pool: cfg.spec.net.source.filter(|p| p.len() > 1),
        },
        jar: pooled(
            CookieJar::random(cfg.spec.probing.source_ports)
                .map_err(|e| IoError::os("reading /dev/urandom", e))?,
            cfg.spec.net.source,
        ),
        rate: cfg.spec.pacing.rate,
        wait: if cfg.spec.outputs.dry_run {
            Default::default()
        } else {
            cfg.spec.pacing.wait
        },
        tx_cores: cfg.spec.pacing.tx_cores.clone(),
        tx_batch: cfg.spec.pacing.tx_batch,
        rx_core: cfg.spec.pacing.rx_core,
        status: cfg.spec.outputs.status.clone(),
        retries: cfg.spec.pacing.retries,
        report_silent: cfg.spec.probing.report_silent,
        limits: cfg.spec.pacing.limits,
        resume: cfg.spec.resume.positions.clone(),
        governor: crate::engine::governor::Governor::new(
            cfg.spec.pacing.rate == 0 && !cfg.spec.outputs.dry_run && !connect,
        ),
        keep_replies: cfg.spec.outputs.any(|f| f.raw_replies),
        packet_trace: cfg.spec.outputs.packet_trace,
        grab: cfg.spec.services.grab.clone(),
        namer: cfg.spec.services.namer.clone(),
        apps: cfg.spec.services.apps.clone(),
        module: if cfg.spec.probing.scan == ScanType::Connect && cfg.spec.outputs.dry_run {
            Some(connect_stand_in(&cfg.spec))
        } else {
            raw_module(&cfg.spec)
        },
        // Always sampled: a cooldown cut short resumes from where the threads were `--wait`
        // before (`engine::carry`).
        live: Some(live.unwrap_or_else(|| {
            Arc::new(engine::LivePositions::new(cfg.spec.pacing.tx_cores.len()))
        })),
        answered_before: cfg.spec.resume.answered.clone(),
        carried: cfg
            .spec
            .resume
            .carried
            .iter()
            .filter_map(|l| crate::output::ndjson::from_line(l).ok())
            .collect(),
    })
}

/// The scan through its engine: kernel connections, the dry run's frames, or a transport.
fn run_engine(
    cfg: &ScanConfig,
    plan: &Plan,
    sinks: Vec<NamedSink>,
    stats: &Stats,
    interrupts: &Interrupts,
    connect: bool,
) -> Result<(engine::Outcome, TransportKind), ScanError> {
    if connect {
        let opts = ConnectOptions {
            timeout: cfg.spec.probing.connect_timeout,
            max_in_flight: cfg.spec.probing.max_inflight,
            bind_ip: cfg.spec.net.source.map(|p| p.first()),
            interface: cfg.spec.net.interface.clone(),
        };
        drop_privileges(cfg)?;
        let outcome = engine::connect::run(plan, &opts, sinks, stats, interrupts)?;
        return Ok((outcome, TransportKind::Connect));
    }
    if !cfg.spec.outputs.dry_run {
        return open_and_run(cfg, plan, sinks, stats, interrupts);
    }
    let pcap = match &cfg.spec.outputs.pcap {
        Some(p) => Some(Arc::new(Mutex::new(PcapWriter::create(p)?))),
        None => None,
    };
    let txs = (0..plan.tx_cores.len())
        .map(|_| DryRunTx::new(pcap.clone()))
        .collect();
    drop_privileges(cfg)?;
    let outcome = engine::run::<_, packet::PacketRx>(plan, txs, None, sinks, stats, interrupts)?;
    Ok((outcome, TransportKind::DryRun))
}

/// Writes the resume file of a scan that stopped early; its path, or `None` (said) when it
/// cannot be written.
fn save_resume(
    cfg: &ScanConfig,
    outcome: &engine::Outcome,
    keeper: &keeper::Keeper,
) -> Option<String> {
    let f = ResumeFile {
        xdpscan_resume: FORMAT,
        fingerprint: cfg.spec.resume.fingerprint.clone(),
        seed: cfg.spec.pacing.seed,
        shard: cfg.spec.cluster.shard,
        threads: outcome.positions.len(),
        positions: outcome.positions.clone(),
        command_line: cfg.spec.args.clone(),
        scan_id: cfg.spec.cluster.scan_id,
        answered: outcome.answered_after.clone(),
        carried: outcome
            .carried
            .iter()
            .map(crate::output::ndjson::to_wire_line)
            .collect(),
    };
    match f.save(&cfg.spec.resume.file, keeper) {
        Ok(()) => Some(cfg.spec.resume.file.display().to_string()),
        Err(e) => {
            let path = cfg.spec.resume.file.display();
            eprintln!("xdpscan: cannot write resume file {path}: {e}");
            None
        }
    }
}

/// The summary, a finished resume's file removed, and where a stopped scan's state is (also
/// under -q: the exit status says it stopped).
fn say_how_it_ended(
    cfg: &ScanConfig,
    stats: &Stats,
    outcome: &engine::Outcome,
    kind: TransportKind,
    resume_path: Option<String>,
    keeper: &keeper::Keeper,
) {
    // A resume file whose scan is now complete would rescan from its old place if run again.
    let finished_resume = match (&cfg.spec.resume.resumed_from, outcome.complete) {
        (Some(p), true) => keeper.remove(p).is_ok().then_some(p),
        _ => None,
    };
    if outcome.stop == StopReason::OutputClosed {
        return;
    }
    if !cfg.spec.outputs.quiet {
        summary(cfg, stats, outcome, kind);
        if let Some(p) = finished_resume {
            let p = p.display();
            eprintln!("xdpscan: the resumed scan is complete; removed {p}");
        }
    }
    if let Some(p) = &resume_path {
        eprintln!(
            "xdpscan: stopped before the end ({}); continue with --resume {p}",
            stop_name(outcome.stop)
        );
    }
}

fn stop_name(s: StopReason) -> &'static str {
    match s {
        StopReason::Completed => "completed",
        StopReason::Interrupted => "interrupted",
        StopReason::MaxRuntime => "max-runtime",
        StopReason::MaxResults => "max-results",
        StopReason::OutputClosed => "output-closed",
    }
}

fn open_and_run(
    cfg: &ScanConfig,
    plan: &Plan,
    sinks: Vec<NamedSink>,
    stats: &Stats,
    interrupts: &Interrupts,
) -> Result<(Outcome, TransportKind), ScanError> {
    let threads = plan.tx_cores.len();
    let try_xdp = || -> Result<xdp::XdpTransport, IoError> {
        let queues = xdp::rx_queue_count(&cfg.net.ifname) as usize;
        if threads > queues {
            return Err(IoError::Setup(format!(
                "{threads} transmit threads need {threads} queues but {} has {queues} (raise them with ethtool -L, or use fewer --tx-threads)",
                cfg.net.ifname
            )));
        }
        let steer = xdp::SteerConfig {
            src_v4: plan.frames.src_v4(),
            src_v6: plan.frames.src_v6(),
            port_lo: cfg.spec.probing.source_ports.lo,
            port_hi: cfg.spec.probing.source_ports.hi,
            replies: protocols_scanned(plan.raw().replies(), &cfg.spec.targets.space),
            sources: plan.frames.pool.map_or(1, |p| p.len()),
            bare_ip: cfg.net.link != Link::Ethernet,
        };
        xdp::open(
            &cfg.net.ifname,
            cfg.net.ifindex,
            steer,
            cfg.spec.net.xdp_mode,
        )
    };
    let xdp = match cfg.spec.net.transport {
        TransportChoice::Packet => None,
        TransportChoice::Xdp => Some(try_xdp().map_err(|e| ScanError::Privileges(privileges(&e)))?),
        TransportChoice::Auto => match try_xdp() {
            Ok(t) => Some(t),
            // AF_PACKET needs the same privileges: say so once instead of falling back.
            Err(e) if e.is_permission() => return Err(ScanError::Privileges(privileges(&e))),
            // Over AF_PACKET the kernel would reset every banner connection.
            Err(why) if plan.grab.is_some() => {
                return Err(ScanError::Privileges(format!(
                    "--banners and -sV need AF_XDP, which is unavailable: {why}"
                )))
            }
            Err(why) => {
                eprintln!("xdpscan: AF_XDP unavailable ({why}); using AF_PACKET");
                None
            }
        },
    };
    let packet_txs = || -> Result<Vec<_>, ScanError> {
        (0..threads)
            .map(|_| packet::open_tx(cfg.net.ifindex, cfg.net.link))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ScanError::Privileges(privileges(&e)))
    };
    if let Some(mut t) = xdp {
        let rx = t.rx;
        let (out, kind) = if cfg.net.link.sends_through_packet() {
            // This link needs each packet's protocol, which only an AF_PACKET send sets.
            let txs = packet_txs()?;
            drop_privileges(cfg)?;
            let out = engine::run(plan, txs, Some(rx), sinks, stats, interrupts)?;
            (out, TransportKind::PacketSendXdpReceive)
        } else {
            let txs: Vec<_> = t.txs.drain(..threads).collect();
            drop_privileges(cfg)?;
            let out = engine::run(plan, txs, Some(rx), sinks, stats, interrupts)?;
            (out, TransportKind::Xdp)
        };
        // The program stays attached through the cooldown; dropping it here detaches it.
        drop(t.program);
        return Ok((out, kind));
    }
    let open = || -> Result<_, IoError> {
        let to = packet::Addressees {
            v4: plan.frames.src_v4(),
            v6: plan.frames.src_v6(),
            count: plan.frames.pool.map_or(1, |p| p.len()),
        };
        packet::open_rx(cfg.net.ifindex, to, cfg.net.link)
    };
    let rx = open().map_err(|e| ScanError::Privileges(privileges(&e)))?;
    let txs = packet_txs()?;
    drop_privileges(cfg)?;
    Ok((
        engine::run(plan, txs, Some(rx), sinks, stats, interrupts)?,
        TransportKind::Packet,
    ))
}

/// The error, with the remedy when it is a matter of privileges.
fn privileges(e: &IoError) -> String {
    if e.is_permission() {
        format!("{e}: {}", crate::io::PRIVILEGES)
    } else {
        e.to_string()
    }
}

/// Opens every results file now, so a bad path fails before anything is sent. `default_stdout`:
/// NDJSON on stdout when no format is named.
pub(crate) fn open_sinks(
    o: &crate::config::Outputs,
    info: &RunInfo,
    default_stdout: bool,
    keeper: &keeper::Keeper,
) -> Result<Vec<NamedSink>, ScanError> {
    // A resumed scan adds to its streams; grouped documents are written anew from what the
    // stopped run kept (`output::grouped`).
    let ctx = OpenCtx {
        info,
        resuming: info.resuming,
        csv_fields: &o.csv_fields,
        json_fields: o.json_fields.as_deref(),
        keeper,
    };
    let stdout = (o.default_stdout() && default_stdout).then(|| {
        (
            Format::Ndjson,
            std::path::Path::new("-"),
            "stdout".to_string(),
        )
    });
    let files = o
        .files
        .iter()
        .map(|(f, p)| (*f, p.as_path(), p.display().to_string()));
    stdout
        .into_iter()
        .chain(files)
        .map(|(format, path, name)| match format.open(path, &ctx) {
            Ok(sink) => Ok((name, sink)),
            Err(source) => Err(ScanError::OutputOpen {
                path: path.display().to_string(),
                source,
            }),
        })
        .collect()
}

fn announce(cfg: &ScanConfig, plan: &Plan, withheld: &[String]) {
    let mut notes = String::new();
    if cfg.spec.targets.blocklisted > 0 {
        notes.push_str(&format!(
            "; {} reserved addresses removed by the default blocklist",
            fmt_count(cfg.spec.targets.blocklisted)
        ));
    }
    if cfg.spec.targets.excluded > 0 {
        notes.push_str(&format!(
            "; {} excluded",
            fmt_count(cfg.spec.targets.excluded)
        ));
    }
    if cfg.spec.resume.positions.is_some() {
        notes.push_str("; resuming");
    }
    if cfg.spec.outputs.dry_run {
        notes.push_str("; dry run: nothing is sent");
        if cfg.spec.probing.scan == ScanType::Connect {
            notes.push_str(", each connection shown as the SYN that would open it");
        }
        for name in withheld {
            notes.push_str(&format!(", {name} opens no connection"));
        }
        if cfg.net.ifindex == 0 {
            let mut stand_ins = Vec::new();
            if cfg.spec.net.source.is_none() {
                stand_ins.push("source (-S)");
            }
            if cfg
                .net
                .families
                .iter()
                .any(|f| f.gateway_mac == crate::wire::MacAddr::ZERO)
            {
                stand_ins.push("next hop (-i, --gateway-mac)");
            }
            if !stand_ins.is_empty() {
                notes.push_str(&format!(
                    ", no route to the targets: documentation placeholders for {}",
                    stand_ins.join(" and ")
                ));
            }
        }
    }
    // A connect scan leaves ports and next hop to the kernel.
    let via = if cfg.spec.probing.scan == ScanType::Connect && !cfg.spec.outputs.dry_run {
        format!("from {} through kernel sockets", sources_said(cfg))
    } else if let Link::BareIp { xdp_sends } = cfg.net.link {
        let sender = match (xdp_sends, cfg.spec.net.transport) {
            (_, TransportChoice::Packet) => "sent and received through AF_PACKET",
            (true, _) => "sent and received through AF_XDP",
            (false, _) => "sent through AF_PACKET (the link needs each packet's protocol), received through AF_XDP",
        };
        // --gateway-mac is the one way a MAC reaches a family here; the link has no use for it.
        let unused = if cfg
            .net
            .families
            .iter()
            .any(|f| f.gateway_mac != crate::wire::MacAddr::ZERO)
        {
            " (--gateway-mac unused: this link carries no MAC addresses)"
        } else {
            ""
        };
        format!(
            "from {}:{} on {}, a link with no link header: IP packets {sender}{unused}",
            sources_said(cfg),
            cfg.spec.probing.source_ports,
            cfg.net.ifname,
        )
    } else {
        format!(
            "from {}:{} on {} via {}",
            sources_said(cfg),
            cfg.spec.probing.source_ports,
            cfg.net.ifname,
            cfg.net
                .families
                .iter()
                .map(|f| f.gateway_mac.to_string())
                .collect::<Vec<_>>()
                .join(",")
        )
    };
    eprintln!(
        "xdpscan: {} scan of {}{}; {via}; {}; seed {}; shard {}/{}",
        cfg.spec.scan_names(),
        probe_count(cfg, plan),
        notes,
        pace(cfg, plan),
        cfg.spec.pacing.seed,
        cfg.spec.cluster.shard.0 + 1,
        cfg.spec.cluster.shard.1,
    );
    if let Some(note) = pool_off_interface(cfg) {
        eprintln!("xdpscan: {note}");
    }
}

/// The source addresses, a pool as its range.
fn sources_said(cfg: &ScanConfig) -> String {
    match cfg.spec.net.source.filter(|p| p.len() > 1) {
        Some(pool) => format!("{pool} ({} addresses)", pool.len()),
        None => cfg.net.sources(),
    }
}

/// A source pool whose addresses are not all on the interface: their replies come only if the
/// network brings them here.
fn pool_off_interface(cfg: &ScanConfig) -> Option<String> {
    let pool = cfg.spec.net.source.filter(|p| p.len() > 1)?;
    if cfg.spec.outputs.dry_run || cfg.net.ifindex == 0 {
        return None;
    }
    let have = crate::io::netinfo::interface_addrs(cfg.net.ifindex, pool.first().is_ipv6())
        .unwrap_or_default();
    let missing: Vec<_> = pool.addrs().filter(|a| !have.contains(a)).collect();
    let first = missing.first()?;
    Some(format!(
        "{} of the {} pool addresses ({first} first) are not addresses of {}: their replies arrive only if the network routes them here (ip addr add ... dev {})",
        missing.len(),
        pool.len(),
        cfg.net.ifname,
        cfg.net.ifname
    ))
}

/// What the start line counts, the same probes the summary counts: `256 addresses x 2 ports =
/// 512 targets, 768 probes` when payload variants, TTLs or retries send more than one per
/// target, and this shard's share of them.
fn probe_count(cfg: &ScanConfig, plan: &Plan) -> String {
    let s = &cfg.spec.targets.space;
    let targets = s.len();
    let mut line = format!(
        "{} x {} = ",
        fmt_counted(s.addresses(), "address", "addresses"),
        fmt_counted(s.ports().len() as u64, "port", "ports"),
    );
    let passes = u64::from(cfg.spec.pacing.retries) + 1;
    match plan.frames_per_pass().map(|f| f.saturating_mul(passes)) {
        Some(probes) if probes != targets => line.push_str(&format!(
            "{}, {}",
            fmt_counted(targets, "target", "targets"),
            fmt_counted(probes, "probe", "probes")
        )),
        _ => line.push_str(&fmt_counted(targets, "probe", "probes")),
    }
    if cfg.spec.cluster.shard.1 > 1 {
        let probes = probes_to_send(cfg, plan);
        line.push_str(&format!(
            " (this shard about {})",
            fmt_counted(probes, "probe", "probes")
        ));
    }
    line
}

/// Probes this run sends: the whole space's frames over every pass, its shard's share.
fn probes_to_send(cfg: &ScanConfig, plan: &Plan) -> u64 {
    let passes = u64::from(cfg.spec.pacing.retries) + 1;
    plan.frames_per_pass()
        .unwrap_or(cfg.spec.targets.space.len())
        .saturating_mul(passes)
        / u64::from(cfg.spec.cluster.shard.1.max(1))
}

/// The rate asked and how long sending takes at it, then the cooldown.
fn pace(cfg: &ScanConfig, plan: &Plan) -> String {
    if cfg.spec.pacing.rate == 0 {
        return "rate max (a governor follows the receive side)".into();
    }
    let mut line = format!("rate {}", fmt_rate(cfg.spec.pacing.rate as f64));
    let secs = probes_to_send(cfg, plan) as f64 / cfg.spec.pacing.rate as f64;
    line.push_str(&format!(", {} to send", fmt_estimate(secs)));
    if !cfg.spec.outputs.dry_run {
        line.push_str(&format!(
            ", then {} s of --wait",
            cfg.spec.pacing.wait.as_secs_f64()
        ));
    }
    line
}

fn summary(cfg: &ScanConfig, st: &Stats, out: &Outcome, kind: TransportKind) {
    let sent = Stats::get(&st.sent);
    let secs = out.send_duration.as_secs_f64().max(1e-9);
    let mut states = String::new();
    for s in PortState::ALL {
        let n = st.state(s);
        if n > 0 || s == PortState::Open {
            states.push_str(&format!(", {n} {s}"));
        }
    }
    if cfg.spec.services.grab.is_some() {
        let skipped = Stats::get(&st.banners_skipped);
        states.push_str(&format!(
            "; {} banner conversations",
            Stats::get(&st.banners)
        ));
        if skipped > 0 {
            states.push_str(&format!(
                ", {skipped} open ports without one (raise --max-connections)"
            ));
        }
    }
    eprintln!(
        "xdpscan: {}{} {} in {:.2} s ({}) over {}; {} replies{}; {} invalid, {} malformed, {} duplicate, {} dropped; {:.2} s in all; seed {}",
        if out.interrupted() { "stopped early: " } else { "" },
        if kind == TransportKind::DryRun { "built" } else { "sent" },
        fmt_counted(sent, "probe", "probes"),
        secs,
        fmt_rate(sent as f64 / secs),
        kind.as_str(),
        Stats::get(&st.validated),
        states,
        Stats::get(&st.invalid),
        Stats::get(&st.malformed),
        Stats::get(&st.duplicates),
        Stats::get(&st.drops),
        out.duration.as_secs_f64(),
        cfg.spec.pacing.seed,
    );
}

fn metadata_of(
    cfg: &ScanConfig,
    plan: &Plan,
    st: &Stats,
    out: &Outcome,
    kind: TransportKind,
    resume_file: Option<String>,
) -> metadata::Metadata {
    let sent = Stats::get(&st.sent);
    let per_state: BTreeMap<&'static str, u64> = PortState::ALL
        .iter()
        .map(|s| (s.as_str(), st.state(*s)))
        .filter(|(_, n)| *n > 0)
        .collect();
    let end = out.started + out.duration;
    metadata::Metadata {
        xdpscan_version: env!("CARGO_PKG_VERSION"),
        command_line: cfg.spec.args.clone(),
        scan: cfg.spec.scan_names(),
        seed: cfg.spec.pacing.seed,
        generator: metadata::Generator {
            prime: plan.cycle.prime(),
            generator: plan.cycle.generator(),
        },
        shard: metadata::Shard {
            index: cfg.spec.cluster.shard.0 + 1,
            count: cfg.spec.cluster.shard.1,
            threads: plan.tx_cores.len(),
        },
        transport: kind.as_str(),
        interface: cfg.net.ifname.clone(),
        source_ip: match cfg.spec.net.source.filter(|p| p.len() > 1) {
            Some(pool) => pool.to_string(),
            None => cfg.net.sources(),
        },
        source_mac: cfg.net.src_mac.to_string(),
        gateway_mac: cfg.net.gateway_mac().to_string(),
        source_ports: cfg.spec.probing.source_ports.to_string(),
        targets: metadata::Targets {
            addresses: cfg.spec.targets.space.addresses(),
            ports: cfg.spec.ports_spec(),
            probes: cfg.spec.targets.space.len(),
            blocklisted: cfg.spec.targets.blocklisted,
            excluded: cfg.spec.targets.excluded,
        },
        rate: metadata::Rate {
            asked_pps: cfg.spec.pacing.rate,
            achieved_pps: sent as f64 / out.send_duration.as_secs_f64().max(1e-9),
            governor: out.governor,
        },
        counts: metadata::Counts {
            sent,
            received: Stats::get(&st.received),
            validated: Stats::get(&st.validated),
            invalid: Stats::get(&st.invalid),
            malformed: Stats::get(&st.malformed),
            duplicates: Stats::get(&st.duplicates),
            dropped: Stats::get(&st.drops),
            results: st.results(),
            per_state,
            banners: Stats::get(&st.banners),
            banners_skipped: Stats::get(&st.banners_skipped),
        },
        start_time: crate::output::rfc3339(out.started),
        end_time: crate::output::rfc3339(end),
        duration_secs: out.duration.as_secs_f64(),
        send_duration_secs: out.send_duration.as_secs_f64(),
        peak_rss_mib: metadata::peak_rss_mib(),
        privileges: privilege::current(),
        stopped: stop_name(out.stop),
        resume_file,
    }
}

/// `-sO`: the protocol numbers of the space (its "ports"), for the XDP program to steer no others.
fn protocols_scanned(
    replies: crate::probe::Replies,
    space: &crate::targets::TargetSpace,
) -> crate::probe::Replies {
    if !replies.all_protocols {
        return replies;
    }
    space
        .ports()
        .iter()
        .filter_map(|(_, p)| u8::try_from(p).ok())
        .fold(replies, |r, p| r.with_protocol(p))
}
