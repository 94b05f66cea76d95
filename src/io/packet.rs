//! AF_PACKET transport, used where AF_XDP cannot bind. Sends with `sendmmsg` straight to the
//! driver (qdisc bypass); receives frames addressed to us through a socket filter.
//!
//! Unlike AF_XDP, the local kernel also sees the replies here and answers SYN-ACKs with RSTs,
//! as it does for nmap and masscan; that does not change what a SYN scan reports.
//!
//! On a link with no link header (tun, tunnels) it sends bare IP packets with the protocol set
//! per packet, which such links need and AF_XDP cannot give: the sending half of a scan there
//! even when AF_XDP receives (ARCHITECTURE.md, "Links with no link header").

use std::{
    net::{Ipv4Addr, Ipv6Addr},
    os::fd::{AsRawFd, OwnedFd},
    time::Duration,
};

use super::{netinfo::Link, sys, IoError, RxQueue, TxQueue};
use crate::wire::ethernet::HEADER_LEN as ETH_HEADER;

const BATCH: usize = 64;
const FRAME: usize = 2048;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_ALL: u16 = 0x0003;

pub(crate) struct PacketTx {
    fd: OwnedFd,
    bufs: Vec<[u8; FRAME]>,
    lens: Vec<usize>,
    batch: sys::MmsgBatch,
    /// A bare-IP link's index: frames leave without their Ethernet header.
    bare_ip: Option<u32>,
}

/// A transmit socket bound to `ifindex`, on a link of kind `link`.
pub(crate) fn open_tx(ifindex: u32, link: Link) -> Result<PacketTx, IoError> {
    let fd = sys::socket(libc::AF_PACKET, libc::SOCK_RAW, 0)
        .map_err(|e| IoError::os("AF_PACKET socket", e))?;
    sys::bind_packet(fd.as_raw_fd(), ifindex, 0)
        .map_err(|e| IoError::os("bind AF_PACKET socket", e))?;
    // Skipping the qdisc roughly doubles the rate; kernels without it still work.
    let _ = sys::setsockopt(
        fd.as_raw_fd(),
        libc::SOL_PACKET,
        libc::PACKET_QDISC_BYPASS,
        &1i32,
    );
    let _ = sys::setsockopt(
        fd.as_raw_fd(),
        libc::SOL_SOCKET,
        libc::SO_SNDBUF,
        &(4i32 << 20),
    );
    Ok(PacketTx {
        fd,
        bufs: vec![[0u8; FRAME]; BATCH],
        lens: vec![0; BATCH],
        batch: sys::MmsgBatch::with_capacity(BATCH),
        bare_ip: (link != Link::Ethernet).then_some(ifindex),
    })
}

impl TxQueue for PacketTx {
    fn send_batch<F: FnMut(&mut [u8]) -> usize>(
        &mut self,
        max: usize,
        mut fill: F,
    ) -> Result<usize, IoError> {
        let mut n = 0;
        while n < max.min(BATCH) {
            let len = fill(&mut self.bufs[n]);
            if len == 0 {
                break;
            }
            self.lens[n] = match self.bare_ip {
                Some(_) => super::strip_link_header(&mut self.bufs[n], len),
                None => len,
            };
            n += 1;
        }
        let mut sent = 0;
        while sent < n {
            let frames = (sent..n).map(|i| &self.bufs[i][..self.lens[i]]);
            let fd = self.fd.as_raw_fd();
            let went = match self.bare_ip {
                Some(ifindex) => self.batch.send_ip(fd, ifindex, frames),
                None => self.batch.send(fd, frames),
            };
            match went {
                Ok(k) => sent += k,
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ENOBUFS) | Some(libc::EAGAIN) | Some(libc::EINTR)
                    ) =>
                {
                    // The device queue is full: wait for it rather than lose probes.
                    let _ = sys::poll(&[self.fd.as_raw_fd()], true, Duration::from_millis(1));
                }
                Err(e) => return Err(IoError::os("AF_PACKET send", e)),
            }
        }
        Ok(n)
    }

    fn drain(&mut self, _timeout: Duration) -> Result<(), IoError> {
        Ok(()) // sendmmsg returns once the frames are queued to the device
    }
}

