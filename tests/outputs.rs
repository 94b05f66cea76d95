//! Outputs a pipeline or nmap's tools can read, for every scan type; status modes; stopping
//! well (resume, SIGTERM, a closed pipe, limits) and write errors that leave valid documents.

mod common;

use std::{
    collections::BTreeMap,
    net::Ipv4Addr,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use common::*;

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xdpscan-out-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn p(dir: &Path, name: &str) -> String {
    dir.join(name).to_str().unwrap().to_string()
}

fn ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every format at once for one scan type; each is read back and must hold the same results.
fn formats_for(lab: &Lab, dir: &Path, flag: &str, ports: Option<&str>) {
    let mut args: Vec<String> = vec![
        "198.19.0.0/22".into(),
        flag.into(),
        "--rate".into(),
        "20000".into(),
        "--wait".into(),
        "1".into(),
    ];
    if let Some(ps) = ports {
        args.extend(["-p".into(), ps.into()]);
    }
    // A connect scan has no raw replies to capture (the kernel holds its sockets).
    let raw = flag != "-sT";
    for (f, name) in [
        ("-oJ", "r.ndjson"),
        ("-oX", "r.xml"),
        ("-oG", "r.gnmap"),
        ("-oN", "r.nmap"),
        ("-oL", "r.list"),
        ("--csv", "r.csv"),
        ("--pcap-replies", "r.pcap"),
        ("-m", "meta.json"),
        ("--status-file", "status.csv"),
    ] {
        if raw || f != "--pcap-replies" {
            args.extend([f.to_string(), p(dir, name)]);
        }
    }
    args.extend([
        "-f".into(),
        "saddr,sport,proto,state,reason,ttl,dport,success,timestamp_ts".into(),
        "--status-json".into(),
    ]);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = lab.xdpscan(&a);
    assert!(out.status.success(), "{flag}: {}", stderr(&out));
    assert!(
        out.stdout.is_empty(),
        "{flag}: with files named, stdout stays empty"
    );

    // NDJSON: every line parses; the reference set of results.
    let json = parse_results(&std::fs::read(dir.join("r.ndjson")).unwrap());
    assert!(!json.is_empty(), "{flag}: no results");
    let want: BTreeMap<(Ipv4Addr, u16), String> = json
        .iter()
        .map(|r| ((r.ip, r.port), r.state.clone()))
        .collect();
    assert_eq!(want.len(), json.len(), "{flag}: duplicate results");

    // nmap XML: validates against nmap's DTD and renders with nmap.xsl.
    ok(Command::new("xmllint").args([
        "--noout",
        "--dtdvalid",
        "/usr/share/nmap/nmap.dtd",
        &p(dir, "r.xml"),
    ]));
    let html = ok(Command::new("xsltproc").args(["/usr/share/nmap/nmap.xsl", &p(dir, "r.xml")]));
    assert!(
        html.contains("198.19.0."),
        "{flag}: nmap.xsl rendered no host"
    );
    // One block (XML) or one pair of lines (grepable) per host, with all its ports, as nmap.
    let hosts: std::collections::BTreeSet<Ipv4Addr> = json.iter().map(|r| r.ip).collect();
    let xml = std::fs::read_to_string(dir.join("r.xml")).unwrap();
    assert_eq!(
        xml.matches("<host ").count(),
        hosts.len(),
        "{flag}: one <host> per address"
    );
    let ping = flag == "-PE";
    if !ping {
        assert_eq!(xml.matches("<port ").count(), json.len(), "{flag}: ports");
    }
    let gnmap = std::fs::read_to_string(dir.join("r.gnmap")).unwrap();
    let status: Vec<&str> = gnmap.lines().filter(|l| l.contains("\tStatus: ")).collect();
    assert_eq!(status.len(), hosts.len(), "{flag}: a Status line per host");
    if !ping {
        let mut from_gnmap = BTreeMap::new();
        let ports: Vec<&str> = gnmap
            .lines()
            .filter(|l| l.contains("\tPorts: ") || l.contains("\tProtocols: "))
            .collect();
        assert_eq!(ports.len(), hosts.len(), "{flag}: a Ports line per host");
        for l in ports {
            let ip: Ipv4Addr = l.split(' ').nth(1).unwrap().parse().unwrap();
            let list = l.split_once(": ").unwrap().1.split_once(": ").unwrap().1;
            for field in list.split(", ") {
                let f: Vec<&str> = field.split('/').collect();
                from_gnmap.insert((ip, f[0].parse::<u16>().unwrap()), f[1].to_string());
            }
        }
        assert_eq!(from_gnmap, want, "{flag}: grepable differs from NDJSON");
    }
    // nmap's normal output: a report per host, a table row per port or protocol.
    let normal = std::fs::read_to_string(dir.join("r.nmap")).unwrap();
    assert_eq!(
        normal.matches("Nmap scan report for ").count(),
        hosts.len(),
        "{flag}: a report per host"
    );
    if !ping {
        let mut from_normal = BTreeMap::new();
        let mut host = None;
        for l in normal.lines() {
            if let Some(h) = l.strip_prefix("Nmap scan report for ") {
                host = Some(h.parse::<Ipv4Addr>().unwrap());
            } else if l.starts_with(|c: char| c.is_ascii_digit()) {
                let cells: Vec<&str> = l.split_whitespace().collect();
                let port = cells[0].split('/').next().unwrap().parse::<u16>().unwrap();
                from_normal.insert((host.unwrap(), port), cells[1].to_string());
            }
        }
        assert_eq!(
            from_normal, want,
            "{flag}: normal output differs from NDJSON"
        );
    }
    assert!(
        gnmap
            .lines()
            .last()
            .unwrap()
            .starts_with("# xdpscan done at"),
        "{flag}: grepable footer"
    );
    let total = 1024; // 198.19.0.0/22
    assert!(
        xml.contains(&format!(
            "<hosts up=\"{}\" down=\"{}\" total=\"{total}\"/>",
            status.iter().filter(|l| l.ends_with("Up")).count(),
            total - status.iter().filter(|l| l.ends_with("Up")).count()
        )),
        "{flag}: runstats"
    );
    let list = std::fs::read_to_string(dir.join("r.list")).unwrap();
    assert!(list.starts_with("#masscan\n") && list.ends_with("# end\n"));
    let mut from_list = BTreeMap::new();
    for l in list.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = l.split(' ').collect();
        assert_eq!(f.len(), 5, "{l}");
        assert!(f[4].parse::<u64>().unwrap() > 1_700_000_000);
        from_list.insert(
            (
                f[3].parse::<Ipv4Addr>().unwrap(),
                f[2].parse::<u16>().unwrap(),
            ),
            f[0].to_string(),
        );
    }
    assert_eq!(from_list, want, "{flag}: list differs from NDJSON");

    // CSV: header as asked, then one row per result.
    let csv = std::fs::read_to_string(dir.join("r.csv")).unwrap();
    let mut rows = csv.lines();
    assert_eq!(
        rows.next(),
        Some("saddr,sport,proto,state,reason,ttl,dport,success,timestamp_ts")
    );
    let mut from_csv = BTreeMap::new();
    for r in rows {
        let f: Vec<&str> = r.split(',').collect();
        assert_eq!(f.len(), 9, "{r}");
        from_csv.insert(
            (
                f[0].parse::<Ipv4Addr>().unwrap(),
                f[1].parse::<u16>().unwrap(),
            ),
            f[3].to_string(),
        );
    }
    assert_eq!(from_csv, want, "{flag}: CSV differs from NDJSON");

    // pcap of replies: tshark and scapy read it; every reply is one we validated.
    if !raw {
        return check_meta_and_status(dir, flag, &json, &out);
    }
    let tshark = ok(Command::new("tshark").args([
        "-n",
        "-r",
        &p(dir, "r.pcap"),
        "-T",
        "fields",
        "-E",
        "occurrence=f",
        "-e",
        "ip.dst",
    ]));
    let frames: Vec<&str> = tshark.lines().collect();
    assert!(
        frames.len()
            >= want
                .values()
                .filter(|s| *s != "open|filtered" && *s != "down")
                .count(),
        "{flag}: {} frames",
        frames.len()
    );
    assert!(
        frames.iter().all(|d| *d == "198.18.0.1"),
        "{flag}: a reply not to us"
    );
    // Debian's python3-scapy belongs to the system interpreter.
    let scapy = ok(Command::new("/usr/bin/python3").args([
        "-c",
        &format!(
            "from scapy.all import rdpcap; print(len(rdpcap('{}')))",
            p(dir, "r.pcap")
        ),
    ]));
    assert_eq!(scapy.trim().parse::<usize>().unwrap(), frames.len());

    check_meta_and_status(dir, flag, &json, &out)
}

