//! Runs one configured scan: builds the plan, opens the outputs and the transport (with the
//! AF_PACKET fallback), drives the engine, and prints the summary.

use std::{
    fs::File,
    io::{BufWriter, Write},
    sync::{Arc, Mutex},
};

use crate::{
    cli::TransportChoice,
    config::ScanConfig,
    cookie::CookieJar,
    engine::{
        self, connect::ConnectOptions, monitor::fmt_rate, stats::Stats, EngineError, Interrupts,
        Outcome, Plan,
    },
    io::{
        packet,
        pcap::{DryRunTx, PcapWriter},
        xdp, IoError, TransportKind,
    },
    output::{ndjson::NdjsonSink, Sink},
    permute::Cycle,
    probe::{PortState, ProbeModule, ScanType},
    wire::template::FrameParams,
};

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("cannot open {path} for results: {source}")]
    OutputOpen {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Privileges(String),
    #[error(transparent)]
    Transport(#[from] IoError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// What the caller needs to choose an exit status and print nothing more.
pub struct Report {
    pub outcome: Outcome,
    pub transport: TransportKind,
}

pub fn run(cfg: &ScanConfig, interrupts: &Interrupts) -> Result<Report, ScanError> {
    let connect = cfg.scan == ScanType::Connect;
    let module: Option<Arc<dyn ProbeModule>> =
        (!connect).then(|| Arc::from(cfg.scan.module(cfg.scanflags, &cfg.payloads)));
    let plan = Plan {
        cycle: Cycle::new(cfg.space.len(), cfg.seed),
        space: cfg.space.clone(),
        shard: cfg.shard,
        frame: FrameParams {
            src_mac: cfg.net.src_mac,
            dst_mac: cfg.net.gateway_mac,
            src_ip: u32::from(cfg.net.src_ip),
            ttl: cfg.ttl,
        },
        jar: CookieJar::random(cfg.source_ports)
            .map_err(|e| IoError::os("reading /dev/urandom", e))?,
        rate: cfg.rate,
        wait: if cfg.dry_run {
            Default::default()
        } else {
            cfg.wait
        },
        tx_cores: cfg.tx_cores.clone(),
        rx_core: cfg.rx_core,
        status: cfg.status,
        retries: cfg.retries,
        report_silent: cfg.report_silent,
        module,
    };
    let sinks = open_sinks(cfg)?;
    let stats = Stats::default();

    if cfg.status {
        announce(cfg);
    }

    let (outcome, kind) = if connect {
        let opts = ConnectOptions {
            timeout: cfg.connect_timeout,
            max_in_flight: cfg.max_inflight,
            bind_ip: cfg.source_ip_asked,
            interface: cfg.interface_asked.clone(),
        };
        (
            engine::connect::run(&plan, &opts, sinks, &stats, interrupts)?,
            TransportKind::Connect,
        )
    } else if cfg.dry_run {
        let pcap = match &cfg.pcap {
            Some(p) => Some(Arc::new(Mutex::new(PcapWriter::create(p)?))),
            None => None,
        };
        let txs = (0..plan.tx_cores.len())
            .map(|_| DryRunTx::new(pcap.clone()))
            .collect();
        (
            engine::run::<_, packet::PacketRx>(&plan, txs, None, sinks, &stats, interrupts)?,
            TransportKind::DryRun,
        )
    } else {
        open_and_run(cfg, &plan, sinks, &stats, interrupts)?
    };

    if cfg.status || outcome.interrupted {
        summary(cfg, &plan, &stats, &outcome, kind);
    }
    Ok(Report {
        outcome,
        transport: kind,
    })
}

fn open_and_run(
    cfg: &ScanConfig,
    plan: &Plan,
    sinks: Vec<Box<dyn Sink>>,
    stats: &Stats,
    interrupts: &Interrupts,
) -> Result<(Outcome, TransportKind), ScanError> {
    let threads = plan.tx_cores.len();
    let try_xdp = || -> Result<xdp::XdpTransport, String> {
        let queues = xdp::rx_queue_count(&cfg.net.ifname) as usize;
        if threads > queues {
            return Err(format!(
                "{threads} transmit threads need {threads} queues but {} has {queues} (raise them with ethtool -L, or use fewer --tx-threads)",
                cfg.net.ifname
            ));
        }
        let steer = xdp::SteerConfig {
            src_ip: u32::from(cfg.net.src_ip),
            port_lo: cfg.source_ports.lo,
            port_hi: cfg.source_ports.hi,
            flags: plan.raw_module().steer_flags(),
        };
        xdp::open(&cfg.net.ifname, cfg.net.ifindex, steer, cfg.xdp_mode)
            .map_err(|e| privileges(e.to_string()))
    };
    let xdp = match cfg.transport {
        TransportChoice::Packet => None,
        TransportChoice::Xdp => Some(try_xdp().map_err(ScanError::Privileges)?),
        TransportChoice::Auto => match try_xdp() {
            Ok(t) => Some(t),
            // AF_PACKET needs the same privileges: say so once instead of falling back.
            Err(why) if is_permission(&why) => return Err(ScanError::Privileges(why)),
            Err(why) => {
                eprintln!("xdpscan: AF_XDP unavailable ({why}); using AF_PACKET");
                None
            }
        },
    };
    if let Some(mut t) = xdp {
        let txs: Vec<_> = t.txs.drain(..threads).collect();
        let rx = t.rx;
        let out = engine::run(plan, txs, Some(rx), sinks, stats, interrupts)?;
        // The program stays attached through the cooldown; dropping it here detaches it.
        drop(t.program);
        return Ok((out, TransportKind::Xdp));
    }
    let open = || -> Result<_, IoError> {
        let rx = packet::open_rx(cfg.net.ifindex, u32::from(cfg.net.src_ip))?;
        let txs = (0..threads)
            .map(|_| packet::open_tx(cfg.net.ifindex))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((txs, rx))
    };
    let (txs, rx) = open().map_err(|e| ScanError::Privileges(privileges(e.to_string())))?;
    Ok((
        engine::run(plan, txs, Some(rx), sinks, stats, interrupts)?,
        TransportKind::Packet,
    ))
}

fn is_permission(msg: &str) -> bool {
    msg.contains("ermission denied") || msg.contains("ot permitted")
}

/// Adds the remedy to a permission error.
fn privileges(msg: String) -> String {
    if is_permission(&msg) {
        format!("{msg}: sending raw packets needs root (or CAP_NET_RAW, CAP_NET_ADMIN and CAP_BPF)")
    } else {
        msg
    }
}

fn open_sinks(cfg: &ScanConfig) -> Result<Vec<Box<dyn Sink>>, ScanError> {
    let sink: Box<dyn Sink> = match &cfg.output {
        Some(p) => {
            let f = File::create(p).map_err(|source| ScanError::OutputOpen {
                path: p.display().to_string(),
                source,
            })?;
            Box::new(NdjsonSink::new(BufWriter::with_capacity(1 << 16, f)))
        }
        None => Box::new(NdjsonSink::new(LineFlushed(std::io::stdout()))),
    };
    Ok(vec![sink])
}

/// Stdout for results: flushed after every line so a pipeline sees each result as it comes.
struct LineFlushed(std::io::Stdout);

impl Write for LineFlushed {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let mut l = self.0.lock();
        l.write_all(b)?;
        l.flush()?;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.lock().flush()
    }
}

fn announce(cfg: &ScanConfig) {
    let s = &cfg.space;
    let mut notes = String::new();
    if cfg.blocklisted > 0 {
        notes.push_str(&format!(
            "; {} reserved addresses removed by the default blocklist",
            cfg.blocklisted
        ));
    }
    if cfg.excluded > 0 {
        notes.push_str(&format!("; {} excluded", cfg.excluded));
    }
    let rate = if cfg.rate == 0 {
        "max".to_string()
    } else {
        fmt_rate(cfg.rate as f64)
    };
    eprintln!(
        "xdpscan: {} scan of {} addresses x {} ports = {} probes{}; from {}:{} on {} via {}; rate {}; seed {}; shard {}/{}",
        cfg.scan.name(),
        s.addresses(),
        s.ports().len(),
        s.len(),
        notes,
        cfg.net.src_ip,
        cfg.source_ports,
        cfg.net.ifname,
        cfg.net.gateway_mac,
        rate,
        cfg.seed,
        cfg.shard.0 + 1,
        cfg.shard.1,
    );
}

fn summary(cfg: &ScanConfig, _plan: &Plan, st: &Stats, out: &Outcome, kind: TransportKind) {
    let sent = Stats::get(&st.sent);
    let secs = out.send_duration.as_secs_f64().max(1e-9);
    let mut states = String::new();
    for s in PortState::ALL {
        let n = st.state(s);
        if n > 0 || s == PortState::Open {
            states.push_str(&format!(", {n} {s}"));
        }
    }
    eprintln!(
        "xdpscan: {}sent {} probes in {:.2} s ({}) over {}; {} replies{}; {} invalid, {} duplicate, {} dropped; {:.2} s in all; seed {}",
        if out.interrupted { "interrupted: " } else { "" },
        sent,
        secs,
        fmt_rate(sent as f64 / secs),
        kind.as_str(),
        Stats::get(&st.validated),
        states,
        Stats::get(&st.invalid),
        Stats::get(&st.duplicates),
        Stats::get(&st.drops),
        out.duration.as_secs_f64(),
        cfg.seed,
    );
}
