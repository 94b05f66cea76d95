//! `xdpscan bench`: what this machine and its NIC can do, for a user sizing a sweep
//! (ARCHITECTURE.md, "xdpscan bench"). In order: probe generation per core (dry runs), the
//! kernel's AF_XDP transmit floor per batch size (`io::xdp_floor`), the scanner's transmit rate
//! per thread count and batch size (`--rate 0` scans into a link that answers nothing), and the
//! receive rate of `--rate 0` scans whose every probe is answered at once (in its own
//! namespaces, by the XDP responder, checked against the responder's rule). Each scan is this
//! program run again as a child, so every figure is the scanner's own, privilege drop and all.
//!
//! Without `-i` everything happens inside a pair of namespaces made for the run
//! (`io::netns`); with `-i IF --to TARGET` every probe goes to TARGET through IF's next hop,
//! and it says so before it starts.

use std::{
    io::Write,
    net::IpAddr,
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use serde::Serialize;

use crate::{
    cli::BenchCli,
    config::{resolve_net, NetAsk},
    io::{
        netinfo::Link,
        netns::{self, NamespacePair},
        responder::{self, Answer, Responder},
        xdp_floor, IoError,
    },
    tool_error::ToolError,
};

/// A bench's errors: what cannot be measured is `Usage` (exit status 2), a measuring scan
/// that failed is `Scan`.
pub type BenchError = ToolError;

/// Every figure of a run, as `-o` writes it.
#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub setup: Setup,
    pub generation: Vec<Generation>,
    pub floor: Vec<Floor>,
    pub transmit: Vec<Transmit>,
    pub receive: Vec<Receive>,
    /// The lab responder's own cost over the receive rows (own namespaces only).
    pub responder: Option<ResponderCost>,
}

/// What the responder's program spent answering the receive rows, from the kernel's BPF
/// run-time statistics: packets it ran on, its own nanoseconds, and the answers per second
/// one core gives at that cost (the driver's transmit not included).
#[derive(Debug, Serialize)]
pub struct ResponderCost {
    pub runs: u64,
    pub nanos_per_run: f64,
    pub answers_per_core_sec: f64,
}

/// Where it measured.
#[derive(Debug, Serialize)]
pub struct Setup {
    /// Its own namespaces (true) or the user's interface.
    pub lab: bool,
    pub interface: String,
    pub next_hop_mac: String,
    pub destination: String,
    pub ports: String,
    /// How the kernel bound the AF_XDP socket: zero-copy, copy, or unknown.
    pub socket_mode: &'static str,
    pub cores: usize,
    pub probes_per_measurement: u64,
}

/// Probes built per second by a dry run (nothing sent).
#[derive(Debug, Serialize)]
pub struct Generation {
    pub threads: u32,
    pub probes: u64,
    pub probes_per_sec: f64,
    pub per_thread: f64,
}

/// The kernel's AF_XDP transmit floor: one frame sent over and over from queue 0.
#[derive(Debug, Serialize)]
pub struct Floor {
    pub batch: u32,
    pub frames: u64,
    pub frames_per_sec: f64,
}

/// The scanner sending at `--rate 0` into a link that answers nothing.
#[derive(Debug, Serialize)]
pub struct Transmit {
    pub threads: u32,
    pub batch: u32,
    pub probes: u64,
    pub probes_per_sec: f64,
    /// Against the floor of the same batch size (one thread's share of one queue).
    pub of_floor: Option<f64>,
}

/// The scanner at `--rate 0` with every probe answered at once.
#[derive(Debug, Serialize)]
pub struct Receive {
    pub threads: u32,
    pub probes: u64,
    pub probes_per_sec: f64,
    pub replies: u64,
    pub replies_per_sec: f64,
    /// Replies the duplicate filter took for second copies (the responder sends a quarter of
    /// its answers twice).
    pub duplicates: u64,
    /// Losses the scanner counted itself: replies its rings and its interface lost, and probes
    /// its interface dropped on the way out.
    pub dropped_by_scanner: u64,
    /// Probes the link lost on their way out, and answers on their way back (the lab veth's
    /// TX dropped counters, one per side).
    pub dropped_by_link: Option<u64>,
    pub answers_dropped_by_link: Option<u64>,
    /// The responder's rule: replies due (second copies included), and whether the open,
    /// closed and filtered counts equal it.
    pub replies_due: Option<u64>,
    pub exact: Option<bool>,
}

