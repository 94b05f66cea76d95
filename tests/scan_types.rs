//! Every scan type against the lab: its states over a /20 that holds every shaped range must be
//! exactly the lab's, and on a sample of those targets they must equal nmap's with the same flag.

mod common;

use std::{collections::BTreeMap, net::Ipv4Addr};

use common::*;

const NET: &str = "198.19.0.0/20";
const PORTS: &str = "22,80,8080";
const UDP_PORTS: &str = "53,161,9999";

fn xdpscan_states(lab: &Lab, args: &[&str]) -> BTreeMap<(Ipv4Addr, u16), (String, String)> {
    let out = lab.xdpscan(args);
    assert!(out.status.success(), "xdpscan {args:?}: {}", stderr(&out));
    let results = parse_results(&out.stdout);
    let mut m = BTreeMap::new();
    for r in results {
        assert!(
            m.insert((r.ip, r.port), (r.state, r.reason)).is_none(),
            "duplicate {}:{}",
            r.ip,
            r.port
        );
    }
    m
}

/// Scans the /20 with `flag`, compares with the truth table, then compares a sample with nmap.
fn check(flag: &str, ports: &str) {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let mut args = vec![
        NET,
        "-p",
        ports,
        flag,
        "--rate",
        "50000",
        "--wait",
        "1",
        "--report-silent",
        "-q",
    ];
    // The lab's BSD-like stack is a userspace program: give connects to it time under load.
    if flag == "-sT" {
        args.extend_from_slice(&["--connect-timeout", "3000"]);
    }
    let got = xdpscan_states(&lab, &args);
    let ports_v: Vec<u16> = ports.split(',').map(|p| p.parse().unwrap()).collect();
    let mut expected = BTreeMap::new();
    for a in 0..4096u32 {
        let ip = Ipv4Addr::from(0xc613_0000 + a);
        for &p in &ports_v {
            let (s, r) = truth(flag, ip, p);
            expected.insert((ip, p), (s.to_string(), r.to_string()));
        }
    }
    let wrong: Vec<_> = expected
        .iter()
        .filter(|(k, v)| got.get(k) != Some(v))
        .take(8)
        .collect();
    assert!(
        wrong.is_empty() && got.len() == expected.len(),
        "{flag}: {} results, {} expected; first differences {:?}",
        got.len(),
        expected.len(),
        wrong
            .iter()
            .map(|(k, v)| (k, v, got.get(k)))
            .collect::<Vec<_>>()
    );

    let nmap = nmap_states(&lab, &[flag], Some(ports), &SAMPLE);
    let sample = xdpscan_states(
        &lab,
        &[
            &SAMPLE.join(","),
            "-p",
            ports,
            flag,
            "--rate",
            "2000",
            "--wait",
            "1",
            "--report-silent",
            "-q",
        ],
    );
    let diff: Vec<_> = nmap
        .iter()
        .filter(|(k, s)| sample.get(k).map(|v| &v.0) != Some(s))
        .collect();
    eprintln!(
        "{flag}: nmap agrees on {}/{} (address, port) pairs",
        nmap.len() - diff.len(),
        nmap.len()
    );
    assert!(diff.is_empty(), "{flag}: nmap differs: {diff:?}");
    assert_eq!(
        nmap.len(),
        SAMPLE.len() * ports_v.len(),
        "{flag}: nmap reported {nmap:?}"
    );
}

/// SCTP INIT (`-sY`) against the lab's user-space SCTP endpoint (the kernel has none).
#[test]
fn sctp_init() {
    check("-sY", PORTS);
}

/// SCTP COOKIE ECHO (`-sZ`).
#[test]
fn sctp_cookie_echo() {
    check("-sZ", PORTS);
}

#[test]
fn syn() {
    check("-sS", PORTS);
}

#[test]
fn ack() {
    check("-sA", PORTS);
}

#[test]
fn window() {
    check("-sW", PORTS);
}

#[test]
fn fin() {
    check("-sF", PORTS);
}

#[test]
fn null() {
    check("-sN", PORTS);
}

#[test]
fn xmas() {
    check("-sX", PORTS);
}

#[test]
fn maimon() {
    check("-sM", PORTS);
}

#[test]
fn connect() {
    check("-sT", PORTS);
}

#[test]
fn udp() {
    check("-sU", UDP_PORTS);
}

