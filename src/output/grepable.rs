//! nmap's grepable format (`-oG`): per host, a `Status:` line and a line with all its ports,
//! `Host: 198.19.0.5 ()\tPorts: 22/open/tcp//ssh///, 80/open/tcp//http///`
//! (port/state/protocol/owner/service/rpc/version/), between nmap's comment header and footer.
//! Grouped by host like the XML, through [`grouped::Document`].

use std::sync::Arc;

use super::{
    ctime,
    file::OutFile,
    grouped::{Document, Entry, HostKey},
    unix_secs, Record, RunEnd, RunInfo, Sink,
};
use crate::{
    probe::{PortState, Proto},
    targets::services::PortTable,
};

/// Entry tags: a ping result, a port, an IP protocol (-sO).
const PING: u8 = b'H';
const PORT: u8 = b'P';
const PROTOCOL: u8 = b'O';

pub(crate) struct GrepableSink {
    doc: Document,
    table: Option<Arc<PortTable>>,
    addresses: Option<u64>,
}

impl GrepableSink {
    pub(crate) fn new(
        mut out: OutFile,
        info: &RunInfo,
        keeper: &crate::io::keeper::Keeper,
    ) -> std::io::Result<Self> {
        let mut head = comment_header(info);
        if !info.port_lists.is_empty() {
            let lists: Vec<String> = info
                .port_lists
                .iter()
                .map(|(_, proto, ports)| {
                    let kind = match proto {
                        Proto::Udp => "UDP",
                        Proto::Sctp => "SCTP",
                        Proto::Ip => "PROTOCOLS",
                        _ => "TCP",
                    };
                    format!("{kind}({};{ports})", ports.len())
                })
                .collect();
            head.push_str(&format!("# Ports scanned: {}\n", lists.join(" ")));
        }
        out.header(head.as_bytes())?;
        Ok(Self {
            doc: Document::new(out, info.resuming, keeper)?,
            table: info.port_table.clone(),
            addresses: info.addresses,
        })
    }
}

/// One result's piece of its host's lines.
pub(crate) fn entry(r: &Record, table: Option<&PortTable>) -> Entry {
    let (order, tag, text) = match r.proto {
        Proto::Icmp => {
            let status = if r.state == PortState::Up {
                "Up"
            } else {
                "Down"
            };
            (0, PING, status.to_string())
        }
        Proto::Ip => (
            super::xml::port_order(r.proto, r.port),
            PROTOCOL,
            format!("{}/{}/", r.port, r.state),
        ),
        _ => (
            super::xml::port_order(r.proto, r.port),
            PORT,
            port_field(r, table),
        ),
    };
    Entry {
        host: HostKey::of(r.ip),
        order,
        tag,
        ts: unix_secs(r.ts),
        text: text.into_bytes(),
    }
}

/// `port/state/protocol/owner/service/rpc/version/`, with '/' in values written as '|'.
pub(crate) fn port_field(r: &Record, table: Option<&PortTable>) -> String {
    let (service, version) = match r.grab.as_ref().and_then(|g| g.service.as_ref()) {
        Some(s) => {
            let name = match &s.tunnel {
                Some(t) => format!("{t}|{}", s.name),
                None => s.name.clone(),
            };
            (name, s.version_line().replace('/', "|"))
        }
        None => (
            r.proto
                .service_proto()
                .and_then(|p| table.and_then(|t| t.name(p, r.port)))
                .unwrap_or_default()
                .to_string(),
            String::new(),
        ),
    };
    format!(
        "{}/{}/{}//{}//{}/",
        r.port,
        r.state,
        r.proto.as_str(),
        service.replace('/', "|"),
        version
    )
}

/// A host's lines from its entries; whether it is up.
fn host_lines(h: HostKey, es: &[Entry]) -> (String, bool) {
    let ip = h.ip();
    let text = |e: &Entry| String::from_utf8_lossy(&e.text).into_owned();
    let status = es
        .iter()
        .find(|e| e.tag == PING)
        .map(text)
        .unwrap_or_else(|| "Up".into());
    let mut s = format!("Host: {ip} ()\tStatus: {status}\n");
    for (tag, label) in [(PORT, "Ports"), (PROTOCOL, "Protocols")] {
        let fields: Vec<String> = es.iter().filter(|e| e.tag == tag).map(text).collect();
        if !fields.is_empty() {
            s.push_str(&format!("Host: {ip} ()\t{label}: {}\n", fields.join(", ")));
        }
    }
    (s, status == "Up")
}

