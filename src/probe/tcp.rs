//! What every TCP probe shares: the template with a given flag set, the per-target patch with an
//! incremental checksum, and matching replies (direct or ICMP-quoted) to our cookies.

use std::net::IpAddr;

use crate::wire::repr::{L4Repr, TcpRepr};
use crate::{
    cookie::ProbeCookie,
    wire::{
        checksum,
        tcp::QuotedTcp,
        template::{FrameParams, FrameTemplate},
        Family, IcmpKind, IcmpMessage, IpPacket, TcpFlags, TcpSegment, Unreach, PROTO_TCP,
    },
};

use super::{Classified, ClassifyCtx, PortState, Proto, Reason, Verdict};

/// The options nmap's raw TCP probes carry: MSS 1460.
pub(crate) const MSS_OPTION: [u8; 4] = [2, 4, 0x05, 0xb4];

/// nmap's raw TCP probes advertise a 1024-byte window.
pub(crate) const WINDOW: u16 = 1024;

/// A TCP probe: its flags decide the template; cookie in the sequence number (and in the
/// acknowledgment number when ACK is set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TcpProbe {
    pub(crate) flags: u8,
}

impl TcpProbe {
    pub(crate) fn template(&self, params: &FrameParams) -> FrameTemplate {
        // Only SYNs carry options, as nmap's probes do.
        let opts: &[u8] = if self.flags & TcpFlags::SYN != 0 {
            &MSS_OPTION
        } else {
            &[]
        };
        // Ports, sequence and acknowledgment are per probe.
        FrameTemplate::new(
            params,
            &L4Repr::Tcp(TcpRepr {
                src_port: 0,
                dst_port: 0,
                seq: 0,
                ack: 0,
                flags: TcpFlags(self.flags),
                window: WINDOW,
                urgent: 0,
                options: opts,
                payload: &[],
            }),
        )
    }

    #[inline(always)]
    pub(crate) fn write(
        &self,
        frame: &mut [u8],
        tpl: &FrameTemplate,
        dst: IpAddr,
        dport: u16,
        c: &ProbeCookie,
    ) -> usize {
        let n = tpl.stamp(frame, dst, c.ident(tpl.family()));
        let mut s = TcpSegment::patch(&mut frame[tpl.l4_offset()..n]);
        s.set_src_port(c.src_port);
        s.set_dst_port(dport);
        s.set_seq(c.seq);
        let mut sum = tpl.l4_sum()
            + tpl.dst_sum(dst)
            + c.src_port as u64
            + dport as u64
            + checksum::sum_u32(c.seq);
        if self.flags & TcpFlags::ACK != 0 {
            let ack = c.ack();
            s.set_ack(ack);
            sum += checksum::sum_u32(ack);
        }
        s.set_checksum(checksum::finish(sum));
        n
    }

    /// Does this RST answer our probe? A RST to a segment carrying ACK takes its sequence number
    /// from that ACK; otherwise it acknowledges our sequence number plus what the probe occupied
    /// (SYN and FIN one each); some stacks echo the bare sequence number.
    pub(crate) fn rst_answers(&self, r: &TcpReply) -> bool {
        if self.flags & TcpFlags::ACK != 0 && r.seq == r.cookie.ack() {
            return true;
        }
        let len =
            (self.flags & TcpFlags::SYN != 0) as u32 + (self.flags & TcpFlags::FIN != 0) as u32;
        r.flags.has(TcpFlags::ACK)
            && (r.ack == r.cookie.seq.wrapping_add(len) || r.ack == r.cookie.seq)
    }
}

/// A TCP segment from a target to the source port our cookie gave it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TcpReply {
    pub(crate) from: IpAddr,
    pub(crate) port: u16,
    pub(crate) flags: TcpFlags,
    pub(crate) window: u16,
    pub(crate) seq: u32,
    pub(crate) ack: u32,
    pub(crate) ttl: u8,
    pub(crate) cookie: ProbeCookie,
}

impl TcpReply {
    pub(crate) fn verdict(&self, state: PortState, reason: Reason) -> Classified {
        Classified::Reply(Verdict {
            ip: self.from,
            port: self.port,
            proto: Proto::Tcp,
            state,
            reason,
            ttl: self.ttl,
            responder: self.from,
        })
    }
}

/// Looks at a TCP segment addressed to us; `None` when its port is not the one we would have used.
pub(crate) fn match_segment(ip: &IpPacket, ctx: &ClassifyCtx, tag: u8) -> Option<TcpReply> {
    let seg = TcpSegment::new_checked(ip.payload()).ok()?;
    let cookie = ctx
        .jar
        .check_port(ip.dst(), ip.src(), seg.dst_port(), seg.src_port(), tag)?;
    Some(TcpReply {
        from: ip.src(),
        port: seg.src_port(),
        flags: seg.flags(),
        window: seg.window(),
        seq: seg.seq(),
        ack: seg.ack(),
        ttl: ip.ttl(),
        cookie,
    })
}