#[test]
fn scanflags_take_the_base_scans_reading() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    // SYN+PSH is read as a SYN scan (nmap's default base); FIN+PSH+URG by name with -sF as -sF.
    for (extra, base) in [
        (&["--scanflags", "SYNPSH"][..], "-sS"),
        (&["--scanflags", "URGPSHFIN", "-sF"][..], "-sF"),
    ] {
        let mut a = vec![
            "198.19.0.0/24,198.19.2.0/24,198.19.10.0/24",
            "-p",
            PORTS,
            "--rate",
            "20000",
            "--wait",
            "1",
            "-q",
            "--report-silent",
        ];
        a.extend_from_slice(extra);
        let got = xdpscan_states(&lab, &a);
        assert_eq!(got.len(), 768 * 3);
        for ((ip, port), (state, _)) in &got {
            assert_eq!(state, truth(base, *ip, *port).0, "{extra:?} {ip}:{port}");
        }
        let hosts = &SAMPLE[..4];
        let nmap = nmap_states(&lab, extra, Some(PORTS), hosts);
        let joined = hosts.join(",");
        let mut a = vec![
            joined.as_str(),
            "-p",
            PORTS,
            "--rate",
            "1000",
            "--wait",
            "1",
            "-q",
            "--report-silent",
        ];
        a.extend_from_slice(extra);
        let ours = xdpscan_states(&lab, &a);
        for (k, s) in &nmap {
            assert_eq!(ours.get(k).map(|v| &v.0), Some(s), "{extra:?} {k:?}");
        }
        assert_eq!(nmap.len(), 12);
    }
}

#[test]
fn ip_protocol() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let protos = "1,2,6,17,47,132";
    let got = xdpscan_states(
        &lab,
        &[
            &SAMPLE.join(","),
            "-sO",
            "-p",
            protos,
            "--rate",
            "2000",
            "--wait",
            "1",
            "--report-silent",
            "-q",
        ],
    );
    // The default lab host: ICMP answers echo, TCP resets the ACK, UDP port-unreachable proves
    // UDP, IGMP is silent, GRE is not loaded (protocol unreachable), SCTP's INIT gets the lab
    // endpoint's INIT ACK (lab-sctp.py listens on 80).
    let host = |p: u16| {
        got.get(&("198.19.0.1".parse().unwrap(), p))
            .map(|v| v.0.as_str())
    };
    assert_eq!(
        [host(1), host(2), host(6), host(17), host(47), host(132)],
        [
            Some("open"),
            Some("open|filtered"),
            Some("open"),
            Some("open"),
            Some("closed"),
            Some("open")
        ]
    );
    let nmap = nmap_run(&lab, &["-sO", "--packet-trace"], Some(protos), &SAMPLE);
    let mut agree = 0;
    for (k, s) in &nmap.states {
        let ours = got.get(k).map(|v| v.0.as_str());
        assert!(
            ours == Some(s.as_str()) || nmap_icmp_verdict_excused(*k, s, ours, &nmap.stdout),
            "{k:?}: nmap {s}, xdpscan {ours:?}"
        );
        agree += usize::from(ours == Some(s.as_str()));
    }
    eprintln!(
        "-sO: nmap agrees on {agree}/{} (address, protocol) pairs",
        nmap.states.len()
    );
    assert_eq!(nmap.states.len(), SAMPLE.len() * 6);
}

#[test]
fn ping_sweep() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let got = xdpscan_states(
        &lab,
        &[
            "198.19.0.0/20",
            "-PE",
            "--rate",
            "20000",
            "--wait",
            "1",
            "--report-silent",
            "-q",
        ],
    );
    assert_eq!(got.len(), 4096);
    for ((ip, port), (state, _)) in &got {
        assert_eq!(*port, 0);
        let want = match ip.octets()[2] {
            1..=4 | 7 => "down",
            _ => "up", // answers, or says protocol/port unreachable itself
        };
        assert_eq!(state, want, "{ip}");
    }
    let nmap = nmap_states(&lab, &["-sn", "-PE"], None, &SAMPLE);
    let sample = xdpscan_states(
        &lab,
        &[
            &SAMPLE.join(","),
            "-PE",
            "--rate",
            "1000",
            "--wait",
            "1",
            "--report-silent",
            "-q",
        ],
    );
    for (k, s) in &nmap {
        assert_eq!(
            sample.get(k).map(|v| v.0.as_str()),
            Some(s.as_str()),
            "{k:?}"
        );
    }
    eprintln!("-PE: nmap agrees on {}/{} hosts", nmap.len(), nmap.len());
}

