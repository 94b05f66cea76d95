//! Packets taken apart for people: every layer with every field named, as Scapy's `show()`
//! prints it, a hexdump as Scapy's `hexdump()` does, and nmap's one-line `--packet-trace`
//! summary. Read-only and allocation-happy: this is for single packets, never the hot path.

use std::{
    fmt::Write,
    net::{IpAddr, Ipv4Addr},
};

use super::{
    ethernet, get_u16, get_u32, icmp, icmpv6, EthernetFrame, Family, IcmpPacket, IpPacket,
    Ipv4Packet, Ipv6Packet, TcpSegment, UdpDatagram, PROTO_ICMP, PROTO_TCP, PROTO_UDP,
};

/// One protocol layer and its fields, in header order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    pub(crate) name: String,
    pub(crate) fields: Vec<(&'static str, String)>,
}

impl Layer {
    fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            fields: Vec::new(),
        }
    }

    fn field(&mut self, name: &'static str, value: impl Into<String>) {
        self.fields.push((name, value.into()));
    }

    #[cfg(test)]
    /// The value of a field, for tests and callers that pick one.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The layers of an Ethernet frame, down to the payload.
pub fn frame_layers(frame: &[u8]) -> Vec<Layer> {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return vec![raw(frame)];
    };
    let mut l = Layer::new("Ethernet");
    l.field("dst", eth.dst().to_string());
    l.field("src", eth.src().to_string());
    let ty = eth.ethertype();
    l.field(
        "type",
        match ty {
            ethernet::ETHERTYPE_IPV4 => "IPv4".to_string(),
            ethernet::ETHERTYPE_IPV6 => "IPv6".to_string(),
            ethernet::ETHERTYPE_ARP => "ARP".to_string(),
            ethernet::ETHERTYPE_VLAN => "802.1Q".to_string(),
            t => format!("{t:#x}"),
        },
    );
    let mut out = vec![l];
    let rest = &frame[ethernet::HEADER_LEN..];
    if ty == ethernet::ETHERTYPE_IPV4 {
        out.extend(ip_layers(rest, ""));
    } else if ty == ethernet::ETHERTYPE_IPV6 {
        out.extend(ipv6_layers(rest, ""));
    } else if !rest.is_empty() {
        out.push(raw(rest));
    }
    out
}

/// The layers of an IPv4 packet. `suffix` names quoted packets (" in ICMP").
pub(crate) fn ip_layers(b: &[u8], suffix: &str) -> Vec<Layer> {
    // A quoted packet is cut short by design: show what is there.
    let Some(hl) = b.first().map(|v| ((v & 0x0f) as usize) * 4) else {
        return vec![];
    };
    if b.len() < 20 || hl < 20 || b.len() < hl {
        return vec![raw(b)];
    }
    let mut l = Layer::new(format!("IP{suffix}"));
    let flags_frag = get_u16(b, 6);
    l.field("version", (b[0] >> 4).to_string());
    l.field("ihl", (hl / 4).to_string());
    l.field("tos", format!("{:#x}", b[1]));
    l.field("len", get_u16(b, 2).to_string());
    l.field("id", get_u16(b, 4).to_string());
    let mut flags = Vec::new();
    if flags_frag & 0x8000 != 0 {
        flags.push("evil");
    }
    if flags_frag & 0x4000 != 0 {
        flags.push("DF");
    }
    if flags_frag & 0x2000 != 0 {
        flags.push("MF");
    }
    l.field("flags", flags.join("+"));
    l.field("frag", (flags_frag & 0x1fff).to_string());
    l.field("ttl", b[8].to_string());
    l.field("proto", proto_name(b[9]));
    let valid = super::checksum::verify(super::checksum::sum(0, &b[..hl]));
    l.field(
        "chksum",
        checksum_text(get_u16(b, 10), valid || !suffix.is_empty()),
    );
    l.field("src", Ipv4Addr::from(get_u32(b, 12)).to_string());
    l.field("dst", Ipv4Addr::from(get_u32(b, 16)).to_string());
    l.field("options", format!("{:?}", HexBytes(&b[20..hl])));
    // A quoted header keeps its original length: read no further than what is here.
    let total = (get_u16(b, 2) as usize).clamp(hl, b.len());
    let payload = &b[hl..total];
    let mut out = vec![l];
    let src = IpAddr::V4(Ipv4Addr::from(get_u32(b, 12)));
    let dst = IpAddr::V4(Ipv4Addr::from(get_u32(b, 16)));
    if get_u16(b, 6) & 0x1fff != 0 {
        out.push(raw(payload));
        return out;
    }
    match b[9] {
        PROTO_TCP => out.extend(tcp_layers(payload, src, dst, suffix)),
        PROTO_UDP => out.extend(udp_layers(payload, src, dst, suffix)),
        PROTO_ICMP => out.extend(icmp_layers(payload, suffix)),
        _ if !payload.is_empty() => out.push(raw(payload)),
        _ => {}
    }
    out
}

