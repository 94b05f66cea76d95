//! `xdpscan probe`: one crafted packet to one target over the scan's own data path (AF_XDP with
//! our steering program, or AF_PACKET), and its answer shown whole: a one-line summary, every
//! layer with every field named (Scapy's `show()`), and a hexdump. What Scapy users do by hand
//! with `sr1(IP(dst=...)/TCP(...)).show()`.

use std::{
    io::Write,
    net::IpAddr,
    time::{Duration, Instant},
};

use crate::{
    cli::{ProbeCli, ProbeProto, TransportChoice, XdpModeChoice},
    config::{resolve_net, NetAsk, NetSetup, DEFAULT_SOURCE_PORTS},
    cookie::random_bytes,
    io::{netinfo::Link, packet, privilege, xdp, IoError, RxQueue, TxQueue},
    tool_error::ToolError,
    wire::{
        checksum, dissect,
        ethernet::HEADER_LEN,
        icmp, icmpv6, put_u16,
        repr::{IcmpRepr, L4Repr, TcpRepr, UdpRepr},
        tcp,
        template::{FrameParams, FrameTemplate},
        Family, IpPacket, Ipv4Packet, Ipv6Packet, PROTO_TCP, PROTO_UDP,
    },
};

/// How a probe run ended, for the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeOutcome {
    Answered,
    NoAnswer,
}

/// A probe's errors: a packet that cannot be built as asked is `Usage` (exit status 2).
pub type ProbeError = ToolError;

/// The ICMP type `p` asks for: `--icmp-type`, else an echo request of the target's family.
fn icmp_type(p: &ProbeCli) -> u8 {
    p.icmp_type.unwrap_or(match p.target {
        IpAddr::V4(_) => icmp::TYPE_ECHO_REQUEST,
        IpAddr::V6(_) => icmpv6::TYPE_ECHO_REQUEST,
    })
}

/// The packet `p` describes, as an Ethernet frame, plus the source port (or ICMP id) it uses.
/// Either family: the target's decides, and the L4 checksum comes from the frame template
/// (over the pseudo header where the family's checksum covers one).
pub(crate) fn build(
    p: &ProbeCli,
    net: &NetSetup,
    rand: [u8; 8],
) -> Result<(Vec<u8>, u16), ProbeError> {
    let r16 = |i: usize| u16::from_be_bytes([rand[i], rand[i + 1]]);
    let sport = p
        .sport
        .unwrap_or_else(|| DEFAULT_SOURCE_PORTS.lo + r16(0) % DEFAULT_SOURCE_PORTS.len() as u16);
    let payload = payload(p, &rand)?;
    let family = Family::of(&p.target);
    let src = net
        .family(family == Family::V6)
        .map(|f| f.src)
        .ok_or_else(|| ProbeError::Usage(format!("no source address for {}", p.target)))?;
    if family == Family::V6 && p.df {
        return Err(ProbeError::Usage(
            "--df: IPv6 has no don't-fragment bit (routers never fragment IPv6)".into(),
        ));
    }
    let opts = tcp_options(p);
    if p.proto == ProbeProto::Tcp && opts.len() > 40 {
        return Err(ProbeError::Usage(format!(
            "TCP options take {} bytes; a TCP header holds at most 40",
            opts.len()
        )));
    }
    // Timestamp and address-mask requests carry their fixed body unless given one.
    let body = match (p.proto, family, icmp_type(p), payload.is_empty()) {
        (ProbeProto::Icmp, Family::V4, 13, true) => vec![0u8; 12],
        (ProbeProto::Icmp, Family::V4, 17, true) => vec![0u8; 4],
        _ => payload,
    };
    // The L4 header and payload (checksum zero), and where its checksum goes.
    let (l4, ck_at) = match p.proto {
        ProbeProto::Tcp => (
            L4Repr::Tcp(TcpRepr {
                src_port: sport,
                dst_port: p.dport.unwrap_or(80),
                seq: p
                    .seq
                    .unwrap_or(u32::from_be_bytes([rand[2], rand[3], rand[4], rand[5]])),
                ack: p.ack,
                flags: crate::wire::TcpFlags(p.flags),
                window: p.window,
                urgent: 0,
                options: &opts,
                payload: &body,
            }),
            tcp::CHECKSUM_OFFSET,
        ),
        ProbeProto::Udp => (
            L4Repr::Udp(UdpRepr {
                src_port: sport,
                dst_port: p.dport.unwrap_or(53),
                payload: &body,
            }),
            6,
        ),
        ProbeProto::Icmp => (
            L4Repr::Icmp(IcmpRepr {
                msg_type: icmp_type(p),
                code: p.icmp_code,
                ident: sport,
                seq: p.icmp_seq,
                data: &body,
            }),
            2,
        ),
    };
    let params = FrameParams {
        src_mac: net.src_mac,
        dst_mac: net
            .family(family == Family::V6)
            .map_or(net.gateway_mac(), |f| f.gateway_mac),
        src,
        ttl: p.ttl,
    };
    let ip_header = match family {
        Family::V4 => 20,
        Family::V6 => 40,
    };
    if HEADER_LEN + ip_header + l4.len() > 1514 {
        return Err(ProbeError::Usage(format!(
            "the packet would be {} bytes; one Ethernet frame holds 1500 of IP",
            ip_header + l4.len()
        )));
    }
    let ip_id = p.ip_id.unwrap_or(r16(6)) as u32;
    Ok((frame_of(p, &params, &l4, ck_at, ip_id), sport))
}