#[test]
fn connect_scan_needs_no_privileges() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    // As nobody, inside the lab: no raw sockets, no AF_XDP.
    let out = lab.xdpscan_unprivileged(&[
        "198.19.0.0/24,198.19.2.0/24",
        "-p",
        PORTS,
        "-sT",
        "--rate",
        "5000",
        "-q",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let results = parse_results(&out.stdout);
    assert_eq!(results.len(), 512 * 3);
    for r in &results {
        assert_eq!(r.state, truth("-sT", r.ip, r.port).0, "{}:{}", r.ip, r.port);
    }
    // The same user cannot run a raw scan: one clear line, exit 1.
    let out = lab.xdpscan_unprivileged(&["198.19.0.0/24", "-p", "80", "-q"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("root") || err.contains("CAP_NET_RAW"), "{err}");
}

#[test]
fn retries_send_every_probe_again() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    // Every probe goes out three times, in three passes over the whole permutation.
    let pcap = std::env::temp_dir().join(format!("xdpscan-retries-{}.pcap", std::process::id()));
    let out = lab.xdpscan(&[
        "198.19.0.0/24",
        "-p",
        "22,9999",
        "-sU",
        "--retries",
        "2",
        "--rate",
        "0",
        "-q",
        "--dry-run",
        "--pcap",
        pcap.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let frames = read_pcap(&pcap);
    let _ = std::fs::remove_file(&pcap);
    assert_eq!(frames.len(), 256 * 2 * 3);
    let mut per_target = std::collections::HashMap::new();
    for (i, f) in frames.iter().enumerate() {
        let key = (f[30..34].to_vec(), u16::from_be_bytes([f[36], f[37]]));
        per_target.entry(key).or_insert_with(Vec::new).push(i);
    }
    assert_eq!(per_target.len(), 512);
    // Passes, not back-to-back repeats: a target's copies lie a whole pass apart.
    assert!(per_target
        .values()
        .all(|v| v.len() == 3 && v[1] - v[0] >= 256 && v[2] - v[1] >= 256));
    let out = lab.xdpscan(&[
        "198.19.0.0/24",
        "-p",
        "9999",
        "-sU",
        "--retries",
        "2",
        "--rate",
        "5000",
        "--wait",
        "1",
    ]);
    let err = stderr(&out);
    assert!(err.contains("sent 768 probes"), "{err}");
    assert_eq!(
        parse_results(&out.stdout).len(),
        256,
        "retransmissions are reported once"
    );
}

/// `-sS -sU -p T:...,U:...`: TCP and UDP probes in one permutation, each read by its own
/// module. States equal the truth of each scan type, and nmap's with the same flags.
#[test]
fn tcp_and_udp_in_one_scan() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let spec = format!("T:{PORTS},U:{UDP_PORTS}");
    let scan = |targets: &str, extra: &[&str]| {
        let mut args = vec![
            targets,
            "-p",
            &spec,
            "--rate",
            "50000",
            "--wait",
            "1",
            "--report-silent",
            "-q",
        ];
        args.extend_from_slice(extra);
        let out = lab.xdpscan(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        let mut m = BTreeMap::new();
        for r in parse_results(&out.stdout) {
            let want = if r.proto == "tcp" { "syn" } else { "udp" };
            assert_eq!(r.scan, want, "{r:?}");
            let key = (r.ip, r.port, r.proto.clone());
            assert!(m.insert(key, (r.state, r.reason)).is_none(), "duplicate");
        }
        m
    };
    let got = scan(NET, &["-sS", "-sU"]);
    let mut expected = BTreeMap::new();
    for a in 0..4096u32 {
        let ip = Ipv4Addr::from(0xc613_0000 + a);
        for (flag, proto, ports) in [("-sS", "tcp", PORTS), ("-sU", "udp", UDP_PORTS)] {
            for p in ports.split(',').map(|p| p.parse::<u16>().unwrap()) {
                let (s, r) = truth(flag, ip, p);
                expected.insert((ip, p, proto.to_string()), (s.to_string(), r.to_string()));
            }
        }
    }
    let wrong: Vec<_> = expected
        .iter()
        .filter(|(k, v)| got.get(k) != Some(v))
        .take(8)
        .collect();
    assert!(
        wrong.is_empty() && got.len() == expected.len(),
        "{} results, {} expected; first differences {wrong:?}",
        got.len(),
        expected.len()
    );

    // nmap with the same flags on the sample (the ports of the two protocols differ, so
    // (address, port) names one result).
    let nmap = nmap_states(&lab, &["-sS", "-sU"], Some(&spec), &SAMPLE);
    let sample = scan(&SAMPLE.join(","), &["-sS", "-sU"]);
    let ours: BTreeMap<(Ipv4Addr, u16), String> = sample
        .iter()
        .map(|((ip, p, _), (s, _))| ((*ip, *p), s.clone()))
        .collect();
    let diff: Vec<_> = nmap
        .iter()
        .filter(|(k, s)| ours.get(k) != Some(s))
        .collect();
    eprintln!(
        "-sS -sU: nmap agrees on {}/{} (address, port) pairs",
        nmap.len() - diff.len(),
        nmap.len()
    );
    assert!(diff.is_empty(), "nmap differs: {diff:?}");
    assert_eq!(nmap.len(), SAMPLE.len() * 6, "{nmap:?}");

    // A U: port without -sU is probed over UDP, a T: port by the default SYN scan (masscan).
    let one = scan("198.19.0.1", &[]);
    assert_eq!(one.len(), 6, "{one:?}");
    assert_eq!(
        one.get(&("198.19.0.1".parse().unwrap(), 53, "udp".into())),
        Some(&("open".to_string(), "udp-response".to_string()))
    );
}