pub(crate) struct PacketRx {
    fd: OwnedFd,
    buf: Vec<u8>,
    drops: u64,
    /// A bare-IP link: packets are read after room for the Ethernet header they are given.
    bare_ip: bool,
}

/// Whom the replies are addressed to: our IPv4 source `v4` or our IPv6 source `v6` (either may
/// be absent), or one of the `count - 1` addresses after it (a source pool).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Addressees {
    pub(crate) v4: Option<Ipv4Addr>,
    pub(crate) v6: Option<Ipv6Addr>,
    pub(crate) count: u32,
}

/// A receive socket for frames arriving on `ifindex` (a link of kind `link`) addressed to us.
pub(crate) fn open_rx(ifindex: u32, to: Addressees, link: Link) -> Result<PacketRx, IoError> {
    let fd = sys::socket(libc::AF_PACKET, libc::SOCK_RAW, ETH_P_ALL.to_be() as i32)
        .map_err(|e| IoError::os("AF_PACKET socket", e))?;
    let raw = fd.as_raw_fd();
    let prog = rx_filter(to, link);
    sys::attach_filter(raw, &prog).map_err(|e| IoError::os("attach socket filter", e))?;
    let _ = sys::setsockopt(raw, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, &1i32);
    if sys::setsockopt(raw, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &(64i32 << 20)).is_err() {
        let _ = sys::setsockopt(raw, libc::SOL_SOCKET, libc::SO_RCVBUF, &(64i32 << 20));
    }
    sys::bind_packet(raw, ifindex, ETH_P_ALL)
        .map_err(|e| IoError::os("bind AF_PACKET socket", e))?;
    Ok(PacketRx {
        fd,
        buf: vec![0; 65536],
        drops: 0,
        bare_ip: link != Link::Ethernet,
    })
}

/// The classic BPF program keeping frames to our addresses of either family (a source pool's
/// `sources` addresses differ in the last word only). Offsets are an Ethernet frame's; on a
/// bare-IP link the EtherType is the socket buffer's protocol (an ancillary load) and the
/// addresses sit 14 bytes earlier.
///
/// ```text
///  0 ldh [12]                  ethertype
///  1 jeq #0x0800  v4 | 2       (no IPv4 source: drop)
///  2 jeq #0x86dd  v6 | drop    (no IPv6 source: drop)
///  3 ld [30]                   IPv4 destination
///  4 jge #src4    5 | drop
///  5 jgt #last4   drop | accept
///  6 ld [38] ... 12 ld [50]    IPv6 destination, word by word: the first three equal,
/// 13 jge #w3      14 | drop    the last within the pool
/// 14 jgt #last3   drop | accept
/// 15 ret #65535                accept
/// 16 ret #0                    drop
/// ```
fn rx_filter(to: Addressees, link: Link) -> Vec<libc::sock_filter> {
    let (src_v4, src_v6, sources) = (to.v4, to.v6, to.count);
    // The socket buffer's protocol, in host order (SKF_AD_OFF + SKF_AD_PROTOCOL).
    const SKF_PROTOCOL: u32 = 0xffff_f000;
    let (ethertype_at, l3) = match link {
        Link::Ethernet => (12, 14),
        Link::BareIp { .. } => (SKF_PROTOCOL, 0),
    };
    const ACCEPT: usize = 15;
    const DROP: usize = 16;
    const JEQ: u16 = 0x15;
    const JGE: u16 = 0x35;
    const JGT: u16 = 0x25;
    // A jump from instruction `pc` to `to`, as BPF counts it (from the next instruction).
    let rel = |pc: usize, to: usize| (to - pc - 1) as u8;
    let span = sources.max(1) - 1;
    let v4 = src_v4.map(u32::from).unwrap_or(0);
    let mut prog = vec![
        bpf_stmt(0x28, ethertype_at),
        bpf_jump(
            JEQ,
            ETH_P_IP as u32,
            if src_v4.is_some() {
                rel(1, 3)
            } else {
                rel(1, DROP)
            },
            0,
        ),
        bpf_jump(
            JEQ,
            ETH_P_IPV6 as u32,
            if src_v6.is_some() {
                rel(2, 6)
            } else {
                rel(2, DROP)
            },
            rel(2, DROP),
        ),
        bpf_stmt(0x20, l3 + 16),
        bpf_jump(JGE, v4, 0, rel(4, DROP)),
        bpf_jump(JGT, v4.saturating_add(span), rel(5, DROP), rel(5, ACCEPT)),
    ];
    let words = src_v6.map(|a| a.octets()).unwrap_or_default();
    for w in 0..4 {
        let pc = 6 + 2 * w;
        prog.push(bpf_stmt(0x20, l3 + 24 + 4 * w as u32));
        let k = u32::from_be_bytes(words[4 * w..4 * w + 4].try_into().expect("4 bytes"));
        if w < 3 {
            prog.push(bpf_jump(JEQ, k, 0, rel(pc + 1, DROP)));
        } else {
            prog.push(bpf_jump(JGE, k, 0, rel(pc + 1, DROP)));
            let last = k.saturating_add(span);
            prog.push(bpf_jump(JGT, last, rel(pc + 2, DROP), rel(pc + 2, ACCEPT)));
        }
    }
    prog.push(bpf_stmt(0x06, 0xffff));
    prog.push(bpf_stmt(0x06, 0));
    debug_assert_eq!(prog.len(), DROP + 1);
    prog
}

