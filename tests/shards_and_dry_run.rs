//! Shards of one seed union to the whole scan without overlap; a dry run builds each probe
//! exactly once with valid checksums; the default blocklist is applied and reported.

mod common;

use std::{collections::HashSet, net::Ipv4Addr};

use common::*;
use xdpscan::wire::{checksum, EthernetFrame, Ipv4Packet, TcpFlags, TcpSegment};

#[test]
fn three_shards_of_one_seed_cover_the_scan_once() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let mut all = Vec::new();
    let mut sets = Vec::new();
    for shard in ["1/3", "2/3", "3/3"] {
        let out = lab.xdpscan(&[
            LAB_NET, "-p", LAB_PORTS, "--rate", "100000", "--wait", "2", "-q", "--seed", "4242",
            "--shard", shard,
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let r = parse_results(&out.stdout);
        sets.push(r.iter().map(|r| (r.ip, r.port)).collect::<HashSet<_>>());
        all.extend(r);
    }
    for i in 0..3 {
        for j in i + 1..3 {
            assert!(sets[i].is_disjoint(&sets[j]), "shards {i} and {j} overlap");
        }
        assert!(
            sets[i].len() > 60_000,
            "shard {i} too small: {}",
            sets[i].len()
        );
    }
    assert_exact(&all, &lab_expected());
}

fn probes_in(path: &std::path::Path) -> Vec<(Ipv4Addr, u16)> {
    read_pcap(path)
        .iter()
        .map(|f| {
            let eth = EthernetFrame::new_checked(&f[..]).unwrap();
            assert_eq!(eth.ethertype(), 0x0800);
            let ip = Ipv4Packet::new_checked(eth.payload()).unwrap();
            assert!(ip.verify_checksum(), "bad IP checksum");
            assert_eq!(ip.src(), u32::from(Ipv4Addr::new(198, 18, 0, 1)));
            let tcp = TcpSegment::new_checked(ip.payload()).unwrap();
            assert!(tcp.verify_checksum(ip.src(), ip.dst()), "bad TCP checksum");
            assert_eq!(tcp.flags(), TcpFlags(TcpFlags::SYN));
            assert!((61000..=65535).contains(&tcp.src_port()));
            let acc = checksum::pseudo_header(ip.src(), ip.dst(), 6, ip.payload().len() as u16);
            assert!(checksum::verify(checksum::sum(acc, ip.payload())));
            (Ipv4Addr::from(ip.dst()), tcp.dst_port())
        })
        .collect()
}

#[test]
fn dry_run_pcap_holds_each_probe_once_with_valid_checksums() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let dir = tempdir();
    let mut shards = Vec::new();
    for (i, threads) in [(1, "1"), (2, "2"), (3, "1")] {
        let pcap = dir.join(format!("shard{i}.pcap"));
        let shard = format!("{i}/3");
        let out = lab.xdpscan(&[
            "198.19.0.0/20",
            "-p",
            "22,80,443",
            "--dry-run",
            "--pcap",
            pcap.to_str().unwrap(),
            "--seed",
            "7",
            "--shard",
            &shard,
            "--tx-threads",
            threads,
            "-q",
            "--rate",
            "0",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(out.stdout.is_empty(), "a dry run reports no results");
        shards.push(probes_in(&pcap));
    }
    let whole = dir.join("whole.pcap");
    let out = lab.xdpscan(&[
        "198.19.0.0/20",
        "-p",
        "22,80,443",
        "--dry-run",
        "--pcap",
        whole.to_str().unwrap(),
        "-q",
        "--rate",
        "0",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let probes = probes_in(&whole);
    let set: HashSet<_> = probes.iter().copied().collect();
    assert_eq!(probes.len(), 4096 * 3);
    assert_eq!(set.len(), probes.len(), "a probe was built twice");
    let union: Vec<_> = shards.concat();
    let uset: HashSet<_> = union.iter().copied().collect();
    assert_eq!(union.len(), uset.len(), "shards overlap");
    assert_eq!(uset, set, "shards do not cover the scan");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn default_blocklist_trims_broad_targets_and_says_so() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    // 198.16.0.0/12 straddles 198.18.0.0/15; nothing is sent in a dry run.
    let out = lab.xdpscan(&[
        "198.16.0.0/12",
        "-p",
        "80",
        "--dry-run",
        "--source-ip",
        "198.18.0.1",
        "--gateway-mac",
        "02:00:00:00:00:02",
        "--rate",
        "0",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("131,072 reserved addresses removed by the default blocklist"),
        "{err}"
    );
    assert!(err.contains("917,504 addresses"), "{err}");
}

fn tempdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("xdpscan-test-{}-{}", std::process::id(), line!()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Issue 20, item 17: the documents reach the disk (fdatasync) before the resume file that
/// covers them is put in place (its rename); they were flushed, never synced.
#[test]
fn results_reach_the_disk_before_the_resume_state() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let dir = tempdir();
    let (out, resume, trace) = (
        dir.join("out.ndjson"),
        dir.join("r.resume"),
        dir.join("trace"),
    );
    let o = lab
        .in_scan(
            "strace",
            &[
                "-f",
                "-y",
                "-e",
                "trace=fdatasync,fsync,rename,renameat,renameat2",
                "-o",
                trace.to_str().unwrap(),
                BIN,
                "198.19.0.0/16",
                "-p",
                "80",
                "--rate",
                "3000",
                "--dry-run",
                "--max-runtime",
                "1",
                "-oJ",
                out.to_str().unwrap(),
                "--resume-file",
                resume.to_str().unwrap(),
                "-q",
            ],
        )
        .output()
        .unwrap();
    assert!(resume.exists(), "{}", stderr(&o));
    let t = std::fs::read_to_string(&trace).unwrap();
    let synced = t
        .lines()
        .position(|l| l.contains("sync(") && l.contains("out.ndjson"));
    let renamed = t
        .lines()
        .position(|l| l.contains("rename") && l.contains("r.resume"));
    match (synced, renamed) {
        (Some(s), Some(r)) => assert!(s < r, "{t}"),
        _ => panic!("no fdatasync of the results before the resume file's rename:\n{t}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn probe_fields_follow_the_flags() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let dir = tempdir();
    let pcap = dir.join("flags.pcap");
    let targets = dir.join("targets.txt");
    let excludes = dir.join("excludes.txt");
    std::fs::write(
        &targets,
        "# two /24s\n198.19.0.0/24\n198.19.1.0/24 # second\n",
    )
    .unwrap();
    std::fs::write(&excludes, "198.19.1.128/25\n").unwrap();
    let out = lab.xdpscan(&[
        "-iL",
        targets.to_str().unwrap(),
        "--exclude-file",
        excludes.to_str().unwrap(),
        "--exclude",
        "198.19.0.0/25",
        "-p",
        "80",
        "--ttl",
        "33",
        "--source-port",
        "62000-62009",
        "--dry-run",
        "--pcap",
        pcap.to_str().unwrap(),
        "--rate",
        "0",
        "-q",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let frames = read_pcap(&pcap);
    assert_eq!(frames.len(), 256, "two /24s less two excluded halves");
    for f in &frames {
        let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
        assert_eq!(ip.ttl(), 33);
        let last = ip.dst() & 0xff;
        let third = (ip.dst() >> 8) & 0xff;
        assert!(
            (third == 0 && last >= 128) || (third == 1 && last < 128),
            "excluded target {:#x}",
            ip.dst()
        );
        let tcp = TcpSegment::new_checked(ip.payload()).unwrap();
        assert!(
            (62000..=62009).contains(&tcp.src_port()),
            "source port {}",
            tcp.src_port()
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// `--shard auto` under each scheduler's environment builds exactly the probes of the shard it
/// names; a missing count is one line.
#[test]
fn shard_auto_follows_the_scheduler() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let dir = tempdir();
    let dry = |name: &str, shard: &[&str], env: &[(&str, &str)]| {
        let pcap = dir.join(format!("{name}.pcap"));
        let mut args = vec![
            "198.19.0.0/22",
            "-p",
            "22,80",
            "--dry-run",
            "--pcap",
            pcap.to_str().unwrap(),
            "--seed",
            "11",
            "-q",
            "--rate",
            "0",
        ];
        args.extend_from_slice(shard);
        let mut c = lab.in_scan(BIN, &args);
        c.env_remove("JOB_COMPLETION_INDEX")
            .env_remove("SLURM_ARRAY_TASK_ID")
            .env_remove("NOMAD_ALLOC_INDEX");
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        (out.status.code(), stderr(&out), pcap)
    };
    let fixed = |i: u32| {
        let (code, err, pcap) = dry(&format!("fixed{i}"), &["--shard", &format!("{i}/4")], &[]);
        assert_eq!(code, Some(0), "{err}");
        probes_in(&pcap)
    };
    type Case<'a> = (&'a str, &'a [&'a str], &'a [(&'a str, &'a str)], u32);
    let cases: [Case; 3] = [
        (
            "k8s",
            &["--shard", "auto", "--shards", "4"],
            &[("JOB_COMPLETION_INDEX", "1")],
            2,
        ),
        (
            "slurm",
            &["--shard", "auto"],
            &[
                ("SLURM_ARRAY_TASK_ID", "4"),
                ("SLURM_ARRAY_TASK_MIN", "1"),
                ("SLURM_ARRAY_TASK_COUNT", "4"),
            ],
            4,
        ),
        (
            "nomad",
            &["--shard", "auto", "--shards", "4"],
            &[("NOMAD_ALLOC_INDEX", "0")],
            1,
        ),
    ];
    for (name, shard, env, one_based) in cases {
        let (code, err, pcap) = dry(name, shard, env);
        assert_eq!(code, Some(0), "{name}: {err}");
        let got = probes_in(&pcap);
        assert!(!got.is_empty());
        assert_eq!(got, fixed(one_based), "{name} is shard {one_based}/4");
    }
    for (shard, env, msg) in [
        (
            &["--shard", "auto"][..],
            &[("JOB_COMPLETION_INDEX", "1")][..],
            "add --shards N",
        ),
        (
            &["--shard", "auto", "--shards", "4"],
            &[],
            "no scheduler index",
        ),
        (
            &["--shard", "2/4", "--shards", "4"],
            &[],
            "goes with --shard auto",
        ),
    ] {
        let (code, err, _) = dry("bad", shard, env);
        assert_eq!(code, Some(2), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(msg), "{err}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Packets the scanner namespace's veths have sent, packets its kernel's IP stack has sent (a
/// new veth's IPv6 router solicitations and MLD reports are the kernel's), and TCP connections
/// its kernel has opened.
fn wire_counters(lab: &Lab) -> (u64, u64, u64) {
    let out = lab
        .in_scan("cat", &["/proc/net/dev"])
        .output()
        .expect("read /proc/net/dev");
    let tx: u64 = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim_start().starts_with("lo:") && l.contains(':'))
        .filter_map(|l| {
            l.split(':')
                .nth(1)?
                .split_whitespace()
                .nth(9)?
                .parse::<u64>()
                .ok()
        })
        .sum();
    let kernel = lab.scan_counter("IpOutRequests") + lab.scan_counter("Ip6OutRequests");
    (tx, kernel, lab.scan_counter("TcpActiveOpens"))
}

/// A kernel left alone still talks now and then (ARP reconfirmations, IPv6 router
/// solicitations and MLD reports): neighbours pinned and IPv6 off, every frame on the scanner's
/// wire would be the scanner's own.
fn quiet_kernel(lab: &Lab) {
    for key in ["all", "default"] {
        let ok = lab
            .in_scan(
                "sysctl",
                &["-qw", &format!("net.ipv6.conf.{key}.disable_ipv6=1")],
            )
            .status()
            .unwrap();
        assert!(ok.success());
    }
    let out = lab
        .in_scan("ip", &["-j", "-4", "neigh", "show"])
        .output()
        .unwrap();
    let neighbours: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    for n in neighbours {
        let (Some(dst), Some(dev), Some(mac)) =
            (n["dst"].as_str(), n["dev"].as_str(), n["lladdr"].as_str())
        else {
            continue;
        };
        let ok = lab
            .in_scan(
                "ip",
                &[
                    "neigh",
                    "replace",
                    dst,
                    "lladdr",
                    mac,
                    "dev",
                    dev,
                    "nud",
                    "permanent",
                ],
            )
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

#[test]
fn a_dry_run_sends_nothing_in_any_mode() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let modes: [&[&str]; 10] = [
        &["-sS", "-p", "22,80"],
        &["-sY", "-sU", "-p", "S:22,U:53"],
        &["-sT", "-p", "22,80"],
        &["-sU", "-p", "53,161"],
        &["-sS", "-p", "22,80", "--banners"],
        &["-sS", "-p", "22,80", "-sV"],
        &["-p", "22,80", "--traceroute"],
        &["-PE"],
        &["-sO", "-p", "1,6,17"],
        &[
            "-sS",
            "-p",
            "22,80",
            "--publish",
            "nats://198.18.0.2:4222/dry",
        ],
    ];
    quiet_kernel(&lab);
    for mode in modes {
        let before = wire_counters(&lab);
        let mut args = vec!["198.19.0.0/28", "--dry-run", "--rate", "0"];
        args.extend_from_slice(mode);
        let out = lab.xdpscan(&args);
        assert!(out.status.success(), "{mode:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("dry run: nothing is sent"),
            "{mode:?}: {}",
            stderr(&out)
        );
        let after = wire_counters(&lab);
        assert!(
            after == before,
            "{mode:?} sent something: (veth, kernel, connections) {before:?} -> {after:?}"
        );
    }
    // With no route at all (a namespace with only loopback): placeholders, said once.
    let out = std::process::Command::new("unshare")
        .args([
            "--net",
            env!("CARGO_BIN_EXE_xdpscan"),
            "-sT",
            "-p",
            "80,81",
            "198.19.0.1",
        ])
        .arg("--dry-run")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(
        err.matches("documentation placeholders").count(),
        1,
        "{err}"
    );
    assert!(err.contains("built 2 probes"), "{err}");
}

/// The start line announces the probes the summary then counts: payload variants, TTLs and
/// retries included, numbers grouped, singular and plural right (no route needed: a dry run).
#[test]
fn the_start_line_counts_the_probes_the_summary_counts() {
    let run = |args: &[&str]| -> String {
        let out = std::process::Command::new("unshare")
            .arg("--net")
            .arg(env!("CARGO_BIN_EXE_xdpscan"))
            .args(args)
            .args(["--dry-run", "--rate", "0"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stderr(&out)
    };
    for (args, start, built) in [
        (
            &["-sU", "-p", "53,161", "198.19.0.0/24"][..],
            "256 addresses x 2 ports = 512 targets, 768 probes",
            "built 768 probes",
        ),
        (
            &["--traceroute", "-p", "80", "198.19.0.0/30"][..],
            "4 addresses x 1 port = 4 targets, 120 probes",
            "built 120 probes",
        ),
        (
            &["--retries", "2", "-p", "80", "198.19.0.0/30"][..],
            "4 addresses x 1 port = 4 targets, 12 probes",
            "built 12 probes",
        ),
        (
            &["-p", "80", "198.19.0.1"][..],
            "1 address x 1 port = 1 probe;",
            "built 1 probe in",
        ),
        (
            &["-p", "1-1000", "198.19.0.0/22"][..],
            "1,024 addresses x 1,000 ports = 1,024,000 probes",
            "built 1,024,000 probes",
        ),
    ] {
        let err = run(args);
        assert!(err.contains(start), "{args:?}: {err}");
        assert!(err.contains(built), "{args:?}: {err}");
    }
}
