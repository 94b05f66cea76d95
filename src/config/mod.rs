//! The plan: one validated [`ScanConfig`] from the request (the parsed command line, [`Cli`])
//! and the machine's facts ([`Machine`], gathered once). [`ScanSpec::resolve`] decides every
//! default and refuses every bad value with a clear message, with no I/O of its own; the network
//! facts (interface, source, next hop) are asked of the kernel last, for the space it planned.

pub(crate) mod machine;

use std::{
    net::{IpAddr, Ipv4Addr},
    path::PathBuf,
    time::Duration,
};

pub use self::machine::Machine;

use crate::{
    cli::{Cli, TraceChoice, TransportChoice, XdpModeChoice},
    cookie::PortRange,
    engine::grab::GrabOptions,
    engine::{
        dedup::BITMAP_MAX_PROBES,
        monitor::{StatusMode, StatusOptions},
        Limits, Position,
    },
    io::netinfo::{self, NetError},
    io::xdp::XdpMode,
    output::formats::{Format, FormatRow},
    probe::traceroute::TraceProto,
    probe::udp_payloads::Payloads,
    probe::{table::PortUse, Proto, ScanType},
    resume::{ResumeError, ResumeFile},
    service::{self, Namer, PortTable},
    targets::{
        self, blocklist,
        services::{ServiceDb, ServiceProto},
        Iid, PortList, ProbePorts, RangeSet, TargetSpace,
    },
    wire::MacAddr,
};

/// The default source-port range: above Linux's default ephemeral range (32768-60999).
pub const DEFAULT_SOURCE_PORTS: PortRange = PortRange {
    lo: 61000,
    hi: 65535,
};

