//! Files nmap's own tools read right: `ndiff` of two xdpscan XML files shows exactly the
//! changes made to the lab between the scans (one host block per address, as nmap writes), and
//! `--resume FILE` alone finishes a stopped scan into the same documents.

mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    net::Ipv4Addr,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use common::*;

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xdpscan-nmapfiles-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn p(dir: &Path, name: &str) -> String {
    dir.join(name).to_str().unwrap().to_string()
}

/// The port lines ndiff prints as changed: (host, "+"/"-", "443/tcp", state).
fn ndiff_changes(text: &str) -> BTreeSet<(String, char, String, String)> {
    let mut host = String::new();
    let mut out = BTreeSet::new();
    for l in text.lines() {
        let t = l.trim_start_matches([' ', '-', '+']);
        if t.ends_with(':') && t.starts_with("198.19.") {
            host = t.trim_end_matches(':').to_string();
            continue;
        }
        let (Some(sign @ ('-' | '+')), Some(rest)) = (l.chars().next(), l.get(1..)) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() >= 2 && (f[0].ends_with("/tcp") || f[0].ends_with("/udp")) {
            out.insert((host.clone(), sign, f[0].to_string(), f[1].to_string()));
        }
    }
    out
}

fn scan_xml(lab: &Lab, path: &str) {
    let out = lab.xdpscan(&[
        "198.19.0.0/24",
        "-p",
        LAB_PORTS,
        "--rate",
        "20000",
        "--wait",
        "1",
        "--report-silent",
        "-q",
        "-oX",
        path,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
}

fn ndiff(a: &str, b: &str) -> (Option<i32>, String) {
    let out = Command::new("ndiff").args([a, b]).output().expect("ndiff");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn ndiff_shows_exactly_the_changes_made_between_two_scans() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let dir = tempdir("ndiff");
    let (a, a2, b) = (p(&dir, "a.xml"), p(&dir, "a2.xml"), p(&dir, "b.xml"));
    scan_xml(&lab, &a);
    scan_xml(&lab, &a2);

    // Two scans of an unchanged lab: ndiff finds no host that changed.
    let (code, text) = ndiff(&a, &a2);
    assert!(
        ndiff_changes(&text).is_empty(),
        "changes between identical scans:\n{text}"
    );
    assert_eq!(code, Some(0), "{text}");

    // Change the lab: one port closes, one goes silent, one host rejects everything.
    let rules = "table inet change {\n chain input {\n  type filter hook input priority -10; policy accept;\n  ip daddr 198.19.0.10 tcp dport 443 reject with tcp reset\n  ip daddr 198.19.0.11 tcp dport 22 drop\n  ip daddr 198.19.0.12 meta l4proto tcp reject with icmp type admin-prohibited\n }\n}\n";
    let mut nft = Command::new("ip")
        .args(["netns", "exec", &lab.tgt_ns(), "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    nft.stdin
        .take()
        .unwrap()
        .write_all(rules.as_bytes())
        .unwrap();
    assert!(nft.wait().unwrap().success());
    scan_xml(&lab, &b);

    let (code, text) = ndiff(&a, &b);
    eprintln!("ndiff a.xml b.xml:\n{text}");
    assert_eq!(code, Some(1), "ndiff found no difference:\n{text}");
    let s = |h: &str, sign, port: &str, state: &str| {
        (h.to_string(), sign, port.to_string(), state.to_string())
    };
    let mut want = BTreeSet::from([
        s("198.19.0.10", '-', "443/tcp", "open"),
        s("198.19.0.10", '+', "443/tcp", "closed"),
        s("198.19.0.11", '-', "22/tcp", "open"),
        s("198.19.0.11", '+', "22/tcp", "filtered"),
    ]);
    for (port, before) in [
        ("22/tcp", "open"),
        ("80/tcp", "open"),
        ("443/tcp", "open"),
        ("8080/tcp", "closed"),
    ] {
        want.insert(s("198.19.0.12", '-', port, before));
        want.insert(s("198.19.0.12", '+', port, "filtered"));
    }
    assert_eq!(ndiff_changes(&text), want, "ndiff said:\n{text}");
    // Each changed host is named once.
    for h in ["198.19.0.10:", "198.19.0.11:", "198.19.0.12:"] {
        assert_eq!(text.matches(h).count(), 1, "{h} in:\n{text}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn resume_file_alone_finishes_the_scan_into_the_same_documents() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let dir = tempdir("resume-alone");
    let (resume, xml, gnmap, json) = (
        p(&dir, "resume.json"),
        p(&dir, "r.xml"),
        p(&dir, "r.gnmap"),
        p(&dir, "r.ndjson"),
    );
    let child = lab
        .in_scan(
            BIN,
            &[
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
                "-oX",
                &xml,
                "-oG",
                &gnmap,
                "-oJ",
                &json,
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    std::thread::sleep(Duration::from_millis(1200));
    unsafe { libc::kill(pid, libc::SIGINT) };
    let first = child.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(130), "{}", stderr(&first));
    let partial = parse_results(&std::fs::read(&json).unwrap()).len();
    let xml1 = std::fs::read_to_string(&xml).unwrap();
    assert_eq!(
        xml1.matches("<port ").count(),
        partial,
        "the stopped run's XML"
    );
    assert!(xml1.ends_with("</nmaprun>\n"));

    // The resume file alone: targets, ports, rate and outputs come from it.
    let out = lab.xdpscan(&["--resume", &resume]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "outputs come from the resume file");
    let all = parse_results(&std::fs::read(&json).unwrap());
    assert!(
        partial > 0 && partial < all.len(),
        "{partial} then {}",
        all.len()
    );
    let expected = lab_expected();
    assert_exact(&all, &expected);

    // The XML holds both runs, one block per host, valid for nmap's DTD.
    let xml2 = std::fs::read_to_string(&xml).unwrap();
    let hosts: BTreeSet<Ipv4Addr> = expected.keys().map(|(ip, _)| *ip).collect();
    assert_eq!(xml2.matches("<host ").count(), hosts.len());
    assert_eq!(xml2.matches("<port ").count(), expected.len());
    let v = Command::new("xmllint")
        .args(["--noout", "--dtdvalid", "/usr/share/nmap/nmap.dtd", &xml])
        .output()
        .unwrap();
    assert!(v.status.success(), "{}", stderr(&v));
    let g = std::fs::read_to_string(&gnmap).unwrap();
    let ports: usize = g
        .lines()
        .filter(|l| l.contains("\tPorts: "))
        .map(|l| l.matches("/tcp/").count())
        .sum();
    assert_eq!(ports, expected.len());
    assert!(!Path::new(&format!("{xml}.xdpscan-part")).exists());

    // What is scanned may be given again only as it was.
    let mut per_port: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &all {
        *per_port.entry(r.state.as_str()).or_default() += 1;
    }
    eprintln!(
        "resume alone: {partial} then {} results {per_port:?}",
        all.len()
    );
    let out = lab.xdpscan(&["--resume", &resume, "-p", "22", "-q"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(stderr(&out).trim_end().lines().count(), 1);
    let _ = std::fs::remove_dir_all(dir);
}

/// Rows of nmap's normal output: (host, "22/tcp", state, service), nmap's own lines and
/// comments left out.
fn normal_rows(text: &str) -> BTreeSet<(String, String, String, String)> {
    let mut rows = BTreeSet::new();
    let mut host = String::new();
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("Nmap scan report for ") {
            host = h.to_string();
            continue;
        }
        let cells: Vec<&str> = line.split_whitespace().collect();
        if cells.len() >= 3
            && cells[0].contains("/tcp")
            && cells[0].starts_with(|c: char| c.is_ascii_digit())
        {
            rows.insert((
                host.clone(),
                cells[0].into(),
                cells[1].into(),
                cells[2].into(),
            ));
        }
    }
    rows
}

/// `-oN` reads as nmap's normal output of the same scan, row for row and then line for line
/// (timing aside: the comment header and footer, nmap's latency); `-oA BASE` writes it as
/// BASE.nmap next to the XML and grepable files. The hosts: open ports, closed ones (RST),
/// filtered ones (ICMP port unreachable from the host itself).
#[test]
fn normal_output_and_oa_read_as_nmaps() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let dir = tempdir("normal");
    let base = p(&dir, "scan");
    let hosts = ["198.19.0.1", "198.19.0.2", "198.19.6.5", "198.19.8.3"];
    let mut args = vec!["-p", "22,80,443,8080", "--wait", "1", "-q", "-oA", &base];
    args.extend_from_slice(&hosts);
    let out = lab.xdpscan(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    for ext in ["xml", "gnmap", "nmap"] {
        assert!(
            Path::new(&format!("{base}.{ext}")).exists(),
            "no {base}.{ext}"
        );
    }
    let ours = std::fs::read_to_string(format!("{base}.nmap")).unwrap();
    let nmap = nmap_run(&lab, &["-sS"], Some("22,80,443,8080"), &hosts);
    let (a, b) = (normal_rows(&ours), normal_rows(&nmap.stdout));
    assert_eq!(a.len(), 16, "{ours}");
    assert_eq!(a, b, "xdpscan:\n{ours}\nnmap:\n{}", nmap.stdout);
    assert!(ours.contains("(4 hosts up)"), "{ours}");
    // nmap's own -oN of the same hosts, with its own host discovery (all four answer it).
    let theirs = p(&dir, "nmap.nmap");
    let mut nmap_args = vec!["-n", "-sS", "-p", "22,80,443,8080", "-oN", &theirs];
    nmap_args.extend_from_slice(&hosts);
    let run = lab.in_scan("nmap", &nmap_args).output().unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let theirs = std::fs::read_to_string(&theirs).unwrap();
    let lines = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| match l.starts_with("Host is up (") {
                true => "Host is up.".to_string(),
                false => l.to_string(),
            })
            .collect()
    };
    assert_eq!(
        lines(&ours),
        lines(&theirs),
        "xdpscan:\n{ours}\nnmap:\n{theirs}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
