//! nmap's XML (`-oX`), valid against nmap's DTD and rendered by its nmap.xsl: one `<host>` per
//! address with all its ports, as nmap writes it (ndiff, Zenmap and importers pair hosts by
//! address). Results are grouped through [`grouped::Document`] in bounded memory and written
//! when the run ends. `scanner` must be "nmap" for the DTD; `profile_name` says who wrote it.

use std::sync::Arc;

use super::{
    ctime,
    file::OutFile,
    grouped::{Document, Entry, HostKey},
    unix_secs, xml_escape, Record, RunEnd, RunInfo, Sink,
};
use crate::{
    probe::{PortState, Proto, Reason},
    targets::services::PortTable,
};

/// Entry tags: a ping result (host status), the host's own first reply, its path, a port.
const PING: u8 = b'H';
const REPLY: u8 = b'S';
const TRACE: u8 = b'T';
const PORT: u8 = b'P';

pub(crate) struct XmlSink {
    doc: Document,
    table: Option<Arc<PortTable>>,
    addresses: Option<u64>,
}

impl XmlSink {
    pub(crate) fn new(
        mut out: OutFile,
        info: &RunInfo,
        keeper: &crate::io::keeper::Keeper,
    ) -> std::io::Result<Self> {
        let args = xml_escape(&info.args.join(" "));
        let mut h = String::new();
        h.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE nmaprun>\n");
        h.push_str(
            "<?xml-stylesheet href=\"file:///usr/share/nmap/nmap.xsl\" type=\"text/xsl\"?>\n",
        );
        // "--" may not appear inside an XML comment; nmap writes those hyphens as &#45; too.
        let comment_args = args.replace('-', "&#45;");
        h.push_str(&format!(
            "<!-- xdpscan {} scan initiated {} as: {} -->\n",
            info.version,
            ctime(info.start),
            comment_args
        ));
        h.push_str(&format!(
            "<nmaprun scanner=\"nmap\" profile_name=\"xdpscan\" args=\"{args}\" start=\"{}\" startstr=\"{}\" version=\"{}\" xmloutputversion=\"1.05\">\n",
            unix_secs(info.start),
            ctime(info.start),
            info.version
        ));
        for (scan, proto, ports) in &info.port_lists {
            h.push_str(&format!(
                "<scaninfo type=\"{}\" protocol=\"{}\" numservices=\"{}\" services=\"{}\"/>\n",
                scan.nmap_type(*proto),
                proto.as_str(),
                ports.len(),
                ports
            ));
        }
        h.push_str("<verbose level=\"0\"/>\n<debugging level=\"0\"/>\n");
        out.header(h.as_bytes())?;
        Ok(Self {
            doc: Document::new(out, info.resuming, keeper)?,
            table: info.port_table.clone(),
            addresses: info.addresses,
        })
    }
}

/// A port's place in its host's block: by protocol, then number (nmap's order).
pub(crate) fn port_order(proto: Proto, port: u16) -> u32 {
    let rank = match proto {
        Proto::Tcp => 1,
        Proto::Udp => 2,
        Proto::Sctp => 3,
        Proto::Ip | Proto::Icmp => 4,
    };
    rank << 16 | port as u32
}

/// The pieces of a host's block one result gives.
fn entries(r: &Record, table: Option<&PortTable>) -> Vec<Entry> {
    let host = HostKey::of(r.ip);
    let ts = unix_secs(r.ts);
    let entry = |order, tag, text: String| Entry {
        host,
        order,
        tag,
        ts,
        text: text.into_bytes(),
    };
    let mut v = Vec::with_capacity(3);
    if r.trace.is_some() {
        v.push(entry(0, TRACE, trace_element(r)));
    }
    if r.proto == Proto::Icmp {
        let state = if r.state == PortState::Up {
            "up"
        } else {
            "down"
        };
        v.push(entry(0, PING, format!("{state}\t{}\t{}", r.reason, r.ttl)));
        return v;
    }
    // A reply from the host itself says it is up, and why.
    if r.responder.is_none() && r.reason != Reason::NoResponse {
        v.push(entry(0, REPLY, format!("{}\t{}", r.reason, r.ttl)));
    }
    v.push(entry(
        port_order(r.proto, r.port),
        PORT,
        port_element(r, table),
    ));
    v
}

