//! Where a format's bytes go: a file (or stdout for "-"). Records are appended whole; when a
//! write fails (disk full, I/O error) the file is cut back to the last complete record, and the
//! closing footer is written even if that means dropping records from the end, so what stays on
//! disk is always a valid document.
//!
//! A file is opened before the scan but cut only at its first flush, which the engine does
//! once the scan runs: a run that fails before (another output's path, the interface) leaves
//! an existing file as it was, and removes a file it created and never used.

use std::{
    collections::VecDeque,
    fs::File,
    io::{self, Seek, SeekFrom, Write},
    path::Path,
};

enum Dest {
    File(File),
    Stdout(io::Stdout),
}

pub struct OutFile {
    dest: Dest,
    name: String,
    buf: Vec<u8>,
    /// Bytes known to be on disk.
    committed: u64,
    /// End offsets of the last records on disk and in `buf` (for cutting back to fit a footer).
    /// Only the last [`ENDS_KEPT`]: a footer never needs more room than that many records give,
    /// and memory must not grow with the results.
    ends: VecDeque<u64>,
    /// Length of the header, which is never cut.
    header_len: u64,
    failed: bool,
    /// Opened to be replaced, not yet cut: what it holds stays until the first flush.
    cut_pending: bool,
    /// Created by this open (it did not exist): removed if dropped still unused.
    created: Option<std::path::PathBuf>,
}

const FLUSH_AT: usize = 64 * 1024;
const ENDS_KEPT: usize = 4096;

impl OutFile {
    /// Opens `path` to be replaced (cut at the first flush), or stdout when it is "-".
    /// Opens `path` to write it anew (stdout for "-"). What it holds is cut only at the first
    /// flush, and a file made here and never written is removed again.
    pub fn create(path: &Path) -> io::Result<Self> {
        let mut created = None;
        let dest = if path.as_os_str() == "-" {
            Dest::Stdout(io::stdout())
        } else {
            let (f, made) = open_unchanged(path)?;
            if made {
                created = Some(path.to_path_buf());
            }
            Dest::File(f)
        };
        Ok(Self {
            cut_pending: matches!(dest, Dest::File(_)),
            dest,
            name: path.display().to_string(),
            buf: Vec::with_capacity(FLUSH_AT * 2),
            committed: 0,
            ends: VecDeque::new(),
            header_len: 0,
            failed: false,
            created,
        })
    }