/// Bad input: reported as one line, exit status 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Target(#[from] targets::TargetError),
    #[error(transparent)]
    Ports(#[from] targets::PortParseError),
    #[error("no targets given (name them on the command line or with -iL FILE)")]
    NoTargets,
    #[error("no targets left after excludes and the default blocklist")]
    EmptySpace,
    #[error(transparent)]
    Net(#[from] NetError),
    #[error("--source-port {ours} overlaps the kernel's ephemeral ports {lo}-{hi} (net.ipv4.ip_local_port_range); choose a range outside it")]
    SourcePortsOverlap { ours: PortRange, lo: u16, hi: u16 },
    #[error("{0}")]
    Usage(String),
    #[error("--user: {0}")]
    User(String),
    #[error("cannot read the kernel's randomness (/dev/urandom): {0}")]
    Randomness(String),
    #[error("--shard auto: {0}")]
    SchedulerShard(String),
    #[error("{0}")]
    ServiceDb(String),
    #[error("-sV needs nmap's service probes ({0}); install nmap or give --service-probes FILE")]
    NoServiceProbes(String),
    #[error(transparent)]
    ServiceProbes(#[from] service::ProbesError),
    #[error("{0}")]
    PayloadFile(String),
    #[error(transparent)]
    Resume(#[from] ResumeError),
    #[error("core {0} does not exist on this machine (cores 0-{1})")]
    NoSuchCore(usize, usize),
    #[error("the route to {target} leaves through {route_if}, not {asked}; give the next hop's MAC with --gateway-mac")]
    InterfaceNotOnRoute {
        target: IpAddr,
        route_if: String,
        asked: String,
    },
}

/// `--traceroute`: the probe protocol and the TTLs to probe, lowest first.
pub(crate) type Traceroute = (TraceProto, (u8, u8));

/// Where frames go and come from: one interface, and per family the targets hold a source
/// address and a next hop.
#[derive(Debug, Clone)]
pub(crate) struct NetSetup {
    pub(crate) ifname: String,
    pub(crate) ifindex: u32,
    pub(crate) src_mac: MacAddr,
    /// What frames on the interface start with: Ethernet, or the IP header (tun, tunnels).
    pub(crate) link: netinfo::Link,
    /// IPv4 first when the scan has both.
    pub(crate) families: Vec<FamilyNet>,
}

/// One family's source address and next hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FamilyNet {
    pub(crate) src: IpAddr,
    pub(crate) gateway_mac: MacAddr,
    /// The next hop, when we know it (for messages).
    pub(crate) next_hop: Option<IpAddr>,
}

impl NetSetup {
    fn primary(&self) -> &FamilyNet {
        self.families
            .first()
            .expect("a scan has one family at least")
    }
    /// The first family's source address.
    pub(crate) fn src_ip(&self) -> IpAddr {
        self.primary().src
    }
    pub(crate) fn gateway_mac(&self) -> MacAddr {
        self.primary().gateway_mac
    }
    pub(crate) fn family(&self, v6: bool) -> Option<&FamilyNet> {
        self.families.iter().find(|f| f.src.is_ipv6() == v6)
    }
    /// The source addresses, as a start line or metadata names them.
    pub(crate) fn sources(&self) -> String {
        self.families
            .iter()
            .map(|f| f.src.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// A scan as the command line asks for it, checked: everything but the network facts, decided
/// without asking the kernel about interfaces, routes or neighbours (see [`ScanConfig`]).
/// Grouped by concern, as the request is.
#[derive(Debug, Clone)]
pub struct ScanSpec {
    pub targets: TargetPlan,
    pub(crate) probing: ProbePlan,
    pub(crate) services: ServicePlan,
    pub pacing: PacingPlan,
    pub outputs: Outputs,
    pub(crate) resume: ResumePlan,
    pub(crate) net: NetPlan,
    pub(crate) cluster: ClusterPlan,
    /// Who the scanner becomes once its sockets are open (`--user`); `None`: no switch.
    pub(crate) run_as: Option<crate::io::privilege::RunAs>,
    /// The command line as typed.
    pub(crate) args: Vec<String>,
    /// What the plan could not do as asked and the scan does without (printed at its start).
    pub(crate) notes: Vec<String>,
}

/// What is scanned.
#[derive(Debug, Clone)]
pub struct TargetPlan {
    pub space: std::sync::Arc<TargetSpace>,
    /// Addresses removed from broad targets by the default blocklist.
    pub(crate) blocklisted: u64,
    /// Addresses removed by --exclude / --exclude-file.
    pub(crate) excluded: u64,
}

/// How targets are probed.
#[derive(Debug, Clone)]
pub(crate) struct ProbePlan {
    /// The scan type (of the first slot when several protocols are probed).
    pub(crate) scan: ScanType,
    /// The scan type of each slot of the space's ports (`-sS -sU`: syn then udp).
    pub(crate) slots: Vec<ScanType>,
    /// `--scanflags`, replacing the scan's TCP flags.
    pub(crate) scanflags: Option<u8>,
    pub(crate) payloads: Payloads,
    pub(crate) source_ports: PortRange,
    /// TTL of the probes (traceroute: the first TTL).
    pub(crate) ttl: u8,
    /// `--traceroute`: the probe protocol and the TTLs to probe.
    pub(crate) traceroute: Option<Traceroute>,
    pub(crate) report_silent: bool,
    pub(crate) connect_timeout: Duration,
    pub(crate) max_inflight: usize,
}

/// What is asked of open ports.
#[derive(Debug, Clone)]
pub(crate) struct ServicePlan {
    /// `--banners` / `-sV`.
    pub(crate) grab: Option<GrabOptions>,
    /// `-sV`: how services are named.
    pub(crate) namer: Option<std::sync::Arc<Namer>>,
    /// `--grab`: the application layer's modules.
    pub(crate) apps: Option<std::sync::Arc<crate::app::AppPlan>>,
    /// nmap-services' name of each port (`--servicedb`), when an output or -sV prints them.
    pub(crate) port_table: Option<std::sync::Arc<PortTable>>,
}

/// How fast, how often, for how long, on which cores.
#[derive(Debug, Clone)]
pub struct PacingPlan {
    pub rate: u64,
    pub(crate) wait: Duration,
    pub(crate) retries: u32,
    pub seed: u64,
    pub(crate) limits: Limits,
    pub(crate) tx_cores: Vec<Option<usize>>,
    pub(crate) rx_core: Option<usize>,
    /// Probes per transmit kick (`--tx-batch`).
    pub(crate) tx_batch: usize,
}

/// Stopping and continuing.
#[derive(Debug, Clone)]
pub(crate) struct ResumePlan {
    /// Where to start each thread (`--resume`).
    pub(crate) positions: Option<Vec<Position>>,
    /// Where an interrupted scan writes its resume file.
    pub(crate) file: PathBuf,
    /// The resume file this run continues (`--resume`): removed when the scan completes.
    pub(crate) resumed_from: Option<PathBuf>,
    /// Ties resume files to this scan.
    pub(crate) fingerprint: String,
    /// From the resume file: probes past its positions that answered, and results the
    /// interrupted run did not write (`engine::carry`).
    pub(crate) answered: Vec<u64>,
    pub(crate) carried: Vec<String>,
}

/// The network as asked (the kernel's answers are [`NetSetup`]).
#[derive(Debug, Clone)]
pub(crate) struct NetPlan {
    /// `--interface` as given (connect scans bind to it only when asked).
    pub(crate) interface: Option<String>,
    /// `-S`: one source address or a pool of them.
    pub(crate) source: Option<crate::cookie::SourcePool>,
    pub(crate) transport: TransportChoice,
    pub(crate) xdp_mode: XdpMode,
}

/// This run among others.
#[derive(Debug, Clone)]
pub(crate) struct ClusterPlan {
    pub(crate) shard: (u32, u32),
    /// Names this run and its resumes, unlike any other run (`--publish` message ids).
    pub(crate) scan_id: u64,
}

/// A scan ready to run: its [`ScanSpec`] and the network facts resolved for it.
#[derive(Debug, Clone)]
pub struct ScanConfig {
    pub(crate) spec: ScanSpec,
    pub(crate) net: NetSetup,
}

impl ScanConfig {
    /// Gathers the machine's facts, plans the scan, then resolves the interface, source
    /// addresses and next hops from the kernel.
    pub(crate) fn from_cli(cli: &Cli) -> Result<Self, ConfigError> {
        Self::resolve(cli, &Machine::gather(cli)?)
    }

    /// The plan from the request and the machine's facts, then the network facts for it.
    pub fn resolve(cli: &Cli, machine: &Machine) -> Result<Self, ConfigError> {
        let spec = ScanSpec::resolve(cli, machine)?;
        let net = spec.resolve_net(cli)?;
        Ok(Self { spec, net })
    }
}

/// Every result file asked for.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    /// Each format asked, with its file, in the format table's order.
    pub files: Vec<(Format, PathBuf)>,
    /// `--csv`'s columns.
    pub(crate) csv_fields: Vec<crate::output::csv::Field>,
    /// `-f` without `--csv`: the NDJSON objects' fields (ZMap's JSON output).
    pub(crate) json_fields: Option<Vec<crate::output::csv::Field>>,
    pub(crate) metadata: Option<PathBuf>,
    /// Send nothing; `--pcap` keeps what would have been sent.
    pub(crate) dry_run: bool,
    pub(crate) pcap: Option<PathBuf>,
    pub(crate) packet_trace: bool,
    /// Status display; `quiet` also drops the start and summary lines.
    pub(crate) status: StatusOptions,
    pub(crate) quiet: bool,
}

impl Outputs {
    /// The formats `cli` asks for, and their options.
    pub(crate) fn from_cli(cli: &Cli) -> Self {
        Outputs {
            files: Format::ALL
                .iter()
                .filter_map(|&f| cli.output_file(f).map(|p| (f, p.clone())))
                .collect(),
            csv_fields: match &cli.outputs.fields {
                Some(f) => f.0.clone(),
                None => crate::output::csv::parse_fields(crate::output::csv::DEFAULT_FIELDS)
                    .expect("the default fields parse"),
            },
            json_fields: cli
                .outputs
                .fields
                .as_ref()
                .filter(|_| cli.outputs.csv.is_none())
                .map(|f| f.0.clone()),
            metadata: cli.outputs.metadata.clone(),
            dry_run: cli.outputs.dry_run,
            pcap: cli.outputs.pcap.clone(),
            packet_trace: cli.outputs.packet_trace,
            status: StatusOptions {
                mode: match (cli.outputs.quiet, cli.outputs.status_json) {
                    (true, _) => StatusMode::Quiet,
                    (false, true) => StatusMode::Json,
                    (false, false) => StatusMode::Auto,
                },
                file: cli.outputs.status_file.clone(),
            },
            quiet: cli.outputs.quiet,
        }
    }

    /// No results format was named: NDJSON goes to stdout.
    pub(crate) fn default_stdout(&self) -> bool {
        !self.any(|f| f.results)
    }

    /// Is some format asked whose row says `what`?
    pub(crate) fn any(&self, what: impl Fn(&FormatRow) -> bool) -> bool {
        self.files.iter().any(|(f, _)| what(f.row()))
    }

    /// The files of the formats whose row says `what`.
    pub(crate) fn paths(
        &self,
        what: impl Fn(&FormatRow) -> bool,
    ) -> impl Iterator<Item = &PathBuf> {
        self.files
            .iter()
            .filter(move |(f, _)| what(f.row()))
            .map(|(_, p)| p)
    }
}

impl ScanSpec {
    /// The ports scanned, compact; with nmap's prefixes when several protocols are
    /// (`T:22,80,U:53`).
    pub fn ports_spec(&self) -> String {
        let ports = self.targets.space.ports();
        if self.probing.slots.len() == 1 {
            return ports.to_string();
        }
        let parts: Vec<String> = self
            .probing
            .slots
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let prefix = t.row().proto.port_prefix().unwrap_or("T");
                format!("{prefix}:{}", ports.list(i))
            })
            .collect();
        parts.join(",")
    }

    /// The scan type's name, or each slot's joined (`syn+udp`).
    pub fn scan_names(&self) -> String {
        if self.probing.slots.len() > 1 {
            let n: Vec<&str> = self.probing.slots.iter().map(|s| s.name()).collect();
            n.join("+")
        } else {
            self.probing.scan.name().to_string()
        }
    }

    /// The interface, each family's source and next hop: from the kernel (routes, addresses,
    /// neighbour table and discovery), or names only for a connect scan.
    pub(crate) fn resolve_net(&self, cli: &Cli) -> Result<NetSetup, ConfigError> {
        let firsts = first_of_each_family(&self.targets.space);
        // A connect dry run builds the SYNs its connections would open: a raw scan's frames.
        if self.probing.scan == ScanType::Connect && !cli.outputs.dry_run {
            Ok(connect_net(cli, &firsts))
        } else {
            resolve_net(&NetAsk::of(cli), &firsts)
        }
    }

    /// The machine's facts, then the plan: [`Machine::gather`] and [`ScanSpec::resolve`].
    pub(crate) fn from_cli(cli: &Cli) -> Result<Self, ConfigError> {
        Self::resolve(cli, &Machine::gather(cli)?)
    }

    /// Checks the request and plans the scan from it and the machine's facts, with no I/O.
    pub fn resolve(cli: &Cli, machine: &Machine) -> Result<Self, ConfigError> {
        // Decided before the space: random interface identifiers come from it.
        let seed = cli
            .pacing
            .seed
            .or(machine.resume.as_ref().map(|f| f.seed))
            .unwrap_or(machine.random[0]);
        let (scan, slots, traceroute, ports) = scan_and_ports(cli, machine)?;
        let (space, space_spec, blocklisted, excluded) = build_space(cli, machine, ports, seed)?;
        let outputs = Outputs::from_cli(cli);
        let (port_table, mut notes) = port_table(cli, machine, &outputs)?;
        let (grab, namer) = banners(cli, machine, &slots, port_table.clone())?;
        let apps = app_plan(cli, &outputs)?;
        let payloads = check_probing(cli, machine, scan, &slots, traceroute, space.len())?;
        let shard_asked = shard_asked(cli, machine)?;
        let names: Vec<&str> = slots.iter().map(|s| s.name()).collect();
        let fingerprint = crate::resume::fingerprint(&[
            &names.join("+"),
            &space_spec,
            &space.ports().to_string(),
            &format!("{}/{}", shard_asked.0, shard_asked.1),
            &cli.pacing.retries.to_string(),
        ]);
        let resume_file = load_resume(cli, machine, &fingerprint)?;
        let source_ports = scan_source_ports(cli, machine, scan, traceroute)?;
        check_modes(cli, scan, grab.is_some(), space.ports().len())?;
        let (tx_cores, rx_core) =
            cores(cli, &machine.cores, resume_file.as_ref().map(|f| f.threads))?;
        let scan_id = match resume_file.as_ref().map(|f| f.scan_id) {
            Some(id) if id != 0 => id,
            _ => machine.random[1],
        };
        let (resume, resume_answered, resume_carried) = match resume_file {
            Some(f) => (Some(f.positions), f.answered, f.carried),
            None => (None, Vec::new(), Vec::new()),
        };
        Ok(Self {
            targets: TargetPlan {
                space: std::sync::Arc::new(space),
                blocklisted,
                excluded,
            },
            probing: ProbePlan {
                scan,
                slots,
                scanflags: cli.probing.scanflags,
                payloads,
                source_ports,
                ttl: match traceroute {
                    Some((_, (lo, _))) => lo,
                    None => cli.probing.ttl.map(|t| t.0).unwrap_or(64),
                },
                traceroute,
                report_silent: cli.probing.report_silent,
                connect_timeout: Duration::from_millis(cli.pacing.connect_timeout.unwrap_or(1000)),
                max_inflight: cli.pacing.max_inflight.unwrap_or(2048) as usize,
            },
            services: ServicePlan {
                grab,
                namer,
                apps,
                port_table,
            },
            pacing: PacingPlan {
                rate: cli.pacing.rate,
                wait: Duration::from_secs_f64(cli.pacing.wait),
                retries: cli.pacing.retries,
                seed,
                limits: limits(cli),
                tx_cores,
                rx_core,
                tx_batch: cli
                    .engine
                    .tx_batch
                    .map_or(crate::engine::TX_BATCH, |b| b as usize),
            },
            outputs,
            resume: ResumePlan {
                positions: resume,
                file: cli.resume.file.clone(),
                resumed_from: cli.resume.from.clone(),
                fingerprint,
                answered: resume_answered,
                carried: resume_carried,
            },
            net: NetPlan {
                interface: cli.net.interface.clone(),
                source: cli.net.source_ip,
                transport: cli.engine.transport,
                xdp_mode: xdp_mode(cli.engine.xdp_mode),
            },
            cluster: ClusterPlan {
                shard: shard_asked,
                scan_id,
            },
            run_as: machine.run_as.clone(),
            args: machine.args.clone(),
            notes: std::mem::take(&mut notes),
        })
    }
}

/// Port-table names for nmap's formats (every port gets one, as nmap prints) and -sV; where the
/// table cannot be read, a note says the names are missing (-sV refuses later without probes).
fn port_table(
    cli: &Cli,
    machine: &Machine,
    outputs: &Outputs,
) -> Result<(Option<std::sync::Arc<PortTable>>, Vec<String>), ConfigError> {
    Ok(match &machine.port_table {
        Some(Ok(t)) => (Some(t.clone()), Vec::new()),
        Some(Err(e)) => {
            let who: Vec<&str> = outputs
                .files
                .iter()
                .filter(|(f, _)| f.row().service_names)
                .map(|(f, _)| f.row().long)
                .chain(cli.services.service_version.then_some("-sV"))
                .collect();
            (
                None,
                vec![format!(
                    "no service names in {}: {e}; give --servicedb FILE",
                    who.join(", ")
                )],
            )
        }
        None => (None, Vec::new()),
    })
}

/// When the scan stops early, and which states it writes.
fn limits(cli: &Cli) -> Limits {
    Limits {
        max_runtime: cli.pacing.max_runtime.map(Duration::from_secs_f64),
        max_results: cli.pacing.max_results,
        show: crate::output::Show::from_cli(
            cli.outputs.open,
            cli.outputs.show.as_ref().map_or(&[], |l| &l.0),
            cli.outputs.noshow.as_ref().map_or(&[], |l| &l.0),
        ),
    }
}

fn xdp_mode(c: XdpModeChoice) -> XdpMode {
    match c {
        XdpModeChoice::Auto => XdpMode::Auto,
        XdpModeChoice::Native => XdpMode::Native,
        XdpModeChoice::Generic => XdpMode::Generic,
    }
}

/// The scan (a traceroute when asked), each slot's type, and the ports each probes.
fn scan_and_ports(
    cli: &Cli,
    machine: &Machine,
) -> Result<(ScanType, Vec<ScanType>, Option<Traceroute>, ProbePorts), ConfigError> {
    let asked_all = scan_types(cli)?;
    let traceroute = traceroute(cli, asked_all[0])?;
    let scan = if traceroute.is_some() {
        ScanType::Traceroute
    } else {
        asked_all[0]
    };
    if traceroute.is_some() && asked_all.len() > 1 {
        return Err(ConfigError::Usage(
            "--traceroute probes one protocol; give one scan type".into(),
        ));
    }
    let (slots, ports) = probe_ports(cli, machine, &asked_all, scan, traceroute)?;
    Ok((slots[0], slots, traceroute, ports))
}

/// The options that apply to some scan types only, checked against the scan's; the UDP
/// payloads it sends.
fn check_probing(
    cli: &Cli,
    machine: &Machine,
    scan: ScanType,
    slots: &[ScanType],
    traceroute: Option<Traceroute>,
    probes: u64,
) -> Result<Payloads, ConfigError> {
    let usage = |m: String| Err(ConfigError::Usage(m));
    if cli.probing.scanflags.is_some() && scan.row().tcp_flags.is_none() {
        return usage(format!(
            "--scanflags applies to raw TCP scans (-sS -sA -sW -sF -sN -sX -sM), not --scan {}",
            scan.name()
        ));
    }
    if cli.outputs.pcap_replies.is_some() && scan == ScanType::Connect {
        return usage(
            "--pcap-replies captures raw replies; a connect scan (-sT) leaves them to the kernel"
                .into(),
        );
    }
    let udp = slots.contains(&ScanType::Udp);
    if cli.probing.udp_payloads.is_some() && !udp {
        return usage("--udp-payloads applies to UDP scans (-sU)".into());
    }
    if cli.probing.report_silent && traceroute.is_some() {
        return usage("--report-silent reports targets without a reply, which have no path: drop it with --traceroute".into());
    }
    if cli.probing.report_silent && probes > BITMAP_MAX_PROBES {
        return usage(format!(
            "--report-silent keeps a bit per probe and allows at most {BITMAP_MAX_PROBES}; this scan has {probes}"
        ));
    }
    if cli.pacing.retries > 0 && probes > BITMAP_MAX_PROBES {
        return usage(format!(
            "--retries: past {BITMAP_MAX_PROBES} probes duplicates are filtered over a {} s window, and passes over this space ({probes} probes) come further apart; drop --retries or split the targets into scans of at most that many probes",
            crate::engine::dedup::WINDOW_HORIZON.as_secs(),
        ));
    }
    Ok(match (&cli.probing.udp_payloads, udp) {
        (Some(_), _) => match &machine.payloads {
            Some(Ok(p)) => Payloads::builtin().merged_with(p.clone()),
            Some(Err(e)) => return Err(ConfigError::PayloadFile(e.clone())),
            None => Payloads::builtin(),
        },
        (None, true) => Payloads::builtin(),
        _ => Payloads::empty(),
    })
}

/// `--shard I/N`, or `--shard auto` from the scheduler's environment.
fn shard_asked(cli: &Cli, machine: &Machine) -> Result<(u32, u32), ConfigError> {
    if cli.cluster.shards.is_some() && cli.cluster.shard != Some(crate::cli::ShardArg::Auto) {
        return Err(ConfigError::Usage(
            "--shards N goes with --shard auto (--shard I/N names the count itself)".into(),
        ));
    }
    Ok(match cli.cluster.shard {
        None => (0, 1),
        Some(crate::cli::ShardArg::Fixed(i, n)) => (i, n),
        Some(crate::cli::ShardArg::Auto) => machine
            .scheduler_shard
            .clone()
            .unwrap_or_else(|| Err("the scheduler's environment was not read".into()))
            .map_err(ConfigError::SchedulerShard)?,
    })
}

/// `--resume FILE`, checked against the scan given now (`fingerprint`) and its options.
fn load_resume(
    cli: &Cli,
    machine: &Machine,
    fingerprint: &str,
) -> Result<Option<ResumeFile>, ConfigError> {
    let (Some(p), Some(f)) = (&cli.resume.from, machine.resume.clone()) else {
        return Ok(None);
    };
    let path = p.display().to_string();
    if f.fingerprint != fingerprint {
        return Err(ResumeError::Mismatch(path).into());
    }
    let conflict = |file: String, what: &'static str| ResumeError::Conflict {
        path: path.clone(),
        file,
        what,
    };
    if cli.pacing.seed.is_some_and(|s| s != f.seed) {
        return Err(conflict(format!("--seed {}", f.seed), "--seed").into());
    }
    if cli
        .engine
        .tx_threads
        .is_some_and(|t| t as usize != f.threads)
    {
        return Err(conflict(format!("--tx-threads {}", f.threads), "--tx-threads").into());
    }
    Ok(Some(f))
}

/// The source ports the scan claims: the kernel's own for connect scans, and enough for a
/// traceroute's TTLs.
fn scan_source_ports(
    cli: &Cli,
    machine: &Machine,
    scan: ScanType,
    traceroute: Option<Traceroute>,
) -> Result<PortRange, ConfigError> {
    if scan == ScanType::Connect {
        return Ok(DEFAULT_SOURCE_PORTS);
    }
    let ports = source_ports(cli.net.source_port, machine.ephemeral_ports)?;
    if let Some((_, (_, hi))) = traceroute {
        if ports.len() < hi as u32 {
            return Err(ConfigError::Usage(format!(
                "--traceroute gives each TTL its own source port: --source-port {ports} holds {} ports, TTLs up to {hi} need {hi}",
                ports.len()
            )));
        }
    }
    Ok(ports)
}

/// Frame templates a source pool may make (one per address and port at most, ~150 bytes each).
const POOL_TEMPLATES: usize = 1 << 20;

/// Options of one engine given to another: banners over AF_PACKET, connect options to a raw
/// scan, a source pool where one address is sent from (`ports`: the scan's port positions).
fn check_modes(cli: &Cli, scan: ScanType, grab: bool, ports: usize) -> Result<(), ConfigError> {
    if grab && cli.engine.transport == TransportChoice::Packet {
        return Err(ConfigError::Usage(
            "--banners and -sV need AF_XDP: over AF_PACKET the kernel resets every connection we open".into(),
        ));
    }
    if let Some(pool) = cli.net.source_ip.filter(|p| p.len() > 1) {
        if scan == ScanType::Connect {
            return Err(ConfigError::Usage(format!(
                "-S {pool} is a source pool, but the connect scan (-sT) leaves from the one address the kernel binds: give -S one address"
            )));
        }
        if cli.probing.traceroute.is_some() {
            return Err(ConfigError::Usage(format!(
                "-S {pool} is a source pool, but --traceroute follows the path of one source address: give -S one address"
            )));
        }
        if ports.saturating_mul(pool.len() as usize) > POOL_TEMPLATES {
            return Err(ConfigError::Usage(format!(
                "-S {pool} ({} addresses) with {ports} ports would build up to {} frame templates (at most {POOL_TEMPLATES}): give a smaller pool or fewer ports",
                pool.len(),
                ports * pool.len() as usize
            )));
        }
    }
    if scan != ScanType::Connect {
        for (flag, given) in [
            ("--connect-timeout", cli.pacing.connect_timeout.is_some()),
            (
                "--max-inflight",
                cli.pacing.max_inflight.is_some() && cli.services.grab.is_none(),
            ),
        ] {
            if given {
                return Err(ConfigError::Usage(format!(
                    "{flag} applies to the connect scan (-sT) and --grab, not --scan {}",
                    scan.name()
                )));
            }
        }
    }
    Ok(())
}

/// The scan types asked (`-sS -sU -sY`), without repeats; SYN when none is. Several combine
/// only as one type per protocol, each of a kind that combines (`ScanRow::combines`), as in
/// nmap; they are ordered by protocol (TCP, UDP, SCTP), as the slots are laid out.
fn scan_types(cli: &Cli) -> Result<Vec<ScanType>, ConfigError> {
    let mut v: Vec<ScanType> = Vec::new();
    for &t in &cli.probing.scan {
        if !v.contains(&t) {
            v.push(t);
        }
    }
    if v.len() > 1 {
        let alone: Vec<&str> = v
            .iter()
            .filter(|t| !t.row().combines)
            .map(|t| t.name())
            .collect();
        if !alone.is_empty() {
            return Err(ConfigError::Usage(format!(
                "--scan {} runs alone; one TCP type (-sS -sA ...), UDP (-sU) and one SCTP type (-sY, -sZ) combine",
                alone.join(", ")
            )));
        }
        for p in Proto::ALL {
            let same: Vec<&str> = v
                .iter()
                .filter(|t| t.row().proto == p)
                .map(|t| t.name())
                .collect();
            if same.len() > 1 {
                return Err(ConfigError::Usage(format!(
                    "one {} scan type at a time ({} given); it combines with the other protocols' types",
                    p.as_str().to_uppercase(),
                    same.join(" and ")
                )));
            }
        }
        v.sort_by_key(|t| SLOT_ORDER.iter().position(|&p| p == t.row().proto));
    }
    if v.is_empty() {
        v.push(ScanType::Syn);
    }
    Ok(v)
}

/// The protocols a scan of several probes, in the order of its slots (nmap's order).
const SLOT_ORDER: [Proto; 3] = [Proto::Tcp, Proto::Udp, Proto::Sctp];

/// The slots of the space's ports: each scan type with its port list (TCP first). `-p` items
/// after `T:` go to TCP and after `U:` to UDP; unprefixed ones to every type asked (the default
/// SYN scan when none is). A `U:` port without `-sU` is probed over UDP, and a `T:` port
/// without a TCP type by a SYN scan, as masscan does.
fn probe_ports(
    cli: &Cli,
    machine: &Machine,
    asked: &[ScanType],
    scan: ScanType,
    traceroute: Option<Traceroute>,
) -> Result<(Vec<ScanType>, ProbePorts), ConfigError> {
    use crate::targets::PrefixedSpec;
    let parse = |s: &Option<String>| s.as_deref().map(PrefixedSpec::parse).transpose();
    let (spec, excl) = (
        parse(&cli.targets.ports)?,
        parse(&cli.targets.exclude_ports)?,
    );
    let prefixed = |s: &Option<PrefixedSpec>| s.as_ref().is_some_and(|s| s.prefixed());
    let mut db = None;
    let by_port = traceroute.is_none() && scan.row().ports == PortUse::Ports;
    if asked.len() == 1 && !prefixed(&spec) && !prefixed(&excl) || !by_port {
        let flat = |s: &Option<PrefixedSpec>| one_protocol(s.as_ref(), scan, traceroute);
        let list = port_list(
            (cli, machine),
            scan,
            traceroute,
            flat(&spec)?.as_deref(),
            flat(&excl)?.as_deref(),
            &mut db,
        )?;
        return Ok((vec![scan], ProbePorts::single(list)));
    }
    let spec = spec.unwrap_or_default();
    let excl = excl.unwrap_or_default();
    if spec.proto.is_some() {
        return Err(ConfigError::Usage(
            "P: names IP protocols, which only -sO scans".into(),
        ));
    }
    if asked.contains(&ScanType::Connect) && (spec.udp.is_some() || spec.sctp.is_some()) {
        return Err(ConfigError::Usage(
            "U: and S: ports need raw UDP or SCTP probes (-sU, -sY), which a connect scan (-sT) does not send".into(),
        ));
    }
    // (type, its ports, its excluded ports) per protocol; unprefixed items belong to the types
    // asked, prefixed ones to theirs (a type of their protocol probes them when none is asked).
    let own = |p: &PrefixedSpec, mine: &Option<String>, any: bool| {
        if any {
            p.for_proto(mine)
        } else {
            mine.clone()
        }
    };
    let mut slots = Vec::new();
    for proto in SLOT_ORDER {
        let field = |p: &PrefixedSpec| match proto {
            Proto::Udp => p.udp.clone(),
            Proto::Sctp => p.sctp.clone(),
            _ => p.tcp.clone(),
        };
        let explicit = asked.iter().copied().find(|t| t.row().proto == proto);
        let Some(t) = explicit.or_else(|| field(&spec).and(ScanType::default_for(proto))) else {
            continue;
        };
        slots.push((
            t,
            own(&spec, &field(&spec), explicit.is_some()),
            own(&excl, &field(&excl), explicit.is_some()),
        ));
    }
    let ranked = cli.targets.top_ports.is_some() || cli.targets.fast;
    let mut types = Vec::new();
    let mut lists = Vec::new();
    for (t, ports, exclude) in slots {
        if cli.targets.ports.is_some() && ports.is_none() && !ranked {
            continue; // no port for this protocol (`-sS -sU -p U:53`)
        }
        types.push(t);
        lists.push(port_list(
            (cli, machine),
            t,
            None,
            ports.as_deref(),
            exclude.as_deref(),
            &mut db,
        )?);
    }
    if types.is_empty() {
        return Err(ConfigError::Usage(
            "no ports given (-p 22,80,443, -p 1-65535, --top-ports N or -F)".into(),
        ));
    }
    Ok((types, ProbePorts::new(lists)))
}

/// The items of a one-protocol scan's `-p` (or `--exclude-ports`): no prefix but `-sO`'s `P:`.
fn one_protocol(
    s: Option<&crate::targets::PrefixedSpec>,
    scan: ScanType,
    traceroute: Option<Traceroute>,
) -> Result<Option<String>, ConfigError> {
    let Some(s) = s else { return Ok(None) };
    if s.tcp.is_some()
        || s.udp.is_some()
        || s.sctp.is_some()
        || s.proto.is_some() && scan != ScanType::IpProto
    {
        return Err(ConfigError::Usage(if traceroute.is_some() {
            "--traceroute probes one protocol; drop the T:/U:/S:/P: prefixes".into()
        } else if scan == ScanType::IpProto {
            "-sO takes protocol numbers (P:); T:, U: and S: name ports".into()
        } else {
            format!("--scan {} takes no T:/U:/S:/P: ports", scan.name())
        }));
    }
    Ok(s.for_proto(&s.proto))
}

/// `--traceroute[=PROTO]` and `--ttl`: the probe protocol and TTL range, or `None` for a scan.
fn traceroute(cli: &Cli, asked: ScanType) -> Result<Option<Traceroute>, ConfigError> {
    let Some(choice) = cli.probing.traceroute else {
        if let Some((lo, hi)) = cli.probing.ttl.filter(|(lo, hi)| lo != hi) {
            return Err(ConfigError::Usage(format!(
                "--ttl {lo}-{hi} is a range of TTLs, which only --traceroute probes; give one TTL"
            )));
        }
        return Ok(None);
    };
    let from_scan = asked.row().trace;
    let proto = match (choice, from_scan) {
        (TraceChoice::Auto, Some(p)) => p,
        (TraceChoice::Auto, None) => {
            return Err(ConfigError::Usage(format!(
                "--traceroute probes with TCP SYN (-sS), UDP (-sU) or ICMP echo (-PE), not --scan {}; or name one: --traceroute=tcp",
                asked.name()
            )))
        }
        (TraceChoice::Tcp, _) => TraceProto::Tcp,
        (TraceChoice::Udp, _) => TraceProto::Udp,
        (TraceChoice::Icmp, _) => TraceProto::Icmp,
    };
    if from_scan != Some(proto) && asked != ScanType::Syn {
        return Err(ConfigError::Usage(format!(
            "--traceroute={} conflicts with --scan {}",
            proto.as_str(),
            asked.name()
        )));
    }
    Ok(Some((proto, cli.probing.ttl.unwrap_or((1, 30)))))
}

/// `--banners` and `-sV`: the grab options and, for -sV, the namer.
fn banners(
    cli: &Cli,
    machine: &Machine,
    slots: &[ScanType],
    table: Option<std::sync::Arc<PortTable>>,
) -> Result<(Option<GrabOptions>, Option<std::sync::Arc<Namer>>), ConfigError> {
    if (cli.services.version_light
        || cli.services.version_all
        || cli.services.version_intensity.is_some())
        && !cli.services.service_version
    {
        return Err(ConfigError::Usage(
            "--version-intensity, --version-light and --version-all apply to -sV".into(),
        ));
    }
    let grabbing = cli.services.grab.is_some();
    if !cli.services.banners && !cli.services.service_version && !grabbing {
        let given = [
            ("--service-probes", cli.services.service_probes.is_some()),
            ("--banner-wait", cli.services.banner_wait.is_some()),
            ("--banner-timeout", cli.services.banner_timeout.is_some()),
            ("--banner-bytes", cli.services.banner_bytes.is_some()),
            ("--max-connections", cli.services.max_connections.is_some()),
        ];
        if let Some((flag, _)) = given.iter().find(|(_, g)| *g) {
            return Err(ConfigError::Usage(format!(
                "{flag} applies to --banners and -sV (and --grab), which this scan does not run"
            )));
        }
        return Ok((None, None));
    }
    // -sV names what a SYN scan finds open over TCP and what a UDP scan finds over UDP;
    // --banners collects TCP greetings only.
    let syn = slots.contains(&ScanType::Syn);
    let udp = slots.contains(&ScanType::Udp) && cli.services.service_version;
    if grabbing && !syn {
        let names: Vec<&str> = slots.iter().map(|s| s.name()).collect();
        return Err(ConfigError::Usage(format!(
            "--grab talks to the open TCP ports a SYN scan (-sS) finds, not --scan {}",
            names.join("+")
        )));
    }
    if !syn && !udp {
        let names: Vec<&str> = slots.iter().map(|s| s.name()).collect();
        return Err(ConfigError::Usage(format!(
            "--banners and -sV talk to the open ports a SYN scan (-sS) finds, and -sV also to a UDP scan's (-sU), not --scan {}",
            names.join("+")
        )));
    }
    // A file named with --service-probes that cannot be read was refused with the facts.
    let probes = match &machine.service_probes {
        Some(Ok(p)) => Some(p.clone()),
        Some(Err(_)) if !cli.services.service_version => None,
        Some(Err(e)) => return Err(ConfigError::NoServiceProbes(e.clone())),
        None => None,
    };
    let greeting_wait = greeting_wait(cli);
    let grab = GrabOptions {
        greeting_wait: Duration::from_secs_f64(greeting_wait),
        timeout: Duration::from_secs_f64(
            cli.services
                .banner_timeout
                .unwrap_or(6.0)
                .max(greeting_wait),
        ),
        idle: Duration::from_millis(500),
        // A certificate chain or a web page is larger than a banner.
        max_bytes: cli
            .services
            .banner_bytes
            .unwrap_or(if grabbing { 65_536 } else { 4096 }) as usize,
        max_connections: grab_bound(cli)?,
        probes: probes.clone(),
        keep_open: grabbing,
        udp,
        sni: cli.services.sni.clone(),
    };
    // -sV without a probe database was refused above.
    let namer = probes
        .filter(|_| cli.services.service_version)
        .map(|probes| {
            std::sync::Arc::new(Namer {
                intensity: match (cli.services.version_light, cli.services.version_all) {
                    (true, _) => 2,
                    (_, true) => 9,
                    _ => cli
                        .services
                        .version_intensity
                        .unwrap_or(service::detect::DEFAULT_INTENSITY),
                },
                probes,
                table: table.unwrap_or_default(),
            })
        });
    Ok((Some(grab), namer))
}

/// How long an open port may stay silent before we speak. TLS and HTTP servers never speak
/// first, and SSH's flight needs no greeting: named modules alone go at once; `auto`,
/// `--banners` and `-sV` wait for what a port says unasked.
fn greeting_wait(cli: &Cli) -> f64 {
    let at_once = cli
        .services
        .grab
        .as_ref()
        .is_some_and(|g| !g.auto && !cli.services.banners && !cli.services.service_version);
    cli.services
        .banner_wait
        .unwrap_or(if at_once { 0.0 } else { 2.0 })
}

/// Conversations at once: `--max-connections`, or with `--grab` also `--max-inflight` (the
/// same bound under the name users of grabbers know).
fn grab_bound(cli: &Cli) -> Result<usize, ConfigError> {
    let by_grab = cli
        .pacing
        .max_inflight
        .filter(|_| cli.services.grab.is_some());
    match (cli.services.max_connections, by_grab) {
        (Some(a), Some(b)) if a != b => Err(ConfigError::Usage(format!(
            "--max-connections {a} and --max-inflight {b} name the same bound with --grab: give one"
        ))),
        (Some(n), _) | (None, Some(n)) => Ok(n as usize),
        (None, None) => Ok(10_000),
    }
}

/// `--grab`, `--sni`, `--http-host` and `-oZ`: the application layer's plan.
fn app_plan(
    cli: &Cli,
    outputs: &Outputs,
) -> Result<Option<std::sync::Arc<crate::app::AppPlan>>, ConfigError> {
    let s = &cli.services;
    let Some(spec) = s.grab.clone() else {
        let given = [
            ("--sni", s.sni.is_some()),
            ("--http-host", s.http_host.is_some()),
            ("--http-redirects", s.http_redirects > 0),
            ("-oZ", outputs.any(|f| f.long == "--output-zgrab")),
        ];
        if let Some((flag, _)) = given.iter().find(|(_, g)| *g) {
            return Err(ConfigError::Usage(format!(
                "{flag} applies to --grab, which this scan does not run"
            )));
        }
        return Ok(None);
    };
    // `auto` reports the first response it identifies HTTP by; only the http module follows.
    let follows = !spec.auto && spec.modules.iter().any(|m| m.0 == crate::app::Module::Http);
    if s.http_redirects > 0 && !follows {
        return Err(ConfigError::Usage(
            "--http-redirects applies to --grab's http module (--grab http, or http:PORTS), which this scan does not run".into(),
        ));
    }
    for (flag, name) in [("--sni", &s.sni), ("--http-host", &s.http_host)] {
        if let Some(n) = name {
            let ok = !n.is_empty()
                && n.len() <= 253
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b));
            if !ok {
                return Err(ConfigError::Usage(format!(
                    "{flag} {n:?} is not a host name"
                )));
            }
        }
    }
    Ok(Some(std::sync::Arc::new(crate::app::AppPlan {
        spec,
        sni: s.sni.clone(),
        http_host: s.http_host.clone(),
        http_redirects: s.http_redirects,
    })))
}

