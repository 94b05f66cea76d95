//! Command-line definitions (nmap/masscan-style flags) and their value parsers. Every value that
//! can be checked without the kernel is checked here, so a typo is one clear line and exit 2.

use std::{ffi::OsString, path::PathBuf};

use clap::{Args, Parser, ValueEnum};

use crate::{cookie::PortRange, output::formats::Format, probe::ScanType, wire::MacAddr};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TransportChoice {
    /// AF_XDP, falling back to AF_PACKET (with one line on stderr) where it cannot bind
    Auto,
    /// AF_XDP only
    Xdp,
    /// AF_PACKET only
    Packet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum XdpModeChoice {
    /// In the driver where it supports XDP, else in the generic path
    Auto,
    /// In the driver only
    Native,
    /// In the generic receive path (slower; for drivers without XDP)
    Generic,
}

/// `--scan`'s values, aliases and help: the scan-type table's (`probe::table`).
impl ValueEnum for ScanType {
    fn value_variants<'a>() -> &'a [Self] {
        ScanType::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        let row = self.row();
        row.chosen_by_scan.then(|| {
            let p = clap::builder::PossibleValue::new(row.name).help(format!(
                "{}: {}",
                row.flags.join(", "),
                row.help
            ));
            match row.zmap.filter(|z| *z != row.name) {
                Some(z) => p.alias(z),
                None => p,
            }
        })
    }
}

impl Cli {
    /// The file `f` is asked to go to: the one place the CLI's fields meet the format table.
    pub(crate) fn output_file(&self, f: Format) -> Option<&PathBuf> {
        match f {
            Format::Ndjson => self.outputs.output_json.as_ref(),
            Format::Xml => self.outputs.output_xml.as_ref(),
            Format::Grepable => self.outputs.output_grepable.as_ref(),
            Format::Normal => self.outputs.output_normal.as_ref(),
            Format::List => self.outputs.output_list.as_ref(),
            Format::Csv => self.outputs.csv.as_ref(),
            Format::Zgrab => self.outputs.output_zgrab.as_ref(),
            Format::Replies => self.outputs.pcap_replies.as_ref(),
        }
    }
}

/// `--scan`'s help from the scan-type table: its flags for `-h`, each type's line for `--help`.
fn scan_help(long: bool) -> String {
    let chosen = ScanType::ALL
        .iter()
        .map(|t| t.row())
        .filter(|r| r.chosen_by_scan);
    if !long {
        let flags: Vec<&str> = chosen.flat_map(|r| r.flags.first().copied()).collect();
        return format!("Scan type, syn unless given (also {})", flags.join(" "));
    }
    let mut h = String::from(
        "Scan type, syn when none is given. One TCP type, udp and one SCTP type combine (-sS -sU \
         -sY), each probing its own ports (-p T:80,U:53,S:2905):",
    );
    for r in chosen {
        h.push_str(&format!(
            "\n  {} ({}): {}",
            r.name,
            r.flags.join(", "),
            r.help
        ));
        if let Some(z) = r.zmap.filter(|z| *z != r.name) {
            h.push_str(&format!("; ZMap's {z}"));
        }
    }
    h
}

/// How to reach and authenticate to the broker (`--publish` and every distributed command).
/// Its ids are its own (`nats_user`, not `user`): flattened into a command that has `--user`,
/// a shared id would let one option's value satisfy or trip the other's rules.
#[derive(Debug, Clone, Default, PartialEq, Args, serde::Serialize, serde::Deserialize)]
pub struct NatsAuth {
    /// NATS credentials file (JWT and NKey seed, as `nsc` writes it)
    #[arg(hide_short_help = true, long = "nats-creds", value_name = "FILE")]
    pub(crate) creds: Option<PathBuf>,
    /// NATS user (with --nats-password)
    #[arg(
        hide_short_help = true,
        id = "nats_user",
        long = "nats-user",
        value_name = "USER",
        requires = "nats_password"
    )]
    pub(crate) user: Option<String>,
    /// NATS password
    #[arg(
        hide_short_help = true,
        id = "nats_password",
        long = "nats-password",
        value_name = "PASS",
        requires = "nats_user"
    )]
    pub(crate) password: Option<String>,
    /// NATS authentication token
    #[arg(hide_short_help = true, long = "nats-token", value_name = "TOKEN")]
    pub(crate) token: Option<String>,
    /// Require TLS to the broker (implied by tls:// URLs and the other --nats-tls options)
    #[arg(hide_short_help = true, long = "nats-tls")]
    pub(crate) tls: bool,
    /// CA certificate(s) that sign the broker's certificate (PEM)
    #[arg(hide_short_help = true, long = "nats-tls-ca", value_name = "FILE")]
    pub(crate) tls_ca: Option<PathBuf>,
    /// Client certificate for mutual TLS (PEM, with --nats-tls-key)
    #[arg(
        hide_short_help = true,
        long = "nats-tls-cert",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub(crate) tls_cert: Option<PathBuf>,
    /// Client certificate's key (PEM)
    #[arg(
        hide_short_help = true,
        long = "nats-tls-key",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub(crate) tls_key: Option<PathBuf>,
}

/// Where a stopped scan writes its resume file unless `--resume-file` says.
pub(crate) const DEFAULT_RESUME_FILE: &str = "xdpscan-resume.json";

/// What `--generate` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GenerateKind {
    /// The man page, roff (man -l -)
    Man,
    /// bash completion
    Bash,
    /// zsh completion
    Zsh,
    /// fish completion
    Fish,
}

/// Writes the man page or a completion script for the command line defined here.
pub fn generate(kind: GenerateKind, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    use clap::CommandFactory;
    use clap_complete::Shell;
    let mut cmd = Cli::command();
    let shell = match kind {
        GenerateKind::Man => return clap_mangen::Man::new(cmd).render(out),
        GenerateKind::Bash => Shell::Bash,
        GenerateKind::Zsh => Shell::Zsh,
        GenerateKind::Fish => Shell::Fish,
    };
    clap_complete::generate(shell, &mut cmd, "xdpscan", out);
    Ok(())
}

/// Traceroute probe protocols (`--traceroute=PROTO`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TraceChoice {
    /// From the scan type: -sS tcp, -sU udp, -PE icmp
    Auto,
    /// TCP SYN to the scanned port (80 unless -p)
    Tcp,
    /// UDP to the scanned port (33434 unless -p)
    Udp,
    /// ICMP echo
    Icmp,
}

/// Stateless mass port scanner over AF_XDP.
#[derive(Debug, Clone, PartialEq, Parser, serde::Serialize, serde::Deserialize)]
#[command(name = "xdpscan", version, max_term_width = 100, allow_negative_numbers = true, after_help = AFTER_HELP, after_long_help = AFTER_LONG_HELP)]
pub struct Cli {
    #[command(flatten)]
    pub(crate) targets: TargetArgs,
    #[command(flatten)]
    pub(crate) probing: ProbingArgs,
    #[command(flatten)]
    pub(crate) services: ServiceArgs,
    #[command(flatten)]
    pub(crate) pacing: PacingArgs,
    #[command(flatten)]
    pub outputs: OutputArgs,
    #[command(flatten)]
    pub(crate) resume: ResumeArgs,
    #[command(flatten)]
    pub(crate) net: NetArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub(crate) privileges: PrivilegeArgs,
    #[command(flatten)]
    pub(crate) engine: EngineArgs,

    /// Print the man page (man) or a shell completion script (bash, zsh, fish) built from these
    /// options, then exit (scripts/install.sh installs them)
    #[arg(
        help_heading = "Advanced",
        hide_short_help = true,
        long = "generate",
        value_name = "KIND"
    )]
    pub generate: Option<GenerateKind>,
}