/// Where the measuring scans run and what they probe.
struct Place {
    lab: Option<NamespacePair>,
    ifname: String,
    /// The scans' target and ports, and extra passes to reach the probe count.
    target: String,
    ports: (u16, u16),
    retries: u32,
    probes: u64,
}

impl Place {
    /// This program again, inside the lab's scanner namespace when there is one.
    fn scan(&self, exe: &Path) -> Command {
        match &self.lab {
            Some(pair) => pair.command(&pair.scan, exe),
            None => Command::new(exe),
        }
    }
}

/// The figures one measuring scan's metadata gives.
struct ScanFigures {
    sent: u64,
    send_secs: f64,
    validated: u64,
    duplicates: u64,
    dropped: u64,
    open: u64,
    closed: u64,
    filtered: u64,
}

/// Runs every measurement; progress and the table go to `log`.
pub fn run(cli: &BenchCli, log: &mut impl Write) -> Result<BenchReport, BenchError> {
    let exe = std::env::current_exe()
        .map_err(|e| IoError::os("cannot find this program to run its scans", e))?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let most = *cli.threads.iter().max().unwrap_or(&1);
    let place = place(cli, most)?;
    if let Some(pair) = &place.lab {
        pair.enter(Some(&pair.scan))?;
    }
    let dst = first_address(&place.target)?;
    let net = resolve_net(
        &NetAsk {
            interface: Some(place.ifname.clone()),
            source_ip: None,
            gateway_mac: cli.gateway_mac,
            dry_run: false,
        },
        &[dst],
    )?;
    let fam = net.families[0];
    let _ = writeln!(
        log,
        "{}",
        match &place.lab {
            Some(p) => format!(
                "xdpscan bench: in namespaces {} and {} made for this run (veth {} to {}); probes go to {} inside them and nowhere else",
                p.scan, p.target, p.scan_if, p.target_if, place.target
            ),
            None => format!(
                "xdpscan bench: every probe goes to {}{} through {}, next hop {}; {} probes per measurement",
                place.target,
                match cli.to.as_deref() {
                    Some(to) if to != place.target => format!(" (the part of {to} --probes needs)"),
                    _ => String::new(),
                },
                place.ifname,
                fam.gateway_mac,
                place.probes
            ),
        }
    );
    let mut report = BenchReport {
        setup: Setup {
            lab: place.lab.is_some(),
            interface: place.ifname.clone(),
            next_hop_mac: fam.gateway_mac.to_string(),
            destination: place.target.clone(),
            ports: format!("{}-{}", place.ports.0, place.ports.1),
            socket_mode: "unknown",
            cores,
            probes_per_measurement: place.probes,
        },
        generation: Vec::new(),
        floor: Vec::new(),
        transmit: Vec::new(),
        receive: Vec::new(),
        responder: None,
    };
    report.generation = generation(cli, &exe, &place, log)?;
    let frame = floor_frame(&net, &place, dst, log);
    for &bs in cli.batches.iter().filter(|_| !frame.is_empty()) {
        let run = floor(&place.ifname, &frame, place.probes, bs)?;
        let pps = place.probes as f64 / run.elapsed.as_secs_f64();
        report.setup.socket_mode = match run.zero_copy {
            Some(true) => "zero-copy",
            Some(false) => "copy",
            None => "unknown",
        };
        let _ = writeln!(log, "floor, batch {bs}: {pps:.0} frames/s");
        report.floor.push(Floor {
            batch: bs,
            frames: place.probes,
            frames_per_sec: pps,
        });
    }
    let gw = fam.gateway_mac.to_string();
    report.transmit = transmit(cli, &exe, &place, &gw, &report.floor, log)?;
    (report.receive, report.responder) = receive(cli, &exe, &place, &gw, log)?;
    print_table(&report, log);
    Ok(report)
}

