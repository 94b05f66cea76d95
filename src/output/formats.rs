//! The output formats, one row each: the flags that ask for it, whether it is a stream of
//! records or a document grouped by host, whether it names services, whether a distributed job's
//! `collect` writes it, and how it opens. The plan (`config::Outputs`), sink opening
//! (`scan::open_sinks`), late files (the keeper's list), nmap's `-oA`, `submit`'s refusals and
//! `collect`'s options all read this table. A variant without a row does not compile.

use std::{io, path::Path};

use super::{
    csv::{CsvSink, Field},
    file::OutFile,
    grepable::GrepableSink,
    list::ListSink,
    ndjson::NdjsonSink,
    normal::NormalSink,
    replies::RepliesSink,
    xml::XmlSink,
    zgrab::ZgrabSink,
    RunInfo, Sink,
};

/// How a format's file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// One record after another as they come; a resumed scan appends to it.
    Stream,
    /// A document grouped by host (`output::grouped`): rewritten whole from what a stopped run
    /// kept, with files of its own written late (after the privilege drop).
    Grouped,
}

/// What a format is opened with besides its path.
pub(crate) struct OpenCtx<'a> {
    pub(crate) info: &'a RunInfo,
    /// Continuing a stopped scan: streams are appended to.
    pub(crate) resuming: bool,
    /// `--csv`'s columns.
    pub(crate) csv_fields: &'a [Field],
    /// `-f` without `--csv`: NDJSON of these fields only (ZMap's JSON output).
    pub(crate) json_fields: Option<&'a [Field]>,
    /// Files written late (a grouped document's part file and runs) go through it.
    pub(crate) keeper: &'a crate::io::keeper::Keeper,
}

type Open = fn(&Path, &OpenCtx) -> io::Result<Box<dyn Sink>>;

/// One output format.
pub(crate) struct FormatRow {
    /// The long option that asks for it, and its other spellings (nmap's `-oX`, `-o`).
    pub(crate) long: &'static str,
    pub(crate) aliases: &'static [&'static str],
    /// The extension nmap's `-oA BASE` gives it, if `-oA` writes it.
    pub(crate) all_extension: Option<&'static str>,
    pub(crate) layout: Layout,
    /// Prints service names (reads the nmap-services port table).
    pub(crate) service_names: bool,
    /// A results format: without any, NDJSON goes to stdout (a capture is not one).
    pub(crate) results: bool,
    /// Holds the raw replies, which the receive path must then keep.
    pub(crate) raw_replies: bool,
    /// `collect` writes it from a job's results (a capture has no packets to write).
    pub(crate) from_job: bool,
    pub(crate) open: Open,
}

