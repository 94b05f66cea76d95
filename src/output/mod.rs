//! Results and where they go. The engine hands every first verdict for a target to each
//! [`Sink`]; each format is one module. Files are written through [`file::OutFile`], which never
//! leaves half a record behind and always closes the document, even when the disk fills.

pub mod csv;
pub mod file;
pub(crate) mod formats;
pub(crate) mod grepable;
pub(crate) mod grouped;
pub(crate) mod list;
pub(crate) mod metadata;
pub mod ndjson;
pub(crate) mod normal;
pub(crate) mod replies;
pub(crate) mod xml;
pub(crate) mod zgrab;

use std::{
    net::{IpAddr, Ipv4Addr},
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use crate::{
    probe::{PortState, Proto, Reason, ScanType, Verdict},
    wire::{IcmpKind, IpPacket, TcpSegment, UdpDatagram, PROTO_TCP, PROTO_UDP},
};

/// Facts about the reply packet itself (ZMap's fields), zero for targets reported as silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplyFacts {
    /// IPv4 identification, or IPv6 flow label.
    pub(crate) ipid: u32,
    /// TCP window of a TCP reply.
    pub(crate) window: u16,
    /// ICMP type and code of an ICMP reply.
    pub(crate) icmp: Option<(u8, u8)>,
    /// Our port the reply was addressed to (for ICMP errors: the source port they quote).
    pub(crate) our_port: u16,
}

impl ReplyFacts {
    pub fn of(ip: &IpPacket) -> Self {
        let mut f = ReplyFacts {
            ipid: ip.ident(),
            ..Default::default()
        };
        if let Some(m) = ip.icmp() {
            f.icmp = Some((m.msg_type, m.code));
            if m.kind == IcmpKind::EchoReply {
                f.our_port = m.ident;
            } else if let Some(q) = m.quoted() {
                if q.payload().len() >= 2 {
                    f.our_port = u16::from_be_bytes([q.payload()[0], q.payload()[1]]);
                }
            }
            return f;
        }
        match ip.protocol() {
            PROTO_TCP => {
                if let Ok(s) = TcpSegment::new_checked(ip.payload()) {
                    f.window = s.window();
                    f.our_port = s.dst_port();
                }
            }
            PROTO_UDP => {
                if let Ok(d) = UdpDatagram::new_checked(ip.payload()) {
                    f.our_port = d.dst_port();
                }
            }
            _ => {}
        }
        f
    }
}

/// The path to one target (`--traceroute`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Trace {
    pub(crate) proto: Proto,
    pub(crate) port: u16,
    /// From the first TTL to where the path ended, one per TTL.
    pub(crate) hops: Vec<TraceHop>,
    /// The target itself answered (else the path ends at the last hop that did).
    pub(crate) reached: bool,
}

/// One TTL of a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TraceHop {
    pub(crate) ttl: u8,
    /// Who answered at this TTL; `None` for `*`.
    pub(crate) ip: Option<IpAddr>,
    pub(crate) rtt_us: Option<u32>,
}

/// Which states are written (`--open`, `--show`, `--noshow`); the summary and the metadata
/// count every state whatever is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Show(u16);

impl Show {
    pub(crate) const ALL: Show = Show((1 << PortState::ALL.len()) - 1);

    fn bit(s: PortState) -> u16 {
        1 << s.index()
    }

    pub(crate) fn of(states: &[PortState]) -> Show {
        Show(states.iter().fold(0, |m, &s| m | Self::bit(s)))
    }

    /// nmap's `--open`: open and possibly open (open|filtered, unfiltered), and hosts up.
    pub(crate) fn open() -> Show {
        Self::of(&[
            PortState::Open,
            PortState::OpenFiltered,
            PortState::Unfiltered,
            PortState::Up,
        ])
    }

    /// What the command line asks: `--show` (or `--open`) replaces "every state", `--noshow`
    /// takes states away.
    pub(crate) fn from_cli(open: bool, show: &[PortState], noshow: &[PortState]) -> Show {
        let base = match (open, show.is_empty()) {
            (true, _) => Self::open(),
            (false, true) => Self::ALL,
            (false, false) => Self::of(show),
        };
        Show(base.0 & !Self::of(noshow).0)
    }

    #[inline]
    pub(crate) fn contains(self, s: PortState) -> bool {
        self.0 & Self::bit(s) != 0
    }
}

impl Default for Show {
    fn default() -> Self {
        Self::ALL
    }
}