/// What is scanned: addresses, exclusions, ports.
#[derive(Debug, Clone, PartialEq, Args, serde::Serialize, serde::Deserialize)]
pub(crate) struct TargetArgs {
    /// Targets: addresses, CIDR blocks, ranges (198.19.0.1-200), IPv4 and IPv6
    ///
    /// Targets: address, CIDR (198.19.0.0/16), range (198.19.0.1-198.19.0.200 or 198.19.0.1-200);
    /// commas allowed
    #[arg(id = "targets", help_heading = "Targets", value_name = "TARGET")]
    pub(crate) addresses: Vec<String>,

    /// Read targets from FILE (also -iL)
    ///
    /// Read targets from a file, one or more per line, '#' comments (also -iL)
    #[arg(help_heading = "Targets", long = "target-file", value_name = "FILE")]
    pub(crate) target_files: Vec<PathBuf>,

    /// Never probe these targets
    ///
    /// Exclude targets (same syntax as targets); repeatable
    #[arg(help_heading = "Targets", long = "exclude", value_name = "LIST")]
    pub(crate) excludes: Vec<String>,

    /// Exclude targets listed in a file; repeatable
    #[arg(
        help_heading = "Targets",
        hide_short_help = true,
        long = "exclude-file",
        value_name = "FILE"
    )]
    pub(crate) exclude_files: Vec<PathBuf>,

    /// Ports: 22,80,8000-8100, - for all, names (https), T:/U: for -sS -sU
    ///
    /// Ports: 22,80,8000-8100; '-' for 1-65535; open ends like -1024; service names from
    /// nmap-services (https, 'http*') (-sO: protocol numbers)
    #[arg(
        help_heading = "Ports",
        short = 'p',
        long = "ports",
        value_name = "SPEC"
    )]
    pub(crate) ports: Option<String>,

    /// The N ports most often open (nmap-services; -F: 100)
    ///
    /// The N ports most often found open (nmap-services), for the scanned protocol; with -p,
    /// the N most common among those
    #[arg(help_heading = "Ports", long = "top-ports", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub(crate) top_ports: Option<u32>,

    /// The 100 most common ports (nmap's -F)
    ///
    /// Fast: the 100 most common ports (nmap's -F, --top-ports 100)
    #[arg(
        help_heading = "Ports",
        hide_short_help = true,
        short = 'F',
        long = "fast",
        conflicts_with = "top_ports"
    )]
    pub(crate) fast: bool,

    /// Ports never probed, in -p syntax (names too)
    #[arg(
        help_heading = "Ports",
        hide_short_help = true,
        long = "exclude-ports",
        value_name = "SPEC"
    )]
    pub(crate) exclude_ports: Option<String>,

    /// nmap-services file for port names and --top-ports
    #[arg(help_heading = "Ports", hide_short_help = true, long = "servicedb", value_name = "FILE", default_value = crate::targets::services::DEFAULT_PATH)]
    pub(crate) servicedb: PathBuf,
}

/// How targets are probed: the scan types and their options.
#[derive(Debug, Clone, PartialEq, Args, serde::Serialize, serde::Deserialize)]
pub(crate) struct ProbingArgs {
    #[arg(help_heading = "Scan types", long = "scan", value_name = "TYPE", action = clap::ArgAction::Append, hide_possible_values = true, help = scan_help(false), long_help = scan_help(true))]
    pub(crate) scan: Vec<ScanType>,

    /// TCP flags of the probes (names like SYNFIN or URG,PSH,FIN, or a number); the scan type
    /// (SYN unless given) decides how replies are read, as in nmap
    #[arg(help_heading = "Scan types", hide_short_help = true, long = "scanflags", value_name = "FLAGS", value_parser = crate::probe::tcp::parse_scanflags)]
    pub(crate) scanflags: Option<u8>,

    /// UDP payloads in nmap-payloads format, replacing the built-in ones for the ports it lists
    /// (Debian's nmap ships /usr/share/nmap/nmap-payloads)
    #[arg(
        help_heading = "Scan types",
        hide_short_help = true,
        long = "udp-payloads",
        value_name = "FILE"
    )]
    pub(crate) udp_payloads: Option<PathBuf>,

    /// Report targets that never answered (filtered, open|filtered, down)
    ///
    /// After the cooldown, report every target that never answered with the state nmap gives
    /// silence (filtered, open|filtered, down). Keeps one bit per (address, port): 128 MiB per
    /// billion targets, at most 2^34 targets
    #[arg(help_heading = "Scan types", long = "report-silent")]
    pub(crate) report_silent: bool,

    /// IP time-to-live of the probes; with --traceroute the range of TTLs to probe
    /// [default: 64; with --traceroute 1-30]
    #[arg(help_heading = "Scan types", hide_short_help = true, long = "ttl", value_name = "N|LO-HI", value_parser = parse_ttl)]
    pub(crate) ttl: Option<(u8, u8)>,

    /// Trace the path to every target (tcp, udp or icmp)
    ///
    /// Trace the path to every target: one probe per TTL of --ttl, each router's ICMP
    /// time-exceeded mapped back to its hop without state. PROTO is tcp (SYN), udp or icmp
    /// (echo); without it, the scan type's (-sS tcp, -sU udp, -PE icmp)
    #[arg(help_heading = "Scan types", hide_possible_values = true, long = "traceroute", value_name = "PROTO", num_args = 0..=1, require_equals = true, default_missing_value = "auto")]
    pub(crate) traceroute: Option<TraceChoice>,
}

/// What is asked of open ports: banners and service versions.
#[derive(Debug, Clone, PartialEq, Args, serde::Serialize, serde::Deserialize)]
pub(crate) struct ServiceArgs {
    /// Grab banners from open ports
    ///
    /// Grab banners from open ports (SYN scans over AF_XDP): complete the handshake from the
    /// receive thread, wait --banner-wait for a greeting, else send the probe that fits the
    /// port, keep what comes back, close with RST
    #[arg(help_heading = "Services", long = "banners")]
    pub(crate) banners: bool,

    /// Grab TLS certificates, HTTP, SSH host keys from open ports (tls,http,ssh,jarm or auto; -oZ)
    ///
    /// Grab the application layer from the open ports a SYN scan finds, in the same pass, over
    /// the scanner's own TCP: tls (the handshake and the certificate chain, parsed), http
    /// (GET /, inside TLS where tls found a session), ssh (identification, KEXINIT, host
    /// key), jarm (Salesforce's JARM fingerprint: ten ClientHellos, ten connections);
    /// MODULE:PORTS runs a module on those ports only (http:8000-8100,ssh:22,2222);
    /// auto finds which of the three a port speaks (a greeting, a TLS hello with a request
    /// inside, a plain request: three connections at most) and reports a port that opens but
    /// carries no service as such. Results in ZGrab2's JSON (-oZ) and nmap's ssl-cert,
    /// ssh-hostkey and http-title script output (-oX, -oN)
    #[arg(help_heading = "Services", long = "grab", value_name = "MODULES")]
    pub(crate) grab: Option<crate::app::GrabSpec>,

