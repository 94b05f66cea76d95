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
    refused(
        &["198.19.0.1", "-sY", "-sZ", "-p", "80"],
        "one SCTP scan type",
    );
    refused(&["198.19.0.1", "-sT", "-p", "S:80"], "connect scan");
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

fn stdout_of(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// `-h` fits a screen with headings, the subcommands and the privileges named; `--help` has
/// every option under its heading; the man page and completions come from the same definition
/// and scripts/install.sh puts them where man and the shells look.
#[test]
fn help_man_page_and_completions() {
    let short = stdout_of(&["-h"]);
    assert!(short.lines().count() <= 60, "{short}");
    for heading in [
        "Targets:",
        "Ports:",
        "Scan types:",
        "Services:",
        "Rate and timing:",
        "Output:",
        "Cluster:",
        "Privileges:",
        "collect",
        "CAP_NET_RAW",
        "Exit status",
    ] {
        assert!(short.contains(heading), "-h lacks {heading}");
    }
    let long = stdout_of(&["--help"]);
    for heading in [
        "IPv6:",
        "Advanced:",
        "--connect-timeout",
        "--nats-creds",
        "xdpscan worker",
        "130 stopped by SIGINT",
    ] {
        assert!(long.contains(heading), "--help lacks {heading}");
    }
    let dir = std::env::temp_dir().join(format!("xdpscan-install-{}", std::process::id()));
    let out = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/install.sh"))
        .env("PREFIX", &dir)
        .env("XDPSCAN_BIN", BIN)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let man = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "zcat {}/share/man/man1/xdpscan.1.gz",
            dir.display()
        ))
        .output()
        .unwrap();
    let man = String::from_utf8_lossy(&man.stdout);
    assert!(
        man.contains(".TH xdpscan 1") && man.contains("service\\-version"),
        "{man}"
    );
    for (file, says) in [
        ("bin/xdpscan", ""),
        ("share/bash-completion/completions/xdpscan", "complete -F"),
        ("share/zsh/site-functions/_xdpscan", "#compdef xdpscan"),
        ("share/fish/vendor_completions.d/xdpscan.fish", "-l rate -d"),
    ] {
        let text = String::from_utf8_lossy(&std::fs::read(dir.join(file)).unwrap()).into_owned();
        assert!(text.contains(says), "{file}");
    }
    let _ = std::fs::remove_dir_all(dir);
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

