//! Banners and versions (`--banners`, `-sV`) against the services lab (scripts/lab-services.py
//! on every address: an SSH-like greeting on 22, Python's HTTP server on 80, the same in TLS on
//! 443, a silent service on 9999), compared with what `nmap -sV` reports for the same ports.

mod common;

use std::{collections::BTreeMap, net::Ipv4Addr, process::Command};

use common::*;
use serde_json::Value;

const PORTS: &str = "22,80,443,9999";
/// 16 hosts x 4 ports, all open.
const NET: &str = "198.19.0.0/28";

fn services_lab() -> Option<Lab> {
    lab_available().then(|| Lab::up_with(&[("LAB_SERVICES", "1")]))
}

fn lines(out: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}")))
        .collect()
}

fn s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut v = v;
    for k in path {
        v = v.get(k)?;
    }
    v.as_str()
}

/// nmap's <service> attributes per port of one host.
fn nmap_services(lab: &Lab, host: &str) -> BTreeMap<u16, BTreeMap<String, String>> {
    let out = lab
        .in_scan(
            "nmap",
            &[
                "-n",
                "-Pn",
                "-sS",
                "-sV",
                "--version-intensity",
                "0",
                "-p",
                PORTS,
                "-oX",
                "-",
                host,
            ],
        )
        .output()
        .expect("run nmap");
    assert!(out.status.success(), "nmap: {}", stderr(&out));
    let xml = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut m = BTreeMap::new();
    for block in xml.split("<port ").skip(1) {
        let port: u16 = attr(&format!(" {block}"), "portid")
            .unwrap()
            .parse()
            .unwrap();
        let svc = block
            .split('<')
            .find(|t| t.starts_with("service "))
            .expect("nmap -sV names every open port");
        let mut a = BTreeMap::new();
        for k in [
            "name",
            "product",
            "version",
            "extrainfo",
            "ostype",
            "tunnel",
            "method",
        ] {
            if let Some(v) = attr(svc, k) {
                a.insert(k.to_string(), v);
            }
        }
        m.insert(port, a);
    }
    m
}