/// The frame of `l4` to the target, its checksum at `ck_at`, with the IP fields a template has
/// none of (TOS or traffic class, DF).
fn frame_of(p: &ProbeCli, params: &FrameParams, l4: &L4Repr, ck_at: usize, ip_id: u32) -> Vec<u8> {
    let tpl = FrameTemplate::new(params, l4);
    let mut frame = vec![0u8; tpl.len()];
    tpl.stamp(&mut frame, p.target, ip_id);
    let mut ck = checksum::finish(tpl.l4_sum() + tpl.dst_sum(p.target));
    if p.proto == ProbeProto::Udp && ck == 0 {
        ck = 0xffff; // zero means "no checksum" in UDP
    }
    put_u16(&mut frame, tpl.l4_offset() + ck_at, ck);
    // TOS (traffic class) and DF are not template fields: set them, and redo IPv4's checksum.
    match Family::of(&p.target) {
        Family::V4 => {
            let mut ip = Ipv4Packet::new_checked(&mut frame[HEADER_LEN..]).expect("we built it");
            ip.set_tos(p.tos);
            ip.set_dont_frag(p.df);
            ip.fill_checksum();
        }
        Family::V6 => {
            Ipv6Packet::new_checked(&mut frame[HEADER_LEN..])
                .expect("we built it")
                .set_traffic_class(p.tos);
        }
    }
    frame
}

fn payload(p: &ProbeCli, rand: &[u8; 8]) -> Result<Vec<u8>, ProbeError> {
    if let Some(d) = &p.data {
        return Ok(d.0.clone());
    }
    if let Some(s) = &p.data_string {
        return Ok(crate::service::probes::unescape(s));
    }
    if let Some(n) = p.data_length {
        // Deterministic filler from the run's random bytes: nmap's --data-length is random too.
        return Ok((0..n as usize)
            .map(|i| rand[i % 8].wrapping_mul(i as u8 | 1))
            .collect());
    }
    Ok(Vec::new())
}

/// The options asked for, padded with EOL to a multiple of 4; MSS 1460 on a bare SYN, as nmap.
fn tcp_options(p: &ProbeCli) -> Vec<u8> {
    let mut o: Vec<u8> = if p.tcp_options.is_empty() && p.flags & crate::wire::TcpFlags::SYN != 0 {
        crate::probe::tcp::MSS_OPTION.to_vec()
    } else {
        p.tcp_options
            .iter()
            .flat_map(|o| o.0.iter().copied())
            .collect()
    };
    while !o.len().is_multiple_of(4) {
        o.push(0);
    }
    o
}

/// Does `reply` answer the packet `sent` (either family)? The target's own reply (ports or
/// ICMP id mirrored), or an ICMP error from anyone quoting `sent`.
pub(crate) fn answers(sent: &IpPacket, reply: &IpPacket) -> bool {
    if reply.dst() != sent.src() || reply.family() != sent.family() {
        return false;
    }
    let (s4, r4) = (sent.payload(), reply.payload());
    if let Some(m) = reply.icmp() {
        if let Some(q) = m.quoted() {
            let ql4 = q.payload();
            return q.src() == sent.src()
                && q.dst() == sent.dst()
                && q.protocol() == sent.protocol()
                && ql4.len() >= 8
                && s4.len() >= 8
                && ql4[..8] == s4[..8];
        }
        if let (Some(s), true) = (sent.icmp(), reply.src() == sent.dst()) {
            return reply_type(s.family, s.msg_type) == Some(m.msg_type)
                && m.ident == s.ident
                && m.seq == s.seq;
        }
        return false;
    }
    reply.src() == sent.dst()
        && reply.protocol() == sent.protocol()
        && matches!(sent.protocol(), PROTO_TCP | PROTO_UDP)
        && s4.len() >= 4
        && r4.len() >= 4
        && r4[0..2] == s4[2..4]
        && r4[2..4] == s4[0..2]
}

