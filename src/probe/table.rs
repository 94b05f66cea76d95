//! The scan types, one row each (ZMap's `probe_modules[]`): their names in nmap's, masscan's
//! and ZMap's terms, the protocol they probe, how they use ports, what they combine with, their
//! traceroute form, and how their module is built. The CLI's values, flags, help and aliases,
//! the names results carry, the plan's checks and the fuzz targets' list all read this table;
//! nothing else names a scan type's properties. A variant without a row does not compile
//! (`scan_types!` makes both from one list).

use super::{
    ack, ipproto, ping, sctp, stealth, syn, traceroute::TraceProto, udp, udp_payloads::Payloads,
    window, PortScan, Proto,
};
use crate::wire::TcpFlags as F;

/// What a module is built from: the scan's own type, the TCP flags (`--scanflags` or the
/// type's), and the UDP payloads.
pub(crate) struct ModuleArgs<'a> {
    pub(crate) scan: ScanType,
    pub(crate) tcp_flags: u8,
    pub(crate) payloads: &'a Payloads,
}

/// How a scan type runs.
#[derive(Clone, Copy)]
pub(crate) enum Mode {
    /// Raw probes from a probe module through the engine.
    Raw(fn(&ModuleArgs) -> Box<dyn PortScan>),
    /// The kernel's connections (`engine::connect`); its dry run shows the SYNs they would
    /// open.
    Connect,
    /// One probe per TTL (`probe::traceroute`), built from `--traceroute`'s options.
    Traceroute,
}

/// What `-p` gives a scan type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PortUse {
    /// Ports of its protocol (names and rankings from nmap-services).
    Ports,
    /// IP protocol numbers, 0-255 by default (`-sO`).
    Protocols,
    /// Nothing: one probe per address (ping sweeps).
    None,
}

/// One scan type.
pub struct ScanRow {
    /// `--scan`'s value and the name results, metadata and jobs carry.
    pub(crate) name: &'static str,
    /// The flags nmap (and masscan) users type for it (`-sS`; `-PE`, `--ping`).
    pub(crate) flags: &'static [&'static str],
    /// ZMap's probe module of the same scan, also accepted by `--scan`.
    pub(crate) zmap: Option<&'static str>,
    /// The `type` of nmap's `<scaninfo>`.
    pub(crate) nmap_type: &'static str,
    /// One line for `--help`.
    pub(crate) help: &'static str,
    /// The protocol its probes and results are of.
    pub(crate) proto: Proto,
    pub(crate) ports: PortUse,
    /// The TCP flags its probes carry; `--scanflags` replaces them (TCP scans only).
    pub(crate) tcp_flags: Option<u8>,
    /// Whether it combines with the types of other protocols (`-sS -sU -sY`: one type per
    /// protocol, each probing its own ports).
    pub(crate) combines: bool,
    /// The probes `--traceroute` sends when this is the scan asked.
    pub(crate) trace: Option<TraceProto>,
    /// Whether `--scan` chooses it (a traceroute is chosen by `--traceroute`).
    pub(crate) chosen_by_scan: bool,
    pub(crate) mode: Mode,
}

