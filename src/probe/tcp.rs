//! What every TCP probe shares: the template with a given flag set, the per-target patch with an
//! incremental checksum, and matching replies (direct or ICMP-quoted) to our cookies.

use crate::{
    cookie::ProbeCookie,
    wire::{
        checksum, icmp, put_u16, put_u32,
        tcp::{self, QuotedTcp},
        template::{FrameParams, FrameTemplate, L4_OFFSET},
        IcmpPacket, Ipv4Packet, TcpFlags, TcpSegment, PROTO_ICMP, PROTO_TCP,
    },
};

use super::{ClassifyCtx, Reason};

/// The options nmap's raw TCP probes carry: MSS 1460.
pub const MSS_OPTION: [u8; 4] = [2, 4, 0x05, 0xb4];

/// A TCP probe template: `flags`, window `window`, the MSS option, ports/seq/checksum zero.
pub fn template(params: &FrameParams, flags: u8, window: u16) -> FrameTemplate {
    let hl = tcp::MIN_HEADER_LEN + MSS_OPTION.len();
    let mut l4 = vec![0u8; hl];
    let mut seg = TcpSegment::init(&mut l4[..], hl);
    seg.set_flags(TcpFlags(flags));
    seg.set_window(window);
    seg.options_mut().copy_from_slice(&MSS_OPTION);
    FrameTemplate::new(params, PROTO_TCP, &l4, true)
}

/// Stamps the template for `dst:dport`: source port and sequence number from the cookie, ack
/// left as in the template.
#[inline(always)]
pub fn write(
    frame: &mut [u8],
    tpl: &FrameTemplate,
    dst: u32,
    dport: u16,
    c: &ProbeCookie,
) -> usize {
    let n = tpl.stamp_ipv4(frame, dst, c.ip_id);
    put_u16(frame, L4_OFFSET + tcp::SRC_PORT_OFFSET, c.src_port);
    put_u16(frame, L4_OFFSET + tcp::DST_PORT_OFFSET, dport);
    put_u32(frame, L4_OFFSET + tcp::SEQ_OFFSET, c.seq);
    let sum = tpl.l4_sum()
        + checksum::sum_u32(dst)
        + c.src_port as u64
        + dport as u64
        + checksum::sum_u32(c.seq);
    put_u16(
        frame,
        L4_OFFSET + tcp::CHECKSUM_OFFSET,
        checksum::finish(sum),
    );
    n
}

/// A TCP segment from a target that validates as a reply to our probe.
#[derive(Debug, Clone, Copy)]
pub struct TcpReply {
    pub from: u32,
    pub port: u16,
    pub flags: TcpFlags,
    pub window: u16,
    pub seq_sent: u32,
    pub ack: u32,
    pub ttl: u8,
}

/// Looks at a TCP segment addressed to us; `None` when its port is not the one we would have used.
pub fn match_segment(ip: &Ipv4Packet<&[u8]>, ctx: &ClassifyCtx) -> Option<TcpReply> {
    let seg = TcpSegment::new_checked(ip.payload()).ok()?;
    let c = ctx.jar.check_port(
        ctx.src_ip,
        ip.src(),
        seg.dst_port(),
        seg.src_port(),
        PROTO_TCP,
    )?;
    Some(TcpReply {
        from: ip.src(),
        port: seg.src_port(),
        flags: seg.flags(),
        window: seg.window(),
        seq_sent: c.seq,
        ack: seg.ack(),
        ttl: ip.ttl(),
    })
}

/// An ICMP error quoting one of our probes of protocol `proto`, validated by its quoted cookie.
#[derive(Debug, Clone, Copy)]
pub struct QuotedProbe {
    pub target: u32,
    pub port: u16,
    pub icmp_type: u8,
    pub icmp_code: u8,
    pub from: u32,
    pub ttl: u8,
}

pub enum QuoteMatch {
    Ours(QuotedProbe),
    /// Quotes a packet from our port range whose cookie does not check.
    Forged,
    NotOurs,
}

/// Matches an ICMP error quoting a TCP probe of ours.
pub fn match_icmp_tcp(ip: &Ipv4Packet<&[u8]>, ctx: &ClassifyCtx) -> QuoteMatch {
    if ip.protocol() != PROTO_ICMP {
        return QuoteMatch::NotOurs;
    }
    let Ok(msg) = IcmpPacket::new_checked(ip.payload()) else {
        return QuoteMatch::NotOurs;
    };
    if !msg.is_error() {
        return QuoteMatch::NotOurs;
    }
    let Ok(q) = Ipv4Packet::new_checked(msg.payload()) else {
        return QuoteMatch::NotOurs;
    };
    if q.src() != ctx.src_ip || q.protocol() != PROTO_TCP {
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
        .check_port(ctx.src_ip, q.dst(), qt.src_port, qt.dst_port, PROTO_TCP)
    {
        Some(c) if c.seq == qt.seq => QuoteMatch::Ours(QuotedProbe {
            target: q.dst(),
            port: qt.dst_port,
            icmp_type: msg.msg_type(),
            icmp_code: msg.code(),
            from: ip.src(),
            ttl: ip.ttl(),
        }),
        _ => QuoteMatch::Forged,
    }
}

/// nmap's reason for an ICMP error, and whether nmap's TCP scans call it `filtered`
/// (type 3 codes 0, 1, 2, 3, 9, 10, 13, and time exceeded).
pub fn icmp_reason(icmp_type: u8, code: u8) -> Option<Reason> {
    use icmp::unreach::*;
    match (icmp_type, code) {
        (icmp::TYPE_DEST_UNREACH, NET) => Some(Reason::NetUnreach),
        (icmp::TYPE_DEST_UNREACH, HOST) => Some(Reason::HostUnreach),
        (icmp::TYPE_DEST_UNREACH, PROTOCOL) => Some(Reason::ProtoUnreach),
        (icmp::TYPE_DEST_UNREACH, PORT) => Some(Reason::PortUnreach),
        (icmp::TYPE_DEST_UNREACH, NET_PROHIBITED) => Some(Reason::NetProhibited),
        (icmp::TYPE_DEST_UNREACH, HOST_PROHIBITED) => Some(Reason::HostProhibited),
        (icmp::TYPE_DEST_UNREACH, ADMIN_PROHIBITED) => Some(Reason::AdminProhibited),
        (icmp::TYPE_TIME_EXCEEDED, _) => Some(Reason::TimeExceeded),
        _ => None,
    }
}