/// The layers of an IPv6 packet, in Scapy's names. `suffix` is " in ICMPv6" for a quoted one.
pub(crate) fn ipv6_layers(b: &[u8], suffix: &str) -> Vec<Layer> {
    let Ok(ip) = Ipv6Packet::new_checked(b) else {
        return vec![raw(b)];
    };
    let mut l = Layer::new(format!("IPv6{suffix}"));
    l.field("version", "6");
    l.field("tc", ip.traffic_class().to_string());
    l.field("fl", ip.flow_label().to_string());
    l.field("plen", ip.payload_len().to_string());
    l.field("nh", next_header_name(ip.next_header()));
    l.field("hlim", ip.hop_limit().to_string());
    l.field("src", ip.src().to_string());
    l.field("dst", ip.dst().to_string());
    let (src, dst) = (IpAddr::V6(ip.src()), IpAddr::V6(ip.dst()));
    let payload = ip.payload();
    let mut out = vec![l];
    // Quotes are named as Scapy names them inside ICMPv6 ("TCP in ICMP").
    let inner = if suffix.is_empty() { "" } else { " in ICMP" };
    match ip.next_header() {
        PROTO_TCP => out.extend(tcp_layers(payload, src, dst, inner)),
        PROTO_UDP => out.extend(udp_layers(payload, src, dst, inner)),
        super::ipv6::NEXT_ICMPV6 => out.extend(icmpv6_layers(payload, src, dst, suffix)),
        _ if !payload.is_empty() => out.push(raw(payload)),
        _ => {}
    }
    out
}

/// Scapy's name of an IPv6 next-header value.
fn next_header_name(n: u8) -> String {
    match n {
        super::ipv6::NEXT_HOP_BY_HOP => "Hop-by-Hop Option Header".into(),
        PROTO_TCP => "TCP".into(),
        PROTO_UDP => "UDP".into(),
        super::ipv6::NEXT_ROUTING => "Routing Header".into(),
        super::ipv6::NEXT_FRAGMENT => "Fragment Header".into(),
        super::ipv6::NEXT_ICMPV6 => "ICMPv6".into(),
        super::ipv6::NEXT_NONE => "No Next Header".into(),
        super::ipv6::NEXT_DEST_OPTS => "Destination Option Header".into(),
        n => proto_name(n).to_uppercase(),
    }
}

/// An ICMPv6 message in Scapy's layer and field names.
fn icmpv6_layers(b: &[u8], src: IpAddr, dst: IpAddr, suffix: &str) -> Vec<Layer> {
    let Ok(m) = IcmpPacket::new_checked(b) else {
        return vec![raw(b)];
    };
    let (t, c) = (m.msg_type(), m.code());
    let (name, tname) = match t {
        icmpv6::TYPE_DEST_UNREACH => ("ICMPv6 Destination Unreachable", "Destination unreachable"),
        icmpv6::TYPE_PACKET_TOO_BIG => ("ICMPv6 Packet Too Big", "Packet too big"),
        icmpv6::TYPE_TIME_EXCEEDED => ("ICMPv6 Time Exceeded", "Time exceeded"),
        icmpv6::TYPE_PARAM_PROBLEM => ("ICMPv6 Parameter Problem", "Parameter problem"),
        icmpv6::TYPE_ECHO_REQUEST => ("ICMPv6 Echo Request", "Echo Request"),
        icmpv6::TYPE_ECHO_REPLY => ("ICMPv6 Echo Reply", "Echo Reply"),
        _ => ("ICMPv6", ""),
    };
    let mut l = Layer::new(format!("{name}{suffix}"));
    l.field(
        "type",
        if tname.is_empty() {
            t.to_string()
        } else {
            tname.to_string()
        },
    );
    let code = match (t, c) {
        (icmpv6::TYPE_DEST_UNREACH, 0) => "No route to destination".into(),
        (icmpv6::TYPE_DEST_UNREACH, 1) => {
            "Communication with destination administratively prohibited".into()
        }
        (icmpv6::TYPE_DEST_UNREACH, 2) => "Beyond scope of source address".into(),
        (icmpv6::TYPE_DEST_UNREACH, 3) => "Address unreachable".into(),
        (icmpv6::TYPE_DEST_UNREACH, 4) => "Port unreachable".into(),
        (icmpv6::TYPE_TIME_EXCEEDED, 0) => "hop limit exceeded in transit".into(),
        (icmpv6::TYPE_TIME_EXCEEDED, 1) => "fragment reassembly time exceeded".into(),
        (icmpv6::TYPE_PARAM_PROBLEM, 0) => "erroneous header field encountered".into(),
        (icmpv6::TYPE_PARAM_PROBLEM, 1) => "unrecognized Next Header type encountered".into(),
        (icmpv6::TYPE_PARAM_PROBLEM, 2) => "unrecognized IPv6 option encountered".into(),
        (_, c) => c.to_string(),
    };
    l.field("code", code);
    let valid = suffix.is_empty() && l4_checksum_ok(src, dst, super::ipv6::NEXT_ICMPV6, b);
    l.field(
        "cksum",
        checksum_text(m.checksum(), valid || !suffix.is_empty()),
    );
    let mut out = Vec::new();
    match t {
        icmpv6::TYPE_DEST_UNREACH | icmpv6::TYPE_TIME_EXCEEDED => {
            l.field("length", b[4].to_string());
            l.field("unused", format!("{:#x}", get_u32(b, 4) & 0x00ff_ffff));
        }
        icmpv6::TYPE_PACKET_TOO_BIG => l.field("mtu", get_u32(b, 4).to_string()),
        icmpv6::TYPE_PARAM_PROBLEM => l.field("ptr", get_u32(b, 4).to_string()),
        icmpv6::TYPE_ECHO_REQUEST | icmpv6::TYPE_ECHO_REPLY => {
            l.field("id", format!("{:#x}", m.echo_ident()));
            l.field("seq", format!("{:#x}", m.echo_seq()));
            l.field("data", py_str(m.payload()));
            return vec![l];
        }
        _ => {}
    }
    out.push(l);
    if icmpv6::is_error(t) && suffix.is_empty() {
        out.extend(ipv6_layers(m.payload(), " in ICMPv6"));
    } else if !m.payload().is_empty() {
        out.push(raw(m.payload()));
    }
    out
}

