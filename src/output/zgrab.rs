//! ZGrab2's JSON (`-oZ`): one line per grabbed port, `{"ip", "port", "data": {"<module>":
//! {"status", "protocol", "result", "timestamp", "error"}}}`, the modules' results as ZGrab2's
//! `tls`, `http` and `ssh` modules write them (`app`), so ZGrab2's consumers read it unchanged.
//! Ports with no grab (closed, filtered, or open beyond `--max-connections`) have no line.

use super::{file::OutFile, Record, RunEnd, Sink};

pub(crate) struct ZgrabSink {
    out: OutFile,
}

impl ZgrabSink {
    pub(crate) fn new(out: OutFile) -> Self {
        Self { out }
    }
}

pub(crate) fn line(r: &Record) -> Option<String> {
    let g = r.grab.as_ref().filter(|g| !g.app.is_empty())?;
    let v = serde_json::json!({
        "ip": r.ip.to_string(),
        "port": r.port,
        "data": crate::app::data_json(&g.app),
    });
    Some(v.to_string())
}

impl Sink for ZgrabSink {
    fn write(&mut self, r: &Record) -> std::io::Result<()> {
        match line(r) {
            Some(mut l) => {
                l.push('\n');
                self.out.record(l.as_bytes())
            }
            None => Ok(()),
        }
    }

    fn finish(&mut self, _end: &RunEnd) -> std::io::Result<()> {
        self.out.footer(b"")
    }
}