    /// Opens `path` to add to what it holds (`--resume`), creating it if needed; stdout for "-".
    /// What was there is never cut.
    pub(crate) fn append(path: &Path) -> io::Result<Self> {
        if path.as_os_str() == "-" {
            return Self::create(path);
        }
        let f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)?;
        let len = f.metadata()?.len();
        let mut out = Self::create(Path::new("-"))?;
        out.dest = Dest::File(f);
        out.cut_pending = false;
        out.name = path.display().to_string();
        out.committed = len;
        out.header_len = len;
        Ok(out)
    }

    /// Nothing is in the file yet (a header is due).
    pub(crate) fn is_empty(&self) -> bool {
        self.committed == 0 && self.buf.is_empty()
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn is_stdout(&self) -> bool {
        matches!(self.dest, Dest::Stdout(_))
    }

    /// Appends a header: not a record, never dropped.
    pub(crate) fn header(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.buf.extend_from_slice(bytes);
        self.flush()?;
        self.ends.clear();
        self.header_len = self.committed;
        Ok(())
    }

    /// Appends one whole record. On stdout, each record goes out at once (pipelines).
    pub(crate) fn record(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.failed {
            return Err(io::Error::other("output already failed"));
        }
        self.buf.extend_from_slice(bytes);
        if self.ends.len() == ENDS_KEPT {
            self.ends.pop_front();
        }
        self.ends.push_back(self.committed + self.buf.len() as u64);
        if self.is_stdout() || self.buf.len() >= FLUSH_AT {
            self.flush()?;
        }
        Ok(())
    }

    pub(crate) fn flush(&mut self) -> io::Result<()> {
        if self.cut_pending {
            if let Dest::File(f) = &mut self.dest {
                // A device (`-o /dev/null`) or a FIFO cannot be cut, and holds nothing to cut.
                match f.set_len(0) {
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
                    r => r?,
                }
                f.seek(SeekFrom::Start(0))?;
            }
            self.cut_pending = false;
            self.created = None;
        }
        if self.buf.is_empty() {
            return Ok(());
        }
        let r = match &mut self.dest {
            Dest::File(f) => f.write_all(&self.buf),
            Dest::Stdout(s) => {
                let mut l = s.lock();
                l.write_all(&self.buf).and_then(|_| l.flush())
            }
        };
        match r {
            Ok(()) => {
                self.committed += self.buf.len() as u64;
                self.buf.clear();
                Ok(())
            }
            Err(e) => {
                self.failed = true;
                self.buf.clear();
                self.ends.retain(|&end| end <= self.committed);
                self.cut_to(
                    self.committed
                        .min(self.ends.back().copied().unwrap_or(self.committed)),
                );
                Err(e)
            }
        }
    }

    /// Writes the closing footer, dropping trailing records if the disk has no room for it.
    pub(crate) fn footer(&mut self, bytes: &[u8]) -> io::Result<()> {
        if !self.failed {
            self.buf.extend_from_slice(bytes);
            if self.flush().is_ok() {
                return self.sync();
            }
        }
        if self.is_stdout() {
            // Its reader went away; the failed write already said so.
            return Ok(());
        }
        // Cut to the last whole record, then make room record by record.
        let mut at = self
            .ends
            .iter()
            .rev()
            .find(|&&e| e <= self.committed)
            .copied()
            .unwrap_or(self.committed);
        loop {
            self.cut_to(at);
            let ok = match &mut self.dest {
                Dest::File(f) => f
                    .seek(SeekFrom::Start(at))
                    .and_then(|_| f.write_all(bytes))
                    .is_ok(),
                Dest::Stdout(_) => false,
            };
            if ok {
                self.committed = at + bytes.len() as u64;
                return self.sync();
            }
            self.ends.retain(|&e| e < at);
            match self.ends.pop_back() {
                Some(prev) => at = prev,
                None if at > self.header_len => at = self.header_len,
                None => return Err(io::Error::other("no room for the document's footer")),
            }
        }
    }

    fn cut_to(&mut self, len: u64) {
        if let Dest::File(f) = &mut self.dest {
            let _ = f.set_len(len);
            let _ = f.seek(SeekFrom::Start(len));
            self.committed = len;
        }
    }

    /// On the disk, not only in the page cache: the resume file (fsynced) is written after
    /// the documents close, so results reach the disk before the resume state that covers
    /// them (a power loss never leaves a resume file past lines that were lost). Pipes and
    /// devices cannot be synced and need not be.
    fn sync(&mut self) -> io::Result<()> {
        match &mut self.dest {
            Dest::File(f) => match f.sync_data() {
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EROFS)) => Ok(()),
                r => r,
            },
            Dest::Stdout(s) => s.flush(),
        }
    }
}

impl Drop for OutFile {
    fn drop(&mut self) {
        // Opened for a run that never started: leave no empty file behind.
        if let Some(p) = self.created.take().filter(|_| self.cut_pending) {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Opens `path` for writing without changing what it holds; and whether this made the file.
pub(crate) fn open_unchanged(path: &Path) -> io::Result<(std::fs::File, bool)> {
    let existed = std::fs::symlink_metadata(path).is_ok();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    Ok((f, !existed))
}

/// Whether `path` can be written, leaving it as it was: a file made to find out is removed.
pub(crate) fn check_writable(path: &Path) -> io::Result<()> {
    let (_, made) = open_unchanged(path)?;
    if made {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}