/// Does a TCP, UDP or ICMPv6 checksum over the pseudo header of (`src`, `dst`) verify?
fn l4_checksum_ok(src: IpAddr, dst: IpAddr, proto: u8, b: &[u8]) -> bool {
    let acc = super::checksum::pseudo_header_ip(src, dst, proto, b.len() as u32);
    super::checksum::verify(super::checksum::sum(acc, b))
}

fn tcp_layers(b: &[u8], src: IpAddr, dst: IpAddr, suffix: &str) -> Vec<Layer> {
    let mut l = Layer::new(format!("TCP{suffix}"));
    if b.len() < 20 {
        // ICMP errors may quote only the first 8 bytes.
        if b.len() >= 8 {
            l.field("sport", get_u16(b, 0).to_string());
            l.field("dport", get_u16(b, 2).to_string());
            l.field("seq", get_u32(b, 4).to_string());
            return vec![l];
        }
        return vec![raw(b)];
    }
    let Ok(s) = TcpSegment::new_checked(b) else {
        return vec![raw(b)];
    };
    l.field("sport", s.src_port().to_string());
    l.field("dport", s.dst_port().to_string());
    l.field("seq", s.seq().to_string());
    l.field("ack", s.ack().to_string());
    l.field("dataofs", (s.header_len() / 4).to_string());
    l.field("reserved", (b[12] & 0x0f).to_string());
    l.field("flags", tcp_flags(s.flags().0));
    l.field("window", s.window().to_string());
    let valid = suffix.is_empty() && l4_checksum_ok(src, dst, PROTO_TCP, b);
    l.field(
        "chksum",
        checksum_text(s.checksum(), valid || !suffix.is_empty()),
    );
    l.field("urgptr", s.urgent().to_string());
    l.field("options", tcp_options_scapy(s.options()));
    let mut out = vec![l];
    if !s.payload().is_empty() {
        out.push(raw(s.payload()));
    }
    out
}

fn udp_layers(b: &[u8], src: IpAddr, dst: IpAddr, suffix: &str) -> Vec<Layer> {
    let mut l = Layer::new(format!("UDP{suffix}"));
    let Ok(u) = UdpDatagram::new_checked(b) else {
        return vec![raw(b)];
    };
    l.field("sport", u.src_port().to_string());
    l.field("dport", u.dst_port().to_string());
    l.field("len", u.len().to_string());
    let mut ck = format!("{:#x}", u.checksum());
    if suffix.is_empty() && u.checksum() != 0 {
        let len = (u.len() as usize).clamp(8, b.len());
        if !l4_checksum_ok(src, dst, PROTO_UDP, &b[..len]) {
            ck.push_str(" (bad)");
        }
    }
    l.field("chksum", ck);
    let mut out = vec![l];
    if !u.payload().is_empty() {
        out.push(raw(u.payload()));
    }
    out
}