fn bpf_stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn bpf_jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

impl RxQueue for PacketRx {
    fn recv_batch<F: FnMut(&[&[u8]])>(&mut self, mut f: F) -> Result<usize, IoError> {
        let mut n = 0;
        // A bare IP packet is read after room for the Ethernet header it is given.
        let head = if self.bare_ip { ETH_HEADER } else { 0 };
        // One frame per batch: recv() fills one buffer at a time.
        while n < 256 {
            match sys::recv_nonblocking(self.fd.as_raw_fd(), &mut self.buf[head..]) {
                Ok(Some(len)) => {
                    if self.bare_ip {
                        let first = self.buf[head];
                        super::add_link_header(&mut self.buf[..head], first);
                    }
                    f(&[&self.buf[..head + len]]);
                    n += 1;
                }
                Ok(None) => break,
                Err(e) => return Err(IoError::os("AF_PACKET receive", e)),
            }
        }
        Ok(n)
    }

    fn wait(&mut self, timeout: Duration) -> Result<(), IoError> {
        sys::poll(&[self.fd.as_raw_fd()], false, timeout)
            .map(drop)
            .map_err(|e| IoError::os("poll", e))
    }

    fn capacity(&self) -> (usize, usize) {
        // A 64 MiB socket buffer holds about this many reply frames.
        (256, 1 << 16)
    }

    fn drops(&mut self) -> u64 {
        // PACKET_STATISTICS resets on every read, so accumulate.
        if let Ok(st) = sys::getsockopt::<TpacketStats>(
            self.fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
        ) {
            self.drops += st.drops as u64;
        }
        self.drops
    }
}

#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
struct TpacketStats {
    packets: u32,
    drops: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the few classic BPF instructions `rx_filter` uses over `frame`; the socket
    /// buffer's protocol is the one tun gives a bare IP packet (from its version).
    fn run(prog: &[libc::sock_filter], frame: &[u8]) -> u32 {
        let mut pc = 0;
        let mut a = 0u32;
        loop {
            let i = prog[pc];
            let k = i.k as usize;
            match i.code {
                0x28 if i.k == 0xffff_f000 => a = if frame[0] >> 4 == 6 { 0x86dd } else { 0x0800 },
                0x28 => a = u16::from_be_bytes([frame[k], frame[k + 1]]) as u32,
                0x20 => a = u32::from_be_bytes(frame[k..k + 4].try_into().unwrap()),
                0x15 | 0x35 | 0x25 => {
                    let yes = match i.code {
                        0x15 => a == i.k,
                        0x35 => a >= i.k,
                        _ => a > i.k,
                    };
                    pc += 1 + if yes { i.jt } else { i.jf } as usize;
                    continue;
                }
                0x06 => return i.k,
                c => panic!("opcode {c:#x}"),
            }
            pc += 1;
        }
    }

    fn filter(v4: Option<Ipv4Addr>, v6: Option<Ipv6Addr>, count: u32) -> Vec<libc::sock_filter> {
        rx_filter(Addressees { v4, v6, count }, Link::Ethernet)
    }