    /// --grab: the server name TLS sessions ask for (SNI) [default: none, the address]
    #[arg(
        help_heading = "Services",
        hide_short_help = true,
        long = "sni",
        value_name = "NAME"
    )]
    pub(crate) sni: Option<String>,

    /// --grab http: the Host header [default: the address, with the port unless 80/443]
    #[arg(
        help_heading = "Services",
        hide_short_help = true,
        long = "http-host",
        value_name = "NAME"
    )]
    pub(crate) http_host: Option<String>,

    /// --grab http: redirects followed, each only while it stays on the port grabbed
    ///
    /// Follow up to N redirects (301, 302, 303, 307, 308 with a Location) of --grab's http
    /// module (not auto's identification, which keeps the first response), as ZGrab2's
    /// --max-redirects does; the earlier responses go into redirect_response_chain.
    /// Only a Location on the same address and port is followed (a path, or a URL naming the
    /// address or the --http-host name): a redirect never leads to an address outside the
    /// scan's targets or inside its blocklist, and no name is resolved. Others end the chain
    /// with the redirect as the response [default: 0, none]
    #[arg(
        help_heading = "Services",
        hide_short_help = true,
        long = "http-redirects",
        value_name = "N",
        default_value = "0",
        value_parser = clap::value_parser!(u8).range(0..=20)
    )]
    pub(crate) http_redirects: u8,

    /// Service and version detection (also -sV)
    ///
    /// Service and version detection (also -sV), as nmap runs it: the NULL probe, then the
    /// probes of nmap-service-probes for the port and up to --version-intensity, soft matches
    /// followed, TLS opened for ssl; reported as service name, product, version, extra info
    /// and CPE
    #[arg(help_heading = "Services", long = "service-version")]
    pub(crate) service_version: bool,

    /// -sV: the rarest probe (1-9) sent to a port no probe lists; probes listing the port are
    /// always sent (0: only those) [default: 7]
    #[arg(help_heading = "Services", hide_short_help = true, long = "version-intensity", value_name = "0-9", value_parser = clap::value_parser!(u8).range(0..=9))]
    pub(crate) version_intensity: Option<u8>,

    /// -sV: intensity 2 (nmap's --version-light)
    #[arg(help_heading = "Services", hide_short_help = true, long = "version-light", conflicts_with_all = ["version_intensity", "version_all"])]
    pub(crate) version_light: bool,

    /// -sV: intensity 9, every probe (nmap's --version-all)
    #[arg(
        help_heading = "Services",
        hide_short_help = true,
        long = "version-all",
        conflicts_with = "version_intensity"
    )]
    pub(crate) version_all: bool,

    /// nmap-service-probes to use [default: /usr/share/nmap/nmap-service-probes; --banners
    /// without it sends built-in HTTP and TLS probes]
    #[arg(
        help_heading = "Services",
        hide_short_help = true,
        long = "service-probes",
        value_name = "FILE"
    )]
    pub(crate) service_probes: Option<PathBuf>,

    /// Seconds an open port may stay silent before we send it a probe [default: 2]
    #[arg(help_heading = "Services", hide_short_help = true, long = "banner-wait", value_name = "SECS", value_parser = parse_secs)]
    pub(crate) banner_wait: Option<f64>,

    /// Seconds a banner connection may last from the handshake on [default: 6]
    #[arg(help_heading = "Services", hide_short_help = true, long = "banner-timeout", value_name = "SECS", value_parser = parse_secs)]
    pub(crate) banner_timeout: Option<f64>,

    /// Bytes of banner kept per port [default: 4096]
    #[arg(help_heading = "Services", hide_short_help = true, long = "banner-bytes", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_048_576))]
    pub(crate) banner_bytes: Option<u32>,

    /// Banner connections open at once; open ports beyond are reported without a banner
    /// [default: 10000]
    #[arg(help_heading = "Services", hide_short_help = true, long = "max-connections", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub(crate) max_connections: Option<u32>,
}

/// How fast, how often, for how long.
#[derive(Debug, Clone, PartialEq, Args, serde::Serialize, serde::Deserialize)]
pub(crate) struct PacingArgs {
    /// Send every probe N more times
    ///
    /// Send every probe N more times, in further passes over the whole permutation (ICMP rate
    /// limits on real hosts hide closed UDP ports); -sT retries timed-out connects
    #[arg(help_heading = "Rate and timing", long = "retries", value_name = "N", default_value = "0", value_parser = clap::value_parser!(u32).range(0..=20))]
    pub(crate) retries: u32,

    /// -sT: milliseconds before an unanswered connect counts as silence [default: 1000]
    #[arg(help_heading = "Rate and timing", hide_short_help = true, long = "connect-timeout", value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub(crate) connect_timeout: Option<u64>,

    /// -sT: connects in flight at once (bounded by the open-files limit) [default: 2048];
    /// --grab: ports grabbed at once, the bound of --max-connections [default: 10000]
    #[arg(help_heading = "Rate and timing", hide_short_help = true, long = "max-inflight", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub(crate) max_inflight: Option<u32>,

    /// Probes per second (10k, 1.5M); 0: as fast as replies keep up
    ///
    /// Probes per second over all threads (suffixes k, M); 0 = as fast as the receive side
    /// keeps up without losing replies (a governor sets the rate; the status line shows it)
    #[arg(help_heading = "Rate and timing", short = 'r', long = "rate", alias = "max-rate", value_name = "PPS", default_value = "10000", value_parser = parse_rate)]
    pub(crate) rate: u64,

    /// Seconds to keep receiving after the last probe
    ///
    /// Seconds to keep receiving after the last probe
    #[arg(help_heading = "Rate and timing", long = "wait", value_name = "SECS", default_value = "8", value_parser = parse_secs)]
    pub(crate) wait: f64,

    /// Seed of the permutation [default: random]; printed in the summary so a scan can be repeated
    #[arg(
        help_heading = "Rate and timing",
        hide_short_help = true,
        long = "seed",
        value_name = "N"
    )]
    pub(crate) seed: Option<u64>,

    /// Stop sending after SECS (then the cooldown), as cleanly as Ctrl-C
    #[arg(help_heading = "Rate and timing", hide_short_help = true, long = "max-runtime", value_name = "SECS", value_parser = parse_secs)]
    pub(crate) max_runtime: Option<f64>,

    /// Stop once N results are written
    #[arg(help_heading = "Rate and timing", hide_short_help = true, long = "max-results", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) max_results: Option<u64>,
}

/// Where results, captures and status go.
#[derive(Debug, Clone, PartialEq, Args, serde::Serialize, serde::Deserialize)]
pub struct OutputArgs {
    /// Build every probe, send nothing (with --pcap FILE: write them)
    ///
    /// Build every probe but send nothing: write them to --pcap, or only count them
    #[arg(help_heading = "Output", long = "dry-run")]
    pub(crate) dry_run: bool,

