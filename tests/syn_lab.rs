//! SYN scans of the /16 lab over both transports and thread counts, compared with the ground
//! truth; the kernel of the scanner never answers for our port range; rate 0; Ctrl-C.

mod common;

use std::{
    collections::{BTreeMap, HashSet},
    net::Ipv4Addr,
    process::Stdio,
    time::Duration,
};

use common::*;

fn full_scan(lab: &Lab, extra: &[&str]) -> (Vec<Result_>, String) {
    let mut args = vec![
        LAB_NET, "-p", LAB_PORTS, "--rate", "100000", "--wait", "2", "-q",
    ];
    args.extend_from_slice(extra);
    let out = lab.xdpscan(&args);
    let err = stderr(&out);
    assert!(out.status.success(), "xdpscan failed: {err}");
    (parse_results(&out.stdout), err)
}

fn exact_over(extra: &[&str]) {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let rsts = lab.scan_counter("TcpOutRsts");
    let aborts = lab.scan_counter("TcpExtTCPAbortOnData");
    let (results, err) = full_scan(&lab, extra);
    assert_exact(&results, &lab_expected());
    assert!(
        results
            .iter()
            .all(|r| r.proto == "tcp" && r.scan == "syn" && r.ttl == 64),
        "fields"
    );
    if !extra.contains(&"packet") {
        // Our XDP program keeps every reply from the scanner's kernel: it never sends a RST.
        assert_eq!(
            lab.scan_counter("TcpOutRsts"),
            rsts,
            "scanner kernel sent RSTs"
        );
        assert_eq!(lab.scan_counter("TcpExtTCPAbortOnData"), aborts);
    }
    assert!(!err.contains("AF_XDP unavailable"), "fell back: {err}");
}

#[test]
fn xdp_one_thread_reports_exactly_the_lab() {
    exact_over(&["--transport", "xdp"]);
}

#[test]
fn xdp_two_threads_reports_exactly_the_lab() {
    exact_over(&["--transport", "xdp", "--tx-threads", "2"]);
}

#[test]
fn xdp_generic_mode_on_chosen_cores_reports_exactly() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    // The program in the generic receive path; transmit on core 1, receive on core 0.
    let out = lab.xdpscan(&[
        "198.19.0.0/20",
        "-p",
        LAB_PORTS,
        "--rate",
        "20000",
        "--wait",
        "1",
        "-q",
        "--transport",
        "xdp",
        "--xdp-mode",
        "generic",
        "--cores",
        "1",
        "--rx-core",
        "0",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let expected = syn_expected(
        u32::from(std::net::Ipv4Addr::new(198, 19, 0, 0)),
        4096,
        &[22, 80, 443, 8080],
    );
    assert_exact(&parse_results(&out.stdout), &expected);
    let ip = lab
        .in_scan("ip", &["-d", "link", "show", &format!("{}s", lab.prefix)])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&ip.stdout).contains("xdp"),
        "the program outlived the scan"
    );
}

#[test]
fn packet_one_thread_reports_exactly_the_lab() {
    exact_over(&["--transport", "packet"]);
}

#[test]
fn packet_two_threads_reports_exactly_the_lab() {
    exact_over(&["--transport", "packet", "--tx-threads", "2"]);
}

