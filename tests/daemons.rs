//! `-sV` on Debian's real daemons (scripts/lab-daemons.sh: vsftpd, OpenSSH, dnsmasq, nginx,
//! openssl s_server, mosquitto, redis, memcached, and socat hanging up at once; over UDP
//! dnsmasq, chrony, snmpd and OpenSSL's DTLS server), next to `nmap -sV` on the same ports of the same host: the same
//! service name, product, version, extra info, OS type and TLS tunnel on every port.

mod common;
mod daemons_grab;

use std::collections::BTreeMap;

use common::*;

const PORTS: &str = "21,22,53,80,443,1883,2323,6379,11211";
const HOST: &str = "198.19.0.5";
/// The target namespace's own address (its veth).
const LAB_TGT: &str = "198.18.0.2";

/// A child process killed and reaped when dropped, even when an assertion fails.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
const FIELDS: [&str; 6] = [
    "name",
    "product",
    "version",
    "extrainfo",
    "ostype",
    "tunnel",
];

/// `<service>` attributes per port, from an nmap or xdpscan XML document.
fn services(xml: &str) -> BTreeMap<u16, BTreeMap<String, String>> {
    let mut m = BTreeMap::new();
    for block in xml.split("<port ").skip(1) {
        let port: u16 = attr(&format!(" {block}"), "portid")
            .unwrap()
            .parse()
            .unwrap();
        let Some(svc) = block
            .split('<')
            .take_while(|t| !t.starts_with("/port"))
            .find(|t| t.starts_with("service "))
        else {
            continue;
        };
        let a: BTreeMap<String, String> = FIELDS
            .iter()
            .chain(&["method", "conf"])
            .filter_map(|k| attr(svc, k).map(|v| (k.to_string(), v)))
            .collect();
        m.insert(port, a);
    }
    m
}