/// The port list a scan type takes: ports, protocol numbers (-sO), or none (ping), from the
/// `-p` items given for it; then `--top-ports`/`-F` and its `--exclude-ports` items.
/// nmap-services is read into `db` the first time a name or a ranking needs it.
fn port_list(
    (cli, machine): (&Cli, &Machine),
    scan: ScanType,
    traceroute: Option<Traceroute>,
    ports: Option<&str>,
    exclude: Option<&str>,
    db: &mut Option<std::sync::Arc<ServiceDb>>,
) -> Result<PortList, ConfigError> {
    let top = cli.targets.top_ports.or(cli.targets.fast.then_some(100));
    let by_port = match traceroute {
        Some((TraceProto::Icmp, _)) => false,
        Some(_) => true,
        None => scan.row().ports == PortUse::Ports,
    };
    // -sO probes protocol numbers: --exclude-ports takes numbers there, as nmap's does.
    let numbers_only = traceroute.is_none() && scan.row().ports == PortUse::Protocols;
    if !by_port && (top.is_some() || (exclude.is_some() && !numbers_only)) {
        return Err(ConfigError::Usage(
            "--top-ports, -F and --exclude-ports choose TCP/UDP/SCTP ports; this scan takes none"
                .into(),
        ));
    }
    // Names and rankings are those of the protocol probed; the file is read only when needed.
    let proto = match traceroute {
        Some((TraceProto::Udp, _)) => ServiceProto::Udp,
        Some(_) => ServiceProto::Tcp,
        None => scan
            .row()
            .proto
            .service_proto()
            .unwrap_or(ServiceProto::Tcp),
    };
    let load = |db: &mut Option<std::sync::Arc<ServiceDb>>| -> Result<(), ConfigError> {
        if db.is_none() {
            *db = Some(match &machine.services {
                Some(Ok(d)) => d.clone(),
                Some(Err(e)) => return Err(ConfigError::ServiceDb(e.clone())),
                None => {
                    return Err(ConfigError::ServiceDb(format!(
                        "{}: not read (no service name or ranking was seen in -p)",
                        cli.targets.servicedb.display()
                    )))
                }
            });
        }
        Ok(())
    };
    let parse =
        |spec: &str, db: &mut Option<std::sync::Arc<ServiceDb>>| -> Result<PortList, ConfigError> {
            let mut failed = None;
            let list = PortList::parse_with(spec, &mut |name| {
                if let Err(e) = load(db) {
                    let msg = e.to_string();
                    failed = Some(e);
                    return Err(msg);
                }
                let ports = db.as_ref().expect("loaded").ports_named(name, proto);
                if ports.is_empty() {
                    return Err(ServiceDb::unknown(name, proto));
                }
                Ok(ports)
            });
            match (list, failed) {
                (_, Some(e)) => Err(e),
                (l, None) => Ok(l?),
            }
        };
    let given = match ports {
        Some(s) if by_port => Some(parse(s, db)?),
        Some(s) => Some(PortList::parse(s)?), // protocol numbers (-sO)
        None => None,
    };
    let excluded = match exclude {
        Some(spec) if numbers_only => Some(PortList::parse(spec)?),
        Some(spec) => Some(parse(spec, db)?),
        None => None,
    };
    let mut list = if let Some(n) = top.filter(|_| by_port) {
        load(db)?;
        let db = db.as_ref().expect("loaded");
        ranked(db, n, proto, given.as_ref(), excluded.as_ref())
    } else {
        port_list_given(scan, traceroute, given)?
    };
    if let Some(ex) = &excluded {
        list = list.without(ex);
    }
    if list.is_empty() {
        return Err(ConfigError::Usage(
            "no ports left to scan (after --exclude-ports or --top-ports)".into(),
        ));
    }
    Ok(list)
}