macro_rules! scan_types {
    ($($(#[$doc:meta])* $variant:ident => $row:expr,)*) => {
        /// The scan types this build knows; each one's facts are its row in [`SCAN_TYPES`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ScanType {
            $($(#[$doc])* $variant,)*
        }

        impl ScanType {
            /// Every scan type, in the table's order.
            pub const ALL: &'static [ScanType] = &[$(ScanType::$variant,)*];
        }

        /// One row per scan type, in [`ScanType`]'s order.
        pub static SCAN_TYPES: &[ScanRow] = &[$($row,)*];
    };
}

const fn port_scan(
    name: &'static str,
    flags: &'static [&'static str],
    help: &'static str,
    proto: Proto,
    build: fn(&ModuleArgs) -> Box<dyn PortScan>,
) -> ScanRow {
    ScanRow {
        name,
        flags,
        zmap: None,
        nmap_type: name,
        help,
        proto,
        ports: PortUse::Ports,
        tcp_flags: None,
        combines: true,
        trace: None,
        chosen_by_scan: true,
        mode: Mode::Raw(build),
    }
}

const fn tcp_scan(
    name: &'static str,
    flag: &'static [&'static str],
    help: &'static str,
    flags: u8,
    build: fn(&ModuleArgs) -> Box<dyn PortScan>,
) -> ScanRow {
    ScanRow {
        tcp_flags: Some(flags),
        ..port_scan(name, flag, help, Proto::Tcp, build)
    }
}

fn stealth(a: &ModuleArgs) -> Box<dyn PortScan> {
    Box::new(stealth::StealthScan::new(a.scan, a.tcp_flags))
}

scan_types! {
    /// `-sS`
    Syn => ScanRow {
        zmap: Some("tcp_synscan"),
        trace: Some(TraceProto::Tcp),
        ..tcp_scan("syn", &["-sS"], "SYN scan (open / closed / filtered)", F::SYN,
            |a| Box::new(syn::SynScan::new(a.tcp_flags)))
    },
    /// `-sA`
    Ack => tcp_scan("ack", &["-sA"], "ACK scan (unfiltered / filtered)", F::ACK,
        |a| Box::new(ack::AckScan::new(a.tcp_flags))),
    /// `-sW`
    Window => tcp_scan("window", &["-sW"],
        "window scan (open / closed by the RST's window; filtered)", F::ACK,
        |a| Box::new(window::WindowScan::new(a.tcp_flags))),
    /// `-sF`
    Fin => tcp_scan("fin", &["-sF"], "FIN scan (closed / filtered / open|filtered)", F::FIN,
        stealth),
    /// `-sN`
    Null => tcp_scan("null", &["-sN"], "null scan, no flags (closed / filtered / open|filtered)",
        0, stealth),
    /// `-sX`
    Xmas => tcp_scan("xmas", &["-sX"],
        "Xmas scan, FIN+PSH+URG (closed / filtered / open|filtered)", F::FIN | F::PSH | F::URG,
        stealth),
    /// `-sM`
    Maimon => tcp_scan("maimon", &["-sM"],
        "Maimon scan, FIN+ACK (closed / filtered / open|filtered)", F::FIN | F::ACK, stealth),
    /// `-sU`
    Udp => ScanRow {
        zmap: Some("udp"),
        trace: Some(TraceProto::Udp),
        ..port_scan("udp", &["-sU"],
            "UDP scan with per-port payloads (open / closed / filtered / open|filtered)",
            Proto::Udp, |a| Box::new(udp::UdpScan::new(a.payloads.clone())))
    },
    /// `-sY`
    SctpInit => ScanRow {
        nmap_type: "sctpinit",
        ..port_scan("sctpinit", &["-sY"], "SCTP INIT scan (open / closed / filtered)",
            Proto::Sctp, |_| Box::new(sctp::SctpScan::init()))
    },
    /// `-sZ`
    SctpCookieEcho => ScanRow {
        nmap_type: "sctpcookieecho",
        ..port_scan("sctpcookieecho", &["-sZ"],
            "SCTP COOKIE ECHO scan (closed / filtered / open|filtered)", Proto::Sctp,
            |_| Box::new(sctp::SctpScan::cookie_echo()))
    },
    /// `-sO`
    IpProto => ScanRow {
        ports: PortUse::Protocols,
        combines: false,
        ..port_scan("ipproto", &["-sO"], "IP protocol scan, -p selects protocol numbers (0-255)",
            Proto::Ip, |_| Box::new(ipproto::IpProtoScan))
    },
    /// `-PE` / `--ping`
    Ping => ScanRow {
        zmap: Some("icmp_echoscan"),
        ports: PortUse::None,
        combines: false,
        trace: Some(TraceProto::Icmp),
        ..port_scan("ping", &["-PE", "--ping"], "ICMP echo sweep (up / down)", Proto::Icmp,
            |_| Box::new(ping::PingScan))
    },
    /// `-sT`: kernel sockets, no probe module (see `engine::connect`).
    Connect => ScanRow {
        combines: false,
        mode: Mode::Connect,
        ..port_scan("connect", &["-sT"], "kernel connect() scan; needs no privileges and no AF_XDP",
            Proto::Tcp, |a| Box::new(syn::SynScan::new(a.tcp_flags)))
    },
    /// `--traceroute`: one probe per TTL (see `probe::traceroute`).
    Traceroute => ScanRow {
        // nmap's DTD knows port-scan types only: a traceroute probes as a SYN scan does (a
        // UDP one as a UDP scan: `ScanType::nmap_type`).
        nmap_type: "syn",
        combines: false,
        chosen_by_scan: false,
        mode: Mode::Traceroute,
        ..port_scan("traceroute", &["--traceroute"], "the path to each target, hop by hop",
            Proto::Tcp, |a| Box::new(syn::SynScan::new(a.tcp_flags)))
    },
}

impl ScanType {
    /// This type's row.
    #[inline]
    pub(crate) fn row(self) -> &'static ScanRow {
        &SCAN_TYPES[self as usize]
    }

    /// The scan type `name` names (as results and `--scan` spell it; ZMap's module names too).
    pub(crate) fn from_name(name: &str) -> Option<ScanType> {
        Self::ALL
            .iter()
            .copied()
            .find(|s| s.row().name == name || s.row().zmap == Some(name))
    }

    /// The scan type nmap's (or masscan's) flag chooses (`-sS`, `--ping`).
    pub(crate) fn from_flag(flag: &str) -> Option<ScanType> {
        Self::ALL
            .iter()
            .copied()
            .find(|s| s.row().chosen_by_scan && s.row().flags.contains(&flag))
    }

    pub(crate) fn name(self) -> &'static str {
        self.row().name
    }

    /// The `type` of nmap's `<scaninfo>` for this scan probing over `proto`.
    pub(crate) fn nmap_type(self, proto: Proto) -> &'static str {
        match self.row().mode {
            Mode::Traceroute if proto == Proto::Udp => ScanType::Udp.row().nmap_type,
            _ => self.row().nmap_type,
        }
    }

    /// The type a port of `proto` given with its prefix (`T:`, `U:`, `S:`) is probed by when
    /// no type of that protocol is asked: the first raw port scan of it (SYN, UDP, SCTP INIT),
    /// as masscan does.
    pub(crate) fn default_for(proto: Proto) -> Option<ScanType> {
        Self::ALL.iter().copied().find(|s| {
            let r = s.row();
            r.proto == proto && r.combines && matches!(r.mode, Mode::Raw(_))
        })
    }

    /// The probe module, with `--scanflags` replacing the TCP flags (the scan type still decides
    /// how replies are read, as nmap does) and the UDP payloads for `-sU`. `None` for the modes
    /// that are not a port scan's module (connect, traceroute).
    pub fn module(self, scanflags: Option<u8>, payloads: &Payloads) -> Option<Box<dyn PortScan>> {
        let Mode::Raw(build) = self.row().mode else {
            return None;
        };
        Some(self.build(build, scanflags, payloads))
    }

    /// The SYN module a connect scan's dry run shows (the probes its connections would open),
    /// or [`Self::module`].
    pub(crate) fn stand_in(self, scanflags: Option<u8>, payloads: &Payloads) -> Box<dyn PortScan> {
        match self.row().mode {
            Mode::Raw(build) => self.build(build, scanflags, payloads),
            Mode::Connect | Mode::Traceroute => ScanType::Syn
                .module(scanflags, payloads)
                .expect("SYN is a raw scan"),
        }
    }

    fn build(
        self,
        build: fn(&ModuleArgs) -> Box<dyn PortScan>,
        scanflags: Option<u8>,
        payloads: &Payloads,
    ) -> Box<dyn PortScan> {
        build(&ModuleArgs {
            scan: self,
            tcp_flags: scanflags.or(self.row().tcp_flags).unwrap_or(0),
            payloads,
        })
    }
}

