//! The lab's stand-in for the Internet (`bpf/responder.bpf.c`): an XDP program on the target
//! side of a lab link that answers probes by a fixed rule of (address, port) with `XDP_TX`, at a
//! rate no kernel stack reaches, so live scans measure the scanner and their truth is computable
//! for any range. Benchmarks and tests attach it only inside lab namespaces (BENCHMARKS.md,
//! "Live at the scanner's limit").

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use libbpf_rs::{MapCore, MapFlags, Object, ObjectBuilder};

use super::{sys, xdp, IoError};

const RESPONDER_OBJ: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/responder.bpf.o"));

/// What the responder answers to a probe (mirrors `responder_rule` in bpf/responder.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Answer {
    /// TCP: SYN-ACK; UDP: the datagram echoed back.
    Open,
    /// TCP: RST; UDP: ICMP port unreachable.
    Closed,
    /// ICMP destination unreachable, both protocols, with the code of this index in
    /// [`UNREACHABLE_V4`] or [`UNREACHABLE_V6`].
    Unreachable(u8),
    /// Nothing.
    Silent,
}

/// ICMP destination unreachable codes the rule picks from: network, host, protocol, port,
/// network and host administratively prohibited, communication administratively prohibited.
pub const UNREACHABLE_V4: [u8; 7] = [0, 1, 2, 3, 9, 10, 13];
/// ICMPv6 destination unreachable codes 0 to 6.
pub const UNREACHABLE_V6: [u8; 7] = [0, 1, 2, 3, 4, 5, 6];

impl Answer {
    /// The ICMP (or ICMPv6) unreachable code this answer carries for `proto` (6 TCP, 17 UDP).
    pub fn icmp_code(self, v6: bool, proto: u8) -> Option<u8> {
        let table = if v6 { UNREACHABLE_V6 } else { UNREACHABLE_V4 };
        match self {
            Answer::Unreachable(i) => Some(table[i as usize]),
            Answer::Closed if proto == 17 => Some(if v6 { 4 } else { 3 }),
            _ => None,
        }
    }
}

/// The rule: `addr` is the target address's last 32 bits (the whole of an IPv4 address).
pub fn rule(addr: u32, port: u16) -> Answer {
    let mut h = addr.wrapping_mul(0x9e37_79b1) ^ (port as u32).wrapping_mul(0x85eb_ca6b);
    h ^= h >> 15;
    h = h.wrapping_mul(0x2c1b_3c6d);
    h ^= h >> 12;
    match h & 15 {
        0..=3 => Answer::Open,
        12 | 13 => Answer::Unreachable(((h >> 4) % UNREACHABLE_V4.len() as u32) as u8),
        14 | 15 => Answer::Silent,
        _ => Answer::Closed,
    }
}

/// The responder, attached; detached when dropped (a bpf_link).
pub struct Responder {
    _link: OwnedFd,
    obj: Object,
}

/// Answers sent so far, by kind, summed over the CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Answered {
    pub open: u64,
    pub closed: u64,
    pub unreachable: u64,
    pub silent: u64,
}

impl Responder {
    /// Loads the program and attaches it to `ifname` (native XDP where the driver has it).
    pub fn attach(ifname: &str) -> Result<Responder, IoError> {
        let ifindex = sys::if_nametoindex(ifname)
            .ok_or_else(|| IoError::Setup(format!("interface '{ifname}' does not exist")))?;
        libbpf_rs::set_print(None);
        let obj = ObjectBuilder::default()
            .open_memory(RESPONDER_OBJ)
            .and_then(|o| o.load())
            .map_err(|e| IoError::Setup(format!("cannot load the responder: {e}")))?;
        let fd = {
            let prog = obj
                .progs()
                .find(|p| p.name() == "xdpscan_responder")
                .ok_or_else(|| IoError::Setup("the responder object has no program".into()))?;
            prog.as_fd().as_raw_fd()
        };
        let link = xdp::attach(fd, ifindex, xdp::XdpMode::Auto)
            .map_err(|e| IoError::os(format!("cannot attach the responder to {ifname}"), e))?;
        Ok(Responder { _link: link, obj })
    }

    /// The answers counted so far.
    pub fn answered(&self) -> Answered {
        let Some(map) = self.obj.maps().find(|m| m.name() == "counters") else {
            return Answered::default();
        };
        let sum = |key: u32| -> u64 {
            map.lookup_percpu(&key.to_ne_bytes(), MapFlags::ANY)
                .ok()
                .flatten()
                .map(|cpus| {
                    cpus.iter()
                        .map(|v| u64::from_ne_bytes(v[..8].try_into().unwrap_or([0; 8])))
                        .sum()
                })
                .unwrap_or(0)
        };
        Answered {
            open: sum(0),
            closed: sum(1),
            silent: sum(2),
            unreachable: sum(3),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_splits_the_pairs_a_quarter_open_half_closed_an_eighth_unreachable_and_silent() {
        let mut n = [0u32; 4];
        let mut codes = std::collections::BTreeSet::new();
        for a in 0..4096u32 {
            for p in [22u16, 80, 443, 8080] {
                let k = match rule(0xc613_0000 + a, p) {
                    Answer::Open => 0,
                    Answer::Closed => 1,
                    Answer::Unreachable(i) => {
                        codes.insert(i);
                        2
                    }
                    Answer::Silent => 3,
                };
                n[k] += 1;
            }
        }
        let total = 4096.0 * 4.0;
        let share = |k: usize| n[k] as f64 / total;
        for (k, want) in [0.25, 0.5, 0.125, 0.125].into_iter().enumerate() {
            assert!((share(k) - want).abs() < 0.02, "{n:?}");
        }
        // Every code is used.
        assert_eq!(codes.len(), UNREACHABLE_V4.len());
    }

    #[test]
    fn udp_closed_is_port_unreachable_and_tcp_closed_a_reset() {
        assert_eq!(Answer::Closed.icmp_code(false, 17), Some(3));
        assert_eq!(Answer::Closed.icmp_code(true, 17), Some(4));
        assert_eq!(Answer::Closed.icmp_code(false, 6), None);
        assert_eq!(Answer::Unreachable(4).icmp_code(false, 6), Some(9));
        assert_eq!(Answer::Unreachable(4).icmp_code(true, 6), Some(4));
    }
}
