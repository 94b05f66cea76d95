//! A request, then a plan (ARCHITECTURE.md, "A request, then a plan"): every command line in
//! README's examples parses into the typed request, and plans against a given set of machine
//! facts, with no system call but memory management: the test runs both in a child process
//! under a seccomp filter that kills it on any other call (opening, reading, stat, sockets,
//! getrandom, ...). Environment variables are shown not to matter by planning once with the
//! variables the scanner reads set to nonsense and once with none, and comparing.

use std::{ffi::OsString, process::Command};

use clap::Parser;
use xdpscan::{
    cli::{normalize_args, Cli},
    config::{Machine, ScanSpec},
};

const CHILD: &str = "XDPSCAN_NO_IO_CHILD";

/// The `xdpscan ...` command lines of README's examples, as argv (redirections dropped).
fn readme_command_lines() -> Vec<Vec<String>> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let lines: Vec<Vec<String>> = readme
        .lines()
        .filter_map(|l| l.strip_prefix("$ "))
        .filter_map(|l| l.split_once("xdpscan ").map(|(_, rest)| rest))
        .map(|rest| {
            std::iter::once("xdpscan".to_string())
                .chain(
                    rest.split_whitespace()
                        .take_while(|w| !w.starts_with('>') && *w != "|")
                        .map(str::to_string),
                )
                .collect()
        })
        .collect();
    assert!(lines.len() >= 3, "README's examples: {lines:?}");
    lines
}

/// What the plan is given instead of asking the machine.
fn machine() -> Machine {
    Machine {
        cores: vec![0, 1],
        ephemeral_ports: Some((32768, 60999)),
        random: [7, 9],
        args: vec!["xdpscan".into()],
        ..Machine::default()
    }
}

/// Parse and plan one command line: the plan's outline, or the error.
fn parse_and_plan(argv: &[String]) -> String {
    let args = normalize_args(argv.iter().map(OsString::from));
    let cli = match Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => return format!("parse error: {e}"),
    };
    match ScanSpec::resolve(&cli, &machine()) {
        Ok(s) => format!(
            "{} {} {} probes seed {} rate {} outputs {:?}",
            s.scan_names(),
            s.ports_spec(),
            s.targets.space.len(),
            s.pacing.seed,
            s.pacing.rate,
            s.outputs.files
        ),
        Err(e) => format!("plan error: {e}"),
    }
}

/// The child: read the lines, forbid I/O, parse and plan each, report with `write(2)` only.
#[test]
fn child_parses_under_seccomp() {
    let Ok(lines) = std::env::var(CHILD) else {
        return; // run by the parent below only
    };
    let lines: Vec<Vec<String>> = lines
        .split('\n')
        .map(|l| l.split('\u{1f}').map(str::to_string).collect())
        .collect();
    let mut report = String::with_capacity(1 << 16);
    let mut results = Vec::with_capacity(lines.len());
    // Hash tables' keys come from the kernel once per thread (getrandom): taken now, as they
    // are no fact of the scan's.
    let _ = std::collections::hash_map::RandomState::new();
    xdpscan::io::sys::forbid_io().expect("seccomp filter");
    for argv in &lines {
        results.push(parse_and_plan(argv));
    }
    for r in &results {
        report.push_str(r);
        report.push('\n');
    }
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(b"@@BEGIN\n");
    let _ = out.write_all(report.as_bytes());
    let _ = out.write_all(b"@@END\n");
    let _ = out.flush();
    // Past here the test harness would make calls the filter forbids.
    std::process::exit(0);
}

fn run_child(lines: &[Vec<String>], env: &[(&str, &str)]) -> Vec<String> {
    let joined: Vec<String> = lines.iter().map(|a| a.join("\u{1f}")).collect();
    let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
    cmd.args([
        "--exact",
        "child_parses_under_seccomp",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD, joined.join("\n"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the child made a forbidden system call while parsing or planning ({:?}); \
         run it under `strace -f` to see which\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let body = stdout
        .split("@@BEGIN\n")
        .nth(1)
        .and_then(|b| b.split("@@END").next())
        .expect("the child's report");
    body.lines().map(str::to_string).collect()
}

#[test]
fn readme_command_lines_parse_and_plan_without_io() {
    let lines = readme_command_lines();
    let plain = run_child(&lines, &[]);
    assert_eq!(plain.len(), lines.len());
    for (argv, r) in lines.iter().zip(&plain) {
        assert!(!r.contains("error"), "README's `{}`: {r}", argv.join(" "));
    }
    // The variables the scanner's shell reads (--shard auto's schedulers, NATS, the temp dir)
    // change nothing in the plan: the request is the command line alone.
    let noisy = run_child(
        &lines,
        &[
            ("JOB_COMPLETION_INDEX", "3"),
            ("SLURM_ARRAY_TASK_ID", "7"),
            ("SLURM_ARRAY_TASK_COUNT", "9"),
            ("NOMAD_ALLOC_INDEX", "2"),
            ("NATS_URL", "nats://198.18.0.9:4222"),
            ("TMPDIR", "/nonexistent"),
            ("HOME", "/nonexistent"),
        ],
    );
    assert_eq!(plain, noisy);
}