macro_rules! formats {
    ($($(#[$doc:meta])* $variant:ident => $row:expr,)*) => {
        /// The output formats; each one's facts are its row in [`FORMATS`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Format {
            $($(#[$doc])* $variant,)*
        }

        impl Format {
            pub(crate) const ALL: &'static [Format] = &[$(Format::$variant,)*];
        }

        /// One row per format, in [`Format`]'s order.
        pub(crate) static FORMATS: &[FormatRow] = &[$($row,)*];
    };
}

/// A stream's file: appended to when resuming.
fn stream(path: &Path, ctx: &OpenCtx) -> io::Result<OutFile> {
    if ctx.resuming {
        OutFile::append(path)
    } else {
        OutFile::create(path)
    }
}

const fn results(
    long: &'static str,
    aliases: &'static [&'static str],
    layout: Layout,
    open: Open,
) -> FormatRow {
    FormatRow {
        long,
        aliases,
        all_extension: None,
        layout,
        service_names: matches!(layout, Layout::Grouped),
        results: true,
        raw_replies: false,
        from_job: true,
        open,
    }
}

formats! {
    /// NDJSON, one object per result (`-oJ`, `-o`).
    Ndjson => results("--output-json", &["-oJ", "-o", "--output"], Layout::Stream,
        |p, c| Ok(Box::new(NdjsonSink::with_fields(stream(p, c)?, c.json_fields.map(<[_]>::to_vec))))),
    /// nmap XML (`-oX`).
    Xml => FormatRow {
        all_extension: Some("xml"),
        ..results("--output-xml", &["-oX"], Layout::Grouped,
            |p, c| Ok(Box::new(XmlSink::new(OutFile::create(p)?, c.info, c.keeper)?)))
    },
    /// nmap grepable (`-oG`).
    Grepable => FormatRow {
        all_extension: Some("gnmap"),
        ..results("--output-grepable", &["-oG"], Layout::Grouped,
            |p, c| Ok(Box::new(GrepableSink::new(OutFile::create(p)?, c.info, c.keeper)?)))
    },
    /// nmap's normal output (`-oN`).
    Normal => FormatRow {
        all_extension: Some("nmap"),
        ..results("--output-normal", &["-oN"], Layout::Grouped,
            |p, c| Ok(Box::new(NormalSink::new(OutFile::create(p)?, c.info, c.keeper)?)))
    },
    /// masscan's list (`-oL`).
    List => results("--output-list", &["-oL"], Layout::Stream,
        |p, c| Ok(Box::new(ListSink::new(stream(p, c)?)?))),
    /// CSV with `--fields`' columns (ZMap's).
    Csv => results("--csv", &[], Layout::Stream,
        |p, c| Ok(Box::new(CsvSink::new(stream(p, c)?, c.csv_fields.to_vec())?))),
    /// ZGrab2's JSON of the grabs (`-oZ`, `--grab`).
    Zgrab => results("--output-zgrab", &["-oZ"], Layout::Stream,
        |p, c| Ok(Box::new(ZgrabSink::new(stream(p, c)?)))),
    /// Every validated reply as received, a pcap file (`--pcap-replies`).
    Replies => FormatRow {
        results: false,
        raw_replies: true,
        from_job: false,
        ..results("--pcap-replies", &[], Layout::Stream,
            |p, c| Ok(Box::new(if c.resuming { RepliesSink::append(p)? } else { RepliesSink::create(p)? })))
    },
}

impl Format {
    #[inline]
    pub(crate) fn row(self) -> &'static FormatRow {
        &FORMATS[self as usize]
    }

    /// The format an option (`--output-xml`, `-oX`) asks for.
    pub(crate) fn from_flag(flag: &str) -> Option<Format> {
        Self::ALL
            .iter()
            .copied()
            .find(|f| f.row().long == flag || f.row().aliases.contains(&flag))
    }

    /// Opens the sink writing this format to `path`.
    pub(crate) fn open(self, path: &Path, ctx: &OpenCtx) -> io::Result<Box<dyn Sink>> {
        (self.row().open)(path, ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every spelling of every format's option.
    fn flags() -> impl Iterator<Item = (Format, &'static str)> {
        Format::ALL.iter().flat_map(|&f| {
            std::iter::once((f, f.row().long)).chain(f.row().aliases.iter().map(move |a| (f, *a)))
        })
    }

    #[test]
    fn flags_name_one_format_each() {
        let mut seen = std::collections::HashSet::new();
        for (f, flag) in flags() {
            assert!(seen.insert(flag), "{flag} twice");
            assert_eq!(Format::from_flag(flag), Some(f));
        }
        assert_eq!(Format::from_flag("-oX"), Some(Format::Xml));
        // nmap's -oA writes the three nmap formats.
        let all: Vec<_> = Format::ALL
            .iter()
            .filter_map(|f| f.row().all_extension)
            .collect();
        assert_eq!(all, ["xml", "gnmap", "nmap"]);
        assert!(Format::ALL
            .iter()
            .all(|f| f.row().service_names == (f.row().layout == Layout::Grouped)));
    }
}
