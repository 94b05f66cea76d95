//! Scan types. Each module builds its probe template, patches it per target, and classifies a
//! reply into nmap's port states, with no state kept per probe (ZMap's probe-module idea).
//! Adding a scan type is adding one file and one row in [`table`]; a raw TCP scan only supplies
//! its reading of replies ([`tcp::TcpReading`]).

pub(crate) mod ack;
pub(crate) mod ipproto;
pub(crate) mod ping;
pub(crate) mod sctp;
pub(crate) mod stealth;
pub(crate) mod syn;
pub(crate) mod table;
pub(crate) mod tcp;
pub mod traceroute;
pub(crate) mod udp;
pub(crate) mod udp_echo;
pub mod udp_payloads;
pub(crate) mod window;

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use serde::{Deserialize, Serialize};

pub use table::{ScanRow, ScanType, SCAN_TYPES};

use crate::{
    cookie::{CookieJar, ProbeCookie},
    wire::{template::FrameParams, template::FrameTemplate, IpPacket},
};

/// nmap's port states (its reference guide, "Port Scanning Basics").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
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
    /// Its place in [`Self::ALL`] (the declaration order), for per-state tables and sets.
    #[inline]
    pub(crate) const fn index(self) -> usize {
        self as usize
    }

    /// The state nmap's name stands for (`open|filtered`...).
    pub(crate) fn from_name(s: &str) -> Option<PortState> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    pub(crate) const ALL: [PortState; 8] = [
        PortState::Open,
        PortState::Closed,
        PortState::Filtered,
        PortState::Unfiltered,
        PortState::OpenFiltered,
        PortState::ClosedFiltered,
        PortState::Up,
        PortState::Down,
    ];
    pub(crate) fn as_str(self) -> &'static str {
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    /// ICMPv6 unreachable code 0.
    NoRoute,
    /// ICMPv6 unreachable code 2.
    BeyondScope,
    /// ICMPv6 unreachable code 6.
    RejectRoute,
    /// ICMPv6 parameter problem.
    ParamProblem,
    /// An SCTP INIT ACK.
    InitAck,
    /// An SCTP ABORT.
    Abort,
}

impl Reason {
    pub(crate) fn as_str(self) -> &'static str {
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
            Reason::NoRoute => "no-route",
            Reason::BeyondScope => "beyond-scope",
            Reason::RejectRoute => "reject-route",
            Reason::ParamProblem => "param-problem",
            Reason::InitAck => "init-ack",
            Reason::Abort => "abort",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Transport protocol of a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
    /// Ping sweeps: the "port" is 0.
    Icmp,
    /// IP protocol scans: the "port" is the protocol number.
    Ip,
    Sctp,
}

impl Proto {
    pub(crate) const ALL: [Proto; 5] =
        [Proto::Tcp, Proto::Udp, Proto::Icmp, Proto::Ip, Proto::Sctp];

    /// Its place in [`Self::ALL`].
    #[inline]
    pub(crate) const fn index(self) -> usize {
        self as usize
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Icmp => "icmp",
            Proto::Ip => "ip",
            Proto::Sctp => "sctp",
        }
    }

    /// The prefix nmap and masscan give this protocol's ports in `-p` (`T:22,U:53,S:80`).
    pub(crate) fn port_prefix(self) -> Option<&'static str> {
        match self {
            Proto::Tcp => Some("T"),
            Proto::Udp => Some("U"),
            Proto::Sctp => Some("S"),
            Proto::Ip => Some("P"),
            Proto::Icmp => None,
        }
    }

    /// The protocol nmap-services names this protocol's ports under.
    pub(crate) fn service_proto(self) -> Option<crate::targets::services::ServiceProto> {
        use crate::targets::services::ServiceProto;
        match self {
            Proto::Tcp => Some(ServiceProto::Tcp),
            Proto::Udp => Some(ServiceProto::Udp),
            Proto::Sctp => Some(ServiceProto::Sctp),
            Proto::Icmp | Proto::Ip => None,
        }
    }
}

/// What one validated reply says about one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// The scanned address (for an ICMP error: the one quoted, not the router's).
    pub ip: IpAddr,
    pub port: u16,
    pub proto: Proto,
    pub(crate) state: PortState,
    pub(crate) reason: Reason,
    /// TTL of the reply as received.
    pub(crate) ttl: u8,
    /// Who sent the reply (differs from `ip` for ICMP errors from routers).
    pub(crate) responder: IpAddr,
}

/// The outcome of looking at one received IP packet: a port scan's reply is a [`Verdict`], a
/// traceroute's a [`traceroute::Hop`]; what each reads stays in its own module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classified<R = Verdict> {
    /// A reply to one of our probes.
    Reply(R),
    /// Addressed to our port range but failing the cookie: forged, stale or from another scan.
    Invalid,
    /// Not a reply this scan type understands.
    Unrelated,
}