/// One result as reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub(crate) ip: IpAddr,
    pub(crate) port: u16,
    pub(crate) proto: Proto,
    pub(crate) state: PortState,
    pub(crate) reason: Reason,
    pub ttl: u8,
    /// Who answered, when it is not the target itself (a router's ICMP error).
    pub(crate) responder: Option<IpAddr>,
    pub(crate) scan: ScanType,
    pub ts: SystemTime,
    /// Our address (the reply's destination).
    pub(crate) local: IpAddr,
    pub(crate) facts: ReplyFacts,
    /// Received after the last probe was sent.
    pub(crate) cooldown: bool,
    /// The path to the target (`--traceroute`).
    pub(crate) trace: Option<Arc<Trace>>,
    /// What the open port said (`--banners`, `-sV`).
    pub(crate) grab: Option<Arc<crate::service::Grab>>,
}

impl Record {
    pub(crate) fn from_verdict(v: &Verdict, scan: ScanType, ts: SystemTime) -> Self {
        Self {
            ip: v.ip,
            port: v.port,
            proto: v.proto,
            state: v.state,
            reason: v.reason,
            ttl: v.ttl,
            responder: (v.responder != v.ip).then_some(v.responder),
            scan,
            ts,
            local: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            facts: ReplyFacts::default(),
            cooldown: false,
            trace: None,
            grab: None,
        }
    }

    /// A result decided without a reply frame of ours to describe (kernel connects, silence).
    pub fn new(
        ip: IpAddr,
        port: u16,
        proto: Proto,
        state: PortState,
        reason: Reason,
        scan: ScanType,
    ) -> Self {
        Self {
            ip,
            port,
            proto,
            state,
            reason,
            ttl: 0,
            responder: None,
            scan,
            ts: SystemTime::now(),
            local: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            facts: ReplyFacts::default(),
            cooldown: false,
            trace: None,
            grab: None,
        }
    }

    /// A target that never answered (`--report-silent`), reported after the cooldown.
    pub(crate) fn silent(
        ip: IpAddr,
        port: u16,
        proto: Proto,
        state: PortState,
        scan: ScanType,
    ) -> Self {
        Self {
            cooldown: true,
            ..Self::new(ip, port, proto, state, Reason::NoResponse, scan)
        }
    }

    /// Did this result find something (open port, live host)?
    pub(crate) fn success(&self) -> bool {
        matches!(
            self.state,
            PortState::Open | PortState::Unfiltered | PortState::Up
        )
    }
}

/// What the documents say about the whole run.
#[derive(Debug, Clone)]
pub(crate) struct RunInfo {
    pub(crate) version: &'static str,
    /// The command line, as typed.
    pub(crate) args: Vec<String>,
    pub(crate) start: SystemTime,
    /// What each protocol scanned probed, by which scan type (ports, or protocol numbers for
    /// `ip`); empty for a ping sweep.
    pub(crate) port_lists: Vec<(crate::probe::ScanType, Proto, crate::targets::PortList)>,
    /// nmap-services' names, written for every port as nmap does (`method="table"`).
    pub(crate) port_table: Option<Arc<crate::targets::services::PortTable>>,
    /// Addresses scanned, for the host totals (`None` for one shard of a scan: a shard probes
    /// part of each address's ports, so its file counts the hosts it lists).
    pub(crate) addresses: Option<u64>,
    /// This run continues an interrupted one (`--resume`): grouped documents read back what it
    /// kept, and streams append.
    pub(crate) resuming: bool,
}

/// Totals for the closing lines of a document.
#[derive(Debug, Clone, Copy)]
pub struct RunEnd {
    pub end: SystemTime,
    pub elapsed: Duration,
    pub results: u64,
    /// Whether the run stopped on an error (XML records it).
    pub error: bool,
    /// Every probe was sent (else grouped documents keep their entries for `--resume`).
    pub complete: bool,
}

/// nmap's `1 IP address` / `256 IP addresses`.
pub(crate) fn ip_addresses(n: u64) -> String {
    format!("{n} IP address{}", if n == 1 { "" } else { "es" })
}

/// nmap's `1 host` / `2 hosts`.
pub(crate) fn hosts(n: u64) -> String {
    format!("{n} host{}", if n == 1 { "" } else { "s" })
}

/// A destination for results. Writes must leave the output valid at every record boundary.
pub trait Sink: Send {
    fn write(&mut self, r: &Record) -> std::io::Result<()>;
    /// A validated reply as received, with its Ethernet header (only pcap sinks keep these).
    fn write_reply(&mut self, _frame: &[u8], _ts: SystemTime) -> std::io::Result<()> {
        Ok(())
    }
    /// Every result of a reply read before `safe_ms` (ms since the epoch) has been written to
    /// this sink (`engine::watermark`); called at least every 50 ms, also a moment to flush
    /// what waited too long.
    fn watermark(&mut self, _safe_ms: u64) -> std::io::Result<()> {
        Ok(())
    }
    /// Closes the document (called once, also after an interruption or a write error).
    fn finish(&mut self, end: &RunEnd) -> std::io::Result<()>;
}