/// An ICMP error quoting one of our probes, validated by its quoted cookie.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QuotedProbe {
    pub(crate) target: IpAddr,
    pub(crate) port: u16,
    /// The message in both families' vocabulary.
    pub(crate) kind: IcmpKind,
    pub(crate) family: Family,
    pub(crate) from: IpAddr,
    pub(crate) ttl: u8,
}

impl QuotedProbe {
    /// The error `msg`, received in `ip`, about our probe to `target:port`.
    pub(crate) fn new(ip: &IpPacket, msg: &IcmpMessage, target: IpAddr, port: u16) -> Self {
        Self {
            target,
            port,
            kind: msg.kind,
            family: msg.family,
            from: ip.src(),
            ttl: ip.ttl(),
        }
    }

    /// Did the scanned host itself send the error (not a router on the way)?
    pub(crate) fn is_from_target(&self) -> bool {
        self.from == self.target
    }

    pub(crate) fn verdict(&self, proto: Proto, state: PortState, reason: Reason) -> Classified {
        Classified::Reply(Verdict {
            ip: self.target,
            port: self.port,
            proto,
            state,
            reason,
            ttl: self.ttl,
            responder: self.from,
        })
    }
}

pub(crate) enum QuoteMatch {
    Ours(QuotedProbe),
    /// Quotes a packet from our port range whose cookie does not check.
    Forged,
    NotOurs,
}

/// An ICMP error and the packet it quotes.
pub(crate) type IcmpQuote<'a> = (IcmpMessage<'a>, IpPacket<'a>);

/// The ICMP (v4 or v6) error in `ip` and the packet it quotes, if it quotes a packet from us.
pub(crate) fn quoted<'a>(ip: &IpPacket<'a>, ctx: &ClassifyCtx) -> Option<IcmpQuote<'a>> {
    let msg = ip.icmp()?;
    let q = msg.quoted()?;
    ctx.is_ours(q.src()).then_some((msg, q))
}

/// Matches an ICMP error quoting a TCP probe of ours (its sequence number must be our cookie).
pub(crate) fn match_icmp_tcp(ip: &IpPacket, ctx: &ClassifyCtx, tag: u8) -> QuoteMatch {
    let Some((msg, q)) = quoted(ip, ctx) else {
        return QuoteMatch::NotOurs;
    };
    if q.protocol() != PROTO_TCP {
        return QuoteMatch::NotOurs;
    }
    let Ok(qt) = QuotedTcp::parse(q.payload()) else {
        return QuoteMatch::NotOurs;
    };
    if !ctx.jar.ports().contains(qt.src_port) {
        return QuoteMatch::NotOurs;
    }
    match ctx
        .jar
        .check_port(q.src(), q.dst(), qt.src_port, qt.dst_port, tag)
    {
        Some(c) if c.seq == qt.seq => {
            QuoteMatch::Ours(QuotedProbe::new(ip, &msg, q.dst(), qt.dst_port))
        }
        _ => QuoteMatch::Forged,
    }
}

/// nmap's reason for an ICMP error that means `filtered` to its port scans. IPv4: unreachable
/// codes 0, 1, 2, 3, 9, 10, 13, and time exceeded. IPv6: unreachable codes 0–6 and parameter
/// problem (unrecognised next header); nmap ignores ICMPv6 time exceeded in port scans.
pub(crate) fn icmp_reason(kind: IcmpKind, family: Family) -> Option<Reason> {
    match kind {
        IcmpKind::Unreachable(u) => Some(match u {
            Unreach::Net => Reason::NetUnreach,
            Unreach::Host | Unreach::Address => Reason::HostUnreach,
            Unreach::Protocol => Reason::ProtoUnreach,
            Unreach::Port => Reason::PortUnreach,
            Unreach::NetProhibited => Reason::NetProhibited,
            Unreach::HostProhibited => Reason::HostProhibited,
            Unreach::AdminProhibited => Reason::AdminProhibited,
            Unreach::NoRoute => Reason::NoRoute,
            Unreach::BeyondScope => Reason::BeyondScope,
            Unreach::RejectRoute => Reason::RejectRoute,
            Unreach::FragNeeded | Unreach::Other => return None,
        }),
        IcmpKind::TimeExceeded if family == Family::V4 => Some(Reason::TimeExceeded),
        IcmpKind::ParamProblem if family == Family::V6 => Some(Reason::ParamProblem),
        _ => None,
    }
}

/// Every TCP scan reads ICMP errors the same way: `filtered`, with the code's reason.
pub(crate) fn classify_icmp(ip: &IpPacket, ctx: &ClassifyCtx, tag: u8) -> Classified {
    match match_icmp_tcp(ip, ctx, tag) {
        QuoteMatch::Ours(q) => match icmp_reason(q.kind, q.family) {
            Some(reason) => q.verdict(Proto::Tcp, PortState::Filtered, reason),
            None => Classified::Unrelated,
        },
        QuoteMatch::Forged => Classified::Invalid,
        QuoteMatch::NotOurs => Classified::Unrelated,
    }
}