/// What a probe module needs to validate replies: the key, and the scan's source address of
/// each family it scans from.
#[derive(Debug, Clone)]
pub struct ClassifyCtx {
    pub jar: CookieJar,
    pub src_v4: Option<Ipv4Addr>,
    pub src_v6: Option<Ipv6Addr>,
}

impl ClassifyCtx {
    /// Is `a` one of the scan's source addresses (its source pool's included)?
    #[inline]
    pub fn is_ours(&self, a: IpAddr) -> bool {
        let first = match a {
            IpAddr::V4(v4) => self.src_v4 == Some(v4),
            IpAddr::V6(v6) => self.src_v6 == Some(v6),
        };
        first || self.jar.in_pool(a)
    }
}

/// The sending side of a scan type: the template, the per-target patch, what silence means,
/// and which replies the receive path must hand over. How replies are read is the scan's own:
/// [`PortScan::classify`] for port scans, [`traceroute::TracerouteScan::classify`] for paths.
pub trait ProbeModule: Send + Sync {
    /// Which scan this module runs.
    fn scan(&self) -> ScanType;
    /// Short name used in results and metadata (`"syn"`).
    fn name(&self) -> &'static str {
        self.scan().name()
    }
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
    /// Writes the probe for `dst:dport` into `frame`, returns its length. `tpl` is of `dst`'s
    /// family.
    fn write(
        &self,
        frame: &mut [u8],
        tpl: &FrameTemplate,
        dst: IpAddr,
        dport: u16,
        c: &ProbeCookie,
    ) -> usize;
    /// What nmap concludes when nothing answers.
    fn silence(&self) -> (PortState, Reason);
    /// Which replies it reads besides TCP/UDP to our ports and ICMP errors quoting those: what
    /// the receive path (the XDP program) must hand us.
    fn replies(&self) -> Replies {
        Replies::default()
    }
}

/// A port scan: each reply is a verdict on one (target, port).
pub trait PortScan: ProbeModule {
    /// Classifies a received IP packet (either family) addressed to us.
    fn classify(&self, ip: &IpPacket, ctx: &ClassifyCtx) -> Classified;
}

/// Replies a scan type reads beyond TCP/UDP to our ports and ICMP errors quoting them. The
/// transport turns this into its own terms (`io::xdp` into the steering program's flags).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Replies {
    /// ICMP (ICMPv6) echo replies whose identifier is one of our ports.
    pub(crate) echo_replies: bool,
    /// ICMPv4 query replies (echo, timestamp, information, address mask) with our identifier.
    pub(crate) icmp_queries: bool,
    /// ICMP errors quoting a packet of any protocol from us, not only TCP/UDP.
    pub(crate) any_quoted: bool,
    /// Packets to us of the protocols in `protocols` (`-sO`), and ICMP errors quoting them.
    pub(crate) all_protocols: bool,
    /// `-sO`'s protocol numbers, one bit each (filled in by the plan: the module does not know
    /// which numbers the scan takes).
    pub(crate) protocols: [u8; 32],
}

impl Replies {
    /// With protocol `p` among `protocols`.
    pub(crate) fn with_protocol(mut self, p: u8) -> Self {
        self.protocols[p as usize / 8] |= 1 << (p % 8);
        self
    }

    /// What either of two scans reads (one scan over several protocols).
    pub(crate) fn union(self, o: Replies) -> Replies {
        Replies {
            echo_replies: self.echo_replies || o.echo_replies,
            icmp_queries: self.icmp_queries || o.icmp_queries,
            any_quoted: self.any_quoted || o.any_quoted,
            all_protocols: self.all_protocols || o.all_protocols,
            protocols: std::array::from_fn(|i| self.protocols[i] | o.protocols[i]),
        }
    }
}

/// Shared helpers for the probe modules' unit tests: a fixed key, frames built by a module, and
/// replies built with etherparse as a target would send them, in either family.
#[cfg(test)]
pub(crate) mod testutil {
    use super::*;
    use crate::{
        cookie::{CookieJar, PortRange},
        wire::{template::IP_OFFSET, MacAddr},
    };
    use etherparse::PacketBuilder;