    /// With --dry-run: write every probe to this pcap file
    #[arg(
        help_heading = "Output",
        hide_short_help = true,
        long = "pcap",
        value_name = "FILE",
        requires = "dry_run"
    )]
    pub(crate) pcap: Option<PathBuf>,

    /// NDJSON to FILE (also -oJ; stdout when no output is given)
    ///
    /// NDJSON results to FILE ('-' for stdout; also -oJ). Without any -o option, NDJSON goes
    /// to stdout
    #[arg(
        help_heading = "Output",
        short = 'o',
        long = "output-json",
        alias = "output",
        value_name = "FILE"
    )]
    pub(crate) output_json: Option<PathBuf>,

    /// nmap XML to FILE (also -oX)
    ///
    /// nmap XML to FILE (also -oX): valid against nmap.dtd, renders with nmap.xsl
    #[arg(help_heading = "Output", long = "output-xml", value_name = "FILE")]
    pub(crate) output_xml: Option<PathBuf>,

    /// nmap grepable to FILE (also -oG)
    ///
    /// nmap grepable format to FILE (also -oG)
    #[arg(help_heading = "Output", long = "output-grepable", value_name = "FILE")]
    pub(crate) output_grepable: Option<PathBuf>,

    /// nmap's normal output to FILE (also -oN): a table of ports per host
    #[arg(
        help_heading = "Output",
        hide_short_help = true,
        long = "output-normal",
        value_name = "FILE"
    )]
    pub(crate) output_normal: Option<PathBuf>,

    /// masscan list to FILE (also -oL)
    ///
    /// masscan list format to FILE (also -oL): "open tcp 80 198.19.0.5 1795000000"
    #[arg(help_heading = "Output", long = "output-list", value_name = "FILE")]
    pub(crate) output_list: Option<PathBuf>,

    /// ZGrab2's JSON of --grab's results to FILE (also -oZ)
    ///
    /// ZGrab2's JSON to FILE (also -oZ): one line per grabbed port, {"ip", "port", "data":
    /// {"tls"|"http"|"ssh": {"status", "protocol", "result", "timestamp", "error"}}}
    #[arg(
        help_heading = "Output",
        hide_short_help = true,
        long = "output-zgrab",
        value_name = "FILE"
    )]
    pub(crate) output_zgrab: Option<PathBuf>,

    /// CSV to FILE, columns from --fields (ZMap's names)
    ///
    /// CSV to FILE with the columns of --fields and a header row
    #[arg(help_heading = "Output", long = "csv", value_name = "FILE")]
    pub(crate) csv: Option<PathBuf>,

    /// Columns of --csv, in order (ZMap's names; --list-fields shows them all); without --csv,
    /// NDJSON objects of these fields only, as ZMap's JSON output
    /// [default: saddr,sport,proto,state,reason,ttl,timestamp_str]
    #[arg(help_heading = "Output", hide_short_help = true, short = 'f', long = "fields", value_name = "LIST", value_parser = parse_fields)]
    pub(crate) fields: Option<FieldList>,

    /// Print every CSV field with what it holds, then exit
    #[arg(help_heading = "Output", hide_short_help = true, long = "list-fields")]
    pub list_fields: bool,

    /// Every validated reply as received (duplicates included) to a pcap FILE
    #[arg(
        help_heading = "Output",
        hide_short_help = true,
        long = "pcap-replies",
        value_name = "FILE"
    )]
    pub(crate) pcap_replies: Option<PathBuf>,

    /// A JSON document describing the run (seed, rates, counts, times) to FILE at the end
    #[arg(
        help_heading = "Output",
        hide_short_help = true,
        short = 'm',
        long = "metadata",
        value_name = "FILE"
    )]
    pub(crate) metadata: Option<PathBuf>,

    /// masscan-style JSON status lines on stderr instead of the status line or progress bar
    #[arg(help_heading = "Output", hide_short_help = true, long = "status-json")]
    pub(crate) status_json: bool,

    /// ZMap's status CSV (one row per second) to FILE
    #[arg(
        help_heading = "Output",
        hide_short_help = true,
        long = "status-file",
        value_name = "FILE"
    )]
    pub(crate) status_file: Option<PathBuf>,

    /// Write only open ports (nmap's --open)
    ///
    /// Write only open and possibly open ports (open, open|filtered, unfiltered; up hosts), as
    /// nmap's --open; the summary still counts every state
    #[arg(help_heading = "Output", long = "open", conflicts_with = "show")]
    pub(crate) open: bool,

    /// Write only ports in these states (masscan's --show): open,closed,filtered,unfiltered,
    /// open|filtered,closed|filtered,up,down
    #[arg(help_heading = "Output", hide_short_help = true, long = "show", value_name = "STATES", value_parser = parse_states)]
    pub(crate) show: Option<StateList>,

    /// Do not write ports in these states (masscan's --noshow), e.g. --noshow closed
    #[arg(help_heading = "Output", hide_short_help = true, long = "noshow", value_name = "STATES", value_parser = parse_states)]
    pub(crate) noshow: Option<StateList>,

    /// Print a line for every packet sent and received (and every -sT connect) on stderr, as
    /// nmap's --packet-trace does
    #[arg(help_heading = "Output", hide_short_help = true, long = "packet-trace")]
    pub(crate) packet_trace: bool,

    /// No status on stderr
    ///
    /// No status on stderr (the start and summary lines too)
    #[arg(help_heading = "Output", short = 'q', long = "quiet")]
    pub(crate) quiet: bool,
}

/// Stopping and continuing.
#[derive(Debug, Clone, PartialEq, Args, serde::Serialize, serde::Deserialize)]
pub(crate) struct ResumeArgs {
    /// Continue a stopped scan from its resume file
    ///
    /// Continue an interrupted scan from the resume file it wrote (same targets, ports and scan
    /// type; the seed, shard and thread count come from the file)
    #[arg(
        id = "resume",
        help_heading = "Output",
        long = "resume",
        value_name = "FILE"
    )]
    pub(crate) from: Option<PathBuf>,

    /// Where an interrupted scan writes its resume file
    #[arg(id = "resume_file", 
        help_heading = "Output",
        hide_short_help = true,
        long = "resume-file",
        value_name = "FILE",
        default_value = DEFAULT_RESUME_FILE
    )]
    pub(crate) file: PathBuf,
}

/// Where probes leave from.
#[derive(Debug, Clone, PartialEq, Args, serde::Serialize, serde::Deserialize)]
pub(crate) struct NetArgs {
    /// Interface to send on [default: the route's]
    ///
    /// Interface to send on [default: interface of the route to the first target]
    #[arg(
        help_heading = "Network",
        short = 'i',
        long = "interface",
        value_name = "IF"
    )]
    pub(crate) interface: Option<String>,

    /// Source address or pool (A-B, P/LEN) [default: the interface's]
    ///
    /// Source address, IPv4 or IPv6 [default: the interface's address of the targets' family;
    /// for IPv6 its global address]. A range (198.18.0.1-198.18.0.8) or prefix
    /// (2001:db8:ff::/125) of at most 256 addresses is a source pool, as ZMap's -S range and
    /// masscan's --adapter-ip range: each probe leaves from the address its cookie picks, and
    /// replies to every one are taken. The network must bring the pool's traffic to this
    /// interface (the addresses assigned to it, or routed here).
    #[arg(
        help_heading = "Network",
        long = "source-ip",
        short = 'S',
        value_name = "IP|A-B|P/LEN"
    )]
    pub(crate) source_ip: Option<crate::cookie::SourcePool>,

    /// Source ports our probes use and our XDP program claims; must lie outside the kernel's
    /// ephemeral range [default: 61000-65535]
    #[arg(help_heading = "Network", hide_short_help = true, long = "source-port", short = 'g', value_name = "LO-HI", value_parser = parse_port_range)]
    pub(crate) source_port: Option<PortRange>,

    /// MAC of the next hop [default: from the kernel's neighbour table, resolved by ARP if missing]
    #[arg(help_heading = "Network", hide_short_help = true, long = "gateway-mac", alias = "router-mac", value_name = "MAC", value_parser = parse_mac)]
    pub(crate) gateway_mac: Option<MacAddr>,

    /// Interface identifier of prefix-window targets (PREFIX/A-B): `random` (per target, from
    /// the seed) or an address whose bits below /B are used, e.g. `::1` [default: random]
    #[arg(
        help_heading = "IPv6",
        hide_short_help = true,
        long = "iid",
        value_name = "IID"
    )]
    pub(crate) iid: Option<String>,
}

/// Shards and the broker.
#[derive(Debug, Clone, PartialEq, Args, serde::Serialize, serde::Deserialize)]
pub struct ClusterArgs {
    /// Scan shard I of N (with one --seed), or auto from the scheduler
    ///
    /// Scan only shard I of N (1-based); shards with one --seed are disjoint and cover
    /// everything. `auto`: from the batch scheduler (Kubernetes Indexed Job, Slurm array, Nomad)
    #[arg(help_heading = "Cluster", long = "shard", value_name = "I/N|auto", value_parser = parse_shard_arg)]
    pub(crate) shard: Option<ShardArg>,

    /// The shard count for --shard auto where the scheduler gives only the index (Kubernetes:
    /// the Job's completions; Nomad: the group's count)
    #[arg(help_heading = "Cluster", hide_short_help = true, long = "shards", value_name = "N", requires = "shard", value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub(crate) shards: Option<u32>,

    /// Also publish every result to NATS JetStream (nats://HOST:PORT/SUBJECT)
    ///
    /// Also publish every result to NATS JetStream, one message per result (NDJSON line with
    /// a Nats-Msg-Id of its key): nats://HOST:PORT/SUBJECT, tls:// for TLS
    #[arg(help_heading = "Cluster", long = "publish", value_name = "URL")]
    pub publish: Option<String>,

    #[command(flatten, next_help_heading = "Cluster")]
    pub nats_auth: NatsAuth,
}

/// Who the scanner becomes.
#[derive(Debug, Clone, PartialEq, Args, serde::Serialize, serde::Deserialize)]
pub(crate) struct PrivilegeArgs {
    /// Run as USER with no capabilities once sockets are open [default: nobody]
    ///
    /// After opening its sockets and attaching its program, run as USER (name or uid) with no
    /// capabilities [default: nobody when started as root; root keeps root]
    #[arg(help_heading = "Privileges", long = "user", value_name = "USER")]
    pub(crate) user: Option<String>,
}

