//! nmap's normal output (`-oN`, and the `.nmap` file of `-oA`): per host a `Nmap scan report
//! for ADDRESS` block with its status and a `PORT STATE SERVICE [VERSION]` table, between a
//! comment header and footer naming xdpscan. The report line is nmap's own, so the scripts that
//! grep it keep working. Grouped by host like the XML, through [`grouped::Document`].

use std::sync::Arc;

use super::{
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

/// Columns of a table row, in an entry's text.
const SEP: char = '\t';

pub(crate) struct NormalSink {
    doc: Document,
    table: Option<Arc<PortTable>>,
    addresses: Option<u64>,
}

impl NormalSink {
    pub(crate) fn new(
        mut out: OutFile,
        info: &RunInfo,
        keeper: &crate::io::keeper::Keeper,
    ) -> std::io::Result<Self> {
        let head = super::grepable::comment_header(info);
        out.header(head.as_bytes())?;
        Ok(Self {
            doc: Document::new(out, info.resuming, keeper)?,
            table: info.port_table.clone(),
            addresses: info.addresses,
        })
    }
}

/// One result's row of its host's table (columns separated by [`SEP`]), or its status.
pub(crate) fn entry(r: &Record, table: Option<&PortTable>) -> Entry {
    let name = || {
        r.proto
            .service_proto()
            .and_then(|p| table.and_then(|t| t.name(p, r.port)))
            .unwrap_or("unknown")
            .to_string()
    };
    let (order, tag, text) = match r.proto {
        Proto::Icmp => (
            0,
            PING,
            if r.state == PortState::Up {
                "up"
            } else {
                "down"
            }
            .to_string(),
        ),
        // -sO: the protocol's name from the protocol numbers, as nmap's PROTOCOL table.
        Proto::Ip => (
            super::xml::port_order(r.proto, r.port),
            PROTOCOL,
            format!("{}{SEP}{}{SEP}{}", r.port, r.state, protocol_name(r.port)),
        ),
        _ => {
            let (service, version) = match r.grab.as_ref().and_then(|g| g.service.as_ref()) {
                Some(s) => (
                    match &s.tunnel {
                        Some(t) => format!("{t}/{}", s.name),
                        None => s.name.clone(),
                    },
                    s.version_line(),
                ),
                None => (name(), String::new()),
            };
            // --grab: nmap's script lines under the row (a fifth column).
            let scripts: Vec<String> = r
                .grab
                .iter()
                .flat_map(|g| crate::app::nmap::scripts(&g.app))
                .flat_map(|s| crate::app::nmap::normal_lines(&s))
                .collect();
            let mut text = format!(
                "{}/{}{SEP}{}{SEP}{service}{SEP}{version}",
                r.port,
                r.proto.as_str(),
                r.state
            );
            if !scripts.is_empty() {
                text.push(SEP);
                text.push_str(&scripts.join("\n"));
            }
            (super::xml::port_order(r.proto, r.port), PORT, text)
        }
    };
    Entry {
        host: HostKey::of(r.ip),
        order,
        tag,
        ts: unix_secs(r.ts),
        text: text.into_bytes(),
    }
}

/// The names nmap-protocols gives the protocols a scan most often finds.
fn protocol_name(n: u16) -> &'static str {
    match n {
        1 => "icmp",
        2 => "igmp",
        4 => "ipv4",
        6 => "tcp",
        17 => "udp",
        41 => "ipv6",
        47 => "gre",
        50 => "esp",
        51 => "ah",
        58 => "ipv6-icmp",
        89 => "ospfigp",
        103 => "pim",
        112 => "vrrp",
        132 => "sctp",
        136 => "udplite",
        _ => "unknown",
    }
}

/// Rows as nmap aligns them: every column but the last padded to its widest cell plus one.
fn table(head: [&str; 4], rows: &[Vec<String>]) -> String {
    let version = rows.iter().any(|r| r.get(3).is_some_and(|v| !v.is_empty()));
    let cols = if version { 4 } else { 3 };
    let mut width = [0usize; 4];
    for (i, h) in head.iter().enumerate().take(cols) {
        width[i] = rows
            .iter()
            .map(|r| r.get(i).map_or(0, String::len))
            .max()
            .unwrap_or(0)
            .max(h.len());
    }
    let line = |cells: &[&str]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate().take(cols) {
            if i + 1 == cols {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$} ", w = width[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut s = line(&head);
    for r in rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        s.push_str(&line(&cells));
        if let Some(scripts) = r.get(4) {
            s.push_str(scripts);
            s.push('\n');
        }
    }
    s
}