/// Dry runs per thread count: probes built per second, nothing sent.
fn generation(
    cli: &BenchCli,
    exe: &Path,
    place: &Place,
    log: &mut impl Write,
) -> Result<Vec<Generation>, BenchError> {
    let mut rows = Vec::new();
    for &t in &cli.threads {
        let f = measure(exe, place, &[("--dry-run", None)], t, None, "dry-run")?;
        let pps = f.sent as f64 / f.send_secs;
        let _ = writeln!(log, "generation, {t} thread(s): {pps:.0} probes/s");
        rows.push(Generation {
            threads: t,
            probes: f.sent,
            probes_per_sec: pps,
            per_thread: pps / t as f64,
        });
    }
    Ok(rows)
}

/// The SYN the floor sends, as the link carries it (empty when AF_XDP cannot send there).
fn floor_frame(
    net: &crate::config::NetSetup,
    place: &Place,
    dst: IpAddr,
    log: &mut impl Write,
) -> Vec<u8> {
    let fam = net.families[0];
    let mut frame = syn_frame(net.src_mac, fam.gateway_mac, fam.src, dst);
    match net.link {
        Link::Ethernet => {}
        Link::BareIp { xdp_sends: true } => {
            frame.drain(..crate::wire::ethernet::HEADER_LEN);
        }
        Link::BareIp { xdp_sends: false } => {
            let _ = writeln!(
                log,
                "floor: skipped, {} sends through AF_PACKET",
                place.ifname
            );
            frame.clear();
        }
    }
    frame
}

/// `--rate 0` scans into the silent link, per thread count and batch size.
fn transmit(
    cli: &BenchCli,
    exe: &Path,
    place: &Place,
    gw: &str,
    floors: &[Floor],
    log: &mut impl Write,
) -> Result<Vec<Transmit>, BenchError> {
    let mut rows = Vec::new();
    for &t in &cli.threads {
        for &b in &cli.batches {
            let bs = b.to_string();
            let f = measure(
                exe,
                place,
                &[
                    ("--gateway-mac", Some(gw)),
                    ("--tx-batch", Some(bs.as_str())),
                ],
                t,
                None,
                "transmit",
            )?;
            let pps = f.sent as f64 / f.send_secs;
            let of_floor = floors
                .iter()
                .find(|fl| fl.batch == b)
                .map(|fl| pps / fl.frames_per_sec);
            let _ = writeln!(log, "transmit, {t} thread(s), batch {b}: {pps:.0} probes/s");
            rows.push(Transmit {
                threads: t,
                batch: b,
                probes: f.sent,
                probes_per_sec: pps,
                of_floor,
            });
        }
    }
    Ok(rows)
}

/// The floor at batch `b`. The kernel frees the last run's socket from a work queue: until it
/// has, the queue refuses a new one for a moment.
fn floor(ifname: &str, frame: &[u8], n: u64, b: u32) -> Result<xdp_floor::FloorRun, IoError> {
    let mut tries = 0;
    loop {
        match xdp_floor::transmit(ifname, frame, n, b as usize) {
            Err(IoError::Setup(_)) if tries < 50 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            r => return r,
        }
    }
}