/// Threads, cores and the packet I/O.
#[derive(Debug, Clone, PartialEq, Args, serde::Serialize, serde::Deserialize)]
pub(crate) struct EngineArgs {
    /// Transmit threads, each pinned to a core [default: 1, or one per --cores entry]
    #[arg(help_heading = "Advanced", hide_short_help = true, long = "tx-threads", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub(crate) tx_threads: Option<u32>,

    /// Probes handed to the kernel per transmit kick [default: 128]
    ///
    /// Probes each transmit thread writes before one kick of its queue. Larger batches cost
    /// fewer system calls; on a veth lab link, batches near its 256-frame ring overflow it with
    /// the replies. `xdpscan bench` measures the choice.
    #[arg(help_heading = "Advanced", hide_short_help = true, long = "tx-batch", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=2048))]
    pub(crate) tx_batch: Option<u32>,

    /// Cores for the transmit threads, in order: 0,1 or 0-3
    #[arg(help_heading = "Advanced", hide_short_help = true, long = "cores", value_name = "LIST", value_parser = parse_cores)]
    pub(crate) cores: Option<CoreList>,

    /// Core for the receive thread [default: the first core no transmit thread uses]
    #[arg(
        help_heading = "Advanced",
        hide_short_help = true,
        long = "rx-core",
        value_name = "N"
    )]
    pub(crate) rx_core: Option<usize>,

    /// Packet I/O
    #[arg(
        help_heading = "Advanced",
        hide_short_help = true,
        long = "transport",
        value_name = "KIND",
        default_value = "auto"
    )]
    pub(crate) transport: TransportChoice,

    /// Where the XDP program that steers replies is attached (AF_XDP transport)
    #[arg(
        help_heading = "Advanced",
        hide_short_help = true,
        long = "xdp-mode",
        value_name = "MODE",
        default_value = "auto"
    )]
    pub(crate) xdp_mode: XdpModeChoice,
}

const AFTER_HELP: &str = "\
Commands: xdpscan probe (one packet, whole answer), bench, submit, worker, collect, status.
Needs root, or CAP_NET_RAW, CAP_NET_ADMIN, CAP_BPF, CAP_PERFMON and CAP_IPC_LOCK (-sT: none).
Exit status: 0 complete, 1 error, 2 usage, 3 stopped by a limit, 130 by a signal.
Every option: --help; man xdpscan.";

const AFTER_LONG_HELP: &str = "\
Commands (each with --help):
  xdpscan probe TARGET     one crafted packet, its answer shown layer by layer
  xdpscan bench            probes/s this machine and NIC send and receive, for sizing a sweep
  xdpscan submit ...       put a scan on NATS JetStream as a job of shards
  xdpscan worker ...       scan the job's shards on this machine
  xdpscan collect ...      each result of a job once, in any output format
  xdpscan status ...       a job's shards and counts
Privileges: sending raw packets needs root, or the capabilities CAP_NET_RAW, CAP_NET_ADMIN,
CAP_BPF, CAP_PERFMON and CAP_IPC_LOCK; once its sockets are open and its XDP program attached,
xdpscan runs as --user (nobody) with none. -sT and --dry-run need no privileges.
Scan types: -sS (default) -sA -sW -sF -sN -sX -sM -sU -sY -sZ -sO -sT, -PE/--ping; -sV, --banners
on open ports; --traceroute for paths. nmap's, masscan's and ZMap's own flags (-T4, -Pn, -oA,
--adapter, -P ...) are translated with a note or refused with a hint.
Outputs: -oJ/-o NDJSON, -oX nmap XML, -oG grepable, -oL masscan list, --csv; several at once.
Without any, NDJSON goes to stdout, one object per (address, port):
  {\"ip\":\"198.19.0.5\",\"port\":80,\"proto\":\"tcp\",\"state\":\"open\",\"reason\":\"syn-ack\",\"ttl\":64,\"scan\":\"syn\",\"ts\":\"...\"}
Exit status: 0 complete (or stdout closed), 1 runtime error, 2 usage error, 3 stopped by
--max-runtime or --max-results, 130 stopped by SIGINT or SIGTERM (a resume file is written).
Ctrl-C stops sending and keeps receiving through --wait; a second Ctrl-C ends at once.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ProbeProto {
    Tcp,
    Udp,
    Icmp,
}

/// `xdpscan probe`: one crafted packet, its answer shown layer by layer.
#[derive(Debug, Parser)]
#[command(
    name = "xdpscan probe",
    version,
    max_term_width = 100,
    after_help = PROBE_AFTER_HELP
)]
pub struct ProbeCli {
    /// The one address to send to, IPv4 or IPv6
    #[arg(value_name = "TARGET")]
    pub(crate) target: std::net::IpAddr,

    /// Protocol of the packet
    #[arg(long = "proto", value_name = "PROTO", default_value = "tcp")]
    pub(crate) proto: ProbeProto,

    /// Destination port [default: 80 for TCP, 53 for UDP]
    #[arg(short = 'p', long = "dport", value_name = "PORT")]
    pub(crate) dport: Option<u16>,

    /// Source port (also the ICMP identifier) [default: one from 61000-65535]
    #[arg(long = "sport", short = 'g', value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) sport: Option<u16>,

    /// TCP flags, as Scapy writes them (S, SA, FPU) or by name (SYN,ACK) or number
    #[arg(long = "flags", value_name = "FLAGS", default_value = "S", value_parser = parse_flags)]
    pub(crate) flags: u8,

    /// TCP sequence number [default: random]
    #[arg(long = "seq", value_name = "N")]
    pub(crate) seq: Option<u32>,

    /// TCP acknowledgment number
    #[arg(long = "ack", value_name = "N", default_value = "0")]
    pub(crate) ack: u32,

    /// TCP window
    #[arg(long = "window", value_name = "N", default_value = "1024")]
    pub(crate) window: u16,

    /// TCP option, repeatable, in order: mss:1460, wscale:7, sackok, ts:VAL:ECR, nop, eol,
    /// or raw KIND:HEX [default: mss:1460 on SYNs]
    #[arg(long = "tcp-option", value_name = "OPT", value_parser = parse_tcp_option)]
    pub(crate) tcp_options: Vec<Bytes>,

    /// IP time-to-live
    #[arg(long = "ttl", value_name = "N", default_value = "64", value_parser = clap::value_parser!(u8).range(1..))]
    pub(crate) ttl: u8,

    /// IP identification, or the IPv6 flow label [default: random]
    #[arg(long = "ip-id", value_name = "N")]
    pub(crate) ip_id: Option<u16>,

    /// IP type of service byte (IPv6: traffic class)
    #[arg(long = "tos", value_name = "N", default_value = "0")]
    pub(crate) tos: u8,

    /// Set the IP don't-fragment bit
    #[arg(long = "df")]
    pub(crate) df: bool,

    /// ICMP type (8 echo, 13 timestamp, 15 information, 17 address mask; ICMPv6 128 echo)
    /// [default: the target family's echo request, 8 or 128]
    #[arg(long = "icmp-type", value_name = "N")]
    pub(crate) icmp_type: Option<u8>,

    /// ICMP code
    #[arg(long = "icmp-code", value_name = "N", default_value = "0")]
    pub(crate) icmp_code: u8,

    /// ICMP sequence number
    #[arg(long = "icmp-seq", value_name = "N", default_value = "1")]
    pub(crate) icmp_seq: u16,

    /// Payload as hex (nmap's --data): 0xdeadbeef, deadbeef or \xde\xad
    #[arg(long = "data", value_name = "HEX", value_parser = parse_hex, group = "payload")]
    pub(crate) data: Option<Bytes>,

    /// Payload as text (nmap's --data-string); \r \n \t \xHH escapes allowed
    #[arg(long = "data-string", value_name = "TEXT", group = "payload")]
    pub(crate) data_string: Option<String>,

