//! The `xdpscan` command: parse, validate, scan, and turn every failure into one line and an
//! exit status (0 done, 1 runtime error, 2 usage error, 3 stopped by a limit, 130 by a signal).

use std::{
    process::ExitCode,
    sync::{atomic::AtomicUsize, Arc},
};

use clap::{error::ErrorKind, Parser};
use xdpscan::{
    cli,
    cluster::publish::{NatsSink, PublishUrl},
    config::{Machine, ScanConfig},
    io::sys,
    scan,
};

/// Help and version to stdout with success; anything else as one line and exit status 2.
fn clap_exit(e: clap::Error) -> ExitCode {
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    eprintln!("xdpscan: {}", cli::clap_line(&e));
    ExitCode::from(2)
}

/// `xdpscan probe`: 0 answered, 1 no answer, 2 usage error, 3 runtime error.
fn probe(args: &[std::ffi::OsString]) -> ExitCode {
    let p = match cli::ProbeCli::try_parse_from(args) {
        Ok(p) => p,
        Err(e) => return clap_exit(e),
    };
    let mut out = std::io::stdout().lock();
    match xdpscan::inspect::run(&p, &mut out) {
        Ok(xdpscan::inspect::ProbeOutcome::Answered) => ExitCode::SUCCESS,
        Ok(xdpscan::inspect::ProbeOutcome::NoAnswer) => ExitCode::from(1),
        Err(e) => tool_exit(&e, 3),
    }
}

/// `xdpscan bench`: 0 measured, 1 runtime error, 2 usage error.
fn bench(args: &[std::ffi::OsString]) -> ExitCode {
    let b = match cli::BenchCli::try_parse_from(args) {
        Ok(b) => b,
        Err(e) => return clap_exit(e),
    };
    // A signal ends the measuring scan under way (it reaches the whole process group); the
    // bench then returns its error and removes its namespaces, instead of dying with them.
    if let Err(e) = sys::count_signals(&[libc::SIGINT, libc::SIGTERM], Arc::default()) {
        eprintln!("xdpscan: cannot install signal handlers: {e}");
        return ExitCode::from(1);
    }
    // The table goes to stdout unless the JSON does.
    let to_stdout = b.output.as_ref().is_some_and(|o| o.as_os_str() == "-");
    let result = if to_stdout {
        xdpscan::bench::run(&b, &mut std::io::stderr().lock())
    } else {
        xdpscan::bench::run(&b, &mut std::io::stdout().lock())
    };
    match result {
        Ok(report) => match &b.output {
            Some(path) => match xdpscan::bench::write_json(&report, path) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("xdpscan: cannot write {}: {e}", path.display());
                    ExitCode::from(1)
                }
            },
            None => ExitCode::SUCCESS,
        },
        Err(e) => tool_exit(&e, 1),
    }
}

/// A subcommand's error as its one line; exit status 2 for bad input, else `failed`.
fn tool_exit(e: &xdpscan::tool_error::ToolError, failed: u8) -> ExitCode {
    eprintln!("xdpscan: {}", e.message());
    ExitCode::from(if e.is_usage() { 2 } else { failed })
}