    pub(crate) const SRC: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));
    pub(crate) const DST: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 19, 1, 5));
    pub(crate) const ROUTER: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2));
    pub(crate) const SRC6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
    pub(crate) const DST6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 5));
    pub(crate) const ROUTER6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2));
    pub(crate) const SMAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    pub(crate) const DMAC: [u8; 6] = [2, 0, 0, 0, 0, 2];

    /// `a` plus `n` in its last bits.
    pub(crate) fn plus(a: IpAddr, n: u32) -> IpAddr {
        match a {
            IpAddr::V4(a) => IpAddr::V4((u32::from(a) + n).into()),
            IpAddr::V6(a) => IpAddr::V6((u128::from(a) + n as u128).into()),
        }
    }

    /// Our source address in `dst`'s family.
    pub(crate) fn src_for(dst: IpAddr) -> IpAddr {
        if dst.is_ipv4() {
            SRC
        } else {
            SRC6
        }
    }

    pub(crate) fn ctx() -> ClassifyCtx {
        let IpAddr::V4(s4) = SRC else { unreachable!() };
        let IpAddr::V6(s6) = SRC6 else { unreachable!() };
        ClassifyCtx {
            jar: CookieJar::new(
                [7; 16],
                PortRange {
                    lo: 61000,
                    hi: 65535,
                },
            ),
            src_v4: Some(s4),
            src_v6: Some(s6),
        }
    }

    pub(crate) fn params_for(dst: IpAddr) -> FrameParams {
        FrameParams {
            src_mac: MacAddr(SMAC),
            dst_mac: MacAddr(DMAC),
            src: src_for(dst),
            ttl: 64,
        }
    }

    pub(crate) fn params() -> FrameParams {
        params_for(DST)
    }

    /// The frame `m` sends to `dst:port`, and its cookie.
    pub(crate) fn build(
        m: &dyn ProbeModule,
        ctx: &ClassifyCtx,
        dst: IpAddr,
        port: u16,
    ) -> (Vec<u8>, ProbeCookie) {
        let tpl = m.template(&params_for(dst), port);
        let c = ctx.jar.cookie(src_for(dst), dst, port, m.cookie_tag());
        let mut f = vec![0u8; 2048];
        let n = m.write(&mut f, &tpl, dst, port, &c);
        f.truncate(n);
        (f, c)
    }

    fn ip_builder(
        from: IpAddr,
        to: IpAddr,
        ttl: u8,
    ) -> etherparse::PacketBuilderStep<etherparse::IpHeaders> {
        match (from, to) {
            (IpAddr::V4(f), IpAddr::V4(t)) => PacketBuilder::ipv4(f.octets(), t.octets(), ttl),
            (IpAddr::V6(f), IpAddr::V6(t)) => PacketBuilder::ipv6(f.octets(), t.octets(), ttl),
            _ => panic!("mixed families"),
        }
    }

    /// A TCP segment from `from:sport` to us with flags spelled like "SA", "RA", "R".
    pub(crate) fn tcp_reply(
        from: IpAddr,
        sport: u16,
        dport: u16,
        seq: u32,
        ack: u32,
        flags: &str,
        window: u16,
    ) -> Vec<u8> {
        let mut b = ip_builder(from, src_for(from), 63).tcp(sport, dport, seq, window);
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

    /// A UDP datagram from `from:sport` to us.
    pub(crate) fn udp_reply(from: IpAddr, sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        ip_builder(from, src_for(from), 63)
            .udp(sport, dport)
            .write(&mut v, data)
            .unwrap();
        v
    }

    /// An ICMP destination-unreachable from ROUTER quoting the probe `m` sends to DST:port.
    pub(crate) fn icmp_error(
        m: &dyn ProbeModule,
        ctx: &ClassifyCtx,
        port: u16,
        code: u8,
        tamper: bool,
    ) -> Vec<u8> {
        icmp_error_from(m, ctx, port, code, tamper, ROUTER)
    }

    /// The same, sent by `from` (the target itself, or a router). The family follows `from`:
    /// an IPv6 sender quotes the probe to DST6 in an ICMPv6 unreachable with this code.
    pub(crate) fn icmp_error_from(
        m: &dyn ProbeModule,
        ctx: &ClassifyCtx,
        port: u16,
        code: u8,
        tamper: bool,
        from: IpAddr,
    ) -> Vec<u8> {
        let dst = if from.is_ipv4() { DST } else { DST6 };
        let (frame, _) = build(m, ctx, dst, port);
        let hl = if from.is_ipv4() { 20 } else { 40 };
        let mut quoted = frame[IP_OFFSET..(IP_OFFSET + hl + 8).min(frame.len())].to_vec();
        if tamper {
            if from.is_ipv4() {
                quoted[4] ^= 1; // the quoted IP id
            } else {
                quoted[3] ^= 1; // the quoted flow label
            }
            if let Some(b) = quoted.get_mut(hl + 4) {
                *b ^= 1; // and inside the quoted L4 header's first 8 bytes
            }
        }
        let mut v = Vec::new();
        match (from, src_for(from)) {
            (IpAddr::V4(f), IpAddr::V4(t)) => PacketBuilder::ipv4(f.octets(), t.octets(), 64)
                .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
                    etherparse::icmpv4::DestUnreachableHeader::from_values(code, 0).unwrap(),
                ))
                .write(&mut v, &quoted)
                .unwrap(),
            (IpAddr::V6(f), IpAddr::V6(t)) => PacketBuilder::ipv6(f.octets(), t.octets(), 64)
                .icmpv6(etherparse::Icmpv6Type::DestinationUnreachable(
                    etherparse::icmpv6::DestUnreachableCode::from_u8(code).unwrap(),
                ))
                .write(&mut v, &quoted)
                .unwrap(),
            _ => unreachable!(),
        }
        v
    }

    pub(crate) fn classify(m: &dyn PortScan, ctx: &ClassifyCtx, pkt: &[u8]) -> Classified {
        m.classify(&IpPacket::parse(pkt).unwrap(), ctx)
    }
}
