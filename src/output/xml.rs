//! nmap's XML (`-oX`), valid against nmap's DTD and rendered by its nmap.xsl. A stateless scan
//! reports each (address, port) as it comes, so each result is its own `<host>` element (as
//! masscan does). `scanner` must be "nmap" for the DTD; `profile_name` says who wrote it.

use std::collections::HashSet;

use super::{ctime, file::OutFile, unix_secs, xml_escape, Record, RunEnd, RunInfo, Sink};
use crate::probe::{PortState, Proto};

pub struct XmlSink {
    out: OutFile,
    up: HashSet<std::net::IpAddr>,
    down: HashSet<std::net::IpAddr>,
}

impl XmlSink {
    pub fn new(mut out: OutFile, info: &RunInfo) -> std::io::Result<Self> {
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
        if info.proto != Proto::Icmp {
            h.push_str(&format!(
                "<scaninfo type=\"{}\" protocol=\"{}\" numservices=\"{}\" services=\"{}\"/>\n",
                info.scan.nmap_type(info.proto),
                info.proto.as_str(),
                info.num_ports,
                info.ports
            ));
        }
        h.push_str("<verbose level=\"0\"/>\n<debugging level=\"0\"/>\n");
        out.header(h.as_bytes())?;
        Ok(Self {
            out,
            up: HashSet::new(),
            down: HashSet::new(),
        })
    }
}

pub fn host_element(r: &Record) -> String {
    let t = unix_secs(r.ts);
    let addrtype = if r.ip.is_ipv4() { "ipv4" } else { "ipv6" };
    let reason_ip = r
        .responder
        .map(|a| format!(" reason_ip=\"{a}\""))
        .unwrap_or_default();
    if r.proto == Proto::Icmp {
        let state = if r.state == PortState::Up {
            "up"
        } else {
            "down"
        };
        return format!(
            "<host starttime=\"{t}\" endtime=\"{t}\"><status state=\"{state}\" reason=\"{}\" reason_ttl=\"{}\"/>\n<address addr=\"{}\" addrtype=\"{addrtype}\"/>\n<hostnames>\n</hostnames>\n{}</host>\n",
            r.reason, r.ttl, r.ip, trace_element(r)
        );
    }
    format!(
        "<host starttime=\"{t}\" endtime=\"{t}\"><status state=\"up\" reason=\"user-set\" reason_ttl=\"0\"/>\n<address addr=\"{}\" addrtype=\"{addrtype}\"/>\n<hostnames>\n</hostnames>\n<ports><port protocol=\"{}\" portid=\"{}\"><state state=\"{}\" reason=\"{}\" reason_ttl=\"{}\"{reason_ip}/>{}</port>\n</ports>\n{}</host>\n",
        r.ip,
        r.proto.as_str(),
        r.port,
        r.state,
        r.reason,
        r.ttl,
        grab_elements(r),
        trace_element(r),
    )
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
    s
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
        if r.proto == Proto::Icmp && r.state != PortState::Up {
            self.down.insert(r.ip);
        } else {
            self.up.insert(r.ip);
        }
        self.out.record(host_element(r).as_bytes())
    }

    fn finish(&mut self, end: &RunEnd) -> std::io::Result<()> {
        let up = self.up.len();
        let down = self.down.len();
        let summary = format!(
            "xdpscan done at {}; {} results, {} hosts up, in {:.2} seconds",
            ctime(end.end),
            end.results,
            up,
            end.elapsed.as_secs_f64()
        );
        let foot = format!(
            "<runstats><finished time=\"{}\" timestr=\"{}\" summary=\"{}\" elapsed=\"{:.2}\" exit=\"{}\"/><hosts up=\"{up}\" down=\"{down}\" total=\"{}\"/>\n</runstats>\n</nmaprun>\n",
            unix_secs(end.end),
            ctime(end.end),
            xml_escape(&summary),
            end.elapsed.as_secs_f64(),
            if end.error { "error" } else { "success" },
            up + down
        );
        self.out.footer(foot.as_bytes())
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
    fn document_is_closed_and_valid() {
        let path = std::env::temp_dir().join(format!("xdpscan-xml-{}.xml", std::process::id()));
        let mut sink = XmlSink::new(OutFile::create(&path).unwrap(), &info()).unwrap();
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
        sink.finish(&end()).unwrap();
        let xml = std::fs::read_to_string(&path).unwrap();
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE nmaprun>"));
        assert!(xml.contains("<port protocol=\"tcp\" portid=\"80\"><state state=\"open\" reason=\"syn-ack\" reason_ttl=\"64\"/></port>"));
        assert!(xml.contains("reason_ip=\"198.18.0.2\""));
        assert!(xml.contains("<hosts up=\"2\" down=\"0\" total=\"2\"/>"));
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
        // With nmap installed, its own DTD has the last word.
        let dtd = std::path::Path::new("/usr/share/nmap/nmap.dtd");
        if dtd.exists() {
            if let Ok(out) = std::process::Command::new("xmllint")
                .args(["--noout", "--dtdvalid"])
                .arg(dtd)
                .arg(&path)
                .output()
            {
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        std::fs::remove_file(path).unwrap();
    }
}
