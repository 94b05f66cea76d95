//! The lab for integration tests: namespaces built by scripts/lab.sh with a unique prefix,
//! removed by `Drop` even when the test fails, one lab at a time (a lock file), and the ground
//! truth the lab defines.
#![allow(dead_code)]

use std::{
    collections::{BTreeMap, HashSet},
    fs::File,
    net::Ipv4Addr,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::atomic::{AtomicU32, Ordering},
};

pub const BIN: &str = env!("CARGO_BIN_EXE_xdpscan");
pub const LAB_NET: &str = "198.19.0.0/16";
pub const LAB_PORTS: &str = "22,80,443,8080";
pub const LAB_LISTENING: [u16; 3] = [22, 80, 443];

/// Root is needed for namespaces. Without it a developer's run skips the lab tests, unless
/// XDPSCAN_REQUIRE_LAB=1 (CI) turns the skip into a failure.
pub fn lab_available() -> bool {
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        if std::env::var("XDPSCAN_REQUIRE_LAB").as_deref() == Ok("1") {
            panic!("lab tests need root and XDPSCAN_REQUIRE_LAB=1 forbids skipping them");
        }
        eprintln!(
            "skipping: lab tests need root (set XDPSCAN_REQUIRE_LAB=1 to make this an error)"
        );
    }
    root
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A lab pair of namespaces; holds the lab-wide lock for its whole life.
pub struct Lab {
    pub prefix: String,
    _lock: File,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

impl Lab {
    pub fn up() -> Lab {
        Self::up_with(&[])
    }

    /// A lab with extra environment for scripts/lab.sh (LAB_SYNACK_RETRIES, LAB_QUEUES...).
    pub fn up_with(env: &[(&str, &str)]) -> Lab {
        // Scans that assert completeness must not share the two cores with another lab.
        let lock = File::create(std::env::temp_dir().join("xdpscan-lab.lock")).expect("lock file");
        lock.lock().expect("lab lock");
        let prefix = format!(
            "xt{:x}{}",
            std::process::id() & 0xffff,
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let lab = Lab {
            prefix,
            _lock: lock,
        };
        let mut cmd = Command::new("bash");
        cmd.arg(repo().join("scripts/lab.sh"))
            .arg("up")
            .arg(&lab.prefix);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run scripts/lab.sh");
        assert!(
            out.status.success(),
            "lab up failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        lab
    }

    pub fn scan_ns(&self) -> String {
        format!("{}-scan", self.prefix)
    }

    pub fn tgt_ns(&self) -> String {
        format!("{}-tgt", self.prefix)
    }

    /// Runs xdpscan inside the scanner namespace.
    pub fn xdpscan(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.scan_ns(), BIN])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run xdpscan")
    }

    /// Any command inside the scanner namespace.
    pub fn in_scan(&self, cmd: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.scan_ns(), cmd]).args(args);
        c
    }

    /// A kernel counter (nstat name) of the scanner namespace.
    pub fn scan_counter(&self, name: &str) -> u64 {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.scan_ns(), "nstat", "-az", name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo().join("scripts/lab.sh"))
            .arg("down")
            .arg(&self.prefix)
            .output();
    }
}

/// The state and reason a SYN scan must report for a lab target, `None` for silence.
/// Mirrors the table in scripts/lab.sh.
pub fn syn_truth(ip: Ipv4Addr, port: u16) -> Option<(&'static str, &'static str)> {
    let o = ip.octets();
    assert_eq!((o[0], o[1]), (198, 19), "not a lab address");
    match (o[2], o[3]) {
        (1, _) => None,
        (2, _) => Some(("filtered", "host-unreach")),
        (3, _) => Some(("filtered", "admin-prohibited")),
        (4, 0..=127) => Some(("filtered", "host-prohibited")),
        (4, _) => Some(("filtered", "net-unreach")),
        (5, _) => Some(("filtered", "proto-unreach")),
        (6, _) => Some(("filtered", "port-unreach")),
        (7, _) => Some(("filtered", "net-prohibited")),
        (8, _) => Some(("closed", "reset")),
        (9, _) if port == 80 => None,
        _ if LAB_LISTENING.contains(&port) => Some(("open", "syn-ack")),
        _ => Some(("closed", "reset")),
    }
}

/// Every (ip, port) → (state, reason) a SYN scan of `net` × `ports` must report.
pub fn syn_expected(
    first: u32,
    count: u32,
    ports: &[u16],
) -> BTreeMap<(Ipv4Addr, u16), (String, String)> {
    let mut m = BTreeMap::new();
    for a in first..first + count {
        let ip = Ipv4Addr::from(a);
        for &p in ports {
            if let Some((s, r)) = syn_truth(ip, p) {
                m.insert((ip, p), (s.to_string(), r.to_string()));
            }
        }
    }
    m
}

pub fn lab_expected() -> BTreeMap<(Ipv4Addr, u16), (String, String)> {
    syn_expected(
        u32::from(Ipv4Addr::new(198, 19, 0, 0)),
        65536,
        &[22, 80, 443, 8080],
    )
}

/// One NDJSON result line.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Result_ {
    pub ip: Ipv4Addr,
    pub port: u16,
    pub proto: String,
    pub state: String,
    pub reason: String,
    pub ttl: u8,
    pub scan: String,
    pub ts: String,
}

pub fn parse_results(stdout: &[u8]) -> Vec<Result_> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad result line {l:?}: {e}")))
        .collect()
}

/// Asserts that results equal the expectation exactly and hold no duplicates; reports the first
/// differences when not.
pub fn assert_exact(results: &[Result_], expected: &BTreeMap<(Ipv4Addr, u16), (String, String)>) {
    let mut seen = HashSet::new();
    let dups: Vec<_> = results
        .iter()
        .filter(|r| !seen.insert((r.ip, r.port)))
        .map(|r| (r.ip, r.port))
        .collect();
    assert!(
        dups.is_empty(),
        "{} duplicate results, e.g. {:?}",
        dups.len(),
        &dups[..dups.len().min(5)]
    );
    let got: BTreeMap<_, _> = results
        .iter()
        .map(|r| ((r.ip, r.port), (r.state.clone(), r.reason.clone())))
        .collect();
    let missing: Vec<_> = expected
        .keys()
        .filter(|k| !got.contains_key(k))
        .take(5)
        .collect();
    let extra: Vec<_> = got
        .keys()
        .filter(|k| !expected.contains_key(k))
        .take(5)
        .collect();
    let wrong: Vec<_> = got
        .iter()
        .filter(|(k, v)| expected.get(k).is_some_and(|e| e != *v))
        .take(5)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty() && wrong.is_empty(),
        "got {} results, expected {}; missing e.g. {missing:?}; unexpected e.g. {extra:?}; wrong state e.g. {wrong:?}",
        got.len(),
        expected.len()
    );
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Reads a classic pcap file into its frames.
pub fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    let b = std::fs::read(path).expect("read pcap");
    assert_eq!(&b[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "pcap magic");
    assert_eq!(
        u32::from_le_bytes(b[20..24].try_into().unwrap()),
        1,
        "Ethernet link type"
    );
    let mut off = 24;
    let mut out = Vec::new();
    while off + 16 <= b.len() {
        let cap = u32::from_le_bytes(b[off + 8..off + 12].try_into().unwrap()) as usize;
        out.push(b[off + 16..off + 16 + cap].to_vec());
        off += 16 + cap;
    }
    assert_eq!(off, b.len(), "trailing bytes in pcap");
    out
}
