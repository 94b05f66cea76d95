//! Results grouped by host for the formats that write one block per address (nmap's XML and
//! grepable), in bounded memory. A stateless scan learns a host's ports in random order over
//! the whole run, so each result becomes an [`Entry`] (already rendered by its format) that is
//! kept in a buffer; a full buffer is sorted and written to an unlinked file as a run, and the
//! document is written at the end by merging the runs, one host at a time. Memory is the buffer
//! plus one read buffer per run, whatever the number of results (docs/design.md, "Grouping by
//! host").
//!
//! A run that stops early also saves its merged entries next to the document
//! ([`part_path`]); `--resume` reads them back, so the finished document holds both runs'
//! results, each host once.

use crate::io::keeper::Keeper;
use std::{
    cmp::Reverse,
    collections::BinaryHeap,
    fs::File,
    io::{self, BufReader, BufWriter, Read, Write},
    net::IpAddr,
    path::{Path, PathBuf},
};

/// Buffer size before a run is written to disk.
pub(crate) const DEFAULT_BUDGET: usize = 16 << 20;

/// Read buffer per run while merging.
const RUN_READ_BUF: usize = 64 << 10;

/// An address as a sort key: IPv4 first, then IPv6, each numerically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct HostKey {
    family: u8,
    addr: u128,
}

impl HostKey {
    pub(crate) fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(a) => HostKey {
                family: 4,
                addr: u32::from(a) as u128,
            },
            IpAddr::V6(a) => HostKey {
                family: 6,
                addr: u128::from(a),
            },
        }
    }

    pub(crate) fn ip(self) -> IpAddr {
        if self.family == 4 {
            IpAddr::V4((self.addr as u32).into())
        } else {
            IpAddr::V6(self.addr.into())
        }
    }
}

/// Host, then place in its block, then tag.
type SortKey = (HostKey, u32, u8);

/// One rendered piece of a host's block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) host: HostKey,
    /// Where it goes in the block: host facts first (0), then ports by protocol and number.
    pub(crate) order: u32,
    /// What kind of piece it is (the format's own tags).
    pub(crate) tag: u8,
    /// Unix seconds of the result.
    pub(crate) ts: u64,
    pub(crate) text: Vec<u8>,
}

impl Entry {
    fn key(&self) -> SortKey {
        (self.host, self.order, self.tag)
    }

    /// Bytes it holds in the buffer (for the budget).
    fn weight(&self) -> usize {
        std::mem::size_of::<Entry>() + self.text.len()
    }

    fn write_to<W: Write + ?Sized>(&self, w: &mut W) -> io::Result<()> {
        w.write_all(&[self.host.family])?;
        w.write_all(&self.host.addr.to_le_bytes())?;
        w.write_all(&self.order.to_le_bytes())?;
        w.write_all(&[self.tag])?;
        w.write_all(&self.ts.to_le_bytes())?;
        w.write_all(&(self.text.len() as u32).to_le_bytes())?;
        w.write_all(&self.text)
    }

    /// The next entry of a run, `None` at its end.
    fn read_from(r: &mut impl Read) -> io::Result<Option<Entry>> {
        let mut head = [0u8; 1 + 16 + 4 + 1 + 8 + 4];
        match r.read_exact(&mut head[..1]) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        r.read_exact(&mut head[1..])?;
        let le = |b: &[u8]| {
            let mut a = [0u8; 16];
            a[..b.len()].copy_from_slice(b);
            u128::from_le_bytes(a)
        };
        let family = head[0];
        if family != 4 && family != 6 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a grouped-results file",
            ));
        }
        let len = le(&head[30..34]) as usize;
        let mut text = vec![0u8; len];
        r.read_exact(&mut text)?;
        Ok(Some(Entry {
            host: HostKey {
                family,
                addr: le(&head[1..17]),
            },
            order: le(&head[17..21]) as u32,
            tag: head[21],
            ts: le(&head[22..30]) as u64,
            text,
        }))
    }
}