/// `--top-ports N` of `proto`, ranked among the ports left after the exclusions, as nmap ranks
/// them: an excluded port's place goes to the next one.
fn ranked(
    db: &ServiceDb,
    n: u32,
    proto: ServiceProto,
    given: Option<&PortList>,
    excluded: Option<&PortList>,
) -> PortList {
    let within: Option<Vec<u16>> = match (given, excluded) {
        (g, Some(ex)) => Some(
            g.map_or_else(|| (0..=65535).collect(), |l| l.as_slice().to_vec())
                .into_iter()
                .filter(|p| !ex.contains(*p))
                .collect(),
        ),
        (Some(g), None) => Some(g.as_slice().to_vec()),
        (None, None) => None,
    };
    PortList::from_ports(db.top(n as usize, proto, within.as_deref()))
}

/// The port list from `-p` alone.
fn port_list_given(
    scan: ScanType,
    traceroute: Option<Traceroute>,
    given: Option<PortList>,
) -> Result<PortList, ConfigError> {
    if let Some((proto, _)) = traceroute {
        return match (proto, given) {
            (TraceProto::Icmp, Some(_)) => Err(ConfigError::Usage(
                "--traceroute=icmp takes no ports; drop -p".into(),
            )),
            (_, Some(list)) => Ok(list),
            (p, None) => Ok(PortList::from_ports(vec![p.default_port()])),
        };
    }
    match (scan.row().ports, given) {
        (PortUse::None, Some(_)) => Err(ConfigError::Usage(format!(
            "--scan {} takes no ports; drop -p",
            scan.name()
        ))),
        (PortUse::None, None) => Ok(PortList::from_ports(vec![0])),
        (PortUse::Protocols, given) => {
            let list = match given {
                Some(l) => l,
                None => PortList::parse("0-255")?,
            };
            match list.as_slice().last() {
                Some(&p) if p > 255 => Err(ConfigError::Usage(format!(
                    "-sO scans protocol numbers 0-255, not {p}"
                ))),
                _ => Ok(list),
            }
        }
        (_, Some(list)) => Ok(list),
        (_, None) => Err(ConfigError::Usage(
            "no ports given (-p 22,80,443, -p 1-65535, --top-ports N or -F)".into(),
        )),
    }
}

