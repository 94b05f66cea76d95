//! The lab responder (bpf/responder.bpf.c, issue 25): an XDP program on the target's side of the
//! lab link answers by `io::responder::rule`, so any range's truth is known. Scans against it
//! equal that truth for both families and for TCP, UDP and ICMP echo, and a --rate 0 sweep to
//! /dev/null finds exactly the rule's open ports. The responder repeats (a quarter of its answers
//! sent twice): the duplicate filter takes exactly the second copies.

mod common;

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    process::{Child, Command, Stdio},
};

use common::*;
use xdpscan::io::responder::{copies, rule, Answer};

/// The responder (examples/xdp_responder --repeat) on the target's veth, stopped when dropped.
struct Attached(Child);

impl Attached {
    fn on(lab: &Lab) -> Attached {
        let exe = std::env::current_exe().unwrap();
        let bin = exe
            .parent()
            .and_then(|deps| deps.parent())
            .unwrap()
            .join("examples/xdp_responder");
        let mut child = Command::new("ip")
            .args(["netns", "exec", &lab.tgt_ns()])
            .arg(&bin)
            .arg(format!("{}t", lab.prefix))
            .arg("--repeat")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
        // Attached once it says so.
        let mut line = String::new();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        assert!(line.starts_with("attached"), "responder: {line:?}");
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        Attached(child)
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

fn low32(ip: IpAddr) -> u32 {
    match ip {
        IpAddr::V4(a) => u32::from(a),
        IpAddr::V6(a) => u128::from(a) as u32,
    }
}

/// What the rule says a scan of `flag` reports (None: nothing without --report-silent). An
/// ICMP unreachable means filtered, except port unreachable to a UDP probe: closed (nmap).
fn expected(flag: &str, ip: IpAddr, port: u16) -> Option<&'static str> {
    let answer = rule(low32(ip), port);
    let port_unreach = answer.icmp_code(ip.is_ipv6(), 17) == Some(if ip.is_ipv6() { 4 } else { 3 });
    match (flag, answer) {
        (_, Answer::Open) => Some("open"),
        ("-sS", Answer::Closed) => Some("closed"),
        ("-sS", Answer::Unreachable(_)) => Some("filtered"),
        ("-sU", Answer::Closed | Answer::Unreachable(_)) if port_unreach => Some("closed"),
        ("-sU", Answer::Unreachable(_)) => Some("filtered"),
        _ => None,
    }
}

#[test]
fn scans_against_the_responder_equal_its_rule() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let _r = Attached::on(&lab);
    let v4 = (0..4096u32).map(|i| IpAddr::V4(Ipv4Addr::from(0xc613_0000 + i)));
    let v6 = (0..4096u128).map(|i| {
        IpAddr::V6(Ipv6Addr::from(
            0x2001_0db8_0001_0000_0000_0000_0000_0000u128 + i,
        ))
    });
    let targets: Vec<IpAddr> = v4.chain(v6).collect();
    for (flag, ports) in [("-sS", "22,80,443,8080"), ("-sU", "53,161,500,1900")] {
        let out = lab.xdpscan(&[
            "198.19.0.0/20",
            "2001:db8:1::/116",
            flag,
            "-p",
            ports,
            "--rate",
            "50000",
            "--wait",
            "1",
            "-o",
            "-",
        ]);
        let err = stderr(&out);
        assert!(out.status.success(), "{flag}: {err}");
        assert!(err.contains(" 0 invalid"), "{flag}: {err}");
        let got: BTreeMap<(IpAddr, u16), String> = results6(&out.stdout)
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect();
        let mut want = BTreeMap::new();
        let mut second_copies = 0;
        for &ip in &targets {
            for p in ports.split(',').map(|p| p.parse().unwrap()) {
                if let Some(s) = expected(flag, ip, p) {
                    want.insert((ip, p), s.to_string());
                }
                second_copies += copies(low32(ip), p).saturating_sub(1);
            }
        }
        // -sU sends some ports more than one payload, each answered: more duplicates there.
        let duplicates: u64 = err
            .split(" duplicate")
            .next()
            .and_then(|head| head.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{flag}: no duplicate count: {err}"));
        assert!(
            duplicates == second_copies || (flag == "-sU" && duplicates > second_copies),
            "{flag}: want {second_copies} duplicates, got {duplicates}: {err}"
        );
        let wrong: Vec<_> = want
            .iter()
            .filter(|(k, v)| got.get(k) != Some(v))
            .take(5)
            .collect();
        assert!(
            wrong.is_empty() && got.len() == want.len(),
            "{flag}: got {}, want {}; e.g. {wrong:?}",
            got.len(),
            want.len()
        );
        eprintln!(
            "{flag}: {} results, the rule's exactly, {second_copies} duplicates taken",
            got.len()
        );
    }
    // ICMP echo: every address answers.
    let out = lab.xdpscan(&[
        "198.19.0.0/24",
        "2001:db8:1::/120",
        "-PE",
        "--wait",
        "1",
        "-o",
        "-",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(results6(&out.stdout).len(), 512, "{}", stderr(&out));
}

/// A sweep at --rate 0 into /dev/null (as benchmarks run it): the summary's open and closed
/// counts are the rule's for the whole range. The responder's XDP_TX into our veth's 256-frame
/// ring is the one loss no scanner can see (the target's veth counts it as TX dropped); probes
/// our own veth dropped on the way out the scanner counts and reports. A sweep cut short is
/// run again, and a shortfall must be explained by those two counts to the frame.
#[test]
fn a_rate_zero_sweep_to_dev_null_finds_the_rules_open_ports() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let _r = Attached::on(&lab);
    let ports: Vec<u16> = (1..=8).collect();
    let answers: Vec<Answer> = (0..65536u32)
        .flat_map(|i| ports.iter().map(move |&p| rule(0xc613_0000 + i, p)))
        .collect();
    let open = answers.iter().filter(|&&a| a == Answer::Open).count() as u64;
    let closed = answers.iter().filter(|&&a| a == Answer::Closed).count() as u64;
    for attempt in 1..=3 {
        let lab_before = lab.target_tx_dropped();
        let out = lab.xdpscan(&[
            "198.19.0.0/16",
            "-p",
            "1-8",
            "--rate",
            "0",
            "--wait",
            "1",
            "-o",
            "/dev/null",
        ]);
        let err = stderr(&out);
        assert!(out.status.success(), "{err}");
        let lost_by_lab = lab.target_tx_dropped() - lab_before;
        let count = |what: &str| -> u64 {
            let at = err
                .find(&format!(" {what},"))
                .or_else(|| err.find(&format!(" {what};")));
            let head = &err[..at.unwrap_or_else(|| panic!("no {what} count: {err}"))];
            head.rsplit(' ').next().unwrap().parse().unwrap()
        };
        let (got_open, got_closed) = (count("open"), count("closed"));
        if (got_open, got_closed) == (open, closed) {
            return;
        }
        let short = (open + closed).saturating_sub(got_open + got_closed);
        let told = count("dropped");
        eprintln!(
            "attempt {attempt}: {short} replies short, the lab's veth dropped {lost_by_lab}, the scanner counted {told} lost"
        );
        assert!(
            got_open <= open && got_closed <= closed && short <= lost_by_lab + told,
            "want {open} open and {closed} closed, the lab dropped {lost_by_lab}: {err}"
        );
    }
}