    /// Payload of N random bytes (nmap's --data-length)
    #[arg(long = "data-length", value_name = "N", group = "payload", value_parser = clap::value_parser!(u16).range(0..=1400))]
    pub(crate) data_length: Option<u16>,

    /// Seconds to wait for the answer
    #[arg(long = "timeout", value_name = "SECS", default_value = "2", value_parser = parse_secs)]
    pub(crate) timeout: f64,

    /// Interface to send on [default: interface of the route to the target]
    #[arg(short = 'i', long = "interface", value_name = "IF")]
    pub(crate) interface: Option<String>,

    /// Source address [default: the interface's address]
    #[arg(long = "source-ip", short = 'S', value_name = "IP")]
    pub(crate) source_ip: Option<std::net::IpAddr>,

    /// MAC of the next hop [default: from the neighbour table, by ARP if missing]
    #[arg(long = "gateway-mac", value_name = "MAC", value_parser = parse_mac)]
    pub(crate) gateway_mac: Option<MacAddr>,

    /// Packet I/O
    #[arg(long = "transport", value_name = "KIND", default_value = "auto")]
    pub(crate) transport: TransportChoice,

    /// After opening its sockets and attaching its program, run as USER (name or uid) with no
    /// capabilities [default: nobody when started as root; root keeps root]
    #[arg(long = "user", value_name = "USER")]
    pub(crate) user: Option<String>,

    /// Where the XDP program that steers the answer is attached
    #[arg(long = "xdp-mode", value_name = "MODE", default_value = "auto")]
    pub(crate) xdp_mode: XdpModeChoice,

    /// Print only the one-line summaries, not every layer and the hexdump
    #[arg(short = 'q', long = "quiet")]
    pub(crate) quiet: bool,
}

/// xdpscan bench: what this machine and its NIC can do, for sizing a sweep
#[derive(Debug, Parser)]
#[command(
    name = "xdpscan bench",
    bin_name = "xdpscan bench",
    version,
    max_term_width = 100,
    after_help = BENCH_AFTER_HELP
)]
pub struct BenchCli {
    /// Interface to measure on [default: a veth between two namespaces made for the run, with
    /// the XDP responder answering at its far end]
    #[arg(short = 'i', long = "interface", value_name = "IF", requires = "to")]
    pub(crate) interface: Option<String>,

    /// Where every probe goes with -i: an address or a CIDR block you own, through the
    /// interface's next hop
    #[arg(long = "to", value_name = "TARGET", requires = "interface")]
    pub(crate) to: Option<String>,

    /// MAC of the next hop with -i [default: from the neighbour table, by ARP if missing]
    #[arg(long = "gateway-mac", value_name = "MAC", value_parser = parse_mac)]
    pub(crate) gateway_mac: Option<MacAddr>,

    /// Transmit thread counts to measure
    #[arg(long = "threads", value_name = "LIST", value_delimiter = ',', default_value = "1,2", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub(crate) threads: Vec<u32>,

    /// Probes per transmit kick to measure (the scanner's --tx-batch, and the kernel's floor)
    #[arg(long = "batch", value_name = "LIST", value_delimiter = ',', default_value = "32,128,512", value_parser = clap::value_parser!(u32).range(1..=2048))]
    pub(crate) batches: Vec<u32>,

    /// Probes per measurement
    #[arg(long = "probes", value_name = "N", default_value = "2000000", value_parser = clap::value_parser!(u64).range(1000..))]
    pub(crate) probes: u64,

    /// Write the figures as JSON to FILE (- for stdout)
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

const BENCH_AFTER_HELP: &str = "\
Measures, in this order: probe generation per core (a dry run, nothing sent), the kernel's
AF_XDP transmit floor per batch size (one frame sent over and over), the scanner's transmit
rate per thread count and batch size (a --rate 0 scan into a silent link), and the receive
rate of a --rate 0 scan whose every probe is answered at once (against the XDP responder, and
checked against its rule). The socket mode the kernel gave (zero-copy or copy) is reported.

Without -i it builds its own pair of namespaces joined by a veth and sends nothing outside
them. With -i IF --to TARGET every probe goes to TARGET through IF's next hop; it says so
before it starts. Use it only toward a destination you own.

Examples:
  xdpscan bench
  xdpscan bench --threads 1,2,4 --batch 64,256 -o bench.json
  xdpscan bench -i eth1 --to 198.18.7.0/24 --gateway-mac 02:00:00:00:00:01
";

const PROBE_AFTER_HELP: &str = "\
Prints the packet sent and the answer, each as a one-line summary (nmap's --packet-trace),
every layer with every field named (Scapy's show()) and a hexdump.
Exit status: 0 answered, 1 no answer within --timeout, 2 usage error, 3 runtime error.
Example: xdpscan probe 198.19.0.5 -p 22 --flags S --tcp-option mss:1460 --tcp-option sackok";

/// Bytes from the command line (a payload, an encoded TCP option).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bytes(pub(crate) Vec<u8>);

/// TCP flags as Scapy letters (`SA`), names (`SYN,ACK`) or a number.
pub(crate) fn parse_flags(s: &str) -> Result<u8, String> {
    if let Ok(v) = crate::probe::tcp::parse_scanflags(s) {
        return Ok(v);
    }
    let mut v = 0u8;
    for c in s.trim().chars() {
        v |= match c {
            'F' => 0x01,
            'S' => 0x02,
            'R' => 0x04,
            'P' => 0x08,
            'A' => 0x10,
            'U' => 0x20,
            'E' => 0x40,
            'C' => 0x80,
            _ => {
                return Err(format!(
                    "'{s}' is not a TCP flag set (Scapy letters like SA, names like SYN,ACK, or a number)"
                ))
            }
        };
    }
    Ok(v)
}

/// One `--tcp-option`, encoded.
pub(crate) fn parse_tcp_option(s: &str) -> Result<Bytes, String> {
    tcp_option(s).map(Bytes)
}

fn tcp_option(s: &str) -> Result<Vec<u8>, String> {
    let err = || {
        format!(
            "'{s}' is not a TCP option (mss:N, wscale:N, sackok, ts:VAL:ECR, nop, eol, KIND:HEX)"
        )
    };
    let parts: Vec<&str> = s.trim().split(':').collect();
    let num = |i: usize| -> Result<u32, String> {
        parts
            .get(i)
            .and_then(|v| v.parse::<u32>().ok())
            .ok_or_else(err)
    };
    Ok(match parts[0].to_ascii_lowercase().as_str() {
        "mss" if parts.len() == 2 => {
            let v = u16::try_from(num(1)?).map_err(|_| err())?;
            let b = v.to_be_bytes();
            vec![2, 4, b[0], b[1]]
        }
        "wscale" if parts.len() == 2 => {
            vec![3, 3, u8::try_from(num(1)?).map_err(|_| err())?]
        }
        "sackok" if parts.len() == 1 => vec![4, 2],
        "ts" if parts.len() == 3 => {
            let mut v = vec![8, 10];
            v.extend(num(1)?.to_be_bytes());
            v.extend(num(2)?.to_be_bytes());
            v
        }
        "nop" if parts.len() == 1 => vec![1],
        "eol" if parts.len() == 1 => vec![0],
        k if parts.len() == 2 => {
            let kind: u8 = k.parse().map_err(|_| err())?;
            let body = parse_hex(parts[1]).map_err(|_| err())?.0;
            if body.len() > 38 {
                return Err(err());
            }
            let mut v = vec![kind, body.len() as u8 + 2];
            v.extend(body);
            v
        }
        _ => return Err(err()),
    })
}

/// Hex bytes: `0xdeadbeef`, `deadbeef`, `\xde\xad`.
pub(crate) fn parse_hex(s: &str) -> Result<Bytes, String> {
    let t: String = s
        .trim()
        .trim_start_matches("0x")
        .replace("\\x", "")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if !t.len().is_multiple_of(2) || !t.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("'{s}' is not hex bytes like 0xdeadbeef"));
    }
    Ok(Bytes(
        (0..t.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&t[i..i + 2], 16).expect("checked hex"))
            .collect(),
    ))
}