/// The first address of each family the space holds, IPv4 first: whose route and neighbour
/// decide the interface, source and next hop of that family.
fn first_of_each_family(space: &TargetSpace) -> Vec<IpAddr> {
    let mut v = Vec::new();
    if space.ipv4_addresses() > 0 {
        v.push(space.address(0));
    }
    if space.ipv6_addresses() > 0 {
        v.push(space.address(space.ipv4_addresses()));
    }
    v
}

/// Targets minus blocklist minus excludes, times ports; the text that names it in a resume
/// file's fingerprint; and how many addresses the blocklist and the excludes removed.
fn build_space(
    cli: &Cli,
    machine: &Machine,
    ports: ProbePorts,
    seed: u64,
) -> Result<(TargetSpace, String, u64, u64), ConfigError> {
    let mut targets = targets::Targets::default();
    for t in &cli.targets.addresses {
        targets.extend(targets::parse_target_list(t)?);
    }
    for t in &machine.target_files {
        targets.extend(t.clone());
    }
    if targets.is_empty() {
        return Err(ConfigError::NoTargets);
    }
    let mut excludes = targets::Targets::default();
    for e in &cli.targets.excludes {
        excludes.extend(targets::parse_target_list(e)?);
    }
    for t in &machine.exclude_files {
        excludes.extend(t.clone());
    }
    // An excluded window takes out its whole span.
    excludes
        .v6
        .extend(excludes.windows.iter().map(|w| w.span()));
    let iid = match &cli.net.iid {
        Some(s) => Iid::parse(s, seed).map_err(ConfigError::Usage)?,
        None => Iid::Random { seed },
    };
    if cli.net.iid.is_some() && targets.windows.is_empty() {
        return Err(ConfigError::Usage(
            "--iid chooses the addresses of prefix windows (PREFIX/A-B); no target is one".into(),
        ));
    }
    let (allowed4, blocked4) = blocklist::apply(&targets.v4);
    let kept4 = allowed4.subtract(&RangeSet::from_ranges(excludes.v4));
    let (allowed6, blocked6) = blocklist::apply(&targets.v6);
    excludes.v6.extend(
        excludes
            .v6_single
            .iter()
            .map(|&a| targets::Ipv6Range::single(a)),
    );
    let cut6 = RangeSet::from_ranges(excludes.v6);
    let kept6 = allowed6.subtract(&cut6);
    let mut excluded = (allowed4.len() - kept4.len()) + (allowed6.len() - kept6.len());
    // A single address is wholly inside any reserved block it is in: never blocklisted. Sorted
    // in place, it loses duplicates, excluded ones, and those a range already covers.
    let mut singles = std::mem::take(&mut targets.v6_single);
    singles.sort_unstable();
    singles.dedup();
    let before = singles.len();
    singles.retain(|a| !cut6.contains(*a));
    excluded += (before - singles.len()) as u128;
    singles.retain(|a| !kept6.contains(*a));
    singles.shrink_to_fit();
    let mut blocked = blocked4 + blocked6;
    let mut windows = Vec::new();
    targets.windows.sort_unstable();
    targets.windows.dedup();
    for w in &targets.windows {
        let all = RangeSet::from_ranges(vec![targets::Ipv6Range::new(0, w.networks() - 1)]);
        let by_block = all.subtract(&w.networks_touching(&blocklist::window_cut(w)));
        let kept = by_block.subtract(&w.networks_touching(&cut6));
        blocked += all.len() - by_block.len();
        excluded += by_block.len() - kept.len();
        if !kept.is_empty() {
            windows.push((*w, kept));
        }
    }
    if kept4.is_empty() && kept6.is_empty() && singles.is_empty() && windows.is_empty() {
        return Err(ConfigError::EmptySpace);
    }
    // What is scanned, as a digest a resume file can be checked against (a hitlist of millions
    // of addresses is hashed as it goes, never joined into one string).
    let spec = {
        use std::hash::Hasher;
        let mut h = siphasher::sip::SipHasher13::new_with_keys(0x7370_6163_6578_6470, 6);
        let put = |h: &mut siphasher::sip::SipHasher13, s: &dyn std::fmt::Display| {
            h.write(s.to_string().as_bytes());
            h.write_u8(b',');
        };
        kept4.ranges().iter().for_each(|r| put(&mut h, r));
        kept6.ranges().iter().for_each(|r| put(&mut h, r));
        singles.iter().for_each(|a| h.write(&a.to_be_bytes()));
        targets.windows.iter().for_each(|w| put(&mut h, w));
        cli.net
            .iid
            .iter()
            .for_each(|i| put(&mut h, &format!("iid={i}")));
        format!("{:016x}", h.finish())
    };
    let space = TargetSpace::build(kept4, kept6, singles, &windows, iid, ports)
        .map_err(|e| ConfigError::Usage(e.to_string()))?;
    let clamp = |v: u128| v.min(u64::MAX as u128) as u64;
    Ok((space, spec, clamp(blocked), clamp(excluded)))
}