/// By its table name (`syn`, `udp`), in a job's stored request.
impl serde::Serialize for ScanType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for ScanType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ScanType::from_name(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("no scan type {s:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_row_is_its_own_and_names_are_unique() {
        assert_eq!(ScanType::ALL.len(), SCAN_TYPES.len());
        let mut names = HashSet::new();
        let mut flags = HashSet::new();
        for &t in ScanType::ALL {
            let r = t.row();
            assert!(names.insert(r.name), "{} twice", r.name);
            if let Some(z) = r.zmap.filter(|z| *z != r.name) {
                assert!(names.insert(z), "{z} twice");
            }
            for f in r.flags {
                assert!(flags.insert(*f), "{f} twice");
            }
            assert_eq!(ScanType::from_name(r.name), Some(t));
            if r.chosen_by_scan {
                assert_eq!(ScanType::from_flag(r.flags[0]), Some(t));
            }
            // Every raw type builds a module that says it is that type, of the row's protocol.
            if let Some(m) = t.module(None, &Payloads::builtin()) {
                assert_eq!(m.scan(), t, "{}", r.name);
                assert_eq!(m.result_proto(), r.proto, "{}", r.name);
            }
            // --scanflags applies to the raw TCP types only.
            assert!(r.tcp_flags.is_none() || r.proto == Proto::Tcp, "{}", r.name);
        }
    }

    #[test]
    fn each_protocol_has_its_default_type() {
        assert_eq!(ScanType::default_for(Proto::Tcp), Some(ScanType::Syn));
        assert_eq!(ScanType::default_for(Proto::Udp), Some(ScanType::Udp));
        assert_eq!(ScanType::default_for(Proto::Sctp), Some(ScanType::SctpInit));
        assert_eq!(ScanType::default_for(Proto::Ip), None);
    }

    #[test]
    fn modes_without_a_module_say_so() {
        let p = Payloads::empty();
        assert!(ScanType::Connect.module(None, &p).is_none());
        assert!(ScanType::Traceroute.module(None, &p).is_none());
        assert_eq!(ScanType::Connect.stand_in(None, &p).scan(), ScanType::Syn);
    }
}
