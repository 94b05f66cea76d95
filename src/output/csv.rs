//! CSV (`--csv F`) with columns chosen by `-f/--fields`, named as ZMap names them where it has
//! the field. `--list-fields` prints them all.

use super::{file::OutFile, rfc3339, Record, RunEnd, Sink};

/// Every field: name and what it holds.
pub const FIELDS: &[(&str, &str)] = &[
    ("saddr", "address of the target that answered (ZMap: saddr)"),
    ("sport", "target port (protocol number for -sO, 0 for ping sweeps)"),
    ("daddr", "our address the reply was sent to"),
    ("dport", "our port the reply was sent to (for ICMP errors: the port they quote)"),
    ("proto", "tcp, udp, icmp or ip"),
    ("state", "nmap's state: open, closed, filtered, unfiltered, open|filtered, closed|filtered, up, down"),
    ("reason", "nmap's reason: syn-ack, reset, port-unreach, no-response..."),
    ("classification", "the same as reason (ZMap's name)"),
    ("success", "1 for open, unfiltered and up, else 0"),
    ("ttl", "IP TTL of the reply"),
    ("ipid", "IP identification of the reply"),
    ("window", "TCP window of a TCP reply"),
    ("icmp_responder", "who sent an ICMP reply when it is not the target"),
    ("icmp_type", "ICMP type of an ICMP reply"),
    ("icmp_code", "ICMP code of an ICMP reply"),
    ("cooldown", "1 if the reply arrived after the last probe was sent"),
    ("scan", "scan type: syn, ack, udp, ping..."),
    ("timestamp_str", "when the reply arrived, RFC 3339 UTC"),
    ("timestamp_ts", "when the reply arrived, seconds since the epoch"),
    ("timestamp_us", "microseconds part of that time"),
    ("banner", "what an open port said (--banners, -sV), escaped"),
    ("service", "service name (-sV)"),
    ("product", "product name (-sV)"),
    ("version", "product version (-sV)"),
    ("hops", "the path, space-separated, '*' for silent TTLs (--traceroute)"),
];

pub const DEFAULT_FIELDS: &str = "saddr,sport,proto,state,reason,ttl,timestamp_str";

/// Checks a field list; the error names the unknown field.
pub fn parse_fields(spec: &str) -> Result<Vec<&'static str>, String> {
    spec.split(',')
        .map(str::trim)
        .map(|f| {
            FIELDS
                .iter()
                .find(|(n, _)| *n == f)
                .map(|(n, _)| *n)
                .ok_or_else(|| format!("unknown field '{f}' (see --list-fields)"))
        })
        .collect()
}

pub struct CsvSink {
    out: OutFile,
    fields: Vec<&'static str>,
}

impl CsvSink {
    pub fn new(mut out: OutFile, fields: Vec<&'static str>) -> std::io::Result<Self> {
        out.header(format!("{}\n", fields.join(",")).as_bytes())?;
        Ok(Self { out, fields })
    }
}

fn service(r: &Record) -> Option<&crate::service::Service> {
    r.grab.as_ref().and_then(|g| g.service.as_ref())
}

fn value(r: &Record, f: &str) -> String {
    let ts =
        r.ts.duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
    match f {
        "saddr" => r.ip.to_string(),
        "sport" => r.port.to_string(),
        "daddr" => r.local.to_string(),
        "dport" => r.facts.our_port.to_string(),
        "proto" => r.proto.as_str().into(),
        "state" => r.state.as_str().into(),
        "reason" | "classification" => r.reason.as_str().into(),
        "success" => u8::from(r.success()).to_string(),
        "ttl" => r.ttl.to_string(),
        "ipid" => r.facts.ipid.to_string(),
        "window" => r.facts.window.to_string(),
        "icmp_responder" => r.responder.map(|a| a.to_string()).unwrap_or_default(),
        "icmp_type" => r.facts.icmp.map(|(t, _)| t.to_string()).unwrap_or_default(),
        "icmp_code" => r.facts.icmp.map(|(_, c)| c.to_string()).unwrap_or_default(),
        "cooldown" => u8::from(r.cooldown).to_string(),
        "scan" => r.scan.into(),
        "timestamp_str" => rfc3339(r.ts),
        "timestamp_ts" => ts.as_secs().to_string(),
        "timestamp_us" => ts.subsec_micros().to_string(),
        "banner" => r
            .grab
            .as_ref()
            .map(|g| crate::service::escape_banner(&g.banner))
            .unwrap_or_default(),
        "service" => service(r).map(|s| s.name.clone()).unwrap_or_default(),
        "product" => service(r)
            .and_then(|s| s.details.product.clone())
            .unwrap_or_default(),
        "version" => service(r)
            .and_then(|s| s.details.version.clone())
            .unwrap_or_default(),
        "hops" => r
            .trace
            .as_ref()
            .map(|t| {
                t.hops
                    .iter()
                    .map(|h| h.ip.map(|a| a.to_string()).unwrap_or_else(|| "*".into()))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default(),
        _ => String::new(),
    }
}

pub fn to_row(r: &Record, fields: &[&str]) -> String {
    let mut row: String = fields
        .iter()
        .map(|f| {
            let v = value(r, f);
            // Only `state` can hold a comma-free '|'; quote anything a CSV reader might split.
            if v.contains([',', '"', '\n']) {
                format!("\"{}\"", v.replace('"', "\"\""))
            } else {
                v
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    row.push('\n');
    row
}

impl Sink for CsvSink {
    fn write(&mut self, r: &Record) -> std::io::Result<()> {
        self.out.record(to_row(r, &self.fields).as_bytes())
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
    fn rows_in_the_chosen_order() {
        let r = record([198, 19, 0, 5], 80, PortState::Open, Reason::SynAck);
        let f = parse_fields("saddr,sport,success,window,dport,timestamp_ts,timestamp_us").unwrap();
        assert_eq!(
            to_row(&r, &f),
            "198.19.0.5,80,1,64240,61234,1795000000,123456\n"
        );
        assert!(parse_fields("saddr,bogus").unwrap_err().contains("bogus"));
        assert_eq!(parse_fields(DEFAULT_FIELDS).unwrap().len(), 7);
    }
}
