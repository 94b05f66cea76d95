//! Network facts from the kernel, for both families: the route to a target (interface, next hop,
//! preferred source), interface addresses, and the next hop's MAC from the neighbour table over
//! rtnetlink. When the neighbour entry is missing we get it resolved: over IPv4 with an ARP
//! request of our own, over IPv6 by asking the kernel to solicit it (an `NTF_USE` neighbour
//! request, which starts the kernel's own neighbour discovery) and reading the table again.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::{AsRawFd, OwnedFd},
    time::Duration,
};

use crate::{
    io::sys,
    wire::{ethernet::ETHERTYPE_ARP, MacAddr},
};

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("netlink: {0}")]
    Netlink(std::io::Error),
    #[error("no route to {0}")]
    NoRoute(IpAddr),
    #[error("interface '{0}' does not exist")]
    NoInterface(String),
    #[error("interface {0} has no {1} address; give one with --source-ip")]
    NoAddress(String, &'static str),
    #[error(
        "interface {0} has link type {1}: xdpscan sends on Ethernet links and on links that carry bare IP packets (tun, WireGuard, ipip, GRE, sit, ppp)"
    )]
    NotEthernet(String, u16),
    #[error("cannot read the MAC address of {0}: {1}")]
    Mac(String, std::io::Error),
    #[error("no {how} reply from next hop {hop} on {iface}; give its MAC with --gateway-mac")]
    Unresolved {
        hop: IpAddr,
        iface: String,
        how: &'static str,
    },
    #[error("ARP resolution on {0}: {1}")]
    Arp(String, std::io::Error),
}

/// What the kernel's routing table says about one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    pub(crate) ifindex: u32,
    pub(crate) gateway: Option<IpAddr>,
    pub(crate) prefsrc: Option<IpAddr>,
}

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
const RTM_NEWNEIGH: u16 = 28;
const RTM_GETNEIGH: u16 = 30;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_CREATE: u16 = 0x400;
const NTF_USE: u8 = 0x01;
const IFA_F_TENTATIVE: u8 = 0x40;
const RT_SCOPE_UNIVERSE: u8 = 0;
const NLM_F_DUMP: u16 = 0x300;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PREFSRC: u16 = 7;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
const NUD_VALID: u16 = 0x02 | 0x04 | 0x08 | 0x10 | 0x40 | 0x80; // reachable..permanent
const ARPHRD_ETHER: u16 = 1;
/// Link types whose frames are bare IP packets: ppp, raw IP, ipip, ip6tnl, sit, GRE, ip6gre,
/// and "none" (tun, WireGuard).
const ARPHRD_BARE_IP: [u16; 8] = [512, 519, 768, 769, 776, 778, 823, 0xfffe];
/// tun's flag for "no packet information header" (`IFF_NO_PI`).
const IFF_NO_PI: u32 = 0x1000;

/// What a frame on an interface starts with (ARCHITECTURE.md, "Links with no link header").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Link {
    /// An Ethernet header: plain NICs, veth, macvlan, bridges, tap.
    #[default]
    Ethernet,
    /// The IP header itself: tun (VPNs), WireGuard, ipip/GRE/sit, ppp. `xdp_sends`: a tun with
    /// no packet-information header, which takes AF_XDP's frames as they are; every other such
    /// link needs the protocol that an AF_PACKET send sets on the packet.
    BareIp { xdp_sends: bool },
}

impl Link {
    /// Must probes leave through AF_PACKET, which sets each packet's protocol, even where AF_XDP
    /// receives? (Every bare-IP link but a tun without the packet-information header.)
    pub(crate) fn sends_through_packet(self) -> bool {
        self == Link::BareIp { xdp_sends: false }
    }
}

struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

impl Netlink {
    fn open() -> Result<Self, NetError> {
        let fd = sys::socket(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_ROUTE)
            .map_err(NetError::Netlink)?;
        Ok(Self { fd, seq: 1 })
    }