/// `<port>` with its state, service (what -sV found, else the port table's name) and banner.
pub(crate) fn port_element(r: &Record, table: Option<&PortTable>) -> String {
    let reason_ip = r
        .responder
        .map(|a| format!(" reason_ip=\"{a}\""))
        .unwrap_or_default();
    let mut service = grab_elements(r);
    if !service.starts_with("<service") {
        let name = r
            .proto
            .service_proto()
            .and_then(|p| table.and_then(|t| t.name(p, r.port)));
        if let Some(name) = name {
            service.insert_str(
                0,
                &format!(
                    "<service name=\"{}\" method=\"table\" conf=\"3\"/>",
                    xml_escape(name)
                ),
            );
        }
    }
    format!(
        "<port protocol=\"{}\" portid=\"{}\"><state state=\"{}\" reason=\"{}\" reason_ttl=\"{}\"{reason_ip}/>{service}</port>",
        r.proto.as_str(),
        r.port,
        r.state,
        r.reason,
        r.ttl,
    )
}

/// One `<host>` block from its entries; whether the host is up.
fn host_block(h: HostKey, es: &[Entry]) -> (String, bool) {
    let text = |e: &Entry| String::from_utf8_lossy(&e.text).into_owned();
    let start = es.iter().map(|e| e.ts).min().unwrap_or(0);
    let end = es.iter().map(|e| e.ts).max().unwrap_or(0);
    let ip = h.ip();
    let addrtype = if ip.is_ipv4() { "ipv4" } else { "ipv6" };
    let find = |tag| es.iter().find(|e| e.tag == tag).map(text);
    let (state, reason, ttl) = match find(PING).or_else(|| find(REPLY).map(|s| format!("up\t{s}")))
    {
        Some(s) => {
            let mut f = s.splitn(3, '\t').map(str::to_string);
            let mut next = || f.next().unwrap_or_default();
            (next(), next(), next())
        }
        None => ("up".into(), "user-set".into(), "0".into()),
    };
    let mut b = format!(
        "<host starttime=\"{start}\" endtime=\"{end}\"><status state=\"{state}\" reason=\"{reason}\" reason_ttl=\"{ttl}\"/>\n<address addr=\"{ip}\" addrtype=\"{addrtype}\"/>\n<hostnames>\n</hostnames>\n"
    );
    let mut ports = es.iter().filter(|e| e.tag == PORT).peekable();
    if ports.peek().is_some() {
        b.push_str("<ports>");
        for p in ports {
            b.push_str(&text(p));
            b.push('\n');
        }
        b.push_str("</ports>\n");
    }
    if let Some(t) = find(TRACE) {
        b.push_str(&t);
    }
    b.push_str("</host>\n");
    (b, state == "up")
}

/// `<service .../>` (-sV) and the raw banner as nmap's `banner` script prints it.
fn grab_elements(r: &Record) -> String {
    let Some(g) = &r.grab else {
        return String::new();
    };
    let mut s = String::new();
    if let Some(sv) = &g.service {
        s.push_str(&format!("<service name=\"{}\"", xml_escape(&sv.name)));
        let tunnel = [("tunnel", &sv.tunnel)];
        for (k, v) in sv.details.fields().into_iter().chain(tunnel) {
            if let Some(v) = v {
                s.push_str(&format!(" {k}=\"{}\"", xml_escape(v)));
            }
        }
        s.push_str(&format!(
            " method=\"{}\" conf=\"{}\"",
            sv.method.as_str(),
            sv.conf()
        ));
        if sv.cpe.is_empty() {
            s.push_str("/>");
        } else {
            s.push('>');
            for c in &sv.cpe {
                s.push_str(&format!("<cpe>{}</cpe>", xml_escape(c)));
            }
            s.push_str("</service>");
        }
    }
    if !g.banner.is_empty() {
        s.push_str(&format!(
            "<script id=\"banner\" output=\"{}\"/>",
            xml_escape(&crate::service::escape_banner(&g.banner))
        ));
    }
    for script in crate::app::nmap::scripts(&g.app) {
        s.push_str(&format!(
            "<script id=\"{}\" output=\"{}\">",
            script.id,
            xml_escape(&script.output)
        ));
        script_nodes(&mut s, &script.nodes);
        s.push_str("</script>");
    }
    s
}