/// The reply type of an ICMP query: echo, timestamp, information, address mask; ICMPv6 echo.
fn reply_type(family: Family, request: u8) -> Option<u8> {
    match (family, request) {
        (Family::V4, icmp::TYPE_ECHO_REQUEST) => Some(icmp::TYPE_ECHO_REPLY),
        (Family::V4, 13 | 15 | 17) => Some(request + 1),
        (Family::V6, icmpv6::TYPE_ECHO_REQUEST) => Some(icmpv6::TYPE_ECHO_REPLY),
        _ => None,
    }
}

/// What the XDP program steers for the one probe from `sport`: any answer to it.
fn steer_for(net: &NetSetup, sport: u16) -> xdp::SteerConfig {
    xdp::SteerConfig {
        src_v4: match net.src_ip() {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        },
        src_v6: match net.src_ip() {
            IpAddr::V6(a) => Some(a),
            IpAddr::V4(_) => None,
        },
        port_lo: sport,
        port_hi: sport,
        replies: crate::probe::Replies {
            icmp_queries: true,
            any_quoted: true,
            ..Default::default()
        },
        sources: 1,
        bare_ip: net.link != Link::Ethernet,
    }
}

/// Sends the packet and prints it and its answer to `out`.
pub fn run(p: &ProbeCli, out: &mut dyn Write) -> Result<ProbeOutcome, ProbeError> {
    let ask = NetAsk {
        interface: p.interface.clone(),
        source_ip: p.source_ip,
        gateway_mac: p.gateway_mac,
        dry_run: false,
    };
    let run_as =
        privilege::resolve(p.user.as_deref()).map_err(|e| ProbeError::Usage(e.to_string()))?;
    let net = resolve_net(&ask, &[p.target])?;
    let rand = random_bytes::<8>().map_err(|e| IoError::os("reading /dev/urandom", e))?;
    let (frame, sport) = build(p, &net, rand)?;
    let steer = steer_for(&net, sport);
    let mode = match p.xdp_mode {
        XdpModeChoice::Auto => xdp::XdpMode::Auto,
        XdpModeChoice::Native => xdp::XdpMode::Native,
        XdpModeChoice::Generic => xdp::XdpMode::Generic,
    };
    let timeout = Duration::from_secs_f64(p.timeout);
    let xdp = match p.transport {
        TransportChoice::Packet => None,
        TransportChoice::Xdp => Some(xdp::open(&net.ifname, net.ifindex, steer, mode)?),
        TransportChoice::Auto => match xdp::open(&net.ifname, net.ifindex, steer, mode) {
            Ok(t) => Some(t),
            // AF_PACKET needs the same privileges.
            Err(e) if e.is_permission() => return Err(e.into()),
            Err(_) => None,
        },
    };
    // Sockets open, program attached: the rest runs as `--user` (`io::privilege`).
    let reply = match xdp {
        // A bare-IP link that needs each packet's protocol: sent through AF_PACKET.
        Some(mut t) if net.link.sends_through_packet() => {
            let mut tx = packet::open_tx(net.ifindex, net.link)?;
            privilege::drop_to(run_as.as_ref(), &[])?;
            exchange(&mut tx, &mut t.rx, &frame, timeout)?
        }
        Some(mut t) => {
            let mut tx = t.txs.remove(0);
            privilege::drop_to(run_as.as_ref(), &[])?;
            exchange(&mut tx, &mut t.rx, &frame, timeout)?
        }
        None => {
            let mut tx = packet::open_tx(net.ifindex, net.link)?;
            let to = packet::Addressees {
                v4: steer.src_v4,
                v6: steer.src_v6,
                count: 1,
            };
            let mut rx = packet::open_rx(net.ifindex, to, net.link)?;
            privilege::drop_to(run_as.as_ref(), &[])?;
            exchange(&mut tx, &mut rx, &frame, timeout)?
        }
    };
    let show = |out: &mut dyn Write, dir: &str, at: Duration, f: &[u8]| -> std::io::Result<()> {
        writeln!(
            out,
            "{dir} ({:.4}s) {}",
            at.as_secs_f64(),
            dissect::summary(f)
        )?;
        if !p.quiet {
            write!(out, "{}", dissect::show(&dissect::frame_layers(f)))?;
            write!(out, "{}", dissect::hexdump(f))?;
        }
        Ok(())
    };
    let io = |e: std::io::Error| IoError::os("writing the output", e);
    show(out, "SENT", Duration::ZERO, &frame).map_err(io)?;
    match reply {
        Some((at, r)) => {
            if !p.quiet {
                writeln!(out).map_err(io)?;
            }
            show(out, "RCVD", at, &r).map_err(io)?;
            Ok(ProbeOutcome::Answered)
        }
        None => {
            writeln!(out, "no answer from {} within {:.1} s", p.target, p.timeout).map_err(io)?;
            Ok(ProbeOutcome::NoAnswer)
        }
    }
}

