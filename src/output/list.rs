//! masscan's list format (`-oL`): `open tcp 80 198.19.0.5 1795000000`, framed by `#masscan` and
//! `# end`. States other than open keep their nmap name (`closed`, `open|filtered`, `up`...).

use super::{file::OutFile, unix_secs, Record, RunEnd, Sink};

pub(crate) struct ListSink {
    out: OutFile,
}

impl ListSink {
    pub(crate) fn new(mut out: OutFile) -> std::io::Result<Self> {
        if out.is_empty() {
            out.header(b"#masscan\n")?;
        }
        Ok(Self { out })
    }
}

pub(crate) fn to_line(r: &Record) -> String {
    let mut line = format!(
        "{} {} {} {} {}\n",
        r.state.as_str(),
        r.proto.as_str(),
        r.port,
        r.ip,
        unix_secs(r.ts)
    );
    // masscan's banner line: `banner tcp 22 198.19.0.5 1795000000 ssh SSH-2.0-OpenSSH_9.2p1\x0d\x0a`.
    if let Some(g) = r.grab.as_ref().filter(|g| !g.banner.is_empty()) {
        let name = g
            .service
            .as_ref()
            .map(|s| s.name.as_str())
            .unwrap_or("unknown");
        line.push_str(&format!(
            "banner {} {} {} {} {name} {}\n",
            r.proto.as_str(),
            r.port,
            r.ip,
            unix_secs(r.ts),
            crate::service::escape_banner(&g.banner)
        ));
    }
    line
}

impl Sink for ListSink {
    fn write(&mut self, r: &Record) -> std::io::Result<()> {
        self.out.record(to_line(r).as_bytes())
    }

    fn finish(&mut self, _end: &RunEnd) -> std::io::Result<()> {
        self.out.footer(b"# end\n")
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
    fn masscan_line() {
        let r = record([1, 2, 3, 4], 80, PortState::Open, Reason::SynAck);
        assert_eq!(to_line(&r), "open tcp 80 1.2.3.4 1795000000\n");
    }
}