fn source_ports(
    asked: Option<PortRange>,
    ephemeral: Option<(u16, u16)>,
) -> Result<PortRange, ConfigError> {
    let ours = asked.unwrap_or(DEFAULT_SOURCE_PORTS);
    if let Some((lo, hi)) = ephemeral {
        if ours.lo <= hi && lo <= ours.hi {
            return Err(ConfigError::SourcePortsOverlap { ours, lo, hi });
        }
    }
    Ok(ours)
}

/// Transmit threads on the listed cores (or 0, 1, ...), the receive thread on a free core.
fn cores(
    cli: &Cli,
    avail: &[usize],
    resume_threads: Option<usize>,
) -> Result<(Vec<Option<usize>>, Option<usize>), ConfigError> {
    let max = avail.iter().copied().max().unwrap_or(0);
    if let Some(list) = cli.engine.cores.as_ref().map(|c| &c.0) {
        if let Some(&bad) = list.iter().find(|c| !avail.contains(c)) {
            return Err(ConfigError::NoSuchCore(bad, max));
        }
    }
    let threads = resume_threads
        .or(cli.engine.tx_threads.map(|t| t as usize))
        .or(cli.engine.cores.as_ref().map(|c| c.0.len()))
        .unwrap_or(1);
    let tx: Vec<Option<usize>> = match cli.engine.cores.as_ref().map(|c| &c.0) {
        Some(list) => (0..threads).map(|i| Some(list[i % list.len()])).collect(),
        None if avail.is_empty() => vec![None; threads],
        None => (0..threads).map(|i| Some(avail[i % avail.len()])).collect(),
    };
    let rx = avail.iter().copied().find(|c| !tx.contains(&Some(*c)));
    let rx = match cli.engine.rx_core {
        Some(c) if !avail.contains(&c) => return Err(ConfigError::NoSuchCore(c, max)),
        Some(c) => Some(c),
        None => rx,
    };
    Ok((tx, rx))
}

