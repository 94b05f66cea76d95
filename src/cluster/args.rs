//! The command lines of `submit`, `worker`, `collect` and `status`, and the NATS connection
//! options they share with `--publish`.

use std::ffi::OsString;

use clap::{Args, Parser};

pub(crate) use crate::cli::NatsAuth;

/// The broker and how to reach it.
#[derive(Debug, Clone, Args)]
pub(crate) struct NatsArgs {
    /// NATS server URL(s), comma-separated: nats://HOST:PORT (tls://HOST:PORT for TLS)
    #[arg(
        long = "nats",
        value_name = "URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub(crate) url: String,
    #[command(flatten)]
    pub(crate) auth: NatsAuth,
}

#[derive(Debug, Parser)]
#[command(
    name = "xdpscan submit",
    about = "Put a scan on the NATS work queue as N shards, one message each",
    after_help = "The scan options and targets follow, as for a single scan (xdpscan --help); \
the seed is chosen now (or --seed) so every shard walks the same permutation. Results are \
read with xdpscan collect."
)]
pub(crate) struct SubmitCli {
    #[command(flatten)]
    pub(crate) nats: NatsArgs,
    /// Name of the job (letters, digits, '-', '_'); a name is used once
    #[arg(long = "job", value_name = "NAME")]
    pub(crate) job: String,
    /// Number of shards (work-queue messages)
    #[arg(long = "shards", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub(crate) shards: u32,
    /// Copies the broker keeps of the queue, results and state (3 on a 3-node cluster), when
    /// this submit makes them
    #[arg(long = "replicas", value_name = "N", default_value = "1", value_parser = clap::value_parser!(u32).range(1..=5))]
    pub(crate) replicas: u32,
}

#[derive(Debug, Parser)]
#[command(
    name = "xdpscan worker",
    about = "Take shards from the NATS work queue one at a time, scan them, publish the results"
)]
pub struct WorkerCli {
    #[command(flatten)]
    pub(crate) nats: NatsArgs,
    /// Only this job's shards [default: every job's]
    #[arg(long = "job", value_name = "NAME")]
    pub(crate) job: Option<String>,
    /// Exit once every shard of the job (of every job without --job) is done: 0 when all
    /// completed
    #[arg(long = "exit-when-idle")]
    pub(crate) exit_when_idle: bool,
    /// Interface to scan from [default: the route to the targets]
    #[arg(short = 'i', long = "interface", value_name = "IF")]
    pub(crate) interface: Option<String>,
    /// Source address [default: the interface's]
    #[arg(short = 'S', long = "source-ip", value_name = "IP")]
    pub(crate) source_ip: Option<std::net::IpAddr>,
    /// Next hop's MAC [default: from the neighbour table]
    #[arg(long = "gateway-mac", value_name = "MAC")]
    pub(crate) gateway_mac: Option<String>,
    /// Serve Prometheus metrics on ADDR (host:port), at /metrics
    #[arg(long = "metrics", value_name = "ADDR")]
    pub(crate) metrics: Option<std::net::SocketAddr>,
    /// After opening its sockets, run as USER with only the capabilities a new shard's attach
    /// needs [default: nobody when started as root; root keeps root]
    #[arg(long = "user", value_name = "USER")]
    pub(crate) user: Option<String>,
    /// Name in the shard records [default: host name and process id]
    #[arg(long = "name", value_name = "NAME")]
    pub(crate) name: Option<String>,
    /// Results that may wait for the broker (while it is unreachable) before probes pause
    #[arg(long = "publish-buffer", value_name = "N", default_value = "1000000", value_parser = clap::value_parser!(u64).range(1000..))]
    pub(crate) publish_buffer: u64,
    /// No status on stderr
    #[arg(short = 'q', long = "quiet")]
    pub(crate) quiet: bool,
}