/// The receive rows: in the lab with the responder attached to the target side, repeating
/// (its rule as the truth, and its own cost beside them); on a user's interface with whatever
/// answers there.
fn receive(
    cli: &BenchCli,
    exe: &Path,
    place: &Place,
    gw: &str,
    log: &mut impl Write,
) -> Result<(Vec<Receive>, Option<ResponderCost>), BenchError> {
    let responder = match &place.lab {
        Some(pair) => {
            pair.enter(Some(&pair.target))?;
            let r = Responder::attach(&pair.target_if, true);
            pair.enter(Some(&pair.scan))?;
            Some(r?)
        }
        None => None,
    };
    let run_time = responder.as_ref().map(|r| r.run_time());
    let due = place.lab.as_ref().map(|_| rule_counts(place));
    let mut rows = Vec::new();
    for &t in &cli.threads {
        let before = place
            .lab
            .as_ref()
            .map(|p| (p.probes_dropped(), p.answers_dropped()));
        let f = measure(
            exe,
            place,
            &[("--gateway-mac", Some(gw))],
            t,
            Some(1.0),
            "receive",
        )?;
        let link = place.lab.as_ref().zip(before).map(|(p, b)| {
            (
                p.probes_dropped().saturating_sub(b.0),
                p.answers_dropped().saturating_sub(b.1),
            )
        });
        let row = Receive {
            threads: t,
            probes: f.sent,
            probes_per_sec: f.sent as f64 / f.send_secs,
            replies: f.validated,
            replies_per_sec: f.validated as f64 / f.send_secs,
            duplicates: f.duplicates,
            dropped_by_scanner: f.dropped,
            dropped_by_link: link.map(|l| l.0),
            answers_dropped_by_link: link.map(|l| l.1),
            replies_due: due.map(|d| d.1),
            exact: due.map(|d| [f.open, f.closed, f.filtered] == d.0),
        };
        let _ = writeln!(
            log,
            "receive, {t} thread(s): {:.0} probes/s, {:.0} replies/s{}",
            row.probes_per_sec,
            row.replies_per_sec,
            match row.exact {
                Some(true) => ", exact",
                Some(false) => ", NOT exact",
                None => "",
            }
        );
        rows.push(row);
    }
    let cost = responder
        .zip(run_time)
        .map(|(r, before)| r.run_time().since(&before))
        .and_then(|t| {
            Some(ResponderCost {
                runs: t.runs,
                nanos_per_run: t.nanos as f64 / t.runs.max(1) as f64,
                answers_per_core_sec: t.per_core()?,
            })
        });
    if let Some(c) = &cost {
        let _ = writeln!(
            log,
            "responder: {} runs, {:.0} ns each: {:.0} answers/s per core",
            c.runs, c.nanos_per_run, c.answers_per_core_sec
        );
    }
    Ok((rows, cost))
}

/// The open, closed and ICMP-unreachable (filtered) answers the responder's rule gives over
/// the lab's probes, and the replies it sends to one scan of them (every pass, second copies
/// included).
fn rule_counts(place: &Place) -> ([u64; 3], u64) {
    let (mut n, mut replies) = ([0; 3], 0);
    let (block, count) = measurable_block(&place.target, u64::MAX).unwrap_or_default();
    let first = match first_address(&block) {
        Ok(IpAddr::V4(a)) => u32::from(a) & !(count as u32).wrapping_sub(1),
        _ => return (n, replies),
    };
    for a in 0..count as u32 {
        for p in place.ports.0..=place.ports.1 {
            match responder::rule(first + a, p) {
                Answer::Open => n[0] += 1,
                Answer::Closed => n[1] += 1,
                Answer::Unreachable(_) => n[2] += 1,
                Answer::Silent => {}
            }
            replies += responder::copies(first + a, p);
        }
    }
    (n, replies * (place.retries as u64 + 1))
}

/// Where to measure, and the scans' target, ports and passes for `--probes`.
fn place(cli: &BenchCli, threads: u32) -> Result<Place, BenchError> {
    let (lab, ifname, target) = match (&cli.interface, &cli.to) {
        (Some(i), Some(to)) => (None, i.clone(), to.clone()),
        _ => {
            let pair = NamespacePair::create(threads)?;
            let i = pair.scan_if.clone();
            (Some(pair), i, netns::ROUTED_V4.to_string())
        }
    };
    let (target, addresses) = measurable_block(&target, cli.probes)?;
    let ports = cli.probes.div_ceil(addresses).clamp(1, 65535);
    let per_pass = addresses.saturating_mul(ports);
    let passes = cli.probes.div_ceil(per_pass).max(1);
    Ok(Place {
        lab,
        ifname,
        target,
        ports: (1, ports as u16),
        retries: (passes - 1).min(u32::MAX as u64) as u32,
        probes: per_pass.saturating_mul(passes),
    })
}