#[test]
fn rate_zero_completes_and_reports_what_it_found() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let out = lab.xdpscan(&[LAB_NET, "-p", LAB_PORTS, "--rate", "0", "--wait", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let results = parse_results(&out.stdout);
    let expected = lab_expected();
    // Whatever was found is true, and nothing twice.
    let mut seen = HashSet::new();
    for r in &results {
        assert!(seen.insert((r.ip, r.port)), "duplicate {r:?}");
        let e = expected
            .get(&(r.ip, r.port))
            .unwrap_or_else(|| panic!("unexpected {r:?}"));
        assert_eq!((&r.state, &r.reason), (&e.0, &e.1));
    }
    let summary = stderr(&out);
    let line = summary.lines().last().unwrap_or_default();
    eprintln!(
        "rate 0: found {}/{} ({:.2}%); {line}",
        results.len(),
        expected.len(),
        100.0 * results.len() as f64 / expected.len() as f64
    );
    assert!(line.contains("sent 262,144 probes"), "{line}");
}

#[test]
fn retransmitted_syn_acks_are_reported_once() {
    if !lab_available() {
        return;
    }
    // A target that retransmits every SYN-ACK twice.
    let lab = Lab::up_with(&[("LAB_SYNACK_RETRIES", "2")]);
    let out = lab.xdpscan(&[
        "198.19.0.0/24",
        "-p",
        "22,80,8080",
        "--rate",
        "2000",
        "--wait",
        "4",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let results = parse_results(&out.stdout);
    assert_exact(
        &results,
        &syn_expected(
            u32::from(std::net::Ipv4Addr::new(198, 19, 0, 0)),
            256,
            &[22, 80, 8080],
        ),
    );
    let err = stderr(&out);
    let dup: u64 = err
        .split(" duplicate")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        dup >= 512,
        "expected the retransmits to be counted as duplicates: {err}"
    );
}

#[test]
fn ctrl_c_stops_sending_and_keeps_what_was_found() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    // 262144 probes at 20 kpps would take 13 s; interrupt after 2.
    let child = lab
        .in_scan(
            BIN,
            &[
                LAB_NET,
                "-p",
                LAB_PORTS,
                "--rate",
                "20000",
                "--wait",
                "2",
                "--resume-file",
                &resume_path("ctrlc"),
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // `ip netns exec` execs the scanner, so the child's pid is the scanner's.
    let pid = child.id() as i32;
    let reader = std::thread::spawn(move || child.wait_with_output().unwrap());
    std::thread::sleep(Duration::from_secs(2));
    unsafe { libc::kill(pid, libc::SIGINT) };
    let t = std::time::Instant::now();
    let out = reader.join().unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(6),
        "did not stop after the cooldown"
    );
    assert_eq!(
        out.status.code(),
        Some(130),
        "exit {:?}: {}",
        out.status,
        stderr(&out)
    );
    let results = parse_results(&out.stdout);
    let expected = lab_expected();
    assert!(
        results.len() > 10_000 && results.len() < expected.len() / 2,
        "found {}",
        results.len()
    );
    for r in &results {
        assert_eq!(
            expected.get(&(r.ip, r.port)).map(|e| e.0.as_str()),
            Some(r.state.as_str())
        );
    }
    assert!(stderr(&out).contains("interrupted"), "{}", stderr(&out));
    let _ = std::fs::remove_file(resume_path("ctrlc"));
}

#[test]
fn second_ctrl_c_skips_the_cooldown() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let child = lab
        .in_scan(
            BIN,
            &[
                "198.19.0.0/24",
                "-p",
                "22",
                "--rate",
                "1000",
                "--wait",
                "60",
                "-q",
                "--resume-file",
                &resume_path("ctrlc2"),
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    std::thread::sleep(Duration::from_millis(500));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let t = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "cooldown of 60 s was not skipped"
    );
    assert_eq!(out.status.code(), Some(130));
    assert!(!parse_results(&out.stdout).is_empty());
    let _ = std::fs::remove_file(resume_path("ctrlc2"));
}

/// Interrupted scans write a resume file; keep it out of the working tree.
fn resume_path(tag: &str) -> String {
    std::env::temp_dir()
        .join(format!("xdpscan-{tag}-{}.json", std::process::id()))
        .to_str()
        .unwrap()
        .to_string()
}

#[test]
fn open_show_and_noshow_select_what_is_written_and_the_summary_counts_all() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let expected = syn_expected(
        u32::from(Ipv4Addr::new(198, 19, 0, 0)),
        1024,
        &[22, 80, 8080],
    );
    let base = [
        "198.19.0.0/22",
        "-p",
        "22,80,8080",
        "--rate",
        "50000",
        "--wait",
        "2",
    ];
    for (flags, states) in [
        (&["--open"][..], &["open"][..]),
        (
            &["--show", "closed,filtered"][..],
            &["closed", "filtered"][..],
        ),
        (&["--noshow", "closed"][..], &["open", "filtered"][..]),
    ] {
        let mut args = base.to_vec();
        args.extend_from_slice(flags);
        let out = lab.xdpscan(&args);
        assert!(out.status.success(), "{flags:?}: {}", stderr(&out));
        let want: BTreeMap<_, _> = expected
            .iter()
            .filter(|(_, (s, _))| states.contains(&s.as_str()))
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        assert_exact(&parse_results(&out.stdout), &want);
        // The summary still counts every state.
        let open = expected.values().filter(|(s, _)| s == "open").count();
        let closed = expected.values().filter(|(s, _)| s == "closed").count();
        let summary = stderr(&out);
        assert!(
            summary.contains(&format!("{open} open, {closed} closed")),
            "{flags:?}: {summary}"
        );
    }
}