/// What a connect scan needs of the network: nothing but names for the start line.
fn connect_net(cli: &Cli, firsts: &[IpAddr]) -> NetSetup {
    let routes: Vec<_> = firsts.iter().map(|a| netinfo::route(*a).ok()).collect();
    let ifindex = routes
        .iter()
        .flatten()
        .map(|r| r.ifindex)
        .next()
        .unwrap_or(0);
    let ifname = cli
        .net
        .interface
        .clone()
        .or_else(|| netinfo::interface_name(ifindex))
        .unwrap_or_else(|| "-".into());
    let families = firsts
        .iter()
        .zip(routes)
        .map(|(first, route)| FamilyNet {
            src: cli
                .net
                .source_ip
                .map(|p| p.first())
                .filter(|s| s.is_ipv4() == first.is_ipv4())
                .or(route.and_then(|r| r.prefsrc))
                .unwrap_or(if first.is_ipv4() {
                    IpAddr::V4(Ipv4Addr::UNSPECIFIED)
                } else {
                    IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
                }),
            gateway_mac: MacAddr::ZERO,
            next_hop: None,
        })
        .collect();
    NetSetup {
        ifname,
        ifindex,
        src_mac: MacAddr::ZERO,
        link: netinfo::Link::Ethernet,
        families,
    }
}

/// What the user said about the network (`-i`, `-S`, `--gateway-mac`).
#[derive(Debug, Clone, Default)]
pub(crate) struct NetAsk {
    pub(crate) interface: Option<String>,
    pub(crate) source_ip: Option<IpAddr>,
    pub(crate) gateway_mac: Option<MacAddr>,
    /// A dry run sends nothing, so missing facts get placeholders.
    pub(crate) dry_run: bool,
}

impl NetAsk {
    fn of(cli: &Cli) -> Self {
        Self {
            interface: cli.net.interface.clone(),
            source_ip: cli.net.source_ip.map(|p| p.first()),
            gateway_mac: cli.net.gateway_mac,
            dry_run: cli.outputs.dry_run,
        }
    }
}

/// Interface, and per family of `firsts` (the first target of each) the source address and the
/// next hop's MAC. Every family must leave through one interface.
pub(crate) fn resolve_net(cli: &NetAsk, firsts: &[IpAddr]) -> Result<NetSetup, ConfigError> {
    if let Some(s) = cli.source_ip {
        if let Some(other) = firsts.iter().find(|f| f.is_ipv4() != s.is_ipv4()) {
            return Err(ConfigError::Usage(format!(
                "--source-ip {s} is {} but target {other} is {}: a scan takes the source of each family from the interface, so give -S only for single-family scans",
                if s.is_ipv4() { "IPv4" } else { "IPv6" },
                if other.is_ipv4() { "IPv4" } else { "IPv6" },
            )));
        }
    }
    let first = firsts[0];
    let route = netinfo::route(first);
    let (ifname, (ifindex, src_mac, link)) = match (&cli.interface, &route) {
        (Some(name), _) => (name.clone(), netinfo::interface(name)?),
        (None, Ok(r)) => {
            let name = netinfo::interface_name(r.ifindex).ok_or(NetError::NoRoute(first))?;
            let facts = netinfo::interface(&name)?;
            (name, facts)
        }
        (None, Err(_)) if cli.dry_run => {
            // A dry run needs no wire: placeholders are fine (`NetSetup::placeholder`).
            (
                "none".to_string(),
                (0, MacAddr::ZERO, netinfo::Link::Ethernet),
            )
        }
        (None, Err(e)) => return Err(clone_net_error(e, first).into()),
    };
    let on = Interface {
        name: &ifname,
        index: ifindex,
        mac: src_mac,
        link,
    };
    let families = firsts
        .iter()
        .map(|f| resolve_family(cli, *f, &on))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(NetSetup {
        ifname,
        ifindex,
        src_mac,
        link,
        families,
    })
}

/// The interface a scan leaves through.
struct Interface<'a> {
    name: &'a str,
    index: u32,
    mac: MacAddr,
    link: netinfo::Link,
}

/// The source address and next hop of `first`'s family on the chosen interface.
fn resolve_family(cli: &NetAsk, first: IpAddr, on: &Interface) -> Result<FamilyNet, ConfigError> {
    let (ifname, ifindex, src_mac) = (on.name, on.index, on.mac);
    let route = netinfo::route(first);
    let on_route = route.as_ref().ok().filter(|r| r.ifindex == ifindex);
    let family_name = if first.is_ipv4() {
        "IPv4"
    } else {
        "global IPv6"
    };
    let src = match cli.source_ip {
        Some(ip) => ip,
        // No interface (a dry run with no route): a documentation address (RFC 5737, 3849).
        None if ifindex == 0 && cli.dry_run => {
            if first.is_ipv4() {
                IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))
            } else {
                IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1))
            }
        }
        None => match on_route.and_then(|r| r.prefsrc) {
            Some(ip) => ip,
            None => match netinfo::interface_addr(ifindex, first.is_ipv6())? {
                Some(ip) => ip,
                None => return Err(NetError::NoAddress(ifname.to_string(), family_name).into()),
            },
        },
    };
    let placeholder = |src| FamilyNet {
        src,
        gateway_mac: MacAddr::ZERO,
        next_hop: None,
    };
    if let Some(mac) = cli.gateway_mac {
        return Ok(FamilyNet {
            gateway_mac: mac,
            ..placeholder(src)
        });
    }
    let next_hop = match (&route, on_route) {
        (_, Some(r)) => r.gateway.unwrap_or(first),
        (Ok(r), None) => {
            return Err(ConfigError::InterfaceNotOnRoute {
                target: first,
                route_if: netinfo::interface_name(r.ifindex)
                    .unwrap_or_else(|| r.ifindex.to_string()),
                asked: ifname.to_string(),
            })
        }
        (Err(_), None) if cli.dry_run => return Ok(placeholder(src)),
        (Err(e), None) => return Err(clone_net_error(e, first).into()),
    };
    if on.link != netinfo::Link::Ethernet {
        // Packets on this link carry no MAC: there is no neighbour to resolve.
        return Ok(FamilyNet {
            next_hop: Some(next_hop),
            ..placeholder(src)
        });
    }
    let gateway_mac = match netinfo::neighbour(ifindex, next_hop)? {
        Some(mac) => mac,
        // A dry run sends nothing, ARP and neighbour discovery included.
        None if cli.dry_run => MacAddr::ZERO,
        None => match (src, next_hop) {
            (IpAddr::V4(s), IpAddr::V4(hop)) => netinfo::arp_resolve(
                ifname, ifindex, src_mac, s, hop,
            )
            .map_err(|e| match e {
                NetError::Arp(_, ref io) if io.kind() == std::io::ErrorKind::PermissionDenied => {
                    ConfigError::Net(NetError::Arp(
                        ifname.to_string(),
                        std::io::Error::new(
                            io.kind(),
                            "permission denied (run as root, or give --gateway-mac)",
                        ),
                    ))
                }
                e => e.into(),
            })?,
            _ => netinfo::kernel_resolve(ifname, ifindex, next_hop).map_err(|e| match e {
                NetError::Netlink(ref io) if io.raw_os_error() == Some(libc::EPERM) => {
                    ConfigError::Net(NetError::Netlink(std::io::Error::new(
                        io.kind(),
                        "neighbour discovery: permission denied (run as root, or give --gateway-mac)",
                    )))
                }
                e => e.into(),
            })?,
        },
    };
    Ok(FamilyNet {
        src,
        gateway_mac,
        next_hop: Some(next_hop),
    })
}