/// The block the scans probe: `target`, or when it holds more than `probes` addresses its
/// first sub-block that holds no more (a measurement is `--probes` probes, not a sweep of a
/// /8), and the block's address count.
fn measurable_block(target: &str, probes: u64) -> Result<(String, u64), BenchError> {
    let bad = || BenchError::Usage(format!("--to {target}: not an address or a CIDR block"));
    let (addr, len) = match target.split_once('/') {
        Some((a, l)) => (a, Some(l.parse::<u32>().map_err(|_| bad())?)),
        None => (target, None),
    };
    let bits = match addr.parse::<IpAddr>().map_err(|_| bad())? {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    };
    let len = len.unwrap_or(bits);
    if len > bits {
        return Err(bad());
    }
    // The largest power of two no larger than `probes`.
    let most = 63 - probes.max(1).leading_zeros();
    if bits - len <= most {
        return Ok((target.to_string(), 1u64 << (bits - len)));
    }
    Ok((format!("{addr}/{}", bits - most), 1u64 << most))
}

fn first_address(target: &str) -> Result<IpAddr, BenchError> {
    let addr = target.split('/').next().unwrap_or(target);
    addr.parse()
        .map_err(|_| BenchError::Usage(format!("--to {target}: not an address or a CIDR block")))
}

/// One scan of `place` at `--rate 0` with `threads` transmit threads, `-o /dev/null`, and
/// its metadata read back.
fn measure(
    exe: &Path,
    place: &Place,
    extra: &[(&str, Option<&str>)],
    threads: u32,
    wait: Option<f64>,
    what: &str,
) -> Result<ScanFigures, BenchError> {
    let meta =
        std::env::temp_dir().join(format!("xdpscan-bench-{}-{what}.json", std::process::id()));
    let _ = std::fs::remove_file(&meta);
    let mut c = place.scan(exe);
    c.arg(&place.target)
        .args(["-p", &format!("{}-{}", place.ports.0, place.ports.1)])
        .args(["--rate", "0", "-q", "-o", "/dev/null"])
        .args(["-i", &place.ifname])
        .args(["--tx-threads", &threads.to_string()])
        .args(["--retries", &place.retries.to_string()])
        .args(["--wait", &wait.unwrap_or(0.0).to_string()])
        .arg("-m")
        .arg(&meta);
    for (flag, value) in extra {
        c.arg(flag);
        if let Some(v) = value {
            c.arg(v);
        }
    }
    let started = Instant::now();
    let out = c
        .output()
        .map_err(|e| IoError::os("cannot start a measuring scan", e))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let line = err.lines().last().unwrap_or("no message").to_string();
        return Err(BenchError::Scan(what.into(), line));
    }
    let m: serde_json::Value = std::fs::read(&meta)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| BenchError::Scan(what.into(), "it wrote no metadata".into()))?;
    let _ = std::fs::remove_file(&meta);
    let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
    let counts = &m["counts"];
    Ok(ScanFigures {
        sent: n(&counts["sent"]),
        send_secs: m["send_duration_secs"]
            .as_f64()
            .filter(|&s| s > 0.0)
            .unwrap_or_else(|| started.elapsed().as_secs_f64()),
        validated: n(&counts["validated"]),
        duplicates: n(&counts["duplicates"]),
        dropped: n(&counts["dropped"]),
        open: n(&counts["per_state"]["open"]),
        closed: n(&counts["per_state"]["closed"]),
        filtered: n(&counts["per_state"]["filtered"]),
    })
}