fn icmp_layers(b: &[u8], suffix: &str) -> Vec<Layer> {
    let Ok(m) = IcmpPacket::new_checked(b) else {
        return vec![raw(b)];
    };
    let mut l = Layer::new(format!("ICMP{suffix}"));
    l.field("type", icmp_type_name(Family::V4, m.msg_type()));
    l.field("code", icmp_code_name(Family::V4, m.msg_type(), m.code()));
    let valid = suffix.is_empty() && m.verify_checksum();
    l.field(
        "chksum",
        checksum_text(m.checksum(), valid || !suffix.is_empty()),
    );
    let mut out = Vec::new();
    if m.is_error() {
        // Scapy's names for the second word of an error (RFC 4884 length, RFC 1191 MTU).
        l.field("reserved", b[4].to_string());
        l.field("length", b[5].to_string());
        l.field("nexthopmtu", get_u16(b, 6).to_string());
        out.push(l);
        if suffix.is_empty() {
            out.extend(ip_layers(m.payload(), " in ICMP"));
        } else if !m.payload().is_empty() {
            out.push(raw(m.payload()));
        }
    } else {
        l.field("id", format!("{:#x}", m.echo_ident()));
        l.field("seq", format!("{:#x}", m.echo_seq()));
        out.push(l);
        if !m.payload().is_empty() {
            out.push(raw(m.payload()));
        }
    }
    out
}

/// A checksum as Scapy prints it (unpadded hex), marked when it does not verify. Quoted
/// headers are never marked: a quote is cut short, so its checksum cannot be checked.
fn checksum_text(value: u16, ok: bool) -> String {
    format!("{value:#x}{}", if ok { "" } else { " (bad)" })
}

fn raw(b: &[u8]) -> Layer {
    let mut l = Layer::new("Raw");
    l.field("load", py_bytes(b));
    l
}

/// Prints layers as Scapy's `show()` does: a banner per layer, its fields indented three more
/// columns per layer. Ports stay numbers (Scapy would name the well-known ones).
pub fn show(layers: &[Layer]) -> String {
    let mut s = String::new();
    for (depth, l) in layers.iter().enumerate() {
        let pad = " ".repeat(2 + depth * 3);
        let _ = writeln!(s, "###[ {} ]###", l.name);
        for (name, value) in &l.fields {
            let _ = writeln!(s, "{pad}{name:<10}= {value}");
        }
    }
    s
}

/// Scapy's `hexdump()`: offset, 16 bytes in hex, the printable ones as text.
pub fn hexdump(b: &[u8]) -> String {
    let mut s = String::new();
    for (i, chunk) in b.chunks(16).enumerate() {
        let _ = write!(s, "{:04x}  ", i * 16);
        for j in 0..16 {
            match chunk.get(j) {
                Some(v) => {
                    let _ = write!(s, "{v:02X} ");
                }
                None => s.push_str("   "),
            }
        }
        s.push(' ');
        s.extend(chunk.iter().map(|&c| {
            if (0x20..0x7f).contains(&c) {
                c as char
            } else {
                '.'
            }
        }));
        s.push('\n');
    }
    s
}

/// nmap's `--packet-trace` line for an Ethernet frame, without the SENT/RCVD prefix:
/// `TCP 198.18.0.1:61000 > 198.19.0.5:80 S ttl=64 id=1 iplen=44 seq=... win=1024 <mss 1460>`;
/// over IPv6, as `nmap -6` writes it, addresses in brackets and the IPv6 header's fields:
/// `TCP [2001:db8::1]:61000 > [2001:db8:1::5]:80 S hlim=64 tclass=0 flow=74565 payloadlen=24 ...`.
pub fn summary(frame: &[u8]) -> String {
    match EthernetFrame::new_checked(frame) {
        Ok(eth)
            if eth.ethertype() == ethernet::ETHERTYPE_IPV4
                || eth.ethertype() == ethernet::ETHERTYPE_IPV6 =>
        {
            ip_summary(&frame[ethernet::HEADER_LEN..])
        }
        Ok(eth) => format!(
            "{} > {} ethertype {:#06x} len={}",
            eth.src(),
            eth.dst(),
            eth.ethertype(),
            frame.len()
        ),
        Err(_) => format!("runt frame len={}", frame.len()),
    }
}

