//! NDJSON: one JSON object per result per line (the default, on stdout).
//!
//! Fields: `ip`, `port`, `proto`, `state`, `reason`, `ttl`, `scan`, `ts` (RFC 3339 UTC), and
//! `responder` when someone other than the target answered; with `--banners` / `-sV` also
//! `banner` (escaped), `probe` (what we sent, if anything) and `service`; with `--traceroute`
//! `trace` (`reached`, `hops` of `ttl`, `ip` or null, `rtt_ms`).

use serde::Serialize;

use super::{file::OutFile, rfc3339, Record, RunEnd, Sink};

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
    #[serde(skip_serializing_if = "Option::is_none")]
    banner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    probe: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service: Option<&'a crate::service::Service>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace: Option<TraceJson>,
}

#[derive(Serialize)]
struct TraceJson {
    proto: &'static str,
    port: u16,
    reached: bool,
    hops: Vec<HopJson>,
}

#[derive(Serialize)]
struct HopJson {
    ttl: u8,
    ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rtt_ms: Option<f64>,
}

pub struct NdjsonSink {
    out: OutFile,
}

impl NdjsonSink {
    pub fn new(out: OutFile) -> Self {
        Self { out }
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
        scan: r.scan.name(),
        ts: rfc3339(r.ts),
        banner: r
            .grab
            .as_ref()
            .map(|g| crate::service::escape_banner(&g.banner)),
        probe: r.grab.as_ref().and_then(|g| g.probe.as_deref()),
        service: r.grab.as_ref().and_then(|g| g.service.as_ref()),
        trace: r.trace.as_ref().map(|t| TraceJson {
            proto: t.proto.as_str(),
            port: t.port,
            reached: t.reached,
            hops: t
                .hops
                .iter()
                .map(|h| HopJson {
                    ttl: h.ttl,
                    ip: h.ip.map(|a| a.to_string()),
                    rtt_ms: h.rtt_us.map(|u| u as f64 / 1000.0),
                })
                .collect(),
        }),
    };
    serde_json::to_string(&l).expect("a record always serializes")
}

impl Sink for NdjsonSink {
    fn write(&mut self, r: &Record) -> std::io::Result<()> {
        let mut line = to_line(r);
        line.push('\n');
        self.out.record(line.as_bytes())
    }

    fn finish(&mut self, _end: &RunEnd) -> std::io::Result<()> {
        self.out.footer(b"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        output::testutil::record,
        probe::{PortState, Reason},
    };

    #[test]
    fn stable_line() {
        let r = record([198, 19, 0, 5], 80, PortState::Open, Reason::SynAck);
        assert_eq!(
            to_line(&r),
            r#"{"ip":"198.19.0.5","port":80,"proto":"tcp","state":"open","reason":"syn-ack","ttl":64,"scan":"syn","ts":"2026-11-18T11:06:40.123456Z"}"#
        );
    }
}