    #[test]
    fn on_a_bare_ip_link_the_filter_reads_the_ip_header_first() {
        let s4 = Ipv4Addr::new(198, 18, 1, 1);
        let s6: Ipv6Addr = "2001:db8:2::1".parse().unwrap();
        let to = Addressees {
            v4: Some(s4),
            v6: Some(s6),
            count: 2,
        };
        let prog = rx_filter(to, Link::BareIp { xdp_sends: true });
        let packet = |version: u8, dst: &[u8]| {
            let mut p = vec![0u8; 60];
            p[0] = version << 4;
            let at = if version == 6 { 24 } else { 16 };
            p[at..at + dst.len()].copy_from_slice(dst);
            p
        };
        assert_eq!(run(&prog, &packet(4, &s4.octets())), 0xffff);
        assert_eq!(run(&prog, &packet(4, &[198, 18, 1, 2])), 0xffff);
        assert_eq!(run(&prog, &packet(4, &[198, 18, 1, 3])), 0);
        assert_eq!(run(&prog, &packet(6, &s6.octets())), 0xffff);
        let other6: Ipv6Addr = "2001:db8:2::9".parse().unwrap();
        assert_eq!(run(&prog, &packet(6, &other6.octets())), 0);
    }

    fn frame(ethertype: u16, dst: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 80];
        f[12..14].copy_from_slice(&ethertype.to_be_bytes());
        let at = if ethertype == ETH_P_IP { 30 } else { 38 };
        f[at..at + dst.len()].copy_from_slice(dst);
        f
    }

    #[test]
    fn filter_keeps_frames_to_our_address_of_either_family() {
        let s4 = Ipv4Addr::new(198, 18, 0, 1);
        let s6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let other6: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let both = filter(Some(s4), Some(s6), 1);
        assert_eq!(run(&both, &frame(ETH_P_IP, &s4.octets())), 0xffff);
        assert_eq!(run(&both, &frame(ETH_P_IP, &[198, 18, 0, 2])), 0);
        assert_eq!(run(&both, &frame(ETH_P_IPV6, &s6.octets())), 0xffff);
        assert_eq!(run(&both, &frame(ETH_P_IPV6, &other6.octets())), 0);
        assert_eq!(run(&both, &frame(0x0806, &[])), 0);
        // One family only: the other never passes, whatever its address.
        let v4 = filter(Some(s4), None, 1);
        assert_eq!(run(&v4, &frame(ETH_P_IP, &s4.octets())), 0xffff);
        assert_eq!(run(&v4, &frame(ETH_P_IPV6, &[0; 16])), 0);
        let v6 = filter(None, Some(s6), 1);
        assert_eq!(run(&v6, &frame(ETH_P_IPV6, &s6.octets())), 0xffff);
        assert_eq!(run(&v6, &frame(ETH_P_IP, &[0; 4])), 0);
        // Every word of the IPv6 address counts.
        for w in 0..4 {
            let mut o = s6.octets();
            o[4 * w + 3] ^= 1;
            assert_eq!(run(&both, &frame(ETH_P_IPV6, &o)), 0, "word {w}");
        }
    }

    #[test]
    fn filter_keeps_frames_to_every_address_of_a_source_pool() {
        let s4 = Ipv4Addr::new(198, 18, 0, 1);
        let s6: Ipv6Addr = "2001:db8:ff::8".parse().unwrap();
        let pool = filter(Some(s4), Some(s6), 8);
        for last in 1..=8 {
            assert_eq!(run(&pool, &frame(ETH_P_IP, &[198, 18, 0, last])), 0xffff);
        }
        for outside in [0, 9, 255] {
            assert_eq!(run(&pool, &frame(ETH_P_IP, &[198, 18, 0, outside])), 0);
        }
        let six = |n: u128| (u128::from(s6) + n).to_be_bytes();
        for n in 0..8 {
            assert_eq!(run(&pool, &frame(ETH_P_IPV6, &six(n))), 0xffff, "+{n}");
        }
        assert_eq!(run(&pool, &frame(ETH_P_IPV6, &six(8))), 0);
        assert_eq!(
            run(
                &pool,
                &frame(ETH_P_IPV6, &(u128::from(s6) - 1).to_be_bytes())
            ),
            0
        );
    }
}
