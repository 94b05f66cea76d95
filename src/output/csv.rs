//! CSV (`--csv F`) with columns chosen by `-f/--fields`, named as ZMap names them where it has
//! the field. `--list-fields` prints them all.

use super::{file::OutFile, rfc3339, Record, RunEnd, Sink};

/// A CSV column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Saddr,
    Sport,
    Daddr,
    Dport,
    Proto,
    State,
    Reason,
    Classification,
    Success,
    Ttl,
    Ipid,
    Window,
    IcmpResponder,
    IcmpType,
    IcmpCode,
    Cooldown,
    Scan,
    TimestampStr,
    TimestampTs,
    TimestampUs,
    Banner,
    Service,
    Product,
    Version,
    Hops,
}

/// Every field: the column, its name and what it holds.
pub const FIELDS: &[(Field, &str, &str)] = &[
    (Field::Saddr, "saddr", "address of the target that answered (ZMap: saddr)"),
    (Field::Sport, "sport", "target port (protocol number for -sO, 0 for ping sweeps)"),
    (Field::Daddr, "daddr", "our address the reply was sent to"),
    (Field::Dport, "dport", "our port the reply was sent to (for ICMP errors: the port they quote)"),
    (Field::Proto, "proto", "tcp, udp, icmp or ip"),
    (Field::State, "state", "nmap's state: open, closed, filtered, unfiltered, open|filtered, closed|filtered, up, down"),
    (Field::Reason, "reason", "nmap's reason: syn-ack, reset, port-unreach, no-response..."),
    (Field::Classification, "classification", "the same as reason (ZMap's name)"),
    (Field::Success, "success", "1 for open, unfiltered and up, else 0"),
    (Field::Ttl, "ttl", "IP TTL of the reply"),
    (Field::Ipid, "ipid", "IP identification of the reply (IPv6: its flow label)"),
    (Field::Window, "window", "TCP window of a TCP reply"),
    (Field::IcmpResponder, "icmp_responder", "who sent an ICMP reply when it is not the target"),
    (Field::IcmpType, "icmp_type", "ICMP type of an ICMP reply"),
    (Field::IcmpCode, "icmp_code", "ICMP code of an ICMP reply"),
    (Field::Cooldown, "cooldown", "1 if the reply arrived after the last probe was sent"),
    (Field::Scan, "scan", "scan type: syn, ack, udp, ping..."),
    (Field::TimestampStr, "timestamp_str", "when the reply arrived, RFC 3339 UTC"),
    (Field::TimestampTs, "timestamp_ts", "when the reply arrived, seconds since the epoch"),
    (Field::TimestampUs, "timestamp_us", "microseconds part of that time"),
    (Field::Banner, "banner", "what an open port said (--banners, -sV), escaped"),
    (Field::Service, "service", "service name (-sV)"),
    (Field::Product, "product", "product name (-sV)"),
    (Field::Version, "version", "product version (-sV)"),
    (Field::Hops, "hops", "the path, space-separated, '*' for silent TTLs (--traceroute)"),
];

pub(crate) const DEFAULT_FIELDS: &str = "saddr,sport,proto,state,reason,ttl,timestamp_str";

/// Checks a field list; the error names the unknown field.
pub(crate) fn parse_fields(spec: &str) -> Result<Vec<Field>, String> {
    spec.split(',')
        .map(str::trim)
        .map(|f| {
            FIELDS
                .iter()
                .find(|(_, n, _)| *n == f)
                .map(|(field, _, _)| *field)
                .ok_or_else(|| format!("unknown field '{f}' (see --list-fields)"))
        })
        .collect()
}

impl Field {
    pub(crate) fn name(self) -> &'static str {
        FIELDS
            .iter()
            .find(|(f, _, _)| *f == self)
            .map(|(_, n, _)| *n)
            .expect("every field is in the table")
    }
}

pub(crate) struct CsvSink {
    out: OutFile,
    fields: Vec<Field>,
}

impl CsvSink {
    pub(crate) fn new(mut out: OutFile, fields: Vec<Field>) -> std::io::Result<Self> {
        let names: Vec<&str> = fields.iter().map(|f| f.name()).collect();
        if out.is_empty() {
            out.header(format!("{}\n", names.join(",")).as_bytes())?;
        }
        Ok(Self { out, fields })
    }
}

fn service(r: &Record) -> Option<&crate::service::Service> {
    r.grab.as_ref().and_then(|g| g.service.as_ref())
}

fn value(r: &Record, f: Field) -> String {
    let ts =
        r.ts.duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
    match f {
        Field::Saddr => r.ip.to_string(),
        Field::Sport => r.port.to_string(),
        Field::Daddr => r.local.to_string(),
        Field::Dport => r.facts.our_port.to_string(),
        Field::Proto => r.proto.as_str().into(),
        Field::State => r.state.as_str().into(),
        Field::Reason | Field::Classification => r.reason.as_str().into(),
        Field::Success => u8::from(r.success()).to_string(),
        Field::Ttl => r.ttl.to_string(),
        Field::Ipid => r.facts.ipid.to_string(),
        Field::Window => r.facts.window.to_string(),
        Field::IcmpResponder => r.responder.map(|a| a.to_string()).unwrap_or_default(),
        Field::IcmpType => r.facts.icmp.map(|(t, _)| t.to_string()).unwrap_or_default(),
        Field::IcmpCode => r.facts.icmp.map(|(_, c)| c.to_string()).unwrap_or_default(),
        Field::Cooldown => u8::from(r.cooldown).to_string(),
        Field::Scan => r.scan.name().into(),
        Field::TimestampStr => rfc3339(r.ts),
        Field::TimestampTs => ts.as_secs().to_string(),
        Field::TimestampUs => ts.subsec_micros().to_string(),
        Field::Banner => r
            .grab
            .as_ref()
            .map(|g| crate::service::escape_banner(&g.banner))
            .unwrap_or_default(),
        Field::Service => service(r).map(|s| s.name.clone()).unwrap_or_default(),
        Field::Product => service(r)
            .and_then(|s| s.details.product.clone())
            .unwrap_or_default(),
        Field::Version => service(r)
            .and_then(|s| s.details.version.clone())
            .unwrap_or_default(),
        Field::Hops => r
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
    }
}

/// One JSON object of the chosen fields, as ZMap's JSON output writes them: counts and numbers
/// as JSON numbers, the rest as strings, a field the result lacks as null.
pub(crate) fn to_json(r: &Record, fields: &[Field]) -> String {
    let mut obj = serde_json::Map::new();
    for &f in fields {
        let v = value(r, f);
        let numeric = matches!(
            f,
            Field::Sport
                | Field::Dport
                | Field::Success
                | Field::Ttl
                | Field::Ipid
                | Field::Window
                | Field::IcmpType
                | Field::IcmpCode
                | Field::Cooldown
                | Field::TimestampTs
                | Field::TimestampUs
        );
        let json = match v.parse::<u64>() {
            Ok(n) if numeric => serde_json::Value::from(n),
            _ if v.is_empty() => serde_json::Value::Null,
            _ => serde_json::Value::from(v),
        };
        obj.insert(f.name().to_string(), json);
    }
    serde_json::Value::Object(obj).to_string()
}

pub(crate) fn to_row(r: &Record, fields: &[Field]) -> String {
    let mut row: String = fields
        .iter()
        .map(|f| {
            let v = value(r, *f);
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
