//! `--pcap-replies F`: every validated reply as received, Ethernet header included, in a classic
//! pcap file that tshark and scapy read.

use std::{fs::File, io::BufWriter, time::SystemTime};

use super::{Record, RunEnd, Sink};
use crate::io::pcap::PcapWriter;

pub(crate) struct RepliesSink {
    pcap: PcapWriter<BufWriter<File>>,
}

impl RepliesSink {
    pub(crate) fn create(path: &std::path::Path) -> std::io::Result<Self> {
        let f = File::create(path)?;
        Ok(Self {
            pcap: PcapWriter::new(BufWriter::with_capacity(1 << 20, f))?,
        })
    }

    /// Adds to the file of an interrupted run (`--resume`); a new or empty file gets a header.
    pub(crate) fn append(path: &std::path::Path) -> std::io::Result<Self> {
        let f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)?;
        let w = BufWriter::with_capacity(1 << 20, f);
        let pcap = if w.get_ref().metadata()?.len() == 0 {
            PcapWriter::new(w)?
        } else {
            PcapWriter::continuing(w)
        };
        Ok(Self { pcap })
    }
}

impl Sink for RepliesSink {
    fn write(&mut self, _r: &Record) -> std::io::Result<()> {
        Ok(())
    }

    fn write_reply(&mut self, frame: &[u8], ts: SystemTime) -> std::io::Result<()> {
        self.pcap.write_frame(ts, frame)
    }

    fn finish(&mut self, _end: &RunEnd) -> std::io::Result<()> {
        self.pcap.flush()
    }
}