/// The figures as one table per measurement.
fn print_table(r: &BenchReport, log: &mut impl Write) {
    let s = &r.setup;
    let _ = writeln!(
        log,
        "\n{} ({}), next hop {}, AF_XDP socket: {}, {} cores; {} probes per measurement to {} ports {}",
        s.interface,
        if s.lab { "namespaces made for the run" } else { "your interface" },
        s.next_hop_mac,
        s.socket_mode,
        s.cores,
        s.probes_per_measurement,
        s.destination,
        s.ports
    );
    header(
        log,
        &["probe generation (dry run)", "probes/s", "per thread"],
    );
    for g in &r.generation {
        let _ = writeln!(
            log,
            "| {} thread(s) | {:.0} | {:.0} |",
            g.threads, g.probes_per_sec, g.per_thread
        );
    }
    header(
        log,
        &["transmit", "batch", "probes/s", "of the kernel's floor"],
    );
    for f in &r.floor {
        let _ = writeln!(
            log,
            "| kernel floor (one frame, queue 0) | {} | {:.0} | 1.00 |",
            f.batch, f.frames_per_sec
        );
    }
    for t in &r.transmit {
        let _ = writeln!(
            log,
            "| xdpscan, {} thread(s) | {} | {:.0} | {} |",
            t.threads,
            t.batch,
            t.probes_per_sec,
            t.of_floor.map_or("-".into(), |x| format!("{x:.2}"))
        );
    }
    header(
        log,
        &[
            "receive",
            "probes/s",
            "replies/s",
            "replies",
            "due",
            "duplicates",
            "lost (scanner's count)",
            "probes lost (link)",
            "answers lost (link)",
            "exact",
        ],
    );
    let opt = |v: Option<u64>| v.map_or("-".into(), |v| v.to_string());
    for x in &r.receive {
        let _ = writeln!(
            log,
            "| xdpscan, {} thread(s) | {:.0} | {:.0} | {} | {} | {} | {} | {} | {} | {} |",
            x.threads,
            x.probes_per_sec,
            x.replies_per_sec,
            x.replies,
            opt(x.replies_due),
            x.duplicates,
            x.dropped_by_scanner,
            opt(x.dropped_by_link),
            opt(x.answers_dropped_by_link),
            x.exact.map_or("-", |e| if e { "yes" } else { "no" })
        );
    }
    if let Some(c) = &r.responder {
        header(
            log,
            &[
                "the lab's responder (its program's own time)",
                "runs",
                "ns each",
                "answers/s per core",
            ],
        );
        let _ = writeln!(
            log,
            "| XDP, bpf/responder.bpf.c | {} | {:.1} | {:.0} |",
            c.runs, c.nanos_per_run, c.answers_per_core_sec
        );
    }
}

/// A Markdown table's heading and rule, after a blank line.
fn header(log: &mut impl Write, names: &[&str]) {
    let _ = writeln!(log, "\n| {} |", names.join(" | "));
    let _ = writeln!(log, "|{}", " --- |".repeat(names.len()));
}

/// Writes the report as JSON to `path` (`-`: stdout).
pub fn write_json(r: &BenchReport, path: &PathBuf) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(r).map_err(std::io::Error::other)? + "\n";
    if path.as_os_str() == "-" {
        std::io::stdout().write_all(text.as_bytes())
    } else {
        std::fs::write(path, text)
    }
}

/// The scanner's own SYN to `dst` port 80 from `src`, as one Ethernet frame (58 bytes): what
/// the floor sends.
pub fn syn_frame(
    src_mac: crate::wire::MacAddr,
    next_hop: crate::wire::MacAddr,
    src: std::net::IpAddr,
    dst: std::net::IpAddr,
) -> Vec<u8> {
    let params = crate::wire::template::FrameParams {
        src_mac,
        dst_mac: next_hop,
        src,
        ttl: 64,
    };
    let module = crate::probe::ScanType::Syn
        .module(None, &crate::probe::udp_payloads::Payloads::empty())
        .expect("a raw scan");
    let tpl = module.template(&params, 80);
    let jar = crate::cookie::CookieJar::new([7; 16], crate::config::DEFAULT_SOURCE_PORTS);
    let mut frame = vec![0u8; tpl.len()];
    let n = module.write(&mut frame, &tpl, dst, 80, &jar.cookie(src, dst, 80, 6));
    frame.truncate(n);
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_measurement_probes_a_block_no_larger_than_its_probe_count() {
        let b = |t: &str, n: u64| measurable_block(t, n).unwrap();
        assert_eq!(b("198.18.7.1", 1000), ("198.18.7.1".into(), 1));
        assert_eq!(b("198.18.0.0/24", 1000), ("198.18.0.0/24".into(), 256));
        assert_eq!(b("198.18.0.0/15", 100_000), ("198.18.0.0/16".into(), 65536));
        assert_eq!(
            b("2001:db8::/32", 2_000_000),
            ("2001:db8::/108".into(), 1 << 20)
        );
        assert!(measurable_block("198.18.0.0/33", 1000).is_err());
        assert!(measurable_block("example", 1000).is_err());
    }
}