/// `submit`, `worker`, `collect`, `status` (NATS JetStream): 0 done, 1 runtime error, 2 usage.
fn distributed(cmd: &str, args: &[std::ffi::OsString]) -> ExitCode {
    use xdpscan::cluster;
    let result = match cmd {
        "submit" => cluster::submit::run(args).map(|_| 0),
        "collect" => cluster::collect::run(args).map(|_| 0),
        "status" => cluster::status::run(args).map(|_| 0),
        _ => {
            let cli = match cluster::args::WorkerCli::try_parse_from(
                std::iter::once(std::ffi::OsString::from("xdpscan worker"))
                    .chain(args.iter().cloned()),
            ) {
                Ok(c) => c,
                Err(e) => return clap_exit(e),
            };
            let interrupts = Arc::new(AtomicUsize::new(0));
            if let Err(e) = sys::count_signals(&[libc::SIGINT, libc::SIGTERM], interrupts.clone()) {
                eprintln!("xdpscan: cannot install signal handlers: {e}");
                return ExitCode::from(1);
            }
            cluster::worker::run(cli, interrupts)
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        // --help or --version, printed.
        Err(cluster::DistError::Shown) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xdpscan: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// A scan's exit status by how it ended (docs/usage.md, "Exit status"): 0 complete (or its reader
/// went away, as `| head` does), 3 stopped by `--max-runtime` or `--max-results`, 130 stopped
/// by a signal (SIGINT or SIGTERM), as shells report a process a signal ended.
fn stop_status(stop: xdpscan::engine::StopReason) -> u8 {
    use xdpscan::engine::StopReason::*;
    match stop {
        Completed | OutputClosed => 0,
        MaxRuntime | MaxResults => 3,
        Interrupted => 130,
    }
}

/// The scan's command line: peers' flags translated (their notes said once) or refused,
/// nmap's multi-letter flags normalised, a bare `--resume FILE` completed. `--echo` (masscan's)
/// prints the scan and ends here.
fn command_line(args: Vec<std::ffi::OsString>) -> Result<Vec<std::ffi::OsString>, ExitCode> {
    let read = |f: &str| std::fs::read_to_string(f).map_err(|e| e.to_string());
    let (args, echo) = match xdpscan::peer_flags::translate(args, &read) {
        Ok(t) => {
            let quiet = t.args.iter().any(|a| a == "-q" || a == "--quiet");
            for note in t.notes.iter().filter(|_| !quiet && !t.echo) {
                eprintln!("xdpscan: note: {note}");
            }
            (t.args, t.echo)
        }
        Err(e) => {
            eprintln!("xdpscan: {e}");
            return Err(ExitCode::from(2));
        }
    };
    let args = cli::resume_args(cli::normalize_args(args)).map_err(clap_exit)?;
    if echo {
        return Err(match xdpscan::peer_flags::echo(&args) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => clap_exit(e),
        });
    }
    Ok(args)
}

/// `--publish URL`: the NATS sink, opened by the scan once it knows its id.
fn publish_sink(cli: &cli::Cli) -> Result<Option<scan::SinkOpener>, String> {
    let Some(url) = &cli.cluster.publish else {
        return Ok(None);
    };
    let url = PublishUrl::parse(url, cli.cluster.nats_auth.clone())?;
    Ok(Some(scan::SinkOpener {
        name: "--publish".into(),
        open: Box::new(move |scan_id| {
            NatsSink::single_scan(&url, scan_id)
                .map(|s| Box::new(s) as Box<dyn xdpscan::output::Sink>)
                .map_err(|e| e.to_string())
        }),
    }))
}

fn main() -> ExitCode {
    // A bug must still read as one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        let msg = msg.trim();
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("xdpscan: internal error: {msg}{at}");
    }));

    let args: Vec<_> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "probe") {
        return probe(&args[1..]);
    }
    if args.get(1).is_some_and(|a| a == "bench") {
        return bench(&args[1..]);
    }
    if let Some(cmd) = args.get(1).and_then(|a| a.to_str()) {
        if ["submit", "worker", "collect", "status"].contains(&cmd) {
            return distributed(cmd, &args[2..]);
        }
    }
    let args = match command_line(args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let cli = match cli::Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => return clap_exit(e),
    };

    if let Some(kind) = cli.generate {
        return match cli::generate(kind, &mut std::io::stdout().lock()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("xdpscan: --generate: {e}");
                ExitCode::from(1)
            }
        };
    }
    if cli.outputs.list_fields {
        for (_, name, what) in xdpscan::output::csv::FIELDS {
            println!("{name:16} {what}");
        }
        return ExitCode::SUCCESS;
    }

    // The cluster sits on top of the scan: `--publish` is one more sink, registered here.
    let mut hooks = scan::Hooks::default();
    match publish_sink(&cli) {
        Ok(opener) => hooks.openers.extend(opener),
        Err(e) => {
            eprintln!("xdpscan: {e}");
            return ExitCode::from(2);
        }
    }
    // What a resume file records and the documents show: the whole scan, also when it was
    // given as `--resume FILE` alone.
    let cfg = Machine::gather(&cli)
        .map(|mut m| {
            m.args = args
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            m
        })
        .and_then(|m| ScanConfig::resolve(&cli, &m));
    let cfg = match cfg {
        Ok(c) => c,
        Err(e) => {
            eprintln!("xdpscan: {e}");
            return ExitCode::from(e.exit_code());
        }
    };

    let interrupts = Arc::new(AtomicUsize::new(0));
    if let Err(e) = sys::count_signals(&[libc::SIGINT, libc::SIGTERM], interrupts.clone()) {
        eprintln!("xdpscan: cannot install signal handlers: {e}");
        return ExitCode::from(1);
    }

    match scan::run_with(&cfg, &interrupts, hooks) {
        Ok(report) => ExitCode::from(stop_status(report.outcome.stop)),
        Err(e) => {
            eprintln!("xdpscan: {e}");
            ExitCode::from(1)
        }
    }
}