#[test]
fn versions_of_real_daemons_match_nmap() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up_with(&[("LAB_DAEMONS", "1")]);
    let xml = std::env::temp_dir().join(format!("xdpscan-daemons-{}.xml", std::process::id()));
    let xml_s = xml.to_str().unwrap();
    let out = lab.xdpscan(&[
        HOST,
        "-p",
        PORTS,
        "-sV",
        "-q",
        "-oX",
        xml_s,
        "-o",
        "/dev/null",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ours = services(&std::fs::read_to_string(&xml).unwrap());
    let _ = std::fs::remove_file(&xml);

    let nmap = lab
        .in_scan(
            "nmap",
            &["-n", "-Pn", "-sS", "-sV", "-p", PORTS, "-oX", "-", HOST],
        )
        .output()
        .expect("run nmap");
    assert!(nmap.status.success(), "nmap: {}", stderr(&nmap));
    let theirs = services(&String::from_utf8_lossy(&nmap.stdout));

    let mut table = String::from("port   nmap -sV | xdpscan -sV\n");
    let mut differences = Vec::new();
    for port in PORTS.split(',').map(|p| p.parse::<u16>().unwrap()) {
        let (t, o) = (theirs.get(&port), ours.get(&port));
        let show = |m: Option<&BTreeMap<String, String>>| {
            m.map(|m| {
                FIELDS
                    .iter()
                    .filter_map(|k| m.get(*k).map(|v| format!("{k}={v}")))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_else(|| "-".into())
        };
        table.push_str(&format!("{port:5}  {} | {}\n", show(t), show(o)));
        let (Some(t), Some(o)) = (t, o) else {
            differences.push(format!("{port}: only one side names it"));
            continue;
        };
        for k in FIELDS {
            let (tv, ov) = (t.get(k), o.get(k));
            // memcached reports its uptime: seconds apart, the two runs differ there.
            if k == "extrainfo" && port == 11211 {
                assert!(ov.is_some_and(|v| v.starts_with("uptime ")), "{ov:?}");
                continue;
            }
            // nmap -sV also runs NSE's version scripts; mqtt-subscribe renames the service
            // ("mosquitto version 2.0.11"). xdpscan runs no scripts: the probe's name stands.
            if k == "name" && port == 1883 && tv.is_some_and(|v| v.contains(' ')) {
                assert_eq!(ov.map(String::as_str), Some("mqtt"));
                continue;
            }
            if tv != ov {
                differences.push(format!("{port} {k}: nmap {tv:?}, xdpscan {ov:?}"));
            }
        }
    }
    eprintln!("{table}");
    assert!(differences.is_empty(), "{differences:#?}\n{table}");
    assert_eq!(ours[&2323]["name"], "tcpwrapped");
    assert_eq!(ours[&2323]["conf"], "8");
    assert_eq!(ours[&443].get("tunnel").map(String::as_str), Some("ssl"));
}

#[test]
fn udp_versions_of_real_daemons_match_nmap() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up_with(&[("LAB_DAEMONS", "1")]);
    let dir = std::env::temp_dir().join(format!("xdpscan-daemons-udp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let xml = dir.join("u.xml");
    let xml_s = xml.to_str().unwrap();
    const UDP: &str = "53,123,161";
    let out = lab.xdpscan(&[
        HOST,
        "-sU",
        "-p",
        UDP,
        "-sV",
        "-q",
        "-oX",
        xml_s,
        "-o",
        "/dev/null",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ours = services(&std::fs::read_to_string(&xml).unwrap());
    let nmap = lab
        .in_scan(
            "nmap",
            &["-n", "-Pn", "-sU", "-sV", "-p", UDP, "-oX", "-", HOST],
        )
        .output()
        .expect("run nmap");
    assert!(nmap.status.success(), "nmap: {}", stderr(&nmap));
    let theirs = services(&String::from_utf8_lossy(&nmap.stdout));
    let mut table = String::new();
    for port in UDP.split(',').map(|p| p.parse::<u16>().unwrap()) {
        let (t, o) = (&theirs[&port], &ours[&port]);
        table.push_str(&format!("{port}/udp nmap {t:?}\n{port}/udp ours {o:?}\n"));
        for k in FIELDS {
            // nmap -sV runs NSE's version scripts too: snmp-info adds the SNMPv3 engine to the
            // product ("SNMPv1 server; net-snmp SNMPv3 server"); xdpscan stops at the match.
            if k == "product" && port == 161 {
                let (tv, ov) = (t.get(k).unwrap(), o.get(k).unwrap());
                assert!(tv.starts_with(ov.as_str()), "{tv} / {ov}");
                continue;
            }
            assert_eq!(t.get(k), o.get(k), "{port}/udp {k}\n{table}");
        }
    }
    eprintln!("{table}");

    // A port silent to the scan's payload (chrony ignores garbage) but answering nmap's NTP
    // probe: -sV's probe makes it open, as nmap says.
    let payloads = dir.join("payloads");
    std::fs::write(&payloads, "udp 123 \"xdpscan: not NTP\"\n").unwrap();
    let out = lab.xdpscan(&[
        HOST,
        "-sU",
        "-p",
        "123",
        "--udp-payloads",
        payloads.to_str().unwrap(),
        "--report-silent",
        "-sV",
        "--version-intensity",
        "0",
        "-q",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one result");
    assert_eq!(r["state"], "open", "{r}");
    assert_eq!(r["reason"], "udp-response");
    assert_eq!(r["service"]["name"], "ntp");

    // DTLS on a QUIC port: OpenSSL's HelloVerifyRequest echoes none of the cookie and is taken
    // as a DTLS record; nmap says open too. s_server answers one ClientHello per process, and
    // from the address its unconnected socket routes from, so each scan gets its own server
    // and aims at the target's own address.
    let (cert, key) = (dir.join("c.pem"), dir.join("k.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=lab",
        ])
        .args([
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
        ])
        .output()
        .expect("openssl req");
    assert!(made.status.success(), "{}", stderr(&made));
    let dtls_server = || {
        let child = std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &lab.tgt_ns(),
                "openssl",
                "s_server",
                "-dtls",
                "-quiet",
            ])
            .args(["-accept", "4433", "-cert", cert.to_str().unwrap()])
            .args(["-key", key.to_str().unwrap()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("openssl s_server");
        let guard = KillOnDrop(child);
        for _ in 0..50 {
            let ss = std::process::Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &lab.tgt_ns(),
                    "ss",
                    "-Hlun",
                    "sport = :4433",
                ])
                .output()
                .unwrap();
            if !ss.stdout.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        guard
    };
    let server = dtls_server();
    let out = lab.xdpscan(&[LAB_TGT, "-sU", "-p", "4433", "-q", "--wait", "1"]);
    drop(server);
    assert!(out.status.success(), "{}", stderr(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one result");
    assert_eq!(
        (r["state"].as_str(), r["reason"].as_str()),
        (Some("open"), Some("udp-response")),
        "{r}"
    );
    let server = dtls_server();
    let nmap = lab
        .in_scan(
            "nmap",
            &["-n", "-Pn", "-sU", "-p", "4433", "-oG", "-", LAB_TGT],
        )
        .output()
        .expect("run nmap");
    drop(server);
    let grep = String::from_utf8_lossy(&nmap.stdout);
    assert!(grep.contains("4433/open/udp"), "{grep}");
    let _ = std::fs::remove_dir_all(dir);
}