    /// Sends one request and collects the payloads of every answer message of type `want`.
    fn request(
        &mut self,
        ty: u16,
        flags: u16,
        body: &[u8],
        want: u16,
    ) -> Result<Vec<Vec<u8>>, NetError> {
        self.seq += 1;
        let len = 16 + body.len();
        let mut msg = Vec::with_capacity(len);
        msg.extend_from_slice(&(len as u32).to_ne_bytes());
        msg.extend_from_slice(&ty.to_ne_bytes());
        msg.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        msg.extend_from_slice(&self.seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(body);
        sys::send(self.fd.as_raw_fd(), &msg, 0).map_err(NetError::Netlink)?;
        let dump = flags & NLM_F_DUMP != 0;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = sys::recv_timeout(self.fd.as_raw_fd(), &mut buf, Duration::from_secs(2))
                .map_err(NetError::Netlink)?
                .ok_or_else(|| {
                    NetError::Netlink(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "no answer",
                    ))
                })?;
            let mut off = 0;
            while off + 16 <= n {
                let mlen = u32::from_ne_bytes(buf[off..off + 4].try_into().unwrap()) as usize;
                let mty = u16::from_ne_bytes(buf[off + 4..off + 6].try_into().unwrap());
                let mseq = u32::from_ne_bytes(buf[off + 8..off + 12].try_into().unwrap());
                if mlen < 16 || off + mlen > n {
                    break;
                }
                let payload = &buf[off + 16..off + mlen];
                if mseq == self.seq {
                    match mty {
                        NLMSG_DONE => return Ok(out),
                        NLMSG_ERROR => {
                            let errno = i32::from_ne_bytes(payload[..4].try_into().unwrap());
                            if errno == 0 {
                                return Ok(out);
                            }
                            return Err(NetError::Netlink(std::io::Error::from_raw_os_error(
                                -errno,
                            )));
                        }
                        t if t == want => out.push(payload.to_vec()),
                        _ => {}
                    }
                }
                off += (mlen + 3) & !3;
            }
            if !dump && !out.is_empty() {
                return Ok(out);
            }
        }
    }
}

/// Iterates (type, data) over the rtattrs in `b`.
fn attrs(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if b.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let ty = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            return None;
        }
        let data = &b[4..len];
        b = &b[((len + 3) & !3).min(b.len())..];
        Some((ty, data))
    })
}

/// An address attribute of either family.
fn ip_attr(d: &[u8]) -> Option<IpAddr> {
    if let Ok(b) = <[u8; 4]>::try_from(d) {
        return Some(IpAddr::V4(Ipv4Addr::from(b)));
    }
    <[u8; 16]>::try_from(d)
        .ok()
        .map(|b| IpAddr::V6(Ipv6Addr::from(b)))
}

fn family_of(a: &IpAddr) -> u8 {
    match a {
        IpAddr::V4(_) => libc::AF_INET as u8,
        IpAddr::V6(_) => libc::AF_INET6 as u8,
    }
}

