//! Bad input: one clear line on stderr naming the problem, exit status 2, never a panic.
//! Nothing here should reach the point of sending; as root every command still runs in a fresh
//! namespace with no interface but loopback, so one accepted by mistake cannot send anywhere.

mod common;

use std::process::Command;

use common::{Netns, BIN};

fn run(args: &[&str]) -> (i32, String) {
    // SAFETY: geteuid takes no arguments and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let ns = root.then(|| Netns::new("bad"));
    let mut cmd = match &ns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", &ns.0, BIN]);
            c
        }
        None => Command::new(BIN),
    };
    let out = cmd.args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn refused(args: &[&str], names: &str) {
    let (code, err) = run(args);
    assert_eq!(code, 2, "{args:?}: exit {code}, stderr {err:?}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{args:?}: not one line: {err:?}"
    );
    assert!(
        err.contains(names),
        "{args:?}: {err:?} does not name {names:?}"
    );
    assert!(
        !err.contains("panicked")
            && !err.contains("internal error")
            && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
}

#[test]
fn malformed_targets() {
    refused(&["198.19.0.256", "-p", "80"], "198.19.0.256");
    refused(&["198.19.0.0/33", "-p", "80"], "/33");
    refused(&["198.19.0.9-198.19.0.1", "-p", "80"], "backwards");
    refused(&["not-an-address", "-p", "80"], "not-an-address");
    refused(&["-p", "80"], "no targets");
    refused(
        &["198.19.0.1", "-p", "80", "--exclude", "198.19.0.x"],
        "198.19.0.x",
    );
    refused(
        &["198.19.0.1", "-p", "80", "--exclude", "198.19.0.1"],
        "no targets left",
    );
}

#[test]
fn malformed_ports() {
    refused(&["198.19.0.1", "-p", "70000"], "70000");
    refused(&["198.19.0.1", "-p", "90-80"], "90-80");
    refused(&["198.19.0.1", "-p", "htttp"], "'htttp' is no tcp service");
    refused(&["198.19.0.1"], "no ports given");
    refused(&["198.19.0.1", "-PE", "-p", "80"], "takes no ports");
    refused(&["198.19.0.1", "-sO", "-p", "300"], "0-255");
    // Protocol prefixes and combined scan types.
    refused(
        &["198.19.0.1", "-sS", "-sA", "-p", "80"],
        "one TCP scan type",
    );
    refused(&["198.19.0.1", "-PE", "-sU"], "runs alone");
    refused(&["198.19.0.1", "-p", "S:80"], "SCTP");
    refused(&["198.19.0.1", "-p", "T:,80"], "names no port");
    refused(&["198.19.0.1", "-sO", "-p", "T:80"], "protocol numbers");
    refused(&["198.19.0.1", "-sT", "-p", "U:53"], "connect scan");
    refused(&["198.19.0.1", "-sU", "-p", "P:6"], "only -sO");
    refused(&["198.19.0.1", "-p", "U:nosuchservice"], "no udp service");
    refused(
        &["198.19.0.1", "-p", "80", "-sU", "--scanflags", "SYN"],
        "--scanflags",
    );
    refused(&["198.19.0.1", "-p", "80", "--scanflags", "SYNNN"], "SYNNN");
    refused(
        &["198.19.0.1", "-p", "80", "--udp-payloads", "/nonexistent/p"],
        "--udp-payloads",
    );
    refused(
        &[
            "198.19.0.1",
            "-p",
            "80",
            "-sU",
            "--udp-payloads",
            "/nonexistent/p",
        ],
        "/nonexistent/p",
    );
    refused(
        &["198.19.0.1", "-p", "80", "--source-port", "62000-61000"],
        "62000-61000",
    );
    refused(
        &["198.19.0.1", "-p", "80", "--source-port", "40000-41000"],
        "ephemeral",
    );
}

#[test]
fn malformed_values() {
    refused(
        &["198.19.0.1", "-p", "80", "--gateway-mac", "02:00:00:00:00"],
        "02:00:00:00:00",
    );
    refused(
        &[
            "198.19.0.1",
            "-p",
            "80",
            "--gateway-mac",
            "zz:00:00:00:00:01",
        ],
        "zz:00:00:00:00:01",
    );
    refused(&["198.19.0.1", "-p", "80", "--rate", "fast"], "fast");
    refused(&["198.19.0.1", "-p", "80", "--rate", "-1"], "-1");
    refused(&["198.19.0.1", "-p", "80", "--shard", "4/3"], "4/3");
    refused(&["198.19.0.1", "-p", "80", "--shard", "0/3"], "0/3");
    refused(&["198.19.0.1", "-p", "80", "--wait", "soon"], "soon");
    refused(&["198.19.0.1", "-p", "80", "--cores", "9999"], "9999");
    refused(&["198.19.0.1", "-p", "80", "--tx-threads", "0"], "0");
    refused(
        &["198.19.0.1", "-p", "80", "--transport", "carrier-pigeon"],
        "carrier-pigeon",
    );
    refused(&["198.19.0.1", "-p", "80", "--pcap", "x.pcap"], "--dry-run");
}

#[test]
fn missing_files_and_interfaces() {
    refused(
        &["-iL", "/nonexistent/targets.txt", "-p", "80"],
        "/nonexistent/targets.txt",
    );
    refused(
        &[
            "198.19.0.1",
            "-p",
            "80",
            "--exclude-file",
            "/nonexistent/ex.txt",
        ],
        "/nonexistent/ex.txt",
    );
    refused(&["198.19.0.1", "-p", "80", "-i", "nosuchif0"], "nosuchif0");
}

#[test]
fn bad_line_in_target_file_names_the_line() {
    let f = std::env::temp_dir().join(format!("xdpscan-bad-{}.txt", std::process::id()));
    std::fs::write(&f, "198.19.0.1\n# fine\n198.19.0.300\n").unwrap();
    refused(&["-iL", f.to_str().unwrap(), "-p", "80"], ":3:");
    let _ = std::fs::remove_file(f);
}

#[test]
fn help_and_version_exit_zero() {
    assert_eq!(run(&["--help"]).0, 0);
    assert_eq!(run(&["--version"]).0, 0);
}

#[test]
fn traceroute_banner_and_probe_misuse() {
    let t = ["198.19.0.1", "--dry-run", "-S", "198.18.0.1"];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut v: Vec<&str> = t.to_vec();
        v.extend_from_slice(extra);
        v
    };
    refused(&with(&["-p", "80", "--ttl", "1-30"]), "only --traceroute");
    refused(&with(&["-p", "80", "--ttl", "0"]), "'0'");
    refused(&with(&["-p", "80", "--ttl", "9-3"]), "'9-3'");
    refused(
        &with(&["-p", "80", "-sA", "--traceroute"]),
        "--traceroute probes with",
    );
    refused(
        &with(&["-p", "80", "-sU", "--traceroute=tcp"]),
        "conflicts with --scan udp",
    );
    refused(&with(&["-p", "80", "--traceroute=sctp"]), "sctp");
    refused(&with(&["-p", "80", "--traceroute=icmp"]), "takes no ports");
    refused(
        &with(&["-p", "80", "--traceroute", "--report-silent"]),
        "no path",
    );
    refused(
        &with(&["-p", "80", "--traceroute", "--source-port", "62000-62009"]),
        "TTLs up to 30 need 30",
    );
    refused(&with(&["-p", "80", "-sU", "--banners"]), "SYN scan");
    refused(&with(&["-p", "80", "-sA", "-sV"]), "SYN scan");
    refused(&with(&["-p", "80", "--version-all"]), "apply to -sV");
    refused(
        &with(&["-p", "80", "--version-intensity", "3"]),
        "apply to -sV",
    );
    refused(
        &with(&["-p", "80", "-sV", "--version-intensity", "10"]),
        "10",
    );
    refused(
        &with(&["-p", "80", "--banners", "--transport", "packet"]),
        "need AF_XDP",
    );
    refused(
        &with(&["-p", "80", "-sV", "--service-probes", "/nonexistent/probes"]),
        "/nonexistent/probes",
    );
    refused(
        &with(&["-p", "80", "--service-probes", "/dev/null"]),
        "--banners and -sV",
    );
    refused(
        &with(&["-p", "80", "--banners", "--banner-bytes", "0"]),
        "--banner-bytes",
    );
    // Past 2^34 probes the duplicate filter is a 70 s window: passes hours apart are refused.
    let big = [
        "0.0.0.0/0",
        "-p",
        "1-10",
        "--dry-run",
        "-S",
        "198.18.0.1",
        "--gateway-mac",
        "02:00:00:00:00:01",
    ];
    let mut v = big.to_vec();
    v.extend(["--retries", "1"]);
    refused(&v, "--retries");
    let mut v = big.to_vec();
    v.push("--report-silent");
    refused(&v, "--report-silent keeps a bit per probe");
    refused(&with(&["-p", "80", "--show", "opened"]), "'opened'");
    refused(&with(&["-p", "nosuchservice"]), "'nosuchservice'");
    refused(
        &with(&["-p", "80", "--exclude-ports", "80"]),
        "no ports left",
    );
    refused(&with(&["--top-ports", "0"]), "--top-ports");
    refused(
        &with(&["--top-ports", "5", "--servicedb", "/nonexistent/services"]),
        "/nonexistent/services",
    );
    refused(&with(&["-PE", "--top-ports", "5"]), "--top-ports");
    refused(&with(&["-sO", "--exclude-ports", "tcp"]), "'tcp'");
    refused(&with(&["-p", "80", "--open", "--show", "closed"]), "--open");
    refused(&["probe", "198.19.0.1", "--flags", "QQ"], "'QQ'");
    refused(
        &["probe", "198.19.0.1", "--tcp-option", "wscale:999"],
        "wscale:999",
    );
    refused(&["probe"], "TARGET");
}
