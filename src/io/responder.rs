//! The lab's stand-in for the Internet (`bpf/responder.bpf.c`): an XDP program on the target
//! side of a lab link that answers probes by a fixed rule of (address, port) with `XDP_TX`, at a
//! rate no kernel stack reaches, so live scans measure the scanner and their truth is computable
//! for any range. Benchmarks and tests attach it only inside lab namespaces (BENCHMARKS.md,
//! "Live at the scanner's limit").

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

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

fn hash(addr: u32, port: u16) -> u32 {
    let mut h = addr.wrapping_mul(0x9e37_79b1) ^ (port as u32).wrapping_mul(0x85eb_ca6b);
    h ^= h >> 15;
    h = h.wrapping_mul(0x2c1b_3c6d);
    h ^= h >> 12;
    h
}

/// The rule: `addr` is the target address's last 32 bits (the whole of an IPv4 address).
pub fn rule(addr: u32, port: u16) -> Answer {
    let h = hash(addr, port);
    match h & 15 {
        0..=3 => Answer::Open,
        12 | 13 => Answer::Unreachable(((h >> 4) % UNREACHABLE_V4.len() as u32) as u8),
        14 | 15 => Answer::Silent,
        _ => Answer::Closed,
    }
}

/// How many copies of its answer the responder sends to (`addr`, `port`) when it repeats
/// (`Responder::attach`'s `repeat`): 2 for a quarter of the pairs, 1 for the rest, 0 when the
/// rule is silence.
pub fn copies(addr: u32, port: u16) -> u64 {
    match rule(addr, port) {
        Answer::Silent => 0,
        _ if (hash(addr, port) >> 20) & 3 == 0 => 2,
        _ => 1,
    }
}

/// The responder, attached; detached when dropped (a bpf_link).
pub struct Responder {
    _link: OwnedFd,
    obj: Object,
    /// Holds the kernel's BPF run-time statistics on while the responder lives.
    _stats: Option<OwnedFd>,
}

/// The program's own cost: runs and the nanoseconds spent in them, over every CPU (the
/// kernel's BPF statistics, as `bpftool prog show` prints them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunTime {
    pub runs: u64,
    pub nanos: u64,
}

impl RunTime {
    /// Answers one core could give per second at this cost (packets it ran on, per second of
    /// its own run time; the driver's transmit is not in it).
    pub fn per_core(&self) -> Option<f64> {
        (self.nanos > 0).then(|| self.runs as f64 * 1e9 / self.nanos as f64)
    }

    pub fn since(&self, before: &RunTime) -> RunTime {
        RunTime {
            runs: self.runs.saturating_sub(before.runs),
            nanos: self.nanos.saturating_sub(before.nanos),
        }
    }
}

/// Answers sent so far, by kind, summed over the CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Answered {
    pub open: u64,
    pub closed: u64,
    pub unreachable: u64,
    pub silent: u64,
    /// Answers of the above sent a second time (repeating on).
    pub repeated: u64,
}

impl Responder {
    /// Loads the program and attaches it to `ifname` (native XDP where the driver has it);
    /// with `repeat`, the answers [`copies`] says go twice are sent twice.
    pub fn attach(ifname: &str, repeat: bool) -> Result<Responder, IoError> {
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
        let set = |map: &str, key: u32, value: u32| {
            obj.maps()
                .find(|m| m.name() == map)
                .ok_or_else(|| IoError::Setup(format!("the responder object has no map {map}")))?
                .update(&key.to_ne_bytes(), &value.to_ne_bytes(), MapFlags::ANY)
                .map_err(|e| IoError::Setup(format!("cannot set the responder's {map}: {e}")))
        };
        set("twice", 0, ifindex)?;
        set("twice", 1, ifindex)?;
        set("settings", 0, repeat as u32)?;
        let link = xdp::attach(fd, ifindex, xdp::XdpMode::Auto)
            .map_err(|e| IoError::os(format!("cannot attach the responder to {ifname}"), e))?;
        // SAFETY: a plain syscall wrapper; it returns a new descriptor we own, or a negative
        // error (the statistics then stay off and `run_time` reads zero).
        let stats = unsafe { libbpf_sys::bpf_enable_stats(libbpf_sys::BPF_STATS_RUN_TIME) };
        // SAFETY: `stats` is a descriptor just returned to us and owned by nobody else.
        let stats = (stats >= 0).then(|| unsafe { OwnedFd::from_raw_fd(stats) });
        Ok(Responder {
            _link: link,
            obj,
            _stats: stats,
        })
    }

    /// The program's runs and run time so far (zero when the kernel keeps no statistics).
    pub fn run_time(&self) -> RunTime {
        let Some(prog) = self.obj.progs().find(|p| p.name() == "xdpscan_responder") else {
            return RunTime::default();
        };
        let mut info = libbpf_sys::bpf_prog_info::default();
        let mut len = std::mem::size_of::<libbpf_sys::bpf_prog_info>() as u32;
        // SAFETY: `info` is a writable bpf_prog_info of `len` bytes; the kernel writes at most
        // that many.
        let r = unsafe {
            libbpf_sys::bpf_prog_get_info_by_fd(prog.as_fd().as_raw_fd(), &mut info, &mut len)
        };
        if r != 0 {
            return RunTime::default();
        }
        RunTime {
            runs: info.run_cnt,
            nanos: info.run_time_ns,
        }
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
            repeated: sum(4),
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
    fn a_quarter_of_the_answers_go_twice_and_silence_never() {
        let (mut answers, mut twice) = (0u32, 0u32);
        for a in 0..4096u32 {
            for p in [22u16, 80, 443, 8080] {
                let (ans, n) = (rule(0xc613_0000 + a, p), copies(0xc613_0000 + a, p));
                match ans {
                    Answer::Silent => assert_eq!(n, 0),
                    _ => {
                        answers += 1;
                        twice += (n == 2) as u32;
                        assert!(n == 1 || n == 2);
                    }
                }
            }
        }
        let share = twice as f64 / answers as f64;
        assert!((share - 0.25).abs() < 0.02, "{twice} of {answers}");
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