fn clone_net_error(e: &NetError, first: IpAddr) -> NetError {
    match e {
        NetError::NoRoute(a) => NetError::NoRoute(*a),
        NetError::Netlink(io) => NetError::Netlink(std::io::Error::new(io.kind(), io.to_string())),
        _ => NetError::NoRoute(first),
    }
}

impl ConfigError {
    /// 2 for bad input, 1 when the kernel or the network failed us.
    pub fn exit_code(&self) -> u8 {
        match self {
            ConfigError::Net(
                NetError::Unresolved { .. }
                | NetError::Arp(..)
                | NetError::Netlink(_)
                | NetError::Mac(..),
            )
            | ConfigError::Randomness(_) => 1,
            _ => 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::net::Ipv6Addr;

    /// The spec of a command line, without touching the network.
    fn spec(args: &[&str]) -> Result<ScanSpec, ConfigError> {
        let mut v = vec!["xdpscan"];
        v.extend_from_slice(args);
        v.extend_from_slice(&["--seed", "1"]);
        ScanSpec::from_cli(&Cli::try_parse_from(v).expect("a valid command line"))
    }

    #[test]
    fn grab_plans_its_modules_bounds_and_waits() {
        let usage = |args: &[&str]| match spec(args) {
            Err(ConfigError::Usage(m)) => m,
            other => panic!("{args:?}: {other:?}"),
        };
        let s = spec(&[
            "198.18.0.1",
            "-p",
            "443",
            "--grab",
            "tls,http:8000-8100",
            "--max-inflight",
            "500",
            "--sni",
            "lab.example",
        ])
        .unwrap();
        let apps = s.services.apps.as_ref().unwrap();
        assert_eq!(apps.sni.as_deref(), Some("lab.example"));
        let grab = s.services.grab.as_ref().unwrap();
        assert_eq!(grab.max_connections, 500, "--max-inflight bounds the grabs");
        assert_eq!(
            grab.greeting_wait,
            Duration::ZERO,
            "named modules go at once"
        );
        assert!(grab.keep_open && !grab.udp);
        assert_eq!(grab.max_bytes, 65_536);
        let auto = spec(&["198.18.0.1", "-p", "443", "--grab", "auto"]).unwrap();
        assert_eq!(
            auto.services.grab.unwrap().greeting_wait,
            Duration::from_secs(2),
            "auto waits for a greeting"
        );
        assert!(
            usage(&["198.18.0.1", "-p", "53", "--scan", "udp", "--grab", "tls"])
                .contains("--grab talks to the open TCP ports")
        );
        assert!(
            usage(&["198.18.0.1", "-p", "443", "--sni", "a"]).contains("--sni applies to --grab")
        );
        assert!(
            usage(&["198.18.0.1", "-p", "443", "--output-zgrab", "z.json"])
                .contains("-oZ applies to --grab")
        );
        assert!(usage(&[
            "198.18.0.1",
            "-p",
            "443",
            "--grab",
            "tls",
            "--http-host",
            "a b"
        ])
        .contains("not a host name"));
        for grab in ["auto", "tls,ssh"] {
            let args = [
                "198.18.0.1",
                "-p",
                "80",
                "--grab",
                grab,
                "--http-redirects",
                "2",
            ];
            assert!(usage(&args).contains("--http-redirects applies to --grab's http module"));
        }
        assert!(usage(&[
            "198.18.0.1",
            "-p",
            "443",
            "--grab",
            "tls",
            "--max-connections",
            "5",
            "--max-inflight",
            "6"
        ])
        .contains("same bound"));
    }

    #[test]
    fn an_unreadable_port_table_is_said_not_swallowed() {
        let s = spec(&[
            "198.18.0.1",
            "-p",
            "80",
            "--output-xml",
            "x.xml",
            "--servicedb",
            "/nonexistent",
        ])
        .expect("the scan runs without names");
        assert!(s.services.port_table.is_none());
        assert_eq!(s.notes.len(), 1, "{:?}", s.notes);
        assert!(
            s.notes[0].contains("no service names in --output-xml")
                && s.notes[0].contains("/nonexistent"),
            "{:?}",
            s.notes
        );
    }

    #[test]
    fn the_plan_reads_only_the_machine_it_is_given() {
        let cli = Cli::try_parse_from(["xdpscan", "198.18.0.0/30", "-p", "80", "--cores", "5"])
            .expect("parses");
        let m = Machine {
            cores: vec![4, 5, 6],
            random: [11, 12],
            ..Machine::default()
        };
        let s = ScanSpec::resolve(&cli, &m).expect("plans");
        assert_eq!((s.pacing.seed, s.cluster.scan_id), (11, 12));
        assert_eq!(
            (s.pacing.tx_cores.clone(), s.pacing.rx_core),
            (vec![Some(5)], Some(4))
        );
        let m = Machine {
            cores: vec![0, 1],
            ..m
        };
        assert!(matches!(
            ScanSpec::resolve(&cli, &m),
            Err(ConfigError::NoSuchCore(5, 1))
        ));
    }

    #[test]
    fn ipv6_spaces_from_the_command_line() {
        let s = spec(&["2001:db8::/32-48", "-p", "80"]).unwrap();
        assert_eq!(
            (s.targets.space.len(), s.targets.space.ipv6_addresses()),
            (65_536, 65_536)
        );
        // Duplicated, excluded and covered single addresses fall away.
        let s = spec(&[
            "2001:db8::5,2001:db8::5,2001:db8::6,2001:db8::7,2001:db8:1::/126",
            "2001:db8:1::1",
            "--exclude",
            "2001:db8::6",
            "-p",
            "80",
        ])
        .unwrap();
        assert_eq!(s.targets.space.addresses(), 2 + 4);
        assert_eq!(s.targets.excluded, 1);
        // A window loses every network an exclusion touches.
        let s = spec(&[
            "2001:db8::/32-40",
            "--exclude",
            "2001:db8:100::1",
            "-p",
            "80",
        ])
        .unwrap();
        assert_eq!((s.targets.space.addresses(), s.targets.excluded), (255, 1));
        // Broad IPv6 targets lose the reserved blocks they straddle.
        let s = spec(&["2001:d00::/120", "2001:d00::/24-32", "-p", "80"]).unwrap();
        assert_eq!(s.targets.blocklisted, 1, "the /32 that is 2001:db8::/32");
        assert_eq!(s.targets.space.addresses(), 256 + 255);
        let first = s.targets.space.address(s.targets.space.ipv4_addresses());
        assert!(first.is_ipv6(), "{first}");
    }

    #[test]
    fn bad_ipv6_command_lines() {
        for (args, why) in [
            (&["2001:db8::/64", "-p", "80"][..], "prefix window"),
            (&["198.19.0.1", "--iid", "::1", "-p", "80"], "--iid"),
            (
                &["2001:db8::/32-48", "--iid", "nope", "-p", "80"],
                "interface identifier",
            ),
        ] {
            let e = spec(args).unwrap_err().to_string();
            assert!(e.contains(why), "{args:?}: {e}");
        }
        // Same seed, same random interface identifiers.
        let a = spec(&["2001:db8::/32-40", "-p", "80"]).unwrap();
        let b = spec(&["2001:db8::/32-40", "-p", "80"]).unwrap();
        let IpAddr::V6(x) = a.targets.space.address(7) else {
            panic!()
        };
        assert_eq!(IpAddr::V6(x), b.targets.space.address(7));
        assert_ne!(u128::from(x) & 0xffff_ffff, 0, "an IID below the /40");
        let _: Ipv6Addr = x;
    }
}