/// Where a document that stopped early keeps its entries for `--resume`.
pub(crate) fn part_path(document: &Path) -> PathBuf {
    let mut s = document.as_os_str().to_owned();
    s.push(".xdpscan-part");
    PathBuf::from(s)
}

fn part_tmp_path(part: &Path) -> PathBuf {
    part.with_extension("tmp")
}

/// What a document may write late (after the privilege drop): its part file, the part's
/// temporary name, and the directory of its spilled runs.
pub(crate) fn late_paths(document: &Path) -> (Vec<PathBuf>, PathBuf) {
    let dir = HostGroups::for_document(document).dir;
    if document == Path::new("-") {
        return (Vec::new(), dir);
    }
    let part = part_path(document);
    (vec![part_tmp_path(&part), part], dir)
}

/// The entries of one document, sorted by host through memory and sorted runs on disk.
pub(crate) struct HostGroups {
    buf: Vec<Entry>,
    buf_bytes: usize,
    budget: usize,
    runs: Vec<File>,
    /// Where runs are made (the document's directory: the disk that holds the results).
    dir: PathBuf,
    /// Most bytes the buffer held (for tests and the metadata).
    pub(crate) peak_buffer: usize,
    /// Makes the runs' unnamed files (after the privilege drop too).
    keeper: Keeper,
}

impl HostGroups {
    pub(crate) fn new(dir: PathBuf, budget: usize) -> Self {
        Self {
            buf: Vec::new(),
            buf_bytes: 0,
            budget: budget.max(1),
            runs: Vec::new(),
            dir,
            peak_buffer: 0,
            keeper: Keeper::default(),
        }
    }