/// A host's block from its entries; whether it is up.
fn host_block(h: HostKey, es: &[Entry]) -> (String, bool) {
    let text = |e: &Entry| String::from_utf8_lossy(&e.text).into_owned();
    let up = es
        .iter()
        .find(|e| e.tag == PING)
        .is_none_or(|e| e.text == b"up");
    let mut s = format!(
        "Nmap scan report for {}\nHost is {}.\n",
        h.ip(),
        if up { "up" } else { "down" }
    );
    for (tag, first) in [(PORT, "PORT"), (PROTOCOL, "PROTOCOL")] {
        let rows: Vec<Vec<String>> = es
            .iter()
            .filter(|e| e.tag == tag)
            .map(|e| text(e).split(SEP).map(str::to_string).collect())
            .collect();
        if !rows.is_empty() {
            s.push('\n');
            s.push_str(&table([first, "STATE", "SERVICE", "VERSION"], &rows));
        }
    }
    s.push('\n');
    (s, up)
}

impl Sink for NormalSink {
    fn write(&mut self, r: &Record) -> std::io::Result<()> {
        self.doc.push(entry(r, self.table.as_deref()))
    }

    fn finish(&mut self, end: &RunEnd) -> std::io::Result<()> {
        super::grepable::finish_commented(&mut self.doc, end, self.addresses, host_block)
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
    fn a_version_column_when_any_port_has_one() {
        let rows: Vec<Vec<String>> = [
            [
                "22/tcp",
                "open",
                "ssh",
                "OpenSSH 9.2p1 Debian 2 (protocol 2.0)",
            ],
            ["443/tcp", "open", "ssl/http", "nginx 1.22.1"],
            ["9999/tcp", "closed", "abyss", ""],
        ]
        .iter()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect();
        assert_eq!(
            table(["PORT", "STATE", "SERVICE", "VERSION"], &rows),
            "PORT     STATE  SERVICE  VERSION\n\
             22/tcp   open   ssh      OpenSSH 9.2p1 Debian 2 (protocol 2.0)\n\
             443/tcp  open   ssl/http nginx 1.22.1\n\
             9999/tcp closed abyss\n"
        );
    }

    #[test]
    fn one_block_per_host_with_nmaps_aligned_table() {
        let path = std::env::temp_dir().join(format!("xdpscan-nmap-{}.txt", std::process::id()));
        let table = PortTable::from_db(
            &crate::targets::services::ServiceDb::parse("ssh\t22/tcp\t0.18\nhttp\t80/tcp\t0.48\n")
                .unwrap(),
        );
        let mut i = info();
        i.port_table = Some(Arc::new(table));
        let mut sink =
            NormalSink::new(OutFile::create(&path).unwrap(), &i, &Default::default()).unwrap();
        for (ip, port, state, reason) in [
            ([198, 19, 0, 5], 80, PortState::Open, Reason::SynAck),
            ([198, 19, 0, 6], 22, PortState::Closed, Reason::Reset),
            ([198, 19, 0, 5], 22, PortState::Open, Reason::SynAck),
            ([198, 19, 0, 5], 9999, PortState::Closed, Reason::Reset),
        ] {
            sink.write(&record(ip, port, state, reason)).unwrap();
        }
        sink.finish(&end()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let body: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            body,
            [
                "Nmap scan report for 198.19.0.5",
                "Host is up.",
                "",
                "PORT     STATE  SERVICE",
                "22/tcp   open   ssh",
                "80/tcp   open   http",
                "9999/tcp closed unknown",
                "",
                "Nmap scan report for 198.19.0.6",
                "Host is up.",
                "",
                "PORT   STATE  SERVICE",
                "22/tcp closed ssh",
                "",
            ]
        );
        assert!(text.lines().last().unwrap().contains("(2 hosts up)"));
        let _ = std::fs::remove_file(path);
    }
}