fn octets(a: &IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// An rtattr holding an address.
fn addr_attr(ty: u16, a: &IpAddr) -> Vec<u8> {
    let o = octets(a);
    let mut v = Vec::with_capacity(4 + o.len());
    v.extend_from_slice(&((4 + o.len()) as u16).to_ne_bytes());
    v.extend_from_slice(&ty.to_ne_bytes());
    v.extend_from_slice(&o);
    v
}

/// The kernel's route to `dst` (as `ip route get`).
pub(crate) fn route(dst: IpAddr) -> Result<Route, NetError> {
    let mut nl = Netlink::open()?;
    let mut body = vec![0u8; 12];
    body[0] = family_of(&dst);
    body[1] = if dst.is_ipv4() { 32 } else { 128 }; // dst_len
    body.extend_from_slice(&addr_attr(RTA_DST, &dst));
    let msgs = nl
        .request(RTM_GETROUTE, 0, &body, RTM_NEWROUTE)
        .map_err(|e| match e {
            NetError::Netlink(ref io)
                if matches!(
                    io.raw_os_error(),
                    Some(libc::ENETUNREACH) | Some(libc::EHOSTUNREACH)
                ) =>
            {
                NetError::NoRoute(dst)
            }
            e => e,
        })?;
    let m = msgs.first().ok_or(NetError::NoRoute(dst))?;
    let rtype = m.get(7).copied().unwrap_or(0);
    if rtype != libc::RTN_UNICAST && rtype != libc::RTN_LOCAL {
        return Err(NetError::NoRoute(dst));
    }
    let mut r = Route {
        ifindex: 0,
        gateway: None,
        prefsrc: None,
    };
    for (ty, d) in attrs(m.get(12..).unwrap_or(&[])) {
        match ty {
            RTA_OIF if d.len() == 4 => r.ifindex = u32::from_ne_bytes(d.try_into().unwrap()),
            RTA_GATEWAY => r.gateway = ip_attr(d),
            RTA_PREFSRC => r.prefsrc = ip_attr(d),
            _ => {}
        }
    }
    if r.ifindex == 0 {
        return Err(NetError::NoRoute(dst));
    }
    Ok(r)
}

/// The first address of an interface in `v6`'s family: for IPv6 a global one (not link-local,
/// not tentative), as a scan's source must be routable.
pub(crate) fn interface_addr(ifindex: u32, v6: bool) -> Result<Option<IpAddr>, NetError> {
    Ok(interface_addrs(ifindex, v6)?.into_iter().next())
}

/// Every address of an interface in `v6`'s family (for IPv6 the global, settled ones), in the
/// kernel's order.
pub(crate) fn interface_addrs(ifindex: u32, v6: bool) -> Result<Vec<IpAddr>, NetError> {
    let mut nl = Netlink::open()?;
    let mut body = vec![0u8; 8];
    body[0] = if v6 {
        libc::AF_INET6 as u8
    } else {
        libc::AF_INET as u8
    };
    let mut out = Vec::new();
    for m in nl.request(RTM_GETADDR, NLM_F_DUMP, &body, RTM_NEWADDR)? {
        // ifaddrmsg: family, prefixlen, flags, scope, index.
        if m.len() < 8 || u32::from_ne_bytes(m[4..8].try_into().unwrap()) != ifindex {
            continue;
        }
        if v6 && (m[3] != RT_SCOPE_UNIVERSE || m[2] & IFA_F_TENTATIVE != 0) {
            continue;
        }
        let (mut local, mut addr) = (None, None);
        for (ty, d) in attrs(&m[8..]) {
            match ty {
                IFA_LOCAL => local = ip_attr(d),
                IFA_ADDRESS => addr = ip_attr(d),
                _ => {}
            }
        }
        out.extend(local.or(addr));
    }
    Ok(out)
}

/// The MAC of `ip` in the kernel's neighbour table for `ifindex`, if present and usable.
pub(crate) fn neighbour(ifindex: u32, ip: IpAddr) -> Result<Option<MacAddr>, NetError> {
    let mut nl = Netlink::open()?;
    let mut body = vec![0u8; 12];
    body[0] = family_of(&ip);
    for m in nl.request(RTM_GETNEIGH, NLM_F_DUMP, &body, RTM_NEWNEIGH)? {
        if m.len() < 12 {
            continue;
        }
        let idx = i32::from_ne_bytes(m[4..8].try_into().unwrap()) as u32;
        let state = u16::from_ne_bytes(m[8..10].try_into().unwrap());
        if idx != ifindex || state & NUD_VALID == 0 {
            continue;
        }
        let (mut dst, mut mac) = (None, None);
        for (ty, d) in attrs(&m[12..]) {
            match ty {
                NDA_DST => dst = ip_attr(d),
                NDA_LLADDR if d.len() == 6 => mac = Some(MacAddr(d.try_into().unwrap())),
                _ => {}
            }
        }
        if dst == Some(ip) {
            return Ok(mac);
        }
    }
    Ok(None)
}

/// Has the kernel resolve `ip` on `ifindex` (IPv6 neighbour discovery, or ARP) and waits for the
/// entry: an `RTM_NEWNEIGH` with `NTF_USE` makes the kernel send its own solicitation, whose
/// advertisement it accepts (one we sent ourselves would be dropped as unsolicited).
pub(crate) fn kernel_resolve(iface: &str, ifindex: u32, ip: IpAddr) -> Result<MacAddr, NetError> {
    let mut nl = Netlink::open()?;
    let mut body = vec![0u8; 12];
    body[0] = family_of(&ip);
    body[4..8].copy_from_slice(&(ifindex as i32).to_ne_bytes());
    body[10] = NTF_USE;
    body.extend_from_slice(&addr_attr(NDA_DST, &ip));
    let how = if ip.is_ipv4() {
        "ARP"
    } else {
        "neighbour advertisement"
    };
    for _ in 0..3 {
        nl.request(
            RTM_NEWNEIGH,
            NLM_F_CREATE | NLM_F_REPLACE | NLM_F_ACK,
            &body,
            RTM_NEWNEIGH,
        )?;
        let deadline = std::time::Instant::now() + Duration::from_millis(1000);
        while std::time::Instant::now() < deadline {
            if let Some(mac) = neighbour(ifindex, ip)? {
                return Ok(mac);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Err(NetError::Unresolved {
        hop: ip,
        iface: iface.to_string(),
        how,
    })
}

/// Interface name → (index, MAC, link), refusing links that carry neither Ethernet nor bare IP.
pub(crate) fn interface(name: &str) -> Result<(u32, MacAddr, Link), NetError> {
    let idx = sys::if_nametoindex(name).ok_or_else(|| NetError::NoInterface(name.to_string()))?;
    let (mac, hwtype) = sys::if_hwaddr(name).map_err(|e| NetError::Mac(name.to_string(), e))?;
    if hwtype == ARPHRD_ETHER {
        return Ok((idx, MacAddr(mac), Link::Ethernet));
    }
    if !ARPHRD_BARE_IP.contains(&hwtype) {
        return Err(NetError::NotEthernet(name.to_string(), hwtype));
    }
    // Only tun has `tun_flags`; a tun without IFF_NO_PI prefixes the protocol AF_XDP leaves unset.
    let tun_flags = std::fs::read_to_string(format!("/sys/class/net/{name}/tun_flags")).ok();
    let xdp_sends = tun_flags
        .and_then(|f| u32::from_str_radix(f.trim().trim_start_matches("0x"), 16).ok())
        .is_some_and(|f| f & IFF_NO_PI != 0);
    Ok((idx, MacAddr::ZERO, Link::BareIp { xdp_sends }))
}

pub(crate) fn interface_name(ifindex: u32) -> Option<String> {
    sys::if_indextoname(ifindex)
}

/// Asks `hop` for its MAC with ARP requests from (`src_mac`, `src_ip`) on `ifindex`.
pub(crate) fn arp_resolve(
    iface: &str,
    ifindex: u32,
    src_mac: MacAddr,
    src_ip: Ipv4Addr,
    hop: Ipv4Addr,
) -> Result<MacAddr, NetError> {
    let err = |e| NetError::Arp(iface.to_string(), e);
    let fd = sys::socket(
        libc::AF_PACKET,
        libc::SOCK_RAW,
        ETHERTYPE_ARP.to_be() as i32,
    )
    .map_err(err)?;
    sys::bind_packet(fd.as_raw_fd(), ifindex, ETHERTYPE_ARP).map_err(err)?;
    let req = arp_request(src_mac, src_ip, hop);
    let mut buf = [0u8; 1500];
    for _ in 0..3 {
        sys::send(fd.as_raw_fd(), &req, 0).map_err(err)?;
        let deadline = std::time::Instant::now() + Duration::from_millis(700);
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match sys::recv_timeout(fd.as_raw_fd(), &mut buf, left).map_err(err)? {
                Some(n) => {
                    if let Some(mac) = parse_arp_reply(&buf[..n], hop) {
                        return Ok(mac);
                    }
                }
                None => break,
            }
        }
    }
    Err(NetError::Unresolved {
        hop: IpAddr::V4(hop),
        iface: iface.to_string(),
        how: "ARP",
    })
}

/// A broadcast ARP who-has frame, padded to the Ethernet minimum.
pub(crate) fn arp_request(src_mac: MacAddr, src_ip: Ipv4Addr, target: Ipv4Addr) -> [u8; 60] {
    let mut f = [0u8; 60];
    f[0..6].copy_from_slice(&MacAddr::BROADCAST.0);
    f[6..12].copy_from_slice(&src_mac.0);
    f[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    f[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]); // Ethernet, IPv4, request
    f[22..28].copy_from_slice(&src_mac.0);
    f[28..32].copy_from_slice(&src_ip.octets());
    f[38..42].copy_from_slice(&target.octets());
    f
}

/// The sender MAC of an ARP reply from `from`.
pub(crate) fn parse_arp_reply(f: &[u8], from: Ipv4Addr) -> Option<MacAddr> {
    if f.len() < 42
        || f[12..14] != ETHERTYPE_ARP.to_be_bytes()
        || f[14..22] != [0, 1, 8, 0, 6, 4, 0, 2]
    {
        return None;
    }
    (f[28..32] == from.octets()).then(|| MacAddr(f[22..28].try_into().unwrap()))
}

/// The kernel's ephemeral port range (`net.ipv4.ip_local_port_range`).
pub(crate) fn ephemeral_ports() -> Option<(u16, u16)> {
    let s = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut it = s.split_whitespace().map(|x| x.parse::<u16>().ok());
    Some((it.next()??, it.next()??))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arp_roundtrip() {
        let me = MacAddr([2, 0, 0, 0, 0, 1]);
        let req = arp_request(
            me,
            Ipv4Addr::new(198, 18, 0, 1),
            Ipv4Addr::new(198, 18, 0, 2),
        );
        assert_eq!(&req[..6], &[0xff; 6]);
        assert_eq!(&req[12..14], &[8, 6]);
        // Turn it into the reply the neighbour would send.
        let mut rep = req;
        rep[21] = 2;
        rep[22..28].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        rep[28..32].copy_from_slice(&[198, 18, 0, 2]);
        assert_eq!(
            parse_arp_reply(&rep, Ipv4Addr::new(198, 18, 0, 2)),
            Some(MacAddr([2, 0, 0, 0, 0, 2]))
        );
        assert_eq!(parse_arp_reply(&rep, Ipv4Addr::new(198, 18, 0, 3)), None);
        assert_eq!(parse_arp_reply(&req, Ipv4Addr::new(198, 18, 0, 1)), None);
    }

    #[test]
    fn rtattr_walk() {
        let b = [8, 0, 1, 0, 198, 19, 0, 1, 5, 0, 4, 0, 7, 0, 0, 0];
        let v: Vec<_> = attrs(&b).collect();
        assert_eq!(v, vec![(1, &[198, 19, 0, 1][..]), (4, &[7][..])]);
    }
}
