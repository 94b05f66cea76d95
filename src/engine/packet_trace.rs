//! `--packet-trace`: one line per packet sent and received, as nmap prints them
//! (`SENT (0.0213s) TCP 198.18.0.1:61000 > 198.19.0.5:80 S ttl=64 ...`). Lines go to stderr so
//! results on stdout stay machine-readable; each line is written whole under stderr's lock.

use std::{io::Write, time::Instant};

use crate::wire::dissect;

/// Prints packets relative to the scan's start.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PacketTrace {
    start: Instant,
}

impl PacketTrace {
    pub(crate) fn new(start: Instant) -> Self {
        Self { start }
    }

    /// A frame we sent.
    pub(crate) fn sent(&self, frame: &[u8]) {
        self.line("SENT", frame);
    }

    /// A frame the transport handed us.
    pub(crate) fn rcvd(&self, frame: &[u8]) {
        self.line("RCVD", frame);
    }

    /// A kernel connect (`-sT`) and what became of it, as nmap's `CONN` lines.
    pub(crate) fn conn(&self, ip: std::net::IpAddr, port: u16, what: &str) {
        let line = format!(
            "CONN ({:.4}s) TCP localhost > {ip}:{port} => {what}\n",
            self.start.elapsed().as_secs_f64()
        );
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn line(&self, dir: &str, frame: &[u8]) {
        let line = format!(
            "{dir} ({:.4}s) {}\n",
            self.start.elapsed().as_secs_f64(),
            dissect::summary(frame)
        );
        // A closed stderr is no reason to stop scanning.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}
