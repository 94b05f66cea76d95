//! NDJSON: one JSON object per result per line (the default, on stdout).
//!
//! Fields: `ip`, `port`, `proto`, `state`, `reason`, `ttl`, `scan`, `ts` (RFC 3339 UTC), and
//! `responder` when someone other than the target answered; with `--banners` / `-sV` also
//! `banner` (escaped), `probe` (what we sent, if anything) and `service`; with `--grab`
//! `data`, ZGrab2's object of each module's result; with `--traceroute`
//! `trace` (`reached`, `hops` of `ttl`, `ip` or null, `rtt_ms`).
//!
//! Results published to NATS (`dist`) are these lines with one more field, `x`: the reply's
//! facts the line leaves out (ZMap's CSV fields), so `from_line` gives back the whole
//! [`Record`] and `collect` writes every format as the scanner would have.

use std::{net::IpAddr, sync::Arc};

use serde::{Deserialize, Serialize};

use super::{file::OutFile, rfc3339, Record, ReplyFacts, RunEnd, Sink, Trace, TraceHop};
use crate::probe::{PortState, Proto, Reason, ScanType};

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
    /// `--grab`: ZGrab2's `data` (each module's result under its name).
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x: Option<Facts>,
}

/// The rest of a [`Record`], for lines published between machines.
#[derive(Serialize, Deserialize)]
struct Facts {
    local: IpAddr,
    ipid: u32,
    window: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    icmp: Option<(u8, u8)>,
    our_port: u16,
    cooldown: bool,
}

#[derive(Deserialize)]
struct LineIn {
    ip: IpAddr,
    port: u16,
    proto: Proto,
    state: PortState,
    reason: Reason,
    ttl: u8,
    #[serde(default)]
    responder: Option<IpAddr>,
    scan: String,
    ts: String,
    #[serde(default)]
    banner: Option<String>,
    #[serde(default)]
    probe: Option<String>,
    #[serde(default)]
    service: Option<crate::service::Service>,
    #[serde(default)]
    trace: Option<TraceIn>,
    #[serde(default)]
    data: Option<serde_json::Value>,
    #[serde(default)]
    x: Option<Facts>,
}

#[derive(Deserialize)]
struct TraceIn {
    proto: Proto,
    port: u16,
    reached: bool,
    hops: Vec<HopIn>,
}

#[derive(Deserialize)]
struct HopIn {
    ttl: u8,
    ip: Option<IpAddr>,
    #[serde(default)]
    rtt_ms: Option<f64>,
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
    /// `-f LIST` without `--csv`: objects of these fields only, named as ZMap's JSON output
    /// names them (`{"saddr":"198.19.0.5","sport":80}`).
    fields: Option<Vec<super::csv::Field>>,
}

impl NdjsonSink {
    pub fn new(out: OutFile) -> Self {
        Self { out, fields: None }
    }

    pub(crate) fn with_fields(out: OutFile, fields: Option<Vec<super::csv::Field>>) -> Self {
        Self { out, fields }
    }
}

pub(crate) fn to_line(r: &Record) -> String {
    serde_json::to_string(&line(r, false)).expect("a record always serializes")
}

/// `to_line` with the reply's facts (`x`), as results travel between machines.
pub(crate) fn to_wire_line(r: &Record) -> String {
    serde_json::to_string(&line(r, true)).expect("a record always serializes")
}