/// Rewrites nmap's multi-letter short options (clap has none) to their long forms.
pub fn normalize_args<I: IntoIterator<Item = OsString>>(args: I) -> Vec<OsString> {
    args.into_iter()
        .map(|a| {
            let long = match a.to_str() {
                Some("-iL") => "--target-file",
                Some(flag) if flag.len() == 3 && flag.starts_with("-o") => {
                    match Format::from_flag(flag) {
                        Some(f) => f.row().long,
                        None => return a,
                    }
                }
                Some("-sV") => "--service-version",
                Some(flag) => match ScanType::from_flag(flag) {
                    Some(t) => return OsString::from(format!("--scan={}", t.name())),
                    None => return a,
                },
                None => return a,
            };
            OsString::from(long)
        })
        .collect()
}

/// `--resume FILE` without targets: the command line the resume file records, with the options
/// given now in place of the recorded ones (nmap's and masscan's `--resume` need nothing else).
/// A command line that names its targets is the whole scan typed again and comes back as it is,
/// as do arguments without `--resume`. What is scanned is checked against the file later
/// (`config`), so targets, ports or a type given again must match it.
pub fn resume_args(args: Vec<OsString>) -> Result<Vec<OsString>, clap::Error> {
    use clap::{parser::ValueSource, CommandFactory};
    let cmd = Cli::command();
    let now = cmd.clone().try_get_matches_from(&args)?;
    let Some(path) = now.get_one::<PathBuf>("resume") else {
        return Ok(args);
    };
    let typed_again = ["targets", "target_files"]
        .iter()
        .any(|id| now.value_source(id) == Some(ValueSource::CommandLine));
    if typed_again {
        return Ok(args);
    }
    let file = crate::resume::ResumeFile::load(path).map_err(|e| {
        Cli::command().error(clap::error::ErrorKind::ValueValidation, e.to_string())
    })?;
    let recorded = normalize_args(file.command_line.iter().map(OsString::from));
    let then = cmd.clone().try_get_matches_from(&recorded).map_err(|e| {
        Cli::command().error(
            clap::error::ErrorKind::ValueValidation,
            format!(
                "the command line recorded in {} no longer parses: {}",
                path.display(),
                e.kind()
            ),
        )
    })?;
    let given =
        |m: &clap::ArgMatches, id: &str| m.value_source(id) == Some(ValueSource::CommandLine);
    let mut merged = vec![args.first().cloned().unwrap_or_else(|| "xdpscan".into())];
    let mut positional = Vec::new();
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        let m = if given(&now, id) {
            &now
        } else if given(&then, id) && id != "resume" {
            &then
        } else {
            continue;
        };
        let Ok(Some(occurrences)) = m.try_get_raw_occurrences(id) else {
            continue;
        };
        let name = match (arg.get_long(), arg.get_short()) {
            (Some(l), _) => format!("--{l}"),
            (None, Some(c)) => format!("-{c}"),
            (None, None) => String::new(),
        };
        for values in occurrences {
            let values: Vec<OsString> = values.map(OsString::from).collect();
            if arg.is_positional() {
                positional.extend(values);
            } else if !arg.get_action().takes_values() || values.is_empty() {
                merged.push(name.clone().into());
            } else if values.len() == 1 && name.starts_with("--") {
                let mut a = OsString::from(format!("{name}="));
                a.push(&values[0]);
                merged.push(a);
            } else {
                merged.push(name.clone().into());
                merged.extend(values);
            }
        }
    }
    if !positional.is_empty() {
        merged.push("--".into());
        merged.extend(positional);
    }
    Ok(merged)
}

/// Port states given on the command line (`--show`, `--noshow`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct StateList(pub(crate) Vec<crate::probe::PortState>);

/// A comma list of nmap's state names.
pub(crate) fn parse_states(s: &str) -> Result<StateList, String> {
    s.split(',')
        .map(|n| {
            crate::probe::PortState::from_name(n.trim()).ok_or_else(|| {
                format!(
                    "'{n}' is not a port state (open, closed, filtered, unfiltered, open|filtered, closed|filtered, up, down)"
                )
            })
        })
        .collect::<Result<_, _>>()
        .map(StateList)
}

pub(crate) fn parse_rate(s: &str) -> Result<u64, String> {
    let err = || format!("'{s}' is not a rate (probes per second like 10000, 50k or 1.5M)");
    let t = s.trim();
    let (num, mul) = match t.chars().last() {
        Some('k') | Some('K') => (&t[..t.len() - 1], 1e3),
        Some('m') | Some('M') => (&t[..t.len() - 1], 1e6),
        _ => (t, 1.0),
    };
    let v: f64 = num.parse().map_err(|_| err())?;
    if !v.is_finite() || v < 0.0 || v * mul > 1e10 {
        return Err(err());
    }
    Ok((v * mul).round() as u64)
}

/// `--ttl`: one TTL (`64`) or a range (`1-30`), each 1-255.
pub(crate) fn parse_ttl(s: &str) -> Result<(u8, u8), String> {
    let err = || format!("'{s}' is not a TTL (1-255) or a TTL range like 1-30");
    let p = |x: &str| {
        x.trim()
            .parse::<u8>()
            .ok()
            .filter(|&v| v > 0)
            .ok_or_else(err)
    };
    let (lo, hi) = match s.split_once('-') {
        Some((a, b)) => (p(a)?, p(b)?),
        None => (p(s)?, p(s)?),
    };
    if lo > hi {
        return Err(err());
    }
    Ok((lo, hi))
}

pub(crate) fn parse_secs(s: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0 && *v <= 86_400.0)
        .ok_or_else(|| format!("'{s}' is not a number of seconds (0-86400)"))
}

/// `--shard`: a fixed shard, or `auto` (`schedulers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ShardArg {
    Fixed(u32, u32),
    Auto,
}

/// A clap error on one line (clap's spans several, the argument named on the next one), its
/// tips kept ("a similar argument exists: '--rate'").
pub fn clap_line(e: &clap::Error) -> String {
    let text = e.to_string();
    let msg: Vec<&str> = text
        .lines()
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .map(|l| l.trim().trim_start_matches("error: "))
        .filter(|l| !l.is_empty())
        .collect();
    let mut line = String::new();
    for m in msg {
        if !line.is_empty() {
            line.push_str(if line.ends_with(':') { " " } else { "; " });
        }
        line.push_str(m);
    }
    format!("{line} (see --help)")
}

pub(crate) fn parse_shard_arg(s: &str) -> Result<ShardArg, String> {
    if s == "auto" {
        return Ok(ShardArg::Auto);
    }
    parse_shard(s)
        .map(|(i, n)| ShardArg::Fixed(i, n))
        .map_err(|e| format!("{e}, or auto"))
}

pub(crate) fn parse_shard(s: &str) -> Result<(u32, u32), String> {
    let err = || format!("'{s}' is not a shard like 1/4 (1-based: I from 1 to N)");
    let (i, n) = s.split_once('/').ok_or_else(err)?;
    let i: u32 = i.trim().parse().map_err(|_| err())?;
    let n: u32 = n.trim().parse().map_err(|_| err())?;
    if n == 0 || i == 0 || i > n || n > 65_536 {
        return Err(err());
    }
    Ok((i - 1, n))
}

pub(crate) fn parse_port_range(s: &str) -> Result<PortRange, String> {
    let err = || format!("'{s}' is not a port range like 61000-65535");
    let p = |x: &str| x.trim().parse::<u16>().map_err(|_| err());
    let (lo, hi) = match s.split_once('-') {
        Some((a, b)) => (p(a)?, p(b)?),
        None => (p(s)?, p(s)?),
    };
    if lo == 0 || lo > hi {
        return Err(err());
    }
    Ok(PortRange { lo, hi })
}

pub(crate) fn parse_mac(s: &str) -> Result<MacAddr, String> {
    s.parse::<MacAddr>().map_err(|e| e.to_string())
}

