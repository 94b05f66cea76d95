//! Scan types. Each module builds its probe template, patches it per target, and classifies a
//! reply into nmap's port states, with no state kept per probe (ZMap's probe-module idea).
//! Adding a scan type is adding one file and one arm in [`ScanType::module`]; a raw TCP scan
//! only supplies its reading of replies ([`tcp::TcpReading`]).

pub mod ack;
pub mod ipproto;
pub mod ping;
pub mod stealth;
pub mod syn;
pub mod tcp;
pub mod traceroute;
pub mod udp;
pub mod udp_payloads;
pub mod window;

use std::{fmt, net::Ipv4Addr};

use serde::Serialize;

use crate::{
    cookie::{CookieJar, ProbeCookie},
    wire::{template::FrameParams, template::FrameTemplate, Ipv4Packet},
};

/// nmap's port states (its reference guide, "Port Scanning Basics").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
pub enum PortState {
    #[serde(rename = "open")]
    Open,
    #[serde(rename = "closed")]
    Closed,
    #[serde(rename = "filtered")]
    Filtered,
    #[serde(rename = "unfiltered")]
    Unfiltered,
    #[serde(rename = "open|filtered")]
    OpenFiltered,
    #[serde(rename = "closed|filtered")]
    ClosedFiltered,
    /// A host answered a ping sweep.
    #[serde(rename = "up")]
    Up,
    /// A host did not answer a ping sweep (or a router said it is unreachable).
    #[serde(rename = "down")]
    Down,
}

impl PortState {
    pub const ALL: [PortState; 8] = [
        PortState::Open,
        PortState::Closed,
        PortState::Filtered,
        PortState::Unfiltered,
        PortState::OpenFiltered,
        PortState::ClosedFiltered,
        PortState::Up,
        PortState::Down,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            PortState::Open => "open",
            PortState::Closed => "closed",
            PortState::Filtered => "filtered",
            PortState::Unfiltered => "unfiltered",
            PortState::OpenFiltered => "open|filtered",
            PortState::ClosedFiltered => "closed|filtered",
            PortState::Up => "up",
            PortState::Down => "down",
        }
    }
}

impl fmt::Display for PortState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a state was decided, spelled as nmap's `--reason` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    SynAck,
    Reset,
    NetUnreach,
    HostUnreach,
    ProtoUnreach,
    PortUnreach,
    NetProhibited,
    HostProhibited,
    AdminProhibited,
    TimeExceeded,
    NoResponse,
    ConnRefused,
    UdpResponse,
    EchoReply,
    ProtoResponse,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::SynAck => "syn-ack",
            Reason::Reset => "reset",
            Reason::NetUnreach => "net-unreach",
            Reason::HostUnreach => "host-unreach",
            Reason::ProtoUnreach => "proto-unreach",
            Reason::PortUnreach => "port-unreach",
            Reason::NetProhibited => "net-prohibited",
            Reason::HostProhibited => "host-prohibited",
            Reason::AdminProhibited => "admin-prohibited",
            Reason::TimeExceeded => "time-exceeded",
            Reason::NoResponse => "no-response",
            Reason::ConnRefused => "conn-refused",
            Reason::UdpResponse => "udp-response",
            Reason::EchoReply => "echo-reply",
            Reason::ProtoResponse => "proto-response",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Transport protocol of a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
    /// Ping sweeps: the "port" is 0.
    Icmp,
    /// IP protocol scans: the "port" is the protocol number.
    Ip,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Icmp => "icmp",
            Proto::Ip => "ip",
        }
    }
}

/// What one validated reply says about one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// The scanned address (for an ICMP error: the one quoted, not the router's).
    pub ip: u32,
    pub port: u16,
    pub proto: Proto,
    pub state: PortState,
    pub reason: Reason,
    /// TTL of the reply as received.
    pub ttl: u8,
    /// Who sent the reply (differs from `ip` for ICMP errors from routers).
    pub responder: u32,
}

impl Verdict {
    pub fn ip_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.ip)
    }
}

/// The outcome of looking at one received IPv4 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classified {
    /// A reply to one of our probes.
    Verdict(Verdict),
    /// A reply to a traceroute probe: a hop on the way, or the end of the path.
    Hop(traceroute::Hop),
    /// Addressed to our port range but failing the cookie: forged, stale or from another scan.
    Invalid,
    /// Not a reply this scan type understands.
    Unrelated,
}

/// What a probe module needs to validate replies.
#[derive(Debug, Clone)]
pub struct ClassifyCtx {
    pub jar: CookieJar,
    pub src_ip: u32,
}