#[derive(Debug, Parser)]
#[command(
    name = "xdpscan collect",
    about = "Write a job's results, each (address, port) once, in any output format",
    after_help = "Output options follow as for a single scan: -oJ/-o, -oX, -oG, -oL, --csv, -f, \
--open, --show, --noshow (NDJSON on stdout without any)."
)]
pub(crate) struct CollectCli {
    #[command(flatten)]
    pub(crate) nats: NatsArgs,
    #[arg(long = "job", value_name = "NAME")]
    pub(crate) job: String,
    /// Do not wait for the shards: write what is stored now
    #[arg(long = "no-wait")]
    pub(crate) no_wait: bool,
    /// Give up waiting for the shards after SECS (exit status 1)
    #[arg(long = "timeout", value_name = "SECS")]
    pub(crate) timeout: Option<f64>,
}

#[derive(Debug, Parser)]
#[command(
    name = "xdpscan status",
    about = "A job's shards (pending, running, done), results and rates"
)]
pub(crate) struct StatusCli {
    #[command(flatten)]
    pub(crate) nats: NatsArgs,
    #[arg(long = "job", value_name = "NAME")]
    pub(crate) job: String,
    /// One JSON object instead of text
    #[arg(long = "json")]
    pub(crate) json: bool,
}

/// Options of the distributed commands that take a value (the rest of a `submit` or `collect`
/// command line belongs to the scan or its outputs).
const VALUED: [&str; 12] = [
    "--nats",
    "--nats-creds",
    "--nats-user",
    "--nats-password",
    "--nats-token",
    "--nats-tls-ca",
    "--nats-tls-cert",
    "--nats-tls-key",
    "--job",
    "--shards",
    "--timeout",
    "--replicas",
];
const FLAGS: [&str; 4] = ["--nats-tls", "--no-wait", "-h", "--help"];

/// Splits a command line into the options named by the distributed command (`ours`, with
/// `--name value` and `--name=value` both understood) and the rest, in order.
pub(crate) fn split(args: &[OsString], keep_ours: &[&str]) -> (Vec<OsString>, Vec<OsString>) {
    let mut ours = Vec::new();
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let s = a.to_string_lossy();
        let name = s.split_once('=').map_or(&*s, |(n, _)| n);
        let wanted = keep_ours.contains(&name);
        if wanted && VALUED.contains(&name) {
            ours.push(a.clone());
            if !s.contains('=') {
                if let Some(v) = it.next() {
                    ours.push(v.clone());
                }
            }
        } else if wanted && FLAGS.contains(&name) {
            ours.push(a.clone());
        } else {
            rest.push(a.clone());
        }
    }
    (ours, rest)
}

/// `argv` split as `split` does, the command's own options parsed into `T` (named `name` in
/// messages), and the rest as text.
pub(crate) fn parse_split<T: Parser>(
    name: &str,
    argv: &[OsString],
    also: &[&str],
) -> Result<(T, Vec<String>), super::DistError> {
    let mut keep = COMMON.to_vec();
    keep.extend_from_slice(also);
    let (ours, rest) = split(argv, &keep);
    let cli = T::try_parse_from(std::iter::once(OsString::from(name)).chain(ours))
        .map_err(super::submit::clap_usage)?;
    let rest = rest
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    Ok((cli, rest))
}

/// Every option `submit` and `collect` take for themselves.
pub(crate) const COMMON: [&str; 12] = [
    "--nats",
    "--nats-creds",
    "--nats-user",
    "--nats-password",
    "--nats-token",
    "--nats-tls",
    "--nats-tls-ca",
    "--nats-tls-cert",
    "--nats-tls-key",
    "--job",
    "-h",
    "--help",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn ours_and_the_scans_options_part() {
        let mut keep = COMMON.to_vec();
        keep.push("--shards");
        let (ours, rest) = split(
            &os(&[
                "--nats",
                "nats://h:4222",
                "--job=j1",
                "-p",
                "80",
                "--shards",
                "8",
                "198.18.0.0/24",
                "--nats-tls",
                "--rate",
                "1k",
            ]),
            &keep,
        );
        assert_eq!(
            ours,
            os(&[
                "--nats",
                "nats://h:4222",
                "--job=j1",
                "--shards",
                "8",
                "--nats-tls"
            ])
        );
        assert_eq!(rest, os(&["-p", "80", "198.18.0.0/24", "--rate", "1k"]));
    }
}