/// Sends `frame` and waits for the first frame answering it.
fn exchange<T: TxQueue, R: RxQueue>(
    tx: &mut T,
    rx: &mut R,
    frame: &[u8],
    timeout: Duration,
) -> Result<Option<(Duration, Vec<u8>)>, IoError> {
    let sent_ip = IpPacket::parse(&frame[HEADER_LEN..]).expect("we built it");
    // Times count from the moment the frame is handed to the ring.
    let start = Instant::now();
    let mut once = Some(frame);
    let n = tx.send_batch(1, |buf| match once.take() {
        Some(f) => {
            buf[..f.len()].copy_from_slice(f);
            f.len()
        }
        None => 0,
    })?;
    if n != 1 {
        return Err(IoError::Setup("the transmit ring took no frame".into()));
    }
    tx.drain(Duration::from_secs(1))?;
    let deadline = Instant::now() + timeout;
    let mut got: Option<(Duration, Vec<u8>)> = None;
    while got.is_none() && Instant::now() < deadline {
        rx.recv_batch(|frames| {
            for f in frames {
                if got.is_some() || f.len() <= HEADER_LEN {
                    return;
                }
                let Ok(ip) = IpPacket::parse(&f[HEADER_LEN..]) else {
                    continue;
                };
                if answers(&sent_ip, &ip) {
                    got = Some((start.elapsed(), f.to_vec()));
                }
            }
        })?;
        if got.is_none() {
            rx.wait(Duration::from_millis(1))?;
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{MacAddr, TcpSegment};
    use clap::Parser;
    use std::net::Ipv4Addr;

    fn net() -> NetSetup {
        NetSetup {
            ifname: "x".into(),
            ifindex: 1,
            src_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            link: crate::io::netinfo::Link::Ethernet,
            families: vec![crate::config::FamilyNet {
                src: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)),
                gateway_mac: MacAddr([2, 0, 0, 0, 0, 2]),
                next_hop: None,
            }],
        }
    }

    fn built(args: &[&str]) -> Vec<u8> {
        let mut v = vec!["probe", "198.19.0.5"];
        v.extend(args);
        build(&ProbeCli::try_parse_from(v).unwrap(), &net(), [1; 8])
            .unwrap()
            .0
    }

    #[test]
    fn builds_what_the_flags_say() {
        let f = built(&[
            "-p",
            "22",
            "--flags",
            "SA",
            "--seq",
            "7",
            "--ack",
            "9",
            "--ttl",
            "5",
            "--tcp-option",
            "mss:1400",
            "--tcp-option",
            "wscale:7",
            "--df",
            "--data-string",
            "hi\\r\\n",
        ]);
        let l = dissect::frame_layers(&f);
        assert_eq!(l[1].get("ttl"), Some("5"));
        assert_eq!(l[1].get("flags"), Some("DF"));
        assert!(!l[1].get("chksum").unwrap().contains("bad"));
        assert_eq!(l[2].get("dport"), Some("22"));
        assert_eq!(l[2].get("flags"), Some("SA"));
        assert_eq!((l[2].get("seq"), l[2].get("ack")), (Some("7"), Some("9")));
        assert_eq!(
            l[2].get("options"),
            Some("[('MSS', 1400), ('WScale', 7), ('EOL', None)]")
        );
        assert!(!l[2].get("chksum").unwrap().contains("bad"));
        assert_eq!(l[3].get("load"), Some("b'hi\\r\\n'"));

        let f = built(&["--proto", "udp", "--data", "0xbeef"]);
        let l = dissect::frame_layers(&f);
        assert_eq!((l[2].name.as_str(), l[2].get("dport")), ("UDP", Some("53")));
        assert!(!l[2].get("chksum").unwrap().contains("bad"));

        let p = |a: &[&str]| {
            let mut v = vec!["probe", "198.19.0.5"];
            v.extend(a);
            build(&ProbeCli::try_parse_from(v).unwrap(), &net(), [1; 8])
        };
        let many: Vec<&str> = ["--tcp-option", "ts:1:2"].repeat(5);
        assert!(matches!(p(&many), Err(ProbeError::Usage(_))));
        let big = "00".repeat(1500);
        assert!(matches!(p(&["--data", &big]), Err(ProbeError::Usage(_))));

        // The remaining IP, TCP and payload options land in their fields.
        let f = built(&[
            "--sport",
            "61234",
            "--window",
            "512",
            "--ip-id",
            "77",
            "--tos",
            "16",
            "--data-length",
            "5",
        ]);
        let l = dissect::frame_layers(&f);
        assert_eq!(
            (l[1].get("id"), l[1].get("tos")),
            (Some("77"), Some("0x10"))
        );
        assert_eq!(
            (l[2].get("sport"), l[2].get("window")),
            (Some("61234"), Some("512"))
        );
        assert_eq!(f.len(), 14 + 20 + 24 + 5);
        let f = built(&["--proto", "icmp", "--icmp-code", "3", "--icmp-seq", "9"]);
        let l = dissect::frame_layers(&f);
        assert_eq!(
            (l[2].get("code"), l[2].get("seq")),
            (Some("3"), Some("0x9"))
        );

        let f = built(&["--proto", "icmp", "--icmp-type", "13"]);
        let l = dissect::frame_layers(&f);
        assert_eq!(l[2].get("type"), Some("timestamp-request"));
        assert_eq!(f.len(), 14 + 20 + 20);
    }

    #[test]
    fn matches_answers_and_only_them() {
        let f = built(&["-p", "80"]);
        let sent = IpPacket::parse(&f[HEADER_LEN..]).unwrap();
        let s = TcpSegment::new_checked(sent.payload()).unwrap();
        let mut reply = Vec::new();
        etherparse::PacketBuilder::ipv4([198, 19, 0, 5], [198, 18, 0, 1], 64)
            .tcp(80, s.src_port(), 1, 100)
            .syn()
            .ack(s.seq() + 1)
            .write(&mut reply, &[])
            .unwrap();
        assert!(answers(&sent, &IpPacket::parse(&reply[..]).unwrap()));
        // Another port's answer is not ours.
        reply[20] = 0;
        reply[21] = 81;
        assert!(!answers(&sent, &IpPacket::parse(&reply[..]).unwrap()));
        // An ICMP error quoting the probe is.
        let mut err = Vec::new();
        etherparse::PacketBuilder::ipv4([198, 18, 0, 2], [198, 18, 0, 1], 64)
            .icmpv4(etherparse::Icmpv4Type::TimeExceeded(
                etherparse::icmpv4::TimeExceededCode::TtlExceededInTransit,
            ))
            .write(&mut err, &f[HEADER_LEN..HEADER_LEN + 28])
            .unwrap();
        assert!(answers(&sent, &IpPacket::parse(&err[..]).unwrap()));

        // ICMP queries: the reply type, identifier and sequence number must all match.
        let f = built(&["--proto", "icmp", "--sport", "61111", "--icmp-seq", "4"]);
        let sent = IpPacket::parse(&f[HEADER_LEN..]).unwrap();
        let echo = |id: u16, seq: u16| {
            let mut v = Vec::new();
            etherparse::PacketBuilder::ipv4([198, 19, 0, 5], [198, 18, 0, 1], 64)
                .icmpv4_echo_reply(id, seq)
                .write(&mut v, &[])
                .unwrap();
            v
        };
        assert!(answers(
            &sent,
            &IpPacket::parse(&echo(61111, 4)[..]).unwrap()
        ));
        assert!(!answers(
            &sent,
            &IpPacket::parse(&echo(61111, 5)[..]).unwrap()
        ));
        assert!(!answers(
            &sent,
            &IpPacket::parse(&echo(61112, 4)[..]).unwrap()
        ));
    }
}
