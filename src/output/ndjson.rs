//! NDJSON: one JSON object per result per line, the default on stdout.
//!
//! Fields: `ip`, `port`, `proto`, `state`, `reason`, `ttl`, `ts` (RFC 3339 UTC), `scan`, and
//! `responder` when someone other than the target answered.

use std::io::Write;

use serde::Serialize;

use super::{rfc3339, Record, Sink};

#[derive(Serialize)]
struct Line<'a> {
    ip: String,
    port: u16,
    proto: &'a str,
    state: &'a str,
    reason: &'a str,
    ttl: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    responder: Option<String>,
    scan: &'a str,
    ts: String,
}

pub struct NdjsonSink<W: Write + Send> {
    out: W,
    line: Vec<u8>,
}

impl<W: Write + Send> NdjsonSink<W> {
    pub fn new(out: W) -> Self {
        Self {
            out,
            line: Vec::with_capacity(256),
        }
    }
}

pub fn to_line(r: &Record) -> String {
    let l = Line {
        ip: r.ip.to_string(),
        port: r.port,
        proto: r.proto.as_str(),
        state: r.state.as_str(),
        reason: r.reason.as_str(),
        ttl: r.ttl,
        responder: r.responder.map(|a| a.to_string()),
        scan: r.scan,
        ts: rfc3339(r.ts),
    };
    serde_json::to_string(&l).expect("a record always serializes")
}

impl<W: Write + Send> Sink for NdjsonSink<W> {
    fn write(&mut self, r: &Record) -> std::io::Result<()> {
        // Whole lines only: a failed write never leaves half a JSON object behind us.
        self.line.clear();
        self.line.extend_from_slice(to_line(r).as_bytes());
        self.line.push(b'\n');
        self.out.write_all(&self.line)
    }

    fn finish(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{PortState, Proto, Reason};
    use std::{
        net::Ipv4Addr,
        time::{Duration, UNIX_EPOCH},
    };

    #[test]
    fn stable_line() {
        let r = Record {
            ip: Ipv4Addr::new(198, 19, 0, 5),
            port: 80,
            proto: Proto::Tcp,
            state: PortState::Open,
            reason: Reason::SynAck,
            ttl: 64,
            responder: None,
            scan: "syn",
            ts: UNIX_EPOCH + Duration::from_micros(1_795_000_000_123_456),
        };
        assert_eq!(
            to_line(&r),
            r#"{"ip":"198.19.0.5","port":80,"proto":"tcp","state":"open","reason":"syn-ack","ttl":64,"scan":"syn","ts":"2026-11-18T11:06:40.123456Z"}"#
        );
    }
}