/// A script's `<elem>`s and `<table>`s, as nmap's XML nests them.
fn script_nodes(s: &mut String, nodes: &[crate::app::nmap::Node]) {
    use crate::app::nmap::Node;
    let key = |k: &Option<String>| match k {
        Some(k) => format!(" key=\"{}\"", xml_escape(k)),
        None => String::new(),
    };
    for n in nodes {
        match n {
            Node::Elem(k, v) => {
                s.push_str(&format!("<elem{}>{}</elem>", key(k), xml_escape(v)));
            }
            Node::Table(k, inner) => {
                s.push_str(&format!("<table{}>", key(k)));
                script_nodes(s, inner);
                s.push_str("</table>");
            }
        }
    }
}

/// nmap's `<trace>`: one `<hop>` per TTL that answered.
fn trace_element(r: &Record) -> String {
    let Some(t) = &r.trace else {
        return String::new();
    };
    let mut s = match t.proto {
        Proto::Icmp => "<trace proto=\"icmp\">\n".to_string(),
        p => format!("<trace port=\"{}\" proto=\"{}\">\n", t.port, p.as_str()),
    };
    for h in &t.hops {
        if let Some(ip) = h.ip {
            let rtt = h
                .rtt_us
                .map(|u| format!(" rtt=\"{:.2}\"", u as f64 / 1000.0))
                .unwrap_or_default();
            s.push_str(&format!("<hop ttl=\"{}\" ipaddr=\"{ip}\"{rtt}/>\n", h.ttl));
        }
    }
    s.push_str("</trace>\n");
    s
}

impl Sink for XmlSink {
    fn write(&mut self, r: &Record) -> std::io::Result<()> {
        for e in entries(r, self.table.as_deref()) {
            self.doc.push(e)?;
        }
        Ok(())
    }

    fn finish(&mut self, end: &RunEnd) -> std::io::Result<()> {
        let (mut up, mut listed) = (0u64, 0u64);
        // The footer is written even when a host could not be (a full disk): the document
        // stays valid, cut back to its last whole host.
        let hosts = self.doc.write_hosts(end.complete, |h, es| {
            let (block, is_up) = host_block(h, es);
            listed += 1;
            up += u64::from(is_up);
            Some(block)
        });
        let total = self.addresses.unwrap_or(listed).max(listed);
        let down = total - up;
        let summary = format!(
            "xdpscan done at {}; {} ({} up) scanned in {:.2} seconds",
            ctime(end.end),
            super::ip_addresses(total),
            super::hosts(up),
            end.elapsed.as_secs_f64()
        );
        let foot = format!(
            "<runstats><finished time=\"{}\" timestr=\"{}\" summary=\"{}\" elapsed=\"{:.2}\" exit=\"{}\"/><hosts up=\"{up}\" down=\"{down}\" total=\"{total}\"/>\n</runstats>\n</nmaprun>\n",
            unix_secs(end.end),
            ctime(end.end),
            xml_escape(&summary),
            end.elapsed.as_secs_f64(),
            if end.error { "error" } else { "success" },
        );
        let footer = self.doc.out.footer(foot.as_bytes());
        hosts.and(footer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        output::testutil::{end, info, record},
        probe::Reason,
    };

    fn table() -> Arc<PortTable> {
        Arc::new(PortTable::from_db(
            &crate::targets::services::ServiceDb::parse("ssh\t22/tcp\t0.18\nhttp\t80/tcp\t0.48\n")
                .unwrap(),
        ))
    }

    fn temp(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("xdpscan-{name}-{}.xml", std::process::id()))
    }