/// A run that fails before scanning leaves the files it found as they were and no new empty
/// file; the metadata, status and resume paths are checked before the first probe; a resumed
/// scan that completes removes its resume file. Dry runs in a namespace with only loopback.
#[test]
fn nothing_is_lost_or_left_half_done_at_the_edges() {
    let dir = std::env::temp_dir().join(format!("xdpscan-edges-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let at = |name: &str| dir.join(name).display().to_string();
    let prev = at("prev.json");
    std::fs::write(&prev, "{\"from\":\"the last run\"}\n").unwrap();
    let base = ["-p", "80", "198.19.0.1", "--dry-run"];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let run_s = |args: Vec<String>| run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    // An unwritable second output: the first is not touched, the new one not left behind.
    let (code, err) = run_s(with(&[
        "-oJ",
        &prev,
        "-oG",
        &at("new.gnmap"),
        "-oX",
        "/nonexistent/x.xml",
    ]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("/nonexistent/x.xml"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&prev).unwrap(),
        "{\"from\":\"the last run\"}\n"
    );
    assert!(!dir.join("new.gnmap").exists(), "an empty file left behind");
    // -m, --status-file, --resume-file: refused before the first probe, no summary.
    for flag in ["-m", "--status-file", "--resume-file"] {
        let (code, err) = run_s(with(&["-oJ", &prev, flag, "/nonexistent/f"]));
        assert_eq!(code, 1, "{flag}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{flag}: {err}");
        assert!(err.contains("/nonexistent/f"), "{flag}: {err}");
        assert_eq!(
            std::fs::read_to_string(&prev).unwrap(),
            "{\"from\":\"the last run\"}\n"
        );
    }
    // A run that scans replaces the file, also with nothing to write.
    let (code, err) = run_s(with(&["-oJ", &prev, "-q"]));
    assert_eq!((code, err.as_str()), (0, ""), "-q prints nothing");
    assert_eq!(std::fs::read_to_string(&prev).unwrap(), "");
    // --max-runtime stops early (exit 3) and leaves a resume file; resumed to the end, the
    // resume file goes, and a third run is told there is none.
    let resume = at("r.json");
    let slow = [
        "198.19.0.0/24",
        "-p",
        "80",
        "--dry-run",
        "--rate",
        "100",
        "--max-runtime",
        "1",
        "--resume-file",
        &resume,
        "-q",
    ];
    let (code, err) = run(&slow);
    assert_eq!(code, 3, "{err}");
    assert!(std::path::Path::new(&resume).exists());
    let (code, err) = run(&["--resume", &resume, "--rate", "0", "--max-runtime", "60"]);
    assert_eq!(code, 0, "{err}");
    assert!(!std::path::Path::new(&resume).exists());
    let (code, err) = run(&["--resume", &resume]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&resume) && err.contains("completes removes"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The peers' flags: each works as there (a dry run, with its note) or is refused with one
/// line naming xdpscan's way; none is misread.
#[test]
fn the_peers_flags_work_or_get_a_hint() {
    let dir = std::env::temp_dir().join(format!("xdpscan-peers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let base = dir.join("scan").display().to_string();
    let normal = dir.join("normal.nmap").display().to_string();
    let works: [(&[&str], &str); 15] = [
        (&["-oA", &base], ""),
        (&["-oN", &normal], ""),
        (&["-T4"], "--rate 10000"),
        (&["-Pn"], "host discovery"),
        (&["-n"], "resolves"),
        (&["-6"], "family"),
        (&["-v"], "progress"),
        (&["-sSU"], "syn+udp"),
        (&["--min-rate", "500"], "--rate 500"),
        (&["--max-retries", "1"], ""),
        (&["-G", "02:00:00:00:00:01"], ""),
        (&["-P", "2"], "--retries 1"),
        (&["-O", "json", "-f", "saddr,sport"], "NDJSON"),
        (&["-O", "csv"], "--csv"),
        // --user is the scanner's, --nats-user the broker's: one never stands for the other.
        (&["--user", "daemon"], ""),
    ];
    for (flags, says) in works {
        let mut args = vec!["-p", "80", "198.19.0.1", "--dry-run", "-S", "198.18.0.1"];
        args.extend_from_slice(flags);
        let (code, err) = run(&args);
        assert_eq!(code, 0, "{flags:?}: {err}");
        assert!(err.contains(says), "{flags:?}: {err}");
    }
    for ext in ["xml", "gnmap", "nmap"] {
        assert!(
            dir.join(format!("scan.{ext}")).exists(),
            "-oA wrote no .{ext}"
        );
    }
    // masscan's --adapter is -i (here only loopback, which has no Ethernet header).
    refused(
        &["-p", "80", "198.19.0.1", "--dry-run", "--adapter", "lo"],
        "interface lo",
    );
    for (flags, names) in [
        (&["-oS", "x"][..], "-oN"),
        (&["-c", "/nonexistent/masscan.conf"][..], "No such file"),
        (&["-O", "redis"][..], "--csv"),
        (&["-B", "10M"][..], "--rate"),
        (&["-M", "dns"][..], "tcp_synscan (-sS)"),
        (&["-o", "out.csv"][..], "--csv"),
        (&["--adapter-mac", "02:00:00:00:00:02"][..], "-i"),
        // Options of another mode are refused, never ignored.
        (&["--banner-wait", "3"][..], "--banners and -sV"),
        (&["--max-connections", "9"][..], "--banners and -sV"),
        (&["--connect-timeout", "5"][..], "connect scan (-sT)"),
        (&["--max-inflight", "9"][..], "connect scan (-sT)"),
        // clap's tip survives the one-line form; a negative rate is named as one.
        (&["--rat", "5"][..], "similar argument exists: '--rate'"),
        (&["--rate", "-5"][..], "'-5' is not a rate"),
        (&["--nats-user", "a"][..], "not provided: --nats-password"),
    ] {
        let mut args = vec!["-p", "80", "198.19.0.1", "--dry-run"];
        args.extend_from_slice(flags);
        refused(&args, names);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// masscan's own `--echo` output is a configuration file `-c` reads (its `range` lines, its
/// `router-mac-ipv4`, `output-format`); xdpscan's `--echo` writes one `-c` reads back.
#[test]
fn masscan_configuration_files_read_and_written() {
    let dir = std::env::temp_dir().join(format!("xdpscan-conf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("masscan.conf");
    // --echo only prints: masscan sends nothing.
    let echoed = Command::new("masscan")
        .args([
            "--echo",
            "-p80,443",
            "198.19.0.0/24",
            "--exclude",
            "198.19.0.5",
            "--rate",
            "5000",
        ])
        .args([
            "--adapter-ip",
            "198.18.0.1",
            "--router-mac",
            "02:00:00:00:00:01",
        ])
        .output()
        .expect("masscan (scripts/setup.sh --test installs it)");
    std::fs::write(&conf, &echoed.stdout).unwrap();
    let (code, err) = run(&["-c", conf.to_str().unwrap(), "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("255 addresses x 2 ports = 510 probes"),
        "{err}"
    );
    let out = Command::new(BIN)
        .args([
            "198.19.0.0/24",
            "-p",
            "22",
            "--rate",
            "5k",
            "--open",
            "--echo",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("range = 198.19.0.0/24\nports = 22\nrate = 5k\nopen = true"),
        "{text}"
    );
    std::fs::write(&conf, text.as_bytes()).unwrap();
    let (code, err) = run(&[
        "-c",
        conf.to_str().unwrap(),
        "--dry-run",
        "-S",
        "198.18.0.1",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("256 addresses x 1 port = 256 probes") && err.contains("rate 5.0 kpps"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
