//! nmap's grepable format (`-oG`): a line per result,
//! `Host: 198.19.0.5 ()\tPorts: 80/open/tcp/////` (port/state/protocol/owner/service/rpc/version/), or `Host: ... ()\tStatus: Up` for ping
//! sweeps, between nmap's comment header and footer.

use super::{ctime, file::OutFile, Record, RunEnd, RunInfo, Sink};
use crate::probe::Proto;

pub struct GrepableSink {
    out: OutFile,
}

impl GrepableSink {
    pub fn new(mut out: OutFile, info: &RunInfo) -> std::io::Result<Self> {
        let mut head = format!(
            "# xdpscan {} scan initiated {} as: {}\n",
            info.version,
            ctime(info.start),
            info.args.join(" ")
        );
        if info.proto != Proto::Icmp {
            let kind = match info.proto {
                Proto::Udp => "UDP",
                Proto::Ip => "Protocols",
                _ => "TCP",
            };
            head.push_str(&format!(
                "# Ports scanned: {kind}({};{})\n",
                info.num_ports, info.ports
            ));
        }
        out.header(head.as_bytes())?;
        Ok(Self { out })
    }
}

pub fn to_line(r: &Record) -> String {
    if r.proto == Proto::Icmp {
        let status = if r.state == crate::probe::PortState::Up {
            "Up"
        } else {
            "Down"
        };
        return format!("Host: {} ()\tStatus: {status}\n", r.ip);
    }
    if r.proto == Proto::Ip {
        return format!("Host: {} ()\tProtocols: {}/{}/\n", r.ip, r.port, r.state);
    }
    // port/state/protocol/owner/service/rpc/version/, with '/' in values written as '|'.
    let (service, version) = match r.grab.as_ref().and_then(|g| g.service.as_ref()) {
        Some(s) => {
            let name = match &s.tunnel {
                Some(t) => format!("{t}|{}", s.name),
                None => s.name.clone(),
            };
            (name, s.version_line().replace('/', "|"))
        }
        None => (String::new(), String::new()),
    };
    format!(
        "Host: {} ()\tPorts: {}/{}/{}//{}//{}/\n",
        r.ip,
        r.port,
        r.state,
        r.proto.as_str(),
        service.replace('/', "|"),
        version
    )
}

impl Sink for GrepableSink {
    fn write(&mut self, r: &Record) -> std::io::Result<()> {
        self.out.record(to_line(r).as_bytes())
    }

    fn finish(&mut self, end: &RunEnd) -> std::io::Result<()> {
        let foot = format!(
            "# xdpscan done at {} -- {} results in {:.2} seconds\n",
            ctime(end.end),
            end.results,
            end.elapsed.as_secs_f64()
        );
        self.out.footer(foot.as_bytes())
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
    fn nmap_line() {
        let r = record([198, 19, 0, 5], 22, PortState::Open, Reason::SynAck);
        assert_eq!(
            to_line(&r),
            "Host: 198.19.0.5 ()\tPorts: 22/open/tcp/////\n"
        );
        let mut p = record([198, 19, 0, 5], 0, PortState::Up, Reason::EchoReply);
        p.proto = Proto::Icmp;
        assert_eq!(to_line(&p), "Host: 198.19.0.5 ()\tStatus: Up\n");
    }
}
