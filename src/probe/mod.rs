//! Scan types. Each module builds its probe template, patches it per target, and classifies a
//! reply into nmap's port states, with no state kept per probe (ZMap's probe-module idea).
//! Adding a scan type is adding one file and one arm in [`ScanType::module`].

pub mod syn;
pub mod tcp;

use std::{fmt, net::Ipv4Addr};

use serde::Serialize;

use crate::{
    cookie::{CookieJar, ProbeCookie},
    wire::{template::FrameParams, template::FrameTemplate, Ipv4Packet},
};

/// nmap's port states (its reference guide, "Port Scanning Basics").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
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
}

impl PortState {
    pub const ALL: [PortState; 6] = [
        PortState::Open,
        PortState::Closed,
        PortState::Filtered,
        PortState::Unfiltered,
        PortState::OpenFiltered,
        PortState::ClosedFiltered,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            PortState::Open => "open",
            PortState::Closed => "closed",
            PortState::Filtered => "filtered",
            PortState::Unfiltered => "unfiltered",
            PortState::OpenFiltered => "open|filtered",
            PortState::ClosedFiltered => "closed|filtered",
        }
    }
}

impl fmt::Display for PortState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a state was decided, spelled as nmap's `--reason` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
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
}

impl Reason {
    pub fn as_str(self) -> &'static str {
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
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Transport protocol of a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// What one validated reply says about one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// The scanned address (for an ICMP error: the one quoted, not the router's).
    pub ip: u32,
    pub port: u16,
    pub proto: Proto,
    pub state: PortState,
    pub reason: Reason,
    /// TTL of the reply as received.
    pub ttl: u8,
    /// Who sent the reply (differs from `ip` for ICMP errors from routers).
    pub responder: u32,
}

impl Verdict {
    pub fn ip_addr(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.ip)
    }
}

/// The outcome of looking at one received IPv4 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classified {
    /// A reply to one of our probes.
    Verdict(Verdict),
    /// Addressed to our port range but failing the cookie: forged, stale or from another scan.
    Invalid,
    /// Not a reply this scan type understands.
    Unrelated,
}

/// What a probe module needs to validate replies.
#[derive(Debug, Clone)]
pub struct ClassifyCtx {
    pub jar: CookieJar,
    pub src_ip: u32,
}

/// A scan type: the template, the per-target patch, and the classification of replies.
pub trait ProbeModule: Send + Sync {
    /// Short name used in results and metadata (`"syn"`).
    fn name(&self) -> &'static str;
    /// IP protocol of the probes (the cookie covers it).
    fn ip_proto(&self) -> u8;
    /// The frame every probe of this type starts from.
    fn template(&self, params: &FrameParams) -> FrameTemplate;
    /// Writes the probe for `dst:dport` into `frame`, returns its length.
    fn write(
        &self,
        frame: &mut [u8],
        tpl: &FrameTemplate,
        dst: u32,
        dport: u16,
        c: &ProbeCookie,
    ) -> usize;
    /// Classifies a received IPv4 packet addressed to us.
    fn classify(&self, ip: &Ipv4Packet<&[u8]>, ctx: &ClassifyCtx) -> Classified;
}

/// The scan types this build knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanType {
    Syn,
}

impl ScanType {
    pub fn module(self) -> Box<dyn ProbeModule> {
        match self {
            ScanType::Syn => Box::new(syn::SynScan),
        }
    }
}
