//! The machine's facts a scan is planned from, gathered once and before any planning: who
//! `--user` is, the cores, the kernel's ephemeral ports, the scheduler's environment, the files
//! the request names, randomness and the command line as typed. Planning
//! ([`super::ScanSpec::resolve`]) reads only these and the request, so it does no I/O
//! (ARCHITECTURE.md, "A request, then a plan").

use std::sync::Arc;

use crate::{
    cli::{Cli, ShardArg},
    io::{netinfo, privilege::RunAs},
    probe::udp_payloads::Payloads,
    resume::ResumeFile,
    service::{self, PortTable, ServiceProbes},
    targets::{self, services::ServiceDb, Targets},
};

use super::ConfigError;

/// What the request needs to know of this machine.
#[derive(Debug, Default)]
pub struct Machine {
    /// `--user`, looked up (`None`: no switch).
    pub run_as: Option<RunAs>,
    /// The cores this process may run on.
    pub cores: Vec<usize>,
    /// The kernel's ephemeral ports (`net.ipv4.ip_local_port_range`), when it says.
    pub ephemeral_ports: Option<(u16, u16)>,
    /// `--shard auto`: what the batch scheduler's environment says.
    pub scheduler_shard: Option<Result<(u32, u32), String>>,
    /// `--target-file` and `--exclude-file`, read and parsed, in the order given.
    pub target_files: Vec<Targets>,
    pub exclude_files: Vec<Targets>,
    /// `--udp-payloads FILE`, read; its error waits for the plan (which first checks the scan
    /// sends UDP at all).
    pub payloads: Option<Result<Payloads, String>>,
    /// nmap-services (`--servicedb`) for port names and rankings, read when `-p` names a
    /// service or `--top-ports`/`-F` ranks; its error, if it cannot be, waits for the plan.
    pub services: Option<Result<Arc<ServiceDb>, String>>,
    /// The same file as the port table nmap's formats and -sV print names from.
    pub port_table: Option<Result<Arc<PortTable>, String>>,
    /// nmap's service probes (`--service-probes`, or the installed file) for `--banners`/`-sV`;
    /// the installed file's error, if it cannot be read, waits for the plan (only -sV needs it).
    pub service_probes: Option<Result<Arc<ServiceProbes>, String>>,
    /// `--resume FILE`, read.
    pub resume: Option<ResumeFile>,
    /// From the kernel's randomness: a seed (used without `--seed` or a resume file) and this
    /// run's id.
    pub random: [u64; 2],
    /// The command line as typed, for resume files and metadata.
    pub args: Vec<String>,
}

impl Machine {
    /// Asks the system what `cli` needs: the one place planning touches it.
    pub fn gather(cli: &Cli) -> Result<Self, ConfigError> {
        let run_as = crate::io::privilege::resolve(cli.privileges.user.as_deref())
            .map_err(|e| ConfigError::User(e.to_string()))?;
        let random = [
            crate::cookie::random_u64(),
            crate::cookie::random_bytes::<8>()
                .map(u64::from_le_bytes)
                .map_err(|e| ConfigError::Randomness(e.to_string()))?,
        ];
        let mut m = Machine {
            run_as,
            cores: core_affinity::get_core_ids()
                .unwrap_or_default()
                .into_iter()
                .map(|c| c.id)
                .collect(),
            ephemeral_ports: netinfo::ephemeral_ports(),
            scheduler_shard: (cli.cluster.shard == Some(ShardArg::Auto)).then(|| {
                crate::schedulers::shard_from_env(cli.cluster.shards, &|k| std::env::var(k).ok())
            }),
            resume: cli
                .resume
                .from
                .as_ref()
                .map(|p| ResumeFile::load(p))
                .transpose()?,
            random,
            args: std::env::args().collect(),
            ..Machine::default()
        };
        m.read_files(cli)?;
        Ok(m)
    }

    /// For a scan planned elsewhere (a job's, whose documents `collect` writes): the files the
    /// request names, and no fact of this machine: its cores are those the request names, no
    /// user is looked up, the seed is the request's.
    pub(crate) fn for_documents(cli: &Cli) -> Result<Self, ConfigError> {
        let e = &cli.engine;
        let threads = e.tx_threads.unwrap_or(1) as usize;
        let mut cores: Vec<usize> = (0..threads.max(2)).collect();
        cores.extend(e.cores.iter().flat_map(|c| c.0.iter().copied()));
        cores.extend(e.rx_core);
        let mut m = Machine {
            cores,
            random: [cli.pacing.seed.unwrap_or(0), 0],
            ..Machine::default()
        };
        m.read_files(cli)?;
        Ok(m)
    }

    /// The files `cli` names (or needs by default: nmap-services, the service probes).
    fn read_files(&mut self, cli: &Cli) -> Result<(), ConfigError> {
        let read = |files: &[std::path::PathBuf]| -> Result<Vec<Targets>, ConfigError> {
            Ok(files
                .iter()
                .map(|f| targets::read_target_file(f))
                .collect::<Result<_, _>>()?)
        };
        let t = &cli.targets;
        let needs_services = t.top_ports.is_some()
            || t.fast
            || [&t.ports, &t.exclude_ports]
                .iter()
                .any(|s| s.as_deref().is_some_and(names_a_service));
        let needs_table =
            super::Outputs::from_cli(cli).any(|f| f.service_names) || cli.services.service_version;
        let services = &cli.services;
        self.service_probes = match (services.banners || services.service_version)
            .then_some(&services.service_probes)
        {
            None => None,
            // A file the user named must be read; the installed one only -sV needs.
            Some(Some(p)) => Some(Ok(Arc::new(ServiceProbes::load(p)?))),
            Some(None) => Some(
                ServiceProbes::load(std::path::Path::new(service::probes::DEFAULT_PATH))
                    .map(Arc::new)
                    .map_err(|e| e.to_string()),
            ),
        };
        self.target_files = read(&t.target_files)?;
        self.exclude_files = read(&t.exclude_files)?;
        self.payloads = cli
            .probing
            .udp_payloads
            .as_ref()
            .map(|f| Payloads::load(f).map_err(|e| e.to_string()));
        self.services = needs_services.then(|| {
            ServiceDb::load(&t.servicedb)
                .map(Arc::new)
                .map_err(|e| e.to_string())
        });
        self.port_table = needs_table.then(|| {
            PortTable::load(&t.servicedb)
                .map(Arc::new)
                .map_err(|e| e.to_string())
        });
        Ok(())
    }
}

/// Does a `-p` spec name a service (`https`, `http*`), which only nmap-services resolves? Its
/// protocol prefixes (`T:`, `U:`, `S:`, `P:`) do not.
fn names_a_service(spec: &str) -> bool {
    spec.split(',')
        .map(|item| item.rsplit(':').next().unwrap_or(item))
        .any(|item| {
            item.bytes()
                .any(|b| b.is_ascii_alphabetic() || b == b'*' || b == b'?')
        })
}