#[test]
fn versions_match_nmap_and_the_kernel_never_resets() {
    let Some(lab) = services_lab() else { return };
    let dir = tempdir();
    let xml = format!("{dir}/sv.xml");
    let rsts_before = lab.scan_counter("TcpOutRsts");
    let out = lab.xdpscan(&[
        NET,
        "-p",
        PORTS,
        "-sV",
        "--banner-wait",
        "1",
        // The silent port goes through every probe up to the intensity: keep that short.
        "--version-light",
        "--banner-timeout",
        "1",
        "--wait",
        "1",
        "-q",
        "-oX",
        &xml,
        "-oJ",
        "-",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rsts_after = lab.scan_counter("TcpOutRsts");
    // Every segment of every conversation went through AF_XDP, none through the kernel.
    assert_eq!(
        rsts_after - rsts_before,
        0,
        "the scanner's kernel sent RSTs"
    );

    let res = lines(&out.stdout);
    assert_eq!(res.len(), 16 * 4, "one result per (address, port)");
    for r in &res {
        assert_eq!(s(r, &["state"]), Some("open"), "{r}");
        let port = r["port"].as_u64().unwrap();
        let banner = s(r, &["banner"]).expect("every open port gets a banner field");
        let name = s(r, &["service", "name"]);
        match port {
            22 => {
                assert_eq!(banner, "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\\r\\n");
                assert_eq!(
                    s(r, &["probe"]),
                    Some("NULL"),
                    "the greeting came first: named on the NULL probe"
                );
                assert_eq!(name, Some("ssh"));
                assert_eq!(
                    s(r, &["service", "version"]),
                    Some("9.2p1 Debian 2+deb12u3")
                );
            }
            80 => {
                assert!(
                    banner.starts_with("HTTP/1.0 200 OK\\r\\nServer: SimpleHTTP/0.6"),
                    "{banner}"
                );
                assert_eq!(s(r, &["probe"]), Some("GetRequest"));
                assert_eq!(name, Some("http"));
                assert_eq!(s(r, &["service", "product"]), Some("SimpleHTTPServer"));
            }
            443 => {
                // ssl, then the probes again inside TLS: HTTP behind it, as nmap says.
                assert!(
                    banner.starts_with("HTTP/1.0 200 OK\\r\\nServer: SimpleHTTP/0.6"),
                    "the answer inside TLS: {banner}"
                );
                assert_eq!(s(r, &["probe"]), Some("GetRequest"));
                assert_eq!(name, Some("http"));
                assert_eq!(s(r, &["service", "tunnel"]), Some("ssl"));
            }
            9999 => {
                assert_eq!(banner, "", "the silent service said nothing");
                assert_eq!(name, Some("abyss"));
                assert_eq!(s(r, &["service", "method"]), Some("table"));
            }
            p => panic!("unexpected port {p}"),
        }
    }

    // The XML is nmap's: valid against its DTD, and per port the same service nmap names.
    let v = Command::new("xmllint")
        .args(["--noout", "--dtdvalid", "/usr/share/nmap/nmap.dtd", &xml])
        .output()
        .unwrap();
    assert!(v.status.success(), "{}", stderr(&v));
    let host = "198.19.0.5";
    let nmap = nmap_services(&lab, host);
    assert_eq!(nmap.len(), 4, "nmap saw {nmap:?}");
    for r in res.iter().filter(|r| s(r, &["ip"]) == Some(host)) {
        let port = r["port"].as_u64().unwrap() as u16;
        let theirs = &nmap[&port];
        let ours = |k: &str| {
            let key = if k == "extrainfo" { "extrainfo" } else { k };
            s(r, &["service", key]).map(str::to_string)
        };
        for k in [
            "name",
            "tunnel",
            "product",
            "version",
            "extrainfo",
            "ostype",
            "method",
        ] {
            assert_eq!(
                ours(k),
                theirs.get(k).cloned(),
                "port {port}: {k} differs from nmap"
            );
        }
    }
}

#[test]
fn banners_alone_and_a_full_connection_table() {
    let Some(lab) = services_lab() else { return };
    // --banners: the raw banner, no naming.
    let out = lab.xdpscan(&[
        "198.19.0.7",
        "-p",
        "22,80",
        "--banners",
        "--banner-wait",
        "0.5",
        "--wait",
        "0.5",
        "-q",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let res = lines(&out.stdout);
    assert_eq!(res.len(), 2);
    for r in &res {
        assert!(r.get("service").is_none(), "{r}");
        assert!(!s(r, &["banner"]).unwrap().is_empty(), "{r}");
    }
    // One connection at a time: every open port still reported, the overflow without a banner
    // (and reset at once), and masscan's list carries the banner lines.
    let dir = tempdir();
    let list = format!("{dir}/l.txt");
    let out = lab.xdpscan(&[
        "198.19.0.16/30",
        "-p",
        "22",
        "--banners",
        "--max-connections",
        "1",
        "--wait",
        "1",
        "-q",
        "-oL",
        &list,
        "-oJ",
        "-",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let res = lines(&out.stdout);
    assert_eq!(res.len(), 4, "every open port reported");
    let with = res.iter().filter(|r| r.get("banner").is_some()).count();
    assert!(
        (1..4).contains(&with),
        "{with} of 4 got a banner with room for one connection"
    );
    let l = std::fs::read_to_string(&list).unwrap();
    assert_eq!(
        l.lines()
            .filter(|x| x.starts_with("banner tcp 22 "))
            .count(),
        with,
        "{l}"
    );

    // --banner-bytes cuts the banner; a --service-probes file of our own names the service.
    let probes = format!("{dir}/probes");
    std::fs::write(
        &probes,
        "Probe TCP NULL q||\nmatch lab-ssh m|^SSH-([\\d.]+)-| p/Lab SSH/ v/$1/\n",
    )
    .unwrap();
    let out = lab.xdpscan(&[
        "198.19.0.7",
        "-p",
        "22",
        "-sV",
        "--service-probes",
        &probes,
        "--banner-bytes",
        "8",
        "--wait",
        "0.5",
        "-q",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = &lines(&out.stdout)[0];
    assert_eq!(s(r, &["banner"]), Some("SSH-2.0-"), "{r}");
    assert_eq!(s(r, &["service", "name"]), Some("lab-ssh"), "{r}");
    assert_eq!(s(r, &["service", "version"]), Some("2.0"), "{r}");
}

#[test]
fn greeting_wait_and_timeout_follow_their_flags() {
    let Some(lab) = services_lab() else { return };
    // A silent port: the probe leaves after --banner-wait, the RST at --banner-timeout. The
    // packet trace times both; the defaults (2 s, 6 s) lie outside the bounds checked.
    let out = lab.xdpscan(&[
        "198.19.0.9",
        "-p",
        "9999",
        "--banners",
        "--banner-wait",
        "0.3",
        "--banner-timeout",
        "1",
        "--wait",
        "0.2",
        "-q",
        "--packet-trace",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let at = |needle: &str| -> f64 {
        let l = err
            .lines()
            .find(|l| l.starts_with("SENT (") && l.contains(needle))
            .unwrap_or_else(|| panic!("no SENT line with {needle:?}: {err}"));
        l[6..l.find("s)").unwrap()].parse().unwrap()
    };
    let probe = at(" PA ttl=");
    let rst = at(" RA ttl=");
    assert!((0.25..1.5).contains(&probe), "probe at {probe} s: {err}");
    assert!((0.9..4.0).contains(&rst), "reset at {rst} s: {err}");
}

#[test]
fn interrupted_grab_keeps_every_open_port() {
    let Some(lab) = services_lab() else { return };
    // Silent ports hold their connection for the whole timeout; Ctrl-C in the middle must
    // still report each one (with what it has), then exit 0.
    let child = lab
        .in_scan(
            BIN,
            &[
                "198.19.0.32/29",
                "-p",
                "9999",
                "--banners",
                "--banner-timeout",
                "30",
                "--wait",
                "1",
                "-q",
            ],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let res = lines(&out.stdout);
    let ips: std::collections::BTreeSet<Ipv4Addr> = res
        .iter()
        .map(|r| s(r, &["ip"]).unwrap().parse().unwrap())
        .collect();
    assert_eq!(ips.len(), 8, "{res:?}");
}

/// A scratch directory removed when the test ends, passed or failed.
struct TempDir(String);

impl std::ops::Deref for TempDir {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TempDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempdir() -> TempDir {
    let d = std::env::temp_dir().join(format!(
        "xdpscan-banners-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&d).unwrap();
    TempDir(d.display().to_string())
}