/// A scan type: the template, the per-target patch, and the classification of replies.
pub trait ProbeModule: Send + Sync {
    /// Short name used in results and metadata (`"syn"`).
    fn name(&self) -> &'static str;
    /// Protocol tag the cookie covers (the IP protocol of the probes, or a tag of its own).
    fn cookie_tag(&self) -> u8;
    /// Protocol named in results.
    fn result_proto(&self) -> Proto;
    /// The frame the probes to `port` start from.
    fn template(&self, params: &FrameParams, port: u16) -> FrameTemplate;
    /// Whether templates differ per port (UDP payloads, IP protocols); if not, one serves all.
    fn per_port_templates(&self) -> bool {
        false
    }
    /// Every probe sent to `port`: usually one, one per payload where a port has several.
    fn variants(&self, params: &FrameParams, port: u16) -> Vec<FrameTemplate> {
        vec![self.template(params, port)]
    }
    /// Writes the probe for `dst:dport` into `frame`, returns its length.
    fn write(
        &self,
        frame: &mut [u8],
        tpl: &FrameTemplate,
        dst: u32,
        dport: u16,
        c: &ProbeCookie,
    ) -> usize;
    /// Classifies a received IPv4 packet addressed to us.
    fn classify(&self, ip: &Ipv4Packet<&[u8]>, ctx: &ClassifyCtx) -> Classified;
    /// What nmap concludes when nothing answers.
    fn silence(&self) -> (PortState, Reason);
    /// What the XDP program must steer besides TCP/UDP to our ports and ICMP errors quoting them
    /// (`io::xdp::STEER_*`).
    fn steer_flags(&self) -> u32 {
        0
    }
}

/// The scan types this build knows (nmap's flag in brackets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanType {
    /// `-sS`
    Syn,
    /// `-sA`
    Ack,
    /// `-sW`
    Window,
    /// `-sF`
    Fin,
    /// `-sN`
    Null,
    /// `-sX`
    Xmas,
    /// `-sM`
    Maimon,
    /// `-sU`
    Udp,
    /// `-sO`
    IpProto,
    /// `-PE` / `--ping`
    Ping,
    /// `-sT`: kernel sockets, no probe module (see `engine::connect`).
    Connect,
    /// `--traceroute`: one probe per TTL (see `probe::traceroute`).
    Traceroute,
}

impl ScanType {
    pub fn name(self) -> &'static str {
        match self {
            ScanType::Syn => "syn",
            ScanType::Ack => "ack",
            ScanType::Window => "window",
            ScanType::Fin => "fin",
            ScanType::Null => "null",
            ScanType::Xmas => "xmas",
            ScanType::Maimon => "maimon",
            ScanType::Udp => "udp",
            ScanType::IpProto => "ipproto",
            ScanType::Ping => "ping",
            ScanType::Connect => "connect",
            ScanType::Traceroute => "traceroute",
        }
    }

    /// Does this scan take a port list (`-sO`: protocol numbers; ping: none)?
    pub fn uses_ports(self) -> bool {
        !matches!(self, ScanType::Ping)
    }

    /// The TCP flags this scan's probes carry by default.
    pub fn default_tcp_flags(self) -> Option<u8> {
        use crate::wire::TcpFlags as F;
        match self {
            ScanType::Syn => Some(F::SYN),
            ScanType::Ack | ScanType::Window => Some(F::ACK),
            ScanType::Fin => Some(F::FIN),
            ScanType::Null => Some(0),
            ScanType::Xmas => Some(F::FIN | F::PSH | F::URG),
            ScanType::Maimon => Some(F::FIN | F::ACK),
            _ => None,
        }
    }

    /// The probe module, with `--scanflags` replacing the TCP flags (the scan type still decides
    /// how replies are read, as nmap does) and the UDP payloads for `-sU`.
    pub fn module(
        self,
        scanflags: Option<u8>,
        payloads: &udp_payloads::Payloads,
    ) -> Box<dyn ProbeModule> {
        let flags = scanflags.or(self.default_tcp_flags()).unwrap_or(0);
        match self {
            ScanType::Syn => Box::new(syn::SynScan::new(flags)),
            ScanType::Ack => Box::new(ack::AckScan::new(flags)),
            ScanType::Window => Box::new(window::WindowScan::new(flags)),
            ScanType::Fin | ScanType::Null | ScanType::Xmas | ScanType::Maimon => {
                Box::new(stealth::StealthScan::new(self.name(), flags))
            }
            ScanType::Udp => Box::new(udp::UdpScan::new(payloads.clone())),
            ScanType::IpProto => Box::new(ipproto::IpProtoScan),
            ScanType::Ping => Box::new(ping::PingScan),
            ScanType::Connect => panic!("connect scans use kernel sockets, not a probe module"),
            ScanType::Traceroute => panic!("traceroute modules are built from their options"),
        }
    }
}