/// The record a line of `to_line` or `to_wire_line` holds (a plain line: without the facts).
pub(crate) fn from_line(s: &str) -> Result<Record, String> {
    let l: LineIn = serde_json::from_str(s).map_err(|e| e.to_string())?;
    let scan = ScanType::from_name(&l.scan).ok_or_else(|| format!("unknown scan {:?}", l.scan))?;
    let ts = humantime::parse_rfc3339(&l.ts).map_err(|e| format!("ts: {e}"))?;
    let app = match &l.data {
        Some(d) => crate::app::from_data(d)?,
        None => Vec::new(),
    };
    let grab = match (l.banner, l.probe, l.service) {
        (None, None, None) if app.is_empty() => None,
        (banner, probe, service) => Some(Arc::new(crate::service::Grab {
            banner: match banner {
                Some(b) => crate::service::unescape_banner(&b).ok_or("banner: bad escape")?,
                None => Vec::new(),
            },
            probe,
            service,
            app,
        })),
    };
    let trace = l.trace.map(|t| {
        Arc::new(Trace {
            proto: t.proto,
            port: t.port,
            reached: t.reached,
            hops: t
                .hops
                .into_iter()
                .map(|h| TraceHop {
                    ttl: h.ttl,
                    ip: h.ip,
                    rtt_us: h.rtt_ms.map(|m| (m * 1000.0).round() as u32),
                })
                .collect(),
        })
    });
    let mut r = Record::new(l.ip, l.port, l.proto, l.state, l.reason, scan);
    r.ttl = l.ttl;
    r.responder = l.responder;
    r.ts = ts;
    r.grab = grab;
    r.trace = trace;
    if let Some(x) = l.x {
        r.local = x.local;
        r.facts = ReplyFacts {
            ipid: x.ipid,
            window: x.window,
            icmp: x.icmp,
            our_port: x.our_port,
        };
        r.cooldown = x.cooldown;
    }
    Ok(r)
}

fn line(r: &Record, facts: bool) -> Line<'_> {
    Line {
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
        data: r
            .grab
            .as_ref()
            .filter(|g| !g.app.is_empty())
            .map(|g| crate::app::data_json(&g.app)),
        x: facts.then_some(Facts {
            local: r.local,
            ipid: r.facts.ipid,
            window: r.facts.window,
            icmp: r.facts.icmp,
            our_port: r.facts.our_port,
            cooldown: r.cooldown,
        }),
    }
}

impl Sink for NdjsonSink {
    fn write(&mut self, r: &Record) -> std::io::Result<()> {
        let mut line = match &self.fields {
            Some(f) => super::csv::to_json(r, f),
            None => to_line(r),
        };
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

    #[test]
    fn wire_lines_give_the_record_back() {
        let mut r = record([198, 19, 0, 5], 80, PortState::Open, Reason::SynAck);
        r.local = "198.18.0.1".parse().unwrap();
        r.facts = ReplyFacts {
            ipid: 7,
            window: 29200,
            icmp: None,
            our_port: 61234,
        };
        r.cooldown = true;
        r.responder = Some("198.18.0.2".parse().unwrap());
        r.grab = Some(Arc::new(crate::service::Grab {
            banner: b"SSH-2.0-x\r\n\x00\xff\\".to_vec(),
            probe: Some("GetRequest".into()),
            service: None,
            app: vec![crate::app::AppResult {
                module: "ssh".into(),
                status: "success".into(),
                protocol: "ssh".into(),
                result: serde_json::json!({"server_id": {"raw": "SSH-2.0-x"}}),
                timestamp: "2026-11-18T11:06:40Z".into(),
                error: None,
            }],
        }));
        r.trace = Some(Arc::new(Trace {
            proto: Proto::Tcp,
            port: 80,
            reached: true,
            hops: vec![
                TraceHop {
                    ttl: 1,
                    ip: Some("198.18.0.2".parse().unwrap()),
                    rtt_us: Some(1500),
                },
                TraceHop {
                    ttl: 2,
                    ip: None,
                    rtt_us: None,
                },
            ],
        }));
        let back = from_line(&to_wire_line(&r)).unwrap();
        assert_eq!(back, r);
        // A plain line gives the record without the facts.
        let plain = from_line(&to_line(&r)).unwrap();
        assert_eq!(plain.facts, ReplyFacts::default());
        assert_eq!((plain.ip, plain.port, plain.state), (r.ip, r.port, r.state));
        for bad in ["", "{}", "not json", r#"{"ip":"x"}"#] {
            assert!(from_line(bad).is_err(), "{bad}");
        }
    }
}