/// RFC 3339 UTC with microseconds, as `2026-11-22T10:00:00.123456Z`.
pub(crate) fn rfc3339(ts: SystemTime) -> String {
    humantime::format_rfc3339_micros(ts).to_string()
}

pub(crate) fn unix_secs(ts: SystemTime) -> u64 {
    ts.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// nmap's `Sun Nov 22 04:01:42 2026` (UTC).
pub(crate) fn ctime(ts: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let s = unix_secs(ts);
    let days = s / 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    let t = s % 86_400;
    format!(
        "{} {} {:2} {:02}:{:02}:{:02} {}",
        DAYS[(days % 7) as usize],
        MONTHS[(m - 1) as usize],
        d,
        t / 3600,
        t / 60 % 60,
        t % 60,
        y
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Escapes text for an XML attribute.
pub(crate) fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\t' => o.push_str(&format!("&#x{:x};", c as u32)),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
pub(crate) mod testutil {
    use super::*;

    pub(crate) fn record(ip: [u8; 4], port: u16, state: PortState, reason: Reason) -> Record {
        Record {
            ip: IpAddr::V4(Ipv4Addr::from(ip)),
            port,
            proto: Proto::Tcp,
            state,
            reason,
            ttl: 64,
            responder: None,
            scan: ScanType::Syn,
            ts: UNIX_EPOCH + Duration::from_micros(1_795_000_000_123_456),
            local: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)),
            facts: ReplyFacts {
                ipid: 7,
                window: 64240,
                icmp: None,
                our_port: 61234,
            },
            cooldown: false,
            trace: None,
            grab: None,
        }
    }

    pub(crate) fn info() -> RunInfo {
        RunInfo {
            version: "0.1.0",
            args: vec![
                "xdpscan".into(),
                "198.19.0.0/16".into(),
                "-p".into(),
                "80".into(),
            ],
            start: UNIX_EPOCH + Duration::from_secs(1_795_000_000),
            port_lists: vec![(
                crate::probe::ScanType::Syn,
                Proto::Tcp,
                crate::targets::PortList::parse("80").unwrap(),
            )],
            port_table: None,
            addresses: Some(65_536),
            resuming: false,
        }
    }

    pub(crate) fn end() -> RunEnd {
        RunEnd {
            end: UNIX_EPOCH + Duration::from_secs(1_795_000_010),
            elapsed: Duration::from_secs(10),
            results: 2,
            error: false,
            complete: true,
        }
    }
}

#[cfg(test)]
mod show_tests {
    use super::*;

    #[test]
    fn show_noshow_and_open_select_states() {
        use PortState::*;
        assert!(PortState::ALL.iter().all(|&s| Show::default().contains(s)));
        let open = Show::from_cli(true, &[], &[]);
        assert!(open.contains(Open) && open.contains(OpenFiltered) && open.contains(Unfiltered));
        assert!(!open.contains(Closed) && !open.contains(Filtered));
        let s = Show::from_cli(false, &[Open, Closed], &[]);
        assert!(s.contains(Closed) && !s.contains(Filtered));
        let s = Show::from_cli(false, &[], &[Closed, Filtered]);
        assert!(s.contains(Open) && !s.contains(Closed) && !s.contains(Filtered));
        assert_eq!(PortState::from_name("open|filtered"), Some(OpenFiltered));
        assert_eq!(PortState::from_name("opened"), None);
        for (i, s) in PortState::ALL.iter().enumerate() {
            assert_eq!(s.index(), i, "{s:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctime_matches_nmap() {
        // 1795320102 = Sun Nov 22 04:01:42 2026 UTC (nmap printed it for that second).
        assert_eq!(
            ctime(UNIX_EPOCH + Duration::from_secs(1_795_320_102)),
            "Sun Nov 22 04:01:42 2026"
        );
        assert_eq!(ctime(UNIX_EPOCH), "Thu Jan  1 00:00:00 1970");
        assert_eq!(
            ctime(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "Tue Feb 29 00:00:00 2000"
        );
    }

    #[test]
    fn escapes() {
        assert_eq!(
            xml_escape("a<b>&\"c'\u{1}"),
            "a&lt;b&gt;&amp;&quot;c&apos;&#x1;"
        );
    }
}