fn check_meta_and_status(dir: &Path, flag: &str, json: &[Result_], out: &std::process::Output) {
    // Metadata: one JSON document with the run's facts.
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json")).unwrap()).unwrap();
    assert_eq!(
        meta["counts"]["results"].as_u64(),
        Some(json.len() as u64),
        "{flag}"
    );
    assert_eq!(meta["stopped"], "completed");
    for k in [
        "xdpscan_version",
        "command_line",
        "seed",
        "generator",
        "shard",
        "interface",
        "source_ip",
        "rate",
        "start_time",
        "end_time",
    ] {
        assert!(!meta[k].is_null(), "{flag}: metadata lacks {k}");
    }

    // Status: JSON lines on stderr, ZMap's CSV columns in the status file.
    let err = stderr(out);
    let status: Vec<serde_json::Value> = err
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!status.is_empty(), "{flag}: no JSON status line in {err}");
    assert!(status
        .iter()
        .all(|s| s["rate"]["pps"].is_number() && s["percent"].is_number()));
    let st = std::fs::read_to_string(dir.join("status.csv")).unwrap();
    assert!(
        st.starts_with("real-time,time-elapsed,time-remaining,percent-complete,hit-rate,"),
        "{st}"
    );
    assert!(st.lines().count() >= 2, "{flag}: no status rows");
}