/// An address as nmap prints it before a port: IPv6 in brackets.
fn host_port(a: IpAddr, port: u16) -> String {
    match a {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// The same for an IP packet of either family.
pub fn ip_summary(b: &[u8]) -> String {
    let Ok(ip) = IpPacket::parse(b) else {
        return format!("malformed IP len={}", b.len());
    };
    let (src, dst) = (ip.src(), ip.dst());
    let ipf = match ip.family() {
        Family::V4 => {
            let v4 = Ipv4Packet::new_checked(b).expect("parsed as IPv4");
            format!(
                "ttl={} id={} iplen={}",
                v4.ttl(),
                v4.ident(),
                v4.total_len()
            )
        }
        Family::V6 => {
            let v6 = Ipv6Packet::new_checked(b).expect("parsed as IPv6");
            format!(
                "hlim={} tclass={} flow={} payloadlen={}",
                v6.hop_limit(),
                v6.traffic_class(),
                v6.flow_label(),
                v6.payload_len()
            )
        }
    };
    let p = ip.payload();
    if ip.is_later_fragment() {
        return format!(
            "{} {src} > {dst} fragment {ipf}",
            proto_name(ip.protocol()).to_uppercase()
        );
    }
    if let Some(m) = ip.icmp() {
        let tag = if m.family == Family::V6 {
            "ICMPv6"
        } else {
            "ICMP"
        };
        let what = if m.is_error() {
            let about = m
                .quoted()
                .map(|q| format!(" for {}", ip_summary_short(&q)))
                .unwrap_or_default();
            format!(
                "{} (type={}/code={}){about}",
                icmp_code_name(m.family, m.msg_type, m.code),
                m.msg_type,
                m.code
            )
        } else {
            format!(
                "{} (type={}/code={}) id={} seq={}",
                icmp_type_name(m.family, m.msg_type),
                m.msg_type,
                m.code,
                m.ident,
                m.seq
            )
        };
        return format!("{tag} [{src} > {dst} {what}] IP [{ipf}]");
    }
    match ip.protocol() {
        PROTO_TCP => match TcpSegment::new_checked(p) {
            Ok(s) => tcp_line(src, dst, &s, &ipf),
            Err(_) => format!("TCP {src} > {dst} truncated {ipf}"),
        },
        super::sctp::PROTO_SCTP => match super::sctp::SctpHeader::parse(p) {
            Some(h) => format!(
                "SCTP {} > {} {ipf}",
                host_port(src, h.src_port),
                host_port(dst, h.dst_port)
            ),
            None => format!("SCTP {src} > {dst} truncated {ipf}"),
        },
        PROTO_UDP => match UdpDatagram::new_checked(p) {
            Ok(u) => format!(
                "UDP {} > {} {ipf}",
                host_port(src, u.src_port()),
                host_port(dst, u.dst_port())
            ),
            Err(_) => format!("UDP {src} > {dst} truncated {ipf}"),
        },
        n if n == ip.family().icmp_proto() => {
            format!("ICMP {src} > {dst} truncated {ipf}")
        }
        n => format!("{} {src} > {dst} {ipf}", proto_name(n).to_uppercase()),
    }
}

/// A TCP segment as nmap's packet trace writes it.
fn tcp_line(src: IpAddr, dst: IpAddr, s: &TcpSegment<&[u8]>, ipf: &str) -> String {
    let mut line = format!(
        "TCP {} > {} {} {ipf}  seq={}",
        host_port(src, s.src_port()),
        host_port(dst, s.dst_port()),
        tcp_flags(s.flags().0),
        s.seq()
    );
    if s.flags().has(super::TcpFlags::ACK) {
        let _ = write!(line, " ack={}", s.ack());
    }
    let _ = write!(line, " win={}", s.window());
    let opts = tcp_options_nmap(s.options());
    if !opts.is_empty() {
        let _ = write!(line, " <{opts}>");
    }
    if !s.payload().is_empty() {
        let _ = write!(line, " data={}", s.payload().len());
    }
    line
}

/// A quoted packet in a few words: `TCP 198.18.0.1:61000 > 198.19.0.5:80`.
fn ip_summary_short(q: &IpPacket) -> String {
    let (src, dst) = (q.src(), q.dst());
    let p = q.payload();
    match q.protocol() {
        PROTO_TCP | PROTO_UDP if p.len() >= 4 => format!(
            "{} {} > {}",
            proto_name(q.protocol()).to_uppercase(),
            host_port(src, get_u16(p, 0)),
            host_port(dst, get_u16(p, 2))
        ),
        n => format!("{} {src} > {dst}", proto_name(n).to_uppercase()),
    }
}

/// TCP flags in Scapy's order and letters (`S`, `SA`, `RA`, `FPU`).
pub(crate) fn tcp_flags(f: u8) -> String {
    const ORDER: [(u8, char); 8] = [
        (0x01, 'F'),
        (0x02, 'S'),
        (0x04, 'R'),
        (0x08, 'P'),
        (0x10, 'A'),
        (0x20, 'U'),
        (0x40, 'E'),
        (0x80, 'C'),
    ];
    ORDER
        .iter()
        .filter(|(b, _)| f & b != 0)
        .map(|(_, c)| *c)
        .collect()
}

/// A decoded TCP option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TcpOption {
    Eol,
    Nop,
    Mss(u16),
    WScale(u8),
    SackOk,
    Sack(Vec<(u32, u32)>),
    Timestamp(u32, u32),
    Other(u8, Vec<u8>),
}

/// Decodes TCP options; a truncated or lying option ends the list with its raw bytes.
pub fn tcp_options(mut b: &[u8]) -> Vec<TcpOption> {
    let mut out = Vec::new();
    while let Some(&kind) = b.first() {
        match kind {
            0 => {
                out.push(TcpOption::Eol);
                break;
            }
            1 => {
                out.push(TcpOption::Nop);
                b = &b[1..];
                continue;
            }
            _ => {}
        }
        let len = b.get(1).copied().unwrap_or(0) as usize;
        if len < 2 || len > b.len() {
            out.push(TcpOption::Other(kind, b[1.min(b.len())..].to_vec()));
            break;
        }
        let v = &b[2..len];
        out.push(match (kind, len) {
            (2, 4) => TcpOption::Mss(get_u16(v, 0)),
            (3, 3) => TcpOption::WScale(v[0]),
            (4, 2) => TcpOption::SackOk,
            (5, _) if v.len().is_multiple_of(8) => TcpOption::Sack(
                v.chunks(8)
                    .map(|c| (get_u32(c, 0), get_u32(c, 4)))
                    .collect(),
            ),
            (8, 10) => TcpOption::Timestamp(get_u32(v, 0), get_u32(v, 4)),
            _ => TcpOption::Other(kind, v.to_vec()),
        });
        b = &b[len..];
    }
    out
}

/// Scapy's rendering: `[('MSS', 1460), ('NOP', None), ('WScale', 7)]`.
fn tcp_options_scapy(b: &[u8]) -> String {
    let items: Vec<String> = tcp_options(b)
        .into_iter()
        .map(|o| match o {
            TcpOption::Eol => "('EOL', None)".into(),
            TcpOption::Nop => "('NOP', None)".into(),
            TcpOption::Mss(v) => format!("('MSS', {v})"),
            TcpOption::WScale(v) => format!("('WScale', {v})"),
            TcpOption::SackOk => "('SAckOK', b'')".into(),
            TcpOption::Sack(v) => format!("('SAck', {v:?})"),
            TcpOption::Timestamp(a, e) => format!("('Timestamp', ({a}, {e}))"),
            TcpOption::Other(k, v) => format!("({k}, {})", py_bytes(&v)),
        })
        .collect();
    format!("[{}]", items.join(", "))
}

/// nmap's rendering: `mss 1460,sackOK,TS 1 0,nop,wscale 7`.
fn tcp_options_nmap(b: &[u8]) -> String {
    let items: Vec<String> = tcp_options(b)
        .into_iter()
        .map(|o| match o {
            TcpOption::Eol => "eol".into(),
            TcpOption::Nop => "nop".into(),
            TcpOption::Mss(v) => format!("mss {v}"),
            TcpOption::WScale(v) => format!("wscale {v}"),
            TcpOption::SackOk => "sackOK".into(),
            TcpOption::Sack(v) => format!("sack {}", v.len()),
            TcpOption::Timestamp(a, e) => format!("TS val {a} ecr {e}"),
            TcpOption::Other(k, _) => format!("opt{k}"),
        })
        .collect();
    items.join(",")
}

pub(crate) fn proto_name(p: u8) -> String {
    match p {
        PROTO_ICMP => "icmp".into(),
        2 => "igmp".into(),
        4 => "ipencap".into(),
        PROTO_TCP => "tcp".into(),
        PROTO_UDP => "udp".into(),
        41 => "ipv6".into(),
        47 => "gre".into(),
        50 => "esp".into(),
        51 => "ah".into(),
        132 => "sctp".into(),
        n => n.to_string(),
    }
}

fn icmp_type_name(family: Family, t: u8) -> String {
    if family == Family::V6 {
        return match t {
            icmpv6::TYPE_DEST_UNREACH => "dest-unreach".into(),
            icmpv6::TYPE_PACKET_TOO_BIG => "packet-too-big".into(),
            icmpv6::TYPE_TIME_EXCEEDED => "time-exceeded".into(),
            icmpv6::TYPE_PARAM_PROBLEM => "parameter-problem".into(),
            icmpv6::TYPE_ECHO_REQUEST => "echo-request".into(),
            icmpv6::TYPE_ECHO_REPLY => "echo-reply".into(),
            icmpv6::TYPE_ROUTER_SOLICIT => "router-solicitation".into(),
            icmpv6::TYPE_ROUTER_ADVERT => "router-advertisement".into(),
            icmpv6::TYPE_NEIGHBOR_SOLICIT => "neighbor-solicitation".into(),
            icmpv6::TYPE_NEIGHBOR_ADVERT => "neighbor-advertisement".into(),
            n => n.to_string(),
        };
    }
    match t {
        icmp::TYPE_ECHO_REPLY => "echo-reply".into(),
        icmp::TYPE_DEST_UNREACH => "dest-unreach".into(),
        icmp::TYPE_SOURCE_QUENCH => "source-quench".into(),
        icmp::TYPE_REDIRECT => "redirect".into(),
        icmp::TYPE_ECHO_REQUEST => "echo-request".into(),
        icmp::TYPE_TIME_EXCEEDED => "time-exceeded".into(),
        icmp::TYPE_PARAM_PROBLEM => "parameter-problem".into(),
        13 => "timestamp-request".into(),
        14 => "timestamp-reply".into(),
        n => n.to_string(),
    }
}

fn icmp_code_name(family: Family, t: u8, c: u8) -> String {
    if family == Family::V6 {
        use icmpv6::unreach as u;
        return match (t, c) {
            (icmpv6::TYPE_DEST_UNREACH, u::NO_ROUTE) => "no-route".into(),
            (icmpv6::TYPE_DEST_UNREACH, u::ADMIN_PROHIBITED) => "communication-prohibited".into(),
            (icmpv6::TYPE_DEST_UNREACH, u::BEYOND_SCOPE) => "beyond-scope".into(),
            (icmpv6::TYPE_DEST_UNREACH, u::ADDRESS) => "address-unreachable".into(),
            (icmpv6::TYPE_DEST_UNREACH, u::PORT) => "port-unreachable".into(),
            (icmpv6::TYPE_DEST_UNREACH, u::SOURCE_POLICY) => "source-policy-failed".into(),
            (icmpv6::TYPE_DEST_UNREACH, u::REJECT_ROUTE) => "reject-route".into(),
            (icmpv6::TYPE_TIME_EXCEEDED, 0) => "hop-limit-exceeded".into(),
            (icmpv6::TYPE_PARAM_PROBLEM, 1) => "unrecognized-next-header".into(),
            (_, c) => c.to_string(),
        };
    }
    use icmp::unreach as u;
    match (t, c) {
        (icmp::TYPE_DEST_UNREACH, u::NET) => "network-unreachable".into(),
        (icmp::TYPE_DEST_UNREACH, u::HOST) => "host-unreachable".into(),
        (icmp::TYPE_DEST_UNREACH, u::PROTOCOL) => "protocol-unreachable".into(),
        (icmp::TYPE_DEST_UNREACH, u::PORT) => "port-unreachable".into(),
        (icmp::TYPE_DEST_UNREACH, u::FRAG_NEEDED) => "fragmentation-needed".into(),
        (icmp::TYPE_DEST_UNREACH, u::NET_PROHIBITED) => "network-prohibited".into(),
        (icmp::TYPE_DEST_UNREACH, u::HOST_PROHIBITED) => "host-prohibited".into(),
        (icmp::TYPE_DEST_UNREACH, u::ADMIN_PROHIBITED) => "communication-prohibited".into(),
        (icmp::TYPE_TIME_EXCEEDED, 0) => "ttl-zero-during-transit".into(),
        (icmp::TYPE_TIME_EXCEEDED, 1) => "ttl-zero-during-reassembly".into(),
        (_, c) => c.to_string(),
    }
}

/// Python's str literal of bytes (`'ab'`), as Scapy prints ICMPv6 echo data.
pub(crate) fn py_str(b: &[u8]) -> String {
    py_bytes(b)[1..].to_string()
}

/// Python's bytes literal (`b'GET / HTTP/1.0\r\n'`), as Scapy prints a load.
pub(crate) fn py_bytes(b: &[u8]) -> String {
    let mut s = String::from("b'");
    for &c in b {
        match c {
            b'\\' => s.push_str("\\\\"),
            b'\'' => s.push_str("\\'"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            0x20..=0x7e => s.push(c as char),
            _ => {
                let _ = write!(s, "\\x{c:02x}");
            }
        }
    }
    s.push('\'');
    s
}

struct HexBytes<'a>(&'a [u8]);

impl std::fmt::Debug for HexBytes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return f.write_str("[]");
        }
        f.write_str(&py_bytes(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A SYN-ACK as Linux 6.x sends it: 198.19.0.5:80 -> 198.18.0.1:61234, captured in the lab.
    const SYNACK: [u8; 58] = [
        0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00, // Ethernet
        0x45, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0x1b, 0x77, 198, 19, 0, 5, 198,
        18, 0, 1, // IPv4
        0x00, 0x50, 0xef, 0x32, 0x5b, 0x1a, 0x2c, 0x3d, 0x12, 0x34, 0x56, 0x79, 0x60, 0x12, 0xfa,
        0xf0, 0x00, 0x00, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, // TCP + MSS
    ];

    fn fixed(mut f: Vec<u8>) -> Vec<u8> {
        let mut ip = Ipv4Packet::new_checked(&mut f[14..]).unwrap();
        ip.fill_checksum();
        let mut t = TcpSegment::new_checked(&mut f[34..]).unwrap();
        t.fill_checksum(0xc613_0005, 0xc612_0001);
        f
    }

    #[test]
    fn syn_ack_every_layer() {
        let f = fixed(SYNACK.to_vec());
        let l = frame_layers(&f);
        let names: Vec<&str> = l.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["Ethernet", "IP", "TCP"]);
        assert_eq!(l[0].get("type"), Some("IPv4"));
        assert_eq!(l[1].get("flags"), Some("DF"));
        assert_eq!(l[1].get("proto"), Some("tcp"));
        assert_eq!(l[1].get("src"), Some("198.19.0.5"));
        assert!(!l[1].get("chksum").unwrap().contains("bad"));
        assert_eq!(l[2].get("flags"), Some("SA"));
        assert_eq!(l[2].get("seq"), Some("1528441917"));
        assert_eq!(l[2].get("options"), Some("[('MSS', 1460)]"));
        assert!(!l[2].get("chksum").unwrap().contains("bad"));
        let text = show(&l);
        assert!(text.starts_with("###[ Ethernet ]###\n  dst       = 02:00:00:00:00:01\n"));
        assert!(text.contains("\n###[ TCP ]###\n        sport     = 80\n"));
        assert_eq!(
            summary(&f),
            "TCP 198.19.0.5:80 > 198.18.0.1:61234 SA ttl=64 id=0 iplen=44  seq=1528441917 ack=305419897 win=64240 <mss 1460>"
        );
    }

    /// Scapy prints hex fields unpadded (`hex(x)`): a checksum of 0x0f97 is `0xf97`.
    #[test]
    fn hex_fields_are_unpadded_as_in_scapy() {
        // The IP id moves only the IP checksum, the window only the TCP one.
        let with = |at: usize, v: u16, f: &[u8]| {
            let mut f = f.to_vec();
            f[at..at + 2].copy_from_slice(&v.to_be_bytes());
            fixed(f)
        };
        let small = |at: usize, ck: usize, f: &[u8]| {
            (0..=u16::MAX)
                .map(|v| with(at, v, f))
                .find(|f| get_u16(f, ck) < 0x1000)
                .expect("some value gives the checksum a leading zero nibble")
        };
        let small = small(48, 50, &small(18, 24, &SYNACK));
        let l = frame_layers(&small);
        for (layer, at) in [(1, 24), (2, 50)] {
            assert_eq!(
                l[layer].get("chksum"),
                Some(format!("0x{:x}", get_u16(&small, at)).as_str())
            );
        }
        let mut other = SYNACK.to_vec();
        other[12..14].copy_from_slice(&[0x08, 0x42]);
        assert_eq!(frame_layers(&other)[0].get("type"), Some("0x842"));
    }

    #[test]
    fn bad_checksums_are_marked() {
        let f = SYNACK.to_vec(); // checksums left as captured-then-edited: wrong
        let l = frame_layers(&f);
        assert!(l[1].get("chksum").unwrap().ends_with("(bad)"));
        assert!(l[2].get("chksum").unwrap().ends_with("(bad)"));
    }

    #[test]
    fn icmp_error_shows_the_quoted_packet() {
        // Host unreachable from 198.19.2.1 quoting a SYN 198.18.0.1:61000 -> 198.19.2.5:22.
        let mut quoted = vec![
            0x45, 0, 0, 40, 0x12, 0x34, 0, 0, 64, 6, 0, 0, 198, 18, 0, 1, 198, 19, 2, 5,
        ];
        quoted.extend([0xee, 0x48, 0, 22, 0xde, 0xad, 0xbe, 0xef]);
        let mut pkt = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0, 198, 19, 2, 1, 198, 18, 0, 1, 3, 1, 0, 0, 0, 0,
            0, 0,
        ];
        pkt.extend(&quoted);
        let n = pkt.len() as u16;
        pkt[2..4].copy_from_slice(&n.to_be_bytes());
        let l = ip_layers(&pkt, "");
        let names: Vec<&str> = l.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["IP", "ICMP", "IP in ICMP", "TCP in ICMP"]);
        assert_eq!(l[1].get("type"), Some("dest-unreach"));
        assert_eq!(l[1].get("code"), Some("host-unreachable"));
        assert_eq!(l[3].get("dport"), Some("22"));
        assert_eq!(l[3].get("seq"), Some("3735928559"));
        assert_eq!(
            ip_summary(&pkt),
            "ICMP [198.19.2.1 > 198.18.0.1 host-unreachable (type=3/code=1) for TCP 198.18.0.1:61000 > 198.19.2.5:22] IP [ttl=64 id=0 iplen=56]"
        );
    }

    #[test]
    fn options_and_payload() {
        let opts = [
            2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
        ];
        assert_eq!(
            tcp_options(&opts),
            vec![
                TcpOption::Mss(1460),
                TcpOption::SackOk,
                TcpOption::Timestamp(1, 0),
                TcpOption::Nop,
                TcpOption::WScale(7)
            ]
        );
        assert_eq!(
            tcp_options_nmap(&opts),
            "mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7"
        );
        // A lying length ends the list instead of reading past it.
        assert_eq!(
            tcp_options(&[2, 9, 1]),
            vec![TcpOption::Other(2, vec![9, 1])]
        );
        assert_eq!(py_bytes(b"SSH-2.0\r\n\x00'"), "b'SSH-2.0\\r\\n\\x00\\''");
        assert_eq!(tcp_flags(0x29), "FPU");
    }

    #[test]
    fn hexdump_matches_scapy() {
        assert_eq!(
            hexdump(b"GET / HTTP/1.0\r\n\r\nxyz"),
            "0000  47 45 54 20 2F 20 48 54 54 50 2F 31 2E 30 0D 0A  GET / HTTP/1.0..\n\
             0010  0D 0A 78 79 7A                                   ..xyz\n"
        );
    }
}