/// Parses `--scanflags`: a number (`0x29`, `41`) or flag names run together or separated
/// (`URGPSHFIN`, `syn,ack`), as nmap accepts.
pub(crate) fn parse_scanflags(s: &str) -> Result<u8, String> {
    let t = s.trim();
    let err = || {
        format!("'{s}' is not a TCP flag set (names like SYNACK or URG,PSH,FIN, or a number 0-255)")
    };
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u8::from_str_radix(h, 16).map_err(|_| err());
    }
    if t.bytes().all(|b| b.is_ascii_digit()) && !t.is_empty() {
        return t.parse::<u8>().map_err(|_| err());
    }
    const NAMES: [(&str, u8); 8] = [
        ("FIN", TcpFlags::FIN),
        ("SYN", TcpFlags::SYN),
        ("RST", TcpFlags::RST),
        ("PSH", TcpFlags::PSH),
        ("ACK", TcpFlags::ACK),
        ("URG", TcpFlags::URG),
        ("ECE", TcpFlags::ECE),
        ("CWR", TcpFlags::CWR),
    ];
    let up: String = t
        .to_ascii_uppercase()
        .chars()
        .filter(|c| !matches!(c, ',' | '|' | ' ' | '+'))
        .collect();
    if up.is_empty() {
        return Err(err());
    }
    let mut flags = 0u8;
    let mut rest = up.as_str();
    while !rest.is_empty() {
        let (name, bit) = NAMES
            .iter()
            .find(|(n, _)| rest.starts_with(n))
            .ok_or_else(err)?;
        flags |= bit;
        rest = &rest[name.len()..];
    }
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scanflags() {
        assert_eq!(parse_scanflags("SYNACK"), Ok(0x12));
        assert_eq!(parse_scanflags("urg,psh,fin"), Ok(0x29));
        assert_eq!(parse_scanflags("0x29"), Ok(0x29));
        assert_eq!(parse_scanflags("41"), Ok(0x29));
        assert_eq!(parse_scanflags("0"), Ok(0));
        for bad in ["", "SYNN", "256", "0xfff", "HELLO"] {
            assert!(parse_scanflags(bad).is_err(), "{bad}");
        }
    }
}

/// How a TCP scan type reads the replies its probes get; each scan type's file supplies one.
pub(crate) trait TcpReading: Send + Sync {
    /// A RST that answers our probe.
    fn reset(&self, r: &TcpReply) -> (PortState, Reason);
    /// A SYN-ACK acknowledging our SYN; only SYN probes get these.
    fn syn_ack(&self, _r: &TcpReply) -> Option<(PortState, Reason)> {
        None
    }
    /// What silence means.
    fn silence(&self) -> (PortState, Reason);
}

/// A raw TCP scan: the probe (its flags) and the reading of replies. ICMP errors mean
/// `filtered` for every TCP scan.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TcpScan<R> {
    scan: super::ScanType,
    probe: TcpProbe,
    reading: R,
}

impl<R> TcpScan<R> {
    pub(crate) fn with(scan: super::ScanType, flags: u8, reading: R) -> Self {
        Self {
            scan,
            probe: TcpProbe { flags },
            reading,
        }
    }
}

impl<R: TcpReading> super::ProbeModule for TcpScan<R> {
    fn scan(&self) -> super::ScanType {
        self.scan
    }

    fn cookie_tag(&self) -> u8 {
        PROTO_TCP
    }

    fn result_proto(&self) -> Proto {
        Proto::Tcp
    }

    fn template(&self, params: &FrameParams, _port: u16) -> FrameTemplate {
        self.probe.template(params)
    }

    #[inline(always)]
    fn write(
        &self,
        frame: &mut [u8],
        tpl: &FrameTemplate,
        dst: IpAddr,
        dport: u16,
        c: &ProbeCookie,
    ) -> usize {
        self.probe.write(frame, tpl, dst, dport, c)
    }

    fn silence(&self) -> (PortState, Reason) {
        self.reading.silence()
    }
}

impl<R: TcpReading> super::PortScan for TcpScan<R> {
    fn classify(&self, ip: &IpPacket, ctx: &ClassifyCtx) -> Classified {
        if ip.protocol() != PROTO_TCP {
            return classify_icmp(ip, ctx, PROTO_TCP);
        }
        let Some(r) = match_segment(ip, ctx, PROTO_TCP) else {
            return Classified::Invalid;
        };
        let f = r.flags;
        let read = if f.has(TcpFlags::RST) {
            self.probe.rst_answers(&r).then(|| self.reading.reset(&r))
        } else if f.has(TcpFlags::SYN | TcpFlags::ACK) {
            (r.ack == r.cookie.seq.wrapping_add(1))
                .then(|| self.reading.syn_ack(&r))
                .flatten()
        } else {
            // A bare SYN (a "simultaneous open") acknowledges nothing: only its port ties it to
            // us, which one forged SYN in a few thousand matches. Invalid, never open.
            None
        };
        match read {
            Some((state, reason)) => r.verdict(state, reason),
            None => Classified::Invalid,
        }
    }
}