/// nmap's first comment line of its grepable and normal files, naming xdpscan.
pub(crate) fn comment_header(info: &RunInfo) -> String {
    format!(
        "# xdpscan {} scan initiated {} as: {}\n",
        info.version,
        ctime(info.start),
        info.args.join(" ")
    )
}

/// Writes the hosts of a grepable or normal document, each through `block` (its text and
/// whether it is up), then the `# xdpscan done at` footer counting them. The footer is written
/// even when a host could not be (a full disk): the document stays valid, cut back to its last
/// whole host.
pub(crate) fn finish_commented(
    doc: &mut Document,
    end: &RunEnd,
    addresses: Option<u64>,
    mut block: impl FnMut(HostKey, &[Entry]) -> (String, bool),
) -> std::io::Result<()> {
    let (mut up, mut listed) = (0u64, 0u64);
    let hosts = doc.write_hosts(end.complete, |h, es| {
        let (text, is_up) = block(h, es);
        listed += 1;
        up += u64::from(is_up);
        Some(text)
    });
    let total = addresses.unwrap_or(listed).max(listed);
    let foot = format!(
        "# xdpscan done at {} -- {} ({} up) scanned in {:.2} seconds\n",
        ctime(end.end),
        super::ip_addresses(total),
        super::hosts(up),
        end.elapsed.as_secs_f64()
    );
    let footer = doc.out.footer(foot.as_bytes());
    hosts.and(footer)
}

impl Sink for GrepableSink {
    fn write(&mut self, r: &Record) -> std::io::Result<()> {
        self.doc.push(entry(r, self.table.as_deref()))
    }

    fn finish(&mut self, end: &RunEnd) -> std::io::Result<()> {
        finish_commented(&mut self.doc, end, self.addresses, host_lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        output::testutil::{end, info, record},
        probe::Reason,
    };

    #[test]
    fn one_status_and_one_ports_line_per_host() {
        let path = std::env::temp_dir().join(format!("xdpscan-gnmap-{}.txt", std::process::id()));
        let table = PortTable::from_db(
            &crate::targets::services::ServiceDb::parse("ssh\t22/tcp\t0.18\nhttp\t80/tcp\t0.48\n")
                .unwrap(),
        );
        let mut i = info();
        i.port_table = Some(Arc::new(table));
        let mut sink =
            GrepableSink::new(OutFile::create(&path).unwrap(), &i, &Default::default()).unwrap();
        for (ip, port, state, reason) in [
            ([198, 19, 0, 5], 80, PortState::Open, Reason::SynAck),
            ([198, 19, 0, 6], 22, PortState::Closed, Reason::Reset),
            ([198, 19, 0, 5], 22, PortState::Open, Reason::SynAck),
            ([198, 19, 0, 5], 9, PortState::Closed, Reason::Reset),
        ] {
            sink.write(&record(ip, port, state, reason)).unwrap();
        }
        sink.finish(&end()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let body: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            body,
            [
                "Host: 198.19.0.5 ()\tStatus: Up",
                "Host: 198.19.0.5 ()\tPorts: 9/closed/tcp/////, 22/open/tcp//ssh///, 80/open/tcp//http///",
                "Host: 198.19.0.6 ()\tStatus: Up",
                "Host: 198.19.0.6 ()\tPorts: 22/closed/tcp//ssh///",
            ]
        );
        assert!(text.starts_with("# xdpscan 0.1.0 scan initiated "));
        assert!(text.contains("\n# Ports scanned: TCP(1;80)\n"));
        assert!(text.ends_with("-- 65536 IP addresses (2 hosts up) scanned in 10.00 seconds\n"));
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn ping_hosts_have_a_status_line_only() {
        let mut p = record([198, 19, 0, 5], 0, PortState::Up, Reason::EchoReply);
        p.proto = Proto::Icmp;
        let (lines, up) = host_lines(HostKey::of(p.ip), &[entry(&p, None)]);
        assert_eq!(lines, "Host: 198.19.0.5 ()\tStatus: Up\n");
        assert!(up);
    }
}