#[test]
fn every_format_for_every_scan_type() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    for (flag, ports) in [
        ("-sS", Some("22,80,8080")),
        ("-sA", Some("22,8080")),
        ("-sU", Some("53,9999")),
        ("-sO", Some("1,6,17,47")),
        ("-PE", None),
        ("-sT", Some("22,8080")),
    ] {
        let dir = tempdir(flag.trim_start_matches('-'));
        formats_for(&lab, &dir, flag, ports);
        let _ = std::fs::remove_dir_all(dir);
    }
    zmap_output_modules(&lab);
}

/// ZMap's `-O csv -o FILE` writes CSV, `-O json` NDJSON, each with the fields of `-f`.
fn zmap_output_modules(lab: &Lab) {
    let dir = tempdir("zmap");
    let csv = p(&dir, "z.csv");
    let base = ["198.19.0.0/29", "-p", "22", "--wait", "1", "-q"];
    let mut args = base.to_vec();
    args.extend_from_slice(&["-O", "csv", "-o", &csv, "-f", "saddr,sport,classification"]);
    let out = lab.xdpscan(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("saddr,sport,classification"));
    assert_eq!(lines.clone().count(), 8, "{text}");
    assert!(
        lines.all(|l| l.starts_with("198.19.0.") && l.ends_with(",22,syn-ack")),
        "{text}"
    );
    let mut args = base.to_vec();
    args.extend_from_slice(&["-O", "json", "-f", "saddr,sport,success"]);
    let out = lab.xdpscan(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let objs: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objs.len(), 8);
    for o in objs {
        assert_eq!(o.as_object().unwrap().len(), 3, "{o}");
        assert!(o["saddr"].as_str().unwrap().starts_with("198.19.0."));
        assert_eq!(
            (o["sport"].as_u64(), o["success"].as_u64()),
            (Some(22), Some(1))
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn list_fields_names_every_column() {
    let out = Command::new(BIN).arg("--list-fields").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for f in [
        "saddr",
        "sport",
        "daddr",
        "dport",
        "classification",
        "success",
        "timestamp_str",
        "icmp_responder",
    ] {
        assert!(text.lines().any(|l| l.starts_with(f)), "{f} missing");
    }
}

/// Runs a scan, interrupts it after `after`, resumes it; the two together must be one full run.
fn resume_after(lab: &Lab, dir: &Path, after: Duration, signal: i32, extra: &[&str]) {
    let resume = p(dir, "resume.json");
    let _ = std::fs::remove_file(&resume);
    let lost_before = lab.target_tx_dropped();
    let mut args = vec![
        LAB_NET,
        "-p",
        LAB_PORTS,
        "--rate",
        "60000",
        "--wait",
        "1",
        "-q",
        "--resume-file",
        &resume,
    ];
    args.extend_from_slice(extra);
    let child = lab
        .in_scan(BIN, &args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    // Read its output while it runs, as a pipeline would.
    let reader = std::thread::spawn(move || child.wait_with_output().unwrap());
    std::thread::sleep(after);
    unsafe { libc::kill(pid, signal) };
    let first = reader.join().unwrap();
    assert_eq!(first.status.code(), Some(130), "{}", stderr(&first));
    assert!(
        Path::new(&resume).exists(),
        "no resume file after {after:?}: {}",
        stderr(&first)
    );
    assert!(
        stderr(&first).contains(&format!("--resume {resume}")),
        "{}",
        stderr(&first)
    );
    // The lab's pace, not the scanner's: at 100 kpps with two transmit threads on a loaded
    // 2-core machine the target's veth drops replies before our XDP hook sees them.
    let mut args2 = vec![
        LAB_NET, "-p", LAB_PORTS, "--rate", "60000", "--wait", "2", "-q", "--resume", &resume,
    ];
    args2.extend_from_slice(
        &extra[..extra
            .iter()
            .position(|a| *a == "--tx-threads")
            .unwrap_or(extra.len())],
    );
    // Kept for the check that a resume file only fits its own scan.
    std::fs::copy(&resume, p(dir, "resume.kept.json")).unwrap();
    let second = lab.xdpscan(&args2);
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(
        !Path::new(&resume).exists(),
        "a completed resume leaves its file behind"
    );
    let mut all = parse_results(&first.stdout);
    let n1 = all.len();
    all.extend(parse_results(&second.stdout));
    eprintln!(
        "resume after {after:?}: {n1} + {} results; the lab's veth dropped {} replies on the way",
        all.len() - n1,
        lab.target_tx_dropped() - lost_before
    );
    assert!(
        n1 > 0 && n1 < all.len(),
        "the interruption came too early or too late"
    );
    assert_exact(&all, &lab_expected());
}

#[test]
fn resume_continues_exactly_where_the_scan_stopped() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let dir = tempdir("resume");
    for (after, signal, extra) in [
        (Duration::from_millis(700), libc::SIGINT, &[][..]),
        (Duration::from_millis(2500), libc::SIGTERM, &[][..]),
        (
            Duration::from_millis(1500),
            libc::SIGINT,
            &["--tx-threads", "2"][..],
        ),
    ] {
        resume_after(&lab, &dir, after, signal, extra);
    }
    // A resume file only fits its own scan.
    let out = lab.xdpscan(&[
        LAB_NET,
        "-p",
        "22",
        "--resume",
        &p(&dir, "resume.kept.json"),
        "-q",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("different scan"), "{}", stderr(&out));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn limits_stop_cleanly_and_can_be_resumed() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let dir = tempdir("limits");
    let resume = p(&dir, "resume.json");
    let out = lab.xdpscan(&[
        LAB_NET,
        "-p",
        LAB_PORTS,
        "--rate",
        "50000",
        "--max-results",
        "1000",
        "-q",
        "--resume-file",
        &resume,
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(parse_results(&out.stdout).len(), 1000);
    assert!(Path::new(&resume).exists());

    let t = std::time::Instant::now();
    let out = lab.xdpscan(&[
        LAB_NET,
        "-p",
        LAB_PORTS,
        "--rate",
        "20000",
        "--wait",
        "1",
        "--max-runtime",
        "1",
        "-q",
        "--resume-file",
        &resume,
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(t.elapsed() < Duration::from_secs(5), "max-runtime ignored");
    let first = parse_results(&out.stdout);
    let second = lab.xdpscan(&[
        LAB_NET, "-p", LAB_PORTS, "--rate", "100000", "--wait", "2", "-q", "--resume", &resume,
    ]);
    let mut all = first;
    all.extend(parse_results(&second.stdout));
    assert_exact(&all, &lab_expected());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_closed_stdout_ends_the_scan_quietly() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let script = format!("ip netns exec {} {BIN} {LAB_NET} -p {LAB_PORTS} --rate 50000 | head -3; echo \"status=${{PIPESTATUS[0]}}\"", lab.scan_ns());
    let t = std::time::Instant::now();
    let out = Command::new("bash").args(["-c", &script]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("status=0"), "{text} {}", stderr(&out));
    assert_eq!(text.lines().filter(|l| l.starts_with('{')).count(), 3);
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "the scan went on after its reader left"
    );
    let err = stderr(&out);
    assert!(
        !err.contains("rror") && !err.contains("anicked") && !err.contains("roken pipe"),
        "{err}"
    );
}

#[test]
fn an_unwritable_path_is_one_line_and_exit_1() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let out = lab.xdpscan(&[
        "198.19.0.0/24",
        "-p",
        "80",
        "-oX",
        "/nonexistent/dir/r.xml",
        "-q",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("/nonexistent/dir/r.xml"), "{err}");
}

#[test]
fn a_full_disk_leaves_valid_documents() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let dir = tempdir("full");
    // A 64 KiB filesystem, mounted in a mount namespace of this command only.
    let script = format!(
        "mount -t tmpfs -o size=64k xdpscan-full {d} && ip netns exec {ns} {BIN} {LAB_NET} -p {LAB_PORTS} --rate 50000 -q -oX {d}/r.xml -oJ {d}/r.ndjson -oL {d}/r.list; echo \"status=$?\"; \
         xmllint --noout --dtdvalid /usr/share/nmap/nmap.dtd {d}/r.xml && echo xml-valid; \
         python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]; print(\"json-valid\")' {d}/r.ndjson; \
         tail -1 {d}/r.list",
        d = dir.display(),
        ns = lab.scan_ns()
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "bash", "-c", &script])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let err = stderr(&out);
    assert!(text.contains("status=1"), "{text} {err}");
    assert!(
        text.contains("xml-valid") && text.contains("json-valid"),
        "{text} {err}"
    );
    assert!(
        text.trim_end().ends_with("# end"),
        "list not closed: {text}"
    );
    let line = err
        .lines()
        .find(|l| l.starts_with("xdpscan:"))
        .unwrap_or_default();
    assert!(line.contains("No space left"), "{err}");
    assert_eq!(
        err.lines().filter(|l| l.starts_with("xdpscan:")).count(),
        1,
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
