//! Results and where they go. The engine hands every first verdict for an (address, port) to a
//! [`Sink`]; each format is one module.

pub mod ndjson;

use std::{net::Ipv4Addr, time::SystemTime};

use crate::probe::{PortState, Proto, Reason, Verdict};

/// One result as reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    pub ip: Ipv4Addr,
    pub port: u16,
    pub proto: Proto,
    pub state: PortState,
    pub reason: Reason,
    pub ttl: u8,
    /// Who answered, when it is not the target itself (a router's ICMP error).
    pub responder: Option<Ipv4Addr>,
    pub scan: &'static str,
    pub ts: SystemTime,
}

impl Record {
    pub fn from_verdict(v: &Verdict, scan: &'static str, ts: SystemTime) -> Self {
        Self {
            ip: Ipv4Addr::from(v.ip),
            port: v.port,
            proto: v.proto,
            state: v.state,
            reason: v.reason,
            ttl: v.ttl,
            responder: (v.responder != v.ip).then(|| Ipv4Addr::from(v.responder)),
            scan,
            ts,
        }
    }
}

/// A destination for results. Writes must leave the output valid at every record boundary.
pub trait Sink: Send {
    fn write(&mut self, r: &Record) -> std::io::Result<()>;
    /// Flushes and closes the document (called once, also after an interruption).
    fn finish(&mut self) -> std::io::Result<()>;
}

/// RFC 3339 UTC with microseconds, as `2026-11-22T10:00:00.123456Z`.
pub fn rfc3339(ts: SystemTime) -> String {
    humantime::format_rfc3339_micros(ts).to_string()
}