    fn dtd_valid(path: &std::path::Path) {
        // With nmap installed, its own DTD has the last word.
        let dtd = std::path::Path::new("/usr/share/nmap/nmap.dtd");
        if dtd.exists() {
            if let Ok(out) = std::process::Command::new("xmllint")
                .args(["--noout", "--dtdvalid"])
                .arg(dtd)
                .arg(path)
                .output()
            {
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }

    #[test]
    fn one_host_block_per_address_with_table_names() {
        let path = temp("xml");
        let mut i = info();
        i.port_table = Some(table());
        let mut sink =
            XmlSink::new(OutFile::create(&path).unwrap(), &i, &Default::default()).unwrap();
        sink.write(&record(
            [198, 19, 0, 5],
            80,
            PortState::Open,
            Reason::SynAck,
        ))
        .unwrap();
        let mut filtered = record(
            [198, 19, 2, 1],
            22,
            PortState::Filtered,
            Reason::HostUnreach,
        );
        filtered.responder = Some("198.18.0.2".parse().unwrap());
        sink.write(&filtered).unwrap();
        sink.write(&record(
            [198, 19, 0, 5],
            22,
            PortState::Closed,
            Reason::Reset,
        ))
        .unwrap();
        sink.write(&record(
            [198, 19, 0, 5],
            9,
            PortState::Closed,
            Reason::Reset,
        ))
        .unwrap();
        sink.finish(&end()).unwrap();
        let xml = std::fs::read_to_string(&path).unwrap();
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE nmaprun>"));
        assert_eq!(xml.matches("<host ").count(), 2, "{xml}");
        assert!(xml.contains("<status state=\"up\" reason=\"syn-ack\" reason_ttl=\"64\"/>\n<address addr=\"198.19.0.5\" addrtype=\"ipv4\"/>\n<hostnames>\n</hostnames>\n<ports><port protocol=\"tcp\" portid=\"9\"><state state=\"closed\" reason=\"reset\" reason_ttl=\"64\"/></port>\n<port protocol=\"tcp\" portid=\"22\"><state state=\"closed\" reason=\"reset\" reason_ttl=\"64\"/><service name=\"ssh\" method=\"table\" conf=\"3\"/></port>\n<port protocol=\"tcp\" portid=\"80\"><state state=\"open\" reason=\"syn-ack\" reason_ttl=\"64\"/><service name=\"http\" method=\"table\" conf=\"3\"/></port>\n</ports>\n</host>\n"), "{xml}");
        // Only a router spoke for 198.19.2.1: up as the scan assumes it (nmap -Pn's user-set).
        assert!(xml.contains("<status state=\"up\" reason=\"user-set\" reason_ttl=\"0\"/>\n<address addr=\"198.19.2.1\""));
        assert!(xml.contains("reason_ip=\"198.18.0.2\""));
        assert!(xml.contains("<hosts up=\"2\" down=\"65534\" total=\"65536\"/>"));
        assert!(xml.contains("65536 IP addresses (2 hosts up) scanned in 10.00 seconds"));
        assert!(xml.ends_with("</runstats>\n</nmaprun>\n"));
        assert!(
            !xml.split("<!--")
                .nth(1)
                .unwrap()
                .split("-->")
                .next()
                .unwrap()
                .contains("--"),
            "no -- inside the comment"
        );
        dtd_valid(&path);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn a_stopped_run_keeps_its_hosts_for_the_resumed_one() {
        let path = temp("xml-resume");
        let part = crate::output::grouped::part_path(&path);
        let mut sink = XmlSink::new(
            OutFile::create(&path).unwrap(),
            &info(),
            &Default::default(),
        )
        .unwrap();
        sink.write(&record(
            [198, 19, 0, 5],
            80,
            PortState::Open,
            Reason::SynAck,
        ))
        .unwrap();
        let mut stopped = end();
        stopped.complete = false;
        sink.finish(&stopped).unwrap();
        assert!(part.exists());
        let first = std::fs::read_to_string(&path).unwrap();
        assert_eq!(first.matches("<port ").count(), 1);
        dtd_valid(&path);

        let mut i = info();
        i.resuming = true;
        let mut sink =
            XmlSink::new(OutFile::create(&path).unwrap(), &i, &Default::default()).unwrap();
        sink.write(&record(
            [198, 19, 0, 5],
            22,
            PortState::Open,
            Reason::SynAck,
        ))
        .unwrap();
        sink.write(&record(
            [198, 19, 0, 5],
            80,
            PortState::Open,
            Reason::SynAck,
        ))
        .unwrap(); // sent again after the resume: kept once
        sink.finish(&end()).unwrap();
        let xml = std::fs::read_to_string(&path).unwrap();
        assert_eq!(xml.matches("<host ").count(), 1, "{xml}");
        assert_eq!(xml.matches("<port ").count(), 2, "{xml}");
        assert!(!part.exists(), "a complete run removes the part it read");
        dtd_valid(&path);
        std::fs::remove_file(path).unwrap();
    }
}
