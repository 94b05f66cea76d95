//! Classic pcap files (microsecond timestamps, Ethernet link type), and the dry-run transmit
//! queue that writes probes to one instead of the wire.

use std::{
    fs::File,
    io::{BufWriter, Write},
    path::Path,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use super::{IoError, TxQueue};

const MAGIC_US: u32 = 0xa1b2_c3d4;
const LINKTYPE_ETHERNET: u32 = 1;
const SNAPLEN: u32 = 65535;

/// A pcap writer over any byte sink.
pub(crate) struct PcapWriter<W: Write> {
    out: W,
}

impl PcapWriter<BufWriter<File>> {
    pub(crate) fn create(path: &Path) -> Result<Self, IoError> {
        let f = File::create(path)
            .map_err(|e| IoError::os(format!("cannot create {}", path.display()), e))?;
        Self::new(BufWriter::with_capacity(1 << 20, f))
            .map_err(|e| IoError::os(format!("write {}", path.display()), e))
    }
}

impl<W: Write> PcapWriter<W> {
    /// Frames after what `out` already holds (a file with its header written, `--resume`).
    pub(crate) fn continuing(out: W) -> Self {
        Self { out }
    }

    pub(crate) fn new(mut out: W) -> std::io::Result<Self> {
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&MAGIC_US.to_le_bytes());
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes()); // thiszone
        h.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        h.extend_from_slice(&SNAPLEN.to_le_bytes());
        h.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        out.write_all(&h)?;
        Ok(Self { out })
    }

    pub(crate) fn write_frame(&mut self, ts: SystemTime, frame: &[u8]) -> std::io::Result<()> {
        let d = ts.duration_since(UNIX_EPOCH).unwrap_or_default();
        let cap = frame.len().min(SNAPLEN as usize);
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&(d.as_secs() as u32).to_le_bytes());
        h[4..8].copy_from_slice(&d.subsec_micros().to_le_bytes());
        h[8..12].copy_from_slice(&(cap as u32).to_le_bytes());
        h[12..16].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(&frame[..cap])
    }

    pub(crate) fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }

    #[cfg(test)]
    pub(crate) fn into_inner(self) -> W {
        self.out
    }
}

/// A pcap file shared by the dry-run transmit threads.
pub(crate) type SharedPcap = Arc<Mutex<PcapWriter<BufWriter<File>>>>;

/// Dry-run transmit queue: builds every probe exactly as for the wire, then writes it to a pcap
/// file, or drops it when there is none (measuring the build path alone).
pub(crate) struct DryRunTx {
    pcap: Option<SharedPcap>,
    frames: Vec<u8>,
    lens: Vec<usize>,
}

const DRY_BATCH: usize = 256;
const DRY_FRAME: usize = 2048;

impl DryRunTx {
    pub(crate) fn new(pcap: Option<SharedPcap>) -> Self {
        Self {
            pcap,
            frames: vec![0; DRY_BATCH * DRY_FRAME],
            lens: Vec::with_capacity(DRY_BATCH),
        }
    }
}

impl TxQueue for DryRunTx {
    #[inline]
    fn send_batch<F: FnMut(&mut [u8]) -> usize>(
        &mut self,
        max: usize,
        mut fill: F,
    ) -> Result<usize, IoError> {
        self.lens.clear();
        for chunk in self
            .frames
            .chunks_exact_mut(DRY_FRAME)
            .take(max.min(DRY_BATCH))
        {
            let len = fill(chunk);
            if len == 0 {
                break;
            }
            self.lens.push(len);
        }
        if let Some(p) = &self.pcap {
            let now = SystemTime::now();
            let mut w = p.lock().unwrap_or_else(|e| e.into_inner());
            for (i, &len) in self.lens.iter().enumerate() {
                w.write_frame(now, &self.frames[i * DRY_FRAME..i * DRY_FRAME + len])
                    .map_err(|e| IoError::os("write pcap", e))?;
            }
        }
        Ok(self.lens.len())
    }

    fn drain(&mut self, _timeout: Duration) -> Result<(), IoError> {
        if let Some(p) = &self.pcap {
            p.lock()
                .unwrap_or_else(|e| e.into_inner())
                .flush()
                .map_err(|e| IoError::os("write pcap", e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_header_and_record() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.write_frame(UNIX_EPOCH + Duration::new(1, 2000), &[0xaa, 0xbb])
            .unwrap();
        let b = w.into_inner();
        assert_eq!(&b[..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(&b[20..24], &[1, 0, 0, 0]);
        assert_eq!(
            &b[24..40],
            &[1, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0]
        );
        assert_eq!(&b[40..], &[0xaa, 0xbb]);
    }
}