pub(crate) fn parse_cores(s: &str) -> Result<CoreList, String> {
    let err = || format!("'{s}' is not a core list like 0,1 or 0-3");
    let mut out = Vec::new();
    for item in s.split(',') {
        match item.split_once('-') {
            Some((a, b)) => {
                let a: usize = a.trim().parse().map_err(|_| err())?;
                let b: usize = b.trim().parse().map_err(|_| err())?;
                if a > b || b > 4096 {
                    return Err(err());
                }
                out.extend(a..=b);
            }
            None => out.push(item.trim().parse().map_err(|_| err())?),
        }
    }
    if out.is_empty() {
        return Err(err());
    }
    Ok(CoreList(out))
}

/// CSV columns, checked.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct FieldList(pub(crate) Vec<crate::output::csv::Field>);

pub(crate) fn parse_fields(s: &str) -> Result<FieldList, String> {
    crate::output::csv::parse_fields(s).map(FieldList)
}

/// A list of CPU core ids.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct CoreList(pub(crate) Vec<usize>);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_file_alone_restores_the_command_line() {
        let path =
            std::env::temp_dir().join(format!("xdpscan-cli-resume-{}.json", std::process::id()));
        let recorded = [
            "/usr/bin/xdpscan",
            "198.19.0.0/16",
            "-p",
            "22,80",
            "-sS",
            "--rate",
            "1000",
            "-oX",
            "old.xml",
            "--banners",
            "--traceroute",
        ];
        crate::resume::ResumeFile {
            xdpscan_resume: crate::resume::FORMAT,
            fingerprint: "f".into(),
            seed: 7,
            shard: (0, 1),
            threads: 1,
            positions: vec![crate::engine::Position { pass: 0, walked: 5 }],
            command_line: recorded.iter().map(|s| s.to_string()).collect(),
            scan_id: 1,
            answered: Vec::new(),
            carried: Vec::new(),
        }
        .save(&path, &Default::default())
        .unwrap();
        let args = |a: &[&str]| -> Vec<OsString> { normalize_args(a.iter().map(OsString::from)) };
        let p = path.to_str().unwrap();
        let merged = resume_args(args(&[
            "xdpscan", "--resume", p, "--rate", "5", "-oX", "new.xml",
        ]))
        .unwrap();
        let cli = Cli::try_parse_from(&merged).unwrap();
        assert_eq!(cli.targets.addresses, ["198.19.0.0/16"]);
        assert_eq!(cli.targets.ports.as_deref(), Some("22,80"));
        assert_eq!(cli.probing.scan, [ScanType::Syn]);
        assert_eq!(cli.pacing.rate, 5, "given now: replaces the recorded rate");
        assert_eq!(cli.outputs.output_xml, Some(PathBuf::from("new.xml")));
        assert!(cli.services.banners);
        assert!(cli.probing.traceroute.is_some());
        assert_eq!(cli.resume.from.as_deref(), Some(path.as_path()));
        // Targets typed again: the command line is the user's, checked against the file later.
        let typed = args(&["xdpscan", "198.19.0.0/24", "--resume", p]);
        assert_eq!(resume_args(typed.clone()).unwrap(), typed);
        // No --resume: untouched.
        let plain = args(&["xdpscan", "198.19.0.1", "-p", "80"]);
        assert_eq!(resume_args(plain.clone()).unwrap(), plain);
        let missing = resume_args(args(&["xdpscan", "--resume", "/nonexistent/r.json"]));
        assert!(missing
            .unwrap_err()
            .to_string()
            .contains("/nonexistent/r.json"));
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn values() {
        assert_eq!(parse_rate("10000"), Ok(10_000));
        assert_eq!(parse_rate("50k"), Ok(50_000));
        assert_eq!(parse_rate("1.5M"), Ok(1_500_000));
        assert_eq!(parse_rate("0"), Ok(0));
        for bad in ["", "-5", "fast", "1e20", "NaN", "10kk"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_shard("1/3"), Ok((0, 3)));
        assert_eq!(parse_shard_arg("auto"), Ok(ShardArg::Auto));
        assert_eq!(parse_shard_arg("2/3"), Ok(ShardArg::Fixed(1, 3)));
        assert!(parse_shard_arg("Auto").is_err());
        for bad in ["0/3", "4/3", "1/0", "1", "a/b", "1/2/3"] {
            assert!(parse_shard(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_port_range("61000-61010"),
            Ok(PortRange {
                lo: 61000,
                hi: 61010
            })
        );
        assert_eq!(
            parse_port_range("62000"),
            Ok(PortRange {
                lo: 62000,
                hi: 62000
            })
        );
        for bad in ["0-10", "5-4", "70000", "x"] {
            assert!(parse_port_range(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_cores("0,2-3"), Ok(CoreList(vec![0, 2, 3])));
        assert_eq!(parse_ttl("64"), Ok((64, 64)));
        assert_eq!(parse_ttl("1-30"), Ok((1, 30)));
        for bad in ["0", "0-3", "5-4", "256", "1-x", ""] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
        assert!(parse_cores("3-1").is_err());
    }

    #[test]
    fn probe_values() {
        assert_eq!(parse_flags("SA"), Ok(0x12));
        assert_eq!(parse_flags("SYN,ACK"), Ok(0x12));
        assert_eq!(parse_flags("FPU"), Ok(0x29));
        assert_eq!(parse_flags("0x02"), Ok(2));
        assert!(parse_flags("SX").is_err());
        assert_eq!(tcp_option("mss:1460"), Ok(vec![2, 4, 5, 0xb4]));
        assert_eq!(tcp_option("wscale:7"), Ok(vec![3, 3, 7]));
        assert_eq!(
            tcp_option("ts:1:0"),
            Ok(vec![8, 10, 0, 0, 0, 1, 0, 0, 0, 0])
        );
        assert_eq!(tcp_option("30:beef"), Ok(vec![30, 4, 0xbe, 0xef]));
        for bad in ["mss", "mss:70000", "wscale:300", "ts:1", "bogus", "30:xyz"] {
            assert!(parse_tcp_option(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_hex("0xdeadbeef"),
            Ok(Bytes(vec![0xde, 0xad, 0xbe, 0xef]))
        );
        assert_eq!(parse_hex("\\x41\\x42"), Ok(Bytes(vec![0x41, 0x42])));
        assert!(parse_hex("abc").is_err());
        let p = ProbeCli::try_parse_from(["probe", "198.19.0.5", "--proto", "udp", "-p", "53"])
            .unwrap();
        assert_eq!((p.proto, p.dport), (ProbeProto::Udp, Some(53)));
        assert!(ProbeCli::try_parse_from(["probe", "198.19.0.300"]).is_err());
        assert!(ProbeCli::try_parse_from([
            "probe",
            "1.2.3.4",
            "--data",
            "00",
            "--data-string",
            "x"
        ])
        .is_err());
    }

    #[test]
    fn nmap_short_options() {
        let v = normalize_args(["xdpscan", "-iL", "f", "-p", "80", "-sU"].map(OsString::from));
        let cli = Cli::try_parse_from(v).unwrap();
        assert_eq!(cli.targets.target_files, vec![PathBuf::from("f")]);
        assert_eq!(cli.probing.scan, [ScanType::Udp]);
        for (flag, scan) in [
            ("-sS", ScanType::Syn),
            ("-sA", ScanType::Ack),
            ("-sW", ScanType::Window),
            ("-sF", ScanType::Fin),
            ("-sN", ScanType::Null),
            ("-sX", ScanType::Xmas),
            ("-sM", ScanType::Maimon),
            ("-sO", ScanType::IpProto),
            ("-sY", ScanType::SctpInit),
            ("-sZ", ScanType::SctpCookieEcho),
            ("-sT", ScanType::Connect),
            ("-PE", ScanType::Ping),
            ("--ping", ScanType::Ping),
        ] {
            let cli =
                Cli::try_parse_from(normalize_args(["xdpscan", "x", flag].map(OsString::from)))
                    .unwrap();
            assert_eq!(cli.probing.scan, [scan], "{flag}");
        }
    }
}