/// Shared helpers for the probe modules' unit tests: a fixed key, frames built by a module, and
/// replies built with etherparse as a target would send them.
#[cfg(test)]
pub(crate) mod testutil {
    use super::*;
    use crate::{
        cookie::{CookieJar, PortRange},
        wire::{template::IP_OFFSET, MacAddr},
    };
    use etherparse::PacketBuilder;

    pub const SRC: u32 = 0xc612_0001; // 198.18.0.1
    pub const DST: u32 = 0xc613_0105; // 198.19.1.5
    pub const ROUTER: u32 = 0xc612_0002;
    pub const SMAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    pub const DMAC: [u8; 6] = [2, 0, 0, 0, 0, 2];

    pub fn ctx() -> ClassifyCtx {
        ClassifyCtx {
            jar: CookieJar::new(
                [7; 16],
                PortRange {
                    lo: 61000,
                    hi: 65535,
                },
            ),
            src_ip: SRC,
        }
    }

    pub fn params() -> FrameParams {
        FrameParams {
            src_mac: MacAddr(SMAC),
            dst_mac: MacAddr(DMAC),
            src_ip: SRC,
            ttl: 64,
        }
    }

    /// The frame `m` sends to `dst:port`, and its cookie.
    pub fn build(
        m: &dyn ProbeModule,
        ctx: &ClassifyCtx,
        dst: u32,
        port: u16,
    ) -> (Vec<u8>, ProbeCookie) {
        let tpl = m.template(&params(), port);
        let c = ctx.jar.cookie(SRC, dst, port, m.cookie_tag());
        let mut f = vec![0u8; 2048];
        let n = m.write(&mut f, &tpl, dst, port, &c);
        f.truncate(n);
        (f, c)
    }

    /// A TCP segment from `from:sport` to us with flags spelled like "SA", "RA", "R".
    pub fn tcp_reply(
        from: u32,
        sport: u16,
        dport: u16,
        seq: u32,
        ack: u32,
        flags: &str,
        window: u16,
    ) -> Vec<u8> {
        let mut b = PacketBuilder::ipv4(from.to_be_bytes(), SRC.to_be_bytes(), 63)
            .tcp(sport, dport, seq, window);
        if flags.contains('S') {
            b = b.syn();
        }
        if flags.contains('R') {
            b = b.rst();
        }
        if flags.contains('F') {
            b = b.fin();
        }
        let b = if flags.contains('A') { b.ack(ack) } else { b };
        let mut v = Vec::new();
        b.write(&mut v, &[]).unwrap();
        v
    }

    /// An ICMP destination-unreachable from ROUTER quoting the probe `m` sends to DST:port.
    pub fn icmp_error(
        m: &dyn ProbeModule,
        ctx: &ClassifyCtx,
        port: u16,
        code: u8,
        tamper: bool,
    ) -> Vec<u8> {
        icmp_error_from(m, ctx, port, code, tamper, ROUTER)
    }

    /// The same, sent by `from` (the target itself, or a router).
    pub fn icmp_error_from(
        m: &dyn ProbeModule,
        ctx: &ClassifyCtx,
        port: u16,
        code: u8,
        tamper: bool,
        from: u32,
    ) -> Vec<u8> {
        let (frame, _) = build(m, ctx, DST, port);
        let mut quoted = frame[IP_OFFSET..(IP_OFFSET + 28).min(frame.len())].to_vec();
        if tamper {
            quoted[4] ^= 1; // the quoted IP id
            if let Some(b) = quoted.get_mut(24) {
                *b ^= 1; // and inside the quoted L4 header's first 8 bytes
            }
        }
        let b = PacketBuilder::ipv4(from.to_be_bytes(), SRC.to_be_bytes(), 64).icmpv4(
            etherparse::Icmpv4Type::DestinationUnreachable(
                etherparse::icmpv4::DestUnreachableHeader::from_values(code, 0).unwrap(),
            ),
        );
        let mut v = Vec::new();
        b.write(&mut v, &quoted).unwrap();
        v
    }

    pub fn classify(m: &dyn ProbeModule, ctx: &ClassifyCtx, pkt: &[u8]) -> Classified {
        m.classify(&Ipv4Packet::new_checked(pkt).unwrap(), ctx)
    }
}