    /// For a document at `path` ("-": standard output, runs in the temporary directory).
    pub(crate) fn for_document(path: &Path) -> Self {
        let dir = match path.parent() {
            _ if path == Path::new("-") => std::env::temp_dir(),
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Self::new(dir, DEFAULT_BUDGET)
    }

    pub(crate) fn push(&mut self, e: Entry) -> io::Result<()> {
        self.buf_bytes += e.weight();
        self.buf.push(e);
        self.peak_buffer = self.peak_buffer.max(self.buf_bytes);
        if self.buf_bytes >= self.budget {
            self.spill()?;
        }
        Ok(())
    }

    #[cfg(test)]
    /// Runs on disk so far.
    pub(crate) fn runs(&self) -> usize {
        self.runs.len()
    }

    /// Adds a sorted file of entries (a `part_path` file from an earlier run).
    pub(crate) fn add_sorted(&mut self, f: File) {
        self.runs.push(f);
    }

    /// Sorts the buffer and writes it as a run to a file that has no name (nothing is left
    /// behind, whatever ends the process).
    fn spill(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.buf.sort_by_key(|e| e.key());
        let f = self.keeper.unnamed(&self.dir)?;
        let mut w = BufWriter::with_capacity(RUN_READ_BUF, f);
        for e in self.buf.drain(..) {
            e.write_to(&mut w)?;
        }
        let mut f = w.into_inner().map_err(|e| e.into_error())?;
        use io::Seek;
        f.seek(io::SeekFrom::Start(0))?;
        self.runs.push(f);
        self.buf_bytes = 0;
        self.buf.shrink_to(self.buf.capacity().min(1 << 16));
        Ok(())
    }

    /// Every host in order with its entries (sorted, each `(order, tag)` once: a result seen
    /// again after a resume is kept once). `save` also receives every entry kept, in order.
    pub(crate) fn drain(
        mut self,
        mut save: Option<&mut dyn Write>,
        mut host: impl FnMut(HostKey, &[Entry]) -> io::Result<()>,
    ) -> io::Result<()> {
        self.buf.sort_by_key(|e| e.key());
        let mut mem = std::mem::take(&mut self.buf).into_iter();
        let mut readers: Vec<BufReader<File>> = self
            .runs
            .drain(..)
            .map(|f| BufReader::with_capacity(RUN_READ_BUF, f))
            .collect();
        // Source usize::MAX is the memory buffer.
        let mut heap: BinaryHeap<Reverse<(SortKey, usize)>> = BinaryHeap::new();
        let mut heads: Vec<Option<Entry>> = Vec::with_capacity(readers.len() + 1);
        for (i, r) in readers.iter_mut().enumerate() {
            let e = Entry::read_from(r)?;
            if let Some(e) = &e {
                heap.push(Reverse((e.key(), i)));
            }
            heads.push(e);
        }
        let mem_slot = heads.len();
        let first = mem.next();
        if let Some(e) = &first {
            heap.push(Reverse((e.key(), mem_slot)));
        }
        heads.push(first);

        let mut group: Vec<Entry> = Vec::new();
        while let Some(Reverse((_, src))) = heap.pop() {
            let e = heads[src].take().expect("a queued source has a head");
            let next = if src == mem_slot {
                mem.next()
            } else {
                Entry::read_from(&mut readers[src])?
            };
            if let Some(n) = &next {
                heap.push(Reverse((n.key(), src)));
            }
            heads[src] = next;
            if group.first().is_some_and(|g| g.host != e.host) {
                host(group[0].host, &group)?;
                group.clear();
            }
            if group.last().is_some_and(|l| l.key() == e.key()) {
                continue;
            }
            if let Some(w) = save.as_deref_mut() {
                e.write_to(w)?;
            }
            group.push(e);
        }
        if !group.is_empty() {
            host(group[0].host, &group)?;
        }
        Ok(())
    }
}

/// A document of host blocks: its file, its entries, and where it keeps them when the run
/// stops early.
pub(crate) struct Document {
    pub(crate) out: super::file::OutFile,
    groups: Option<HostGroups>,
    /// `part_path` of the document (none for standard output).
    part: Option<PathBuf>,
    /// Writes the part file and the runs late.
    keeper: Keeper,
}

impl Document {
    /// `resuming`: read back what the interrupted run kept for this document, if it kept any.
    pub(crate) fn new(
        out: super::file::OutFile,
        resuming: bool,
        keeper: &Keeper,
    ) -> io::Result<Self> {
        let path = PathBuf::from(out.name());
        let mut groups = HostGroups::for_document(&path);
        groups.keeper = keeper.clone();
        let part = (!out.is_stdout()).then(|| part_path(&path));
        if let (true, Some(p)) = (resuming, &part) {
            match File::open(p) {
                Ok(f) => groups.add_sorted(f),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Self {
            out,
            groups: Some(groups),
            part,
            keeper: keeper.clone(),
        })
    }

    pub(crate) fn push(&mut self, e: Entry) -> io::Result<()> {
        match &mut self.groups {
            Some(g) => g.push(e),
            None => Ok(()),
        }
    }

    /// Writes every host block through `render` (`None` writes nothing for that host). When the
    /// run is not `complete`, the entries are also kept in the part file for `--resume`; when it
    /// is, a part file read back is removed.
    pub(crate) fn write_hosts(
        &mut self,
        complete: bool,
        mut render: impl FnMut(HostKey, &[Entry]) -> Option<String>,
    ) -> io::Result<()> {
        let Some(groups) = self.groups.take() else {
            return Ok(());
        };
        let out = &mut self.out;
        let mut write = |h: HostKey, es: &[Entry]| match render(h, es) {
            Some(text) => out.record(text.as_bytes()),
            None => Ok(()),
        };
        match (&self.part, complete) {
            (Some(part), false) => {
                let tmp = part_tmp_path(part);
                let mut w = BufWriter::new(self.keeper.create_temp(&tmp)?);
                groups.drain(Some(&mut w), &mut write)?;
                w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
                self.keeper.rename(&tmp, part)
            }
            (part, _) => {
                groups.drain(None, &mut write)?;
                match part.as_ref().map(|p| self.keeper.remove(p)) {
                    Some(Err(e)) if e.kind() != io::ErrorKind::NotFound => Err(e),
                    _ => Ok(()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(ip: &str, order: u32, tag: u8, text: &str) -> Entry {
        Entry {
            host: HostKey::of(ip.parse().unwrap()),
            order,
            tag,
            ts: 1,
            text: text.as_bytes().to_vec(),
        }
    }

    fn collect(g: HostGroups) -> Vec<(IpAddr, Vec<String>)> {
        let mut out = Vec::new();
        g.drain(None, |h, es| {
            out.push((
                h.ip(),
                es.iter()
                    .map(|e| String::from_utf8(e.text.clone()).unwrap())
                    .collect(),
            ));
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn hosts_once_in_address_order_with_runs_on_disk() {
        let mut g = HostGroups::new(std::env::temp_dir(), 1); // every push spills
        for (ip, port) in [
            ("198.19.0.9", 80),
            ("2001:db8::1", 22),
            ("198.19.0.10", 22),
            ("198.19.0.9", 22),
            ("198.19.0.9", 80), // again: kept once
        ] {
            g.push(entry(ip, port, b'P', &format!("{port}"))).unwrap();
        }
        assert_eq!(g.runs(), 5);
        let got = collect(g);
        let want: Vec<(IpAddr, Vec<String>)> = vec![
            (
                "198.19.0.9".parse().unwrap(),
                vec!["22".into(), "80".into()],
            ),
            ("198.19.0.10".parse().unwrap(), vec!["22".into()]),
            ("2001:db8::1".parse().unwrap(), vec!["22".into()]),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn a_saved_part_is_read_back_as_a_run() {
        let dir = std::env::temp_dir();
        let mut first = HostGroups::new(dir.clone(), 1 << 20);
        first.push(entry("198.19.0.1", 80, b'P', "a80")).unwrap();
        first.push(entry("198.19.0.2", 22, b'P', "b22")).unwrap();
        let mut part = Keeper::default().unnamed(&dir).unwrap();
        {
            let mut w = BufWriter::new(&mut part);
            first.drain(Some(&mut w), |_, _| Ok(())).unwrap();
        }
        use io::Seek;
        part.seek(io::SeekFrom::Start(0)).unwrap();
        let mut second = HostGroups::new(dir, 1 << 20);
        second.add_sorted(part);
        second.push(entry("198.19.0.1", 22, b'P', "a22")).unwrap();
        second.push(entry("198.19.0.1", 80, b'P', "a80")).unwrap();
        let got = collect(second);
        assert_eq!(got[0].1, ["a22", "a80"]);
        assert_eq!(got[1].1, ["b22"]);
    }

    proptest! {
        #[test]
        fn grouping_equals_a_sort_whatever_the_budget(
            items in proptest::collection::vec((0u32..50, 0u32..20), 0..300),
            budget in 1usize..4000,
        ) {
            let mut g = HostGroups::new(std::env::temp_dir(), budget);
            for (h, p) in &items {
                let ip = std::net::Ipv4Addr::from(0xc613_0000 + h).to_string();
                g.push(entry(&ip, *p, b'P', &p.to_string())).unwrap();
            }
            let got = collect(g);
            let mut want: std::collections::BTreeMap<u32, std::collections::BTreeSet<u32>> = Default::default();
            for (h, p) in items {
                want.entry(h).or_default().insert(p);
            }
            let want: Vec<(IpAddr, Vec<String>)> = want
                .into_iter()
                .map(|(h, ps)| (IpAddr::V4((0xc613_0000 + h).into()), ps.into_iter().map(|p| p.to_string()).collect()))
                .collect();
            prop_assert_eq!(got, want);
        }
    }
}
