//! The flags nmap, masscan and ZMap users type, before the command line is parsed: each is
//! translated to xdpscan's own (with a note the caller prints once) or refused with one line
//! naming xdpscan's way. None is silently misread. Pure: no I/O, no environment (masscan's
//! `-c FILE` is read through the reader the caller passes).

use std::ffi::OsString;

/// The arguments to parse, and a note per translated flag.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Translated {
    pub args: Vec<OsString>,
    pub notes: Vec<String>,
    /// masscan's `--echo`: print the scan as a configuration file instead of running it.
    pub echo: bool,
    /// What masscan's `-c FILE` gave, added after the command line's own options.
    conf: Vec<OsString>,
}

/// nmap's `-T` templates as rates (xdpscan paces by packets per second only).
const TIMING_RATES: [u32; 6] = [1, 10, 100, 1_000, 10_000, 100_000];

/// Letters of nmap's `-s` scan types that xdpscan has (the scan-type table's flags, and `V`),
/// for combined forms (`-sSU`, `-sUV`).
fn scan_letter(c: char) -> Option<String> {
    let flag = format!("-s{c}");
    (c == 'V' || crate::probe::ScanType::from_flag(&flag).is_some()).then_some(flag)
}

/// Flags refused outright: their names, whether a value follows, and xdpscan's way.
const REFUSED: &[(&[&str], bool, &str)] = &[
    (
        &["-oS"],
        true,
        "nmap's script kiddie output is not written; use -oN FILE, -oX FILE or -oG FILE",
    ),
    (
        &["--adapter-mac", "--source-mac"],
        true,
        "xdpscan sends from the interface's own MAC; choose the interface with -i",
    ),
    (
        &["-B", "--bandwidth"],
        true,
        "xdpscan paces by packets per second: --rate PPS",
    ),
];

/// One of xdpscan's options, as the CLI definition has it.
struct OptionInfo {
    id: String,
    takes_value: bool,
    /// Given once (a later one would be refused), so a command line's replaces a `-c` file's.
    single: bool,
}

/// The option `flag` names (short, long or alias; nmap's two-letter forms such as `-oX`
/// through `cli::normalize_args`), read from the CLI definition.
fn option(flag: &str) -> Option<&'static OptionInfo> {
    use clap::{ArgAction, CommandFactory};
    static OPTIONS: std::sync::OnceLock<Vec<(String, OptionInfo)>> = std::sync::OnceLock::new();
    let options = OPTIONS.get_or_init(|| {
        let cmd = crate::cli::Cli::command();
        let mut options = Vec::new();
        for arg in cmd.get_arguments() {
            let mut names: Vec<String> = (arg.get_short_and_visible_aliases().unwrap_or_default())
                .into_iter()
                .map(|c| format!("-{c}"))
                .collect();
            let longs = arg.get_long_and_visible_aliases().unwrap_or_default();
            let aliases = arg.get_all_aliases().unwrap_or_default();
            names.extend(longs.into_iter().chain(aliases).map(|l| format!("--{l}")));
            for name in names {
                let info = OptionInfo {
                    id: arg.get_id().to_string(),
                    takes_value: arg.get_action().takes_values(),
                    single: matches!(arg.get_action(), ArgAction::Set | ArgAction::SetTrue),
                };
                options.push((name, info));
            }
        }
        options
    });
    let normalized = crate::cli::normalize_args([OsString::from(flag)]);
    let flag = normalized[0].to_str().unwrap_or(flag);
    let flag = flag.split_once('=').map_or(flag, |(f, _)| f);
    options.iter().find(|(n, _)| n == flag).map(|(_, o)| o)
}

/// Whether `flag` is one of xdpscan's options that take the next argument as their value (so a
/// value that looks like a peer's flag, a file named `-T4`, is not translated).
fn takes_value(flag: &str) -> bool {
    // `-sS` is `--scan=syn`, `--rate=5` has its value: neither takes the next argument.
    let attached = crate::cli::normalize_args([OsString::from(flag)])[0]
        .to_string_lossy()
        .contains('=');
    !attached && option(flag).is_some_and(|o| o.takes_value)
}

/// A `-c` file's options less those the command line gives again: as in masscan, the command
/// line wins (an option given once; repeatable ones, targets and excludes, add up).
fn without_overridden(conf: Vec<OsString>, given: &[OsString]) -> Vec<OsString> {
    let mut ids = std::collections::HashSet::new();
    let mut it = given.iter().skip(1);
    while let Some(a) = it.next() {
        if let Some(o) = a.to_str().and_then(option) {
            ids.insert(o.id.as_str());
            if takes_value(&a.to_string_lossy()) {
                it.next();
            }
        }
    }
    let mut kept = Vec::new();
    let mut it = conf.into_iter();
    while let Some(a) = it.next() {
        match a.to_str().and_then(option) {
            Some(o) if o.single && ids.contains(o.id.as_str()) => {
                if o.takes_value {
                    it.next();
                }
            }
            Some(o) if o.takes_value => {
                let v = it.next();
                kept.push(a);
                kept.extend(v);
            }
            _ => kept.push(a),
        }
    }
    kept
}

/// Translates or refuses the peers' flags in `args` (the program name first); `read` gives
/// the text of a masscan configuration file (`-c FILE`).
pub fn translate(
    args: Vec<OsString>,
    read: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Translated, String> {
    let mut out = Translated::default();
    let mut it = args.into_iter().peekable();
    if let Some(prog) = it.next() {
        out.args.push(prog);
    }
    let mut after_dashes = false;
    let mut zmap_module: Option<String> = None;
    while let Some(a) = it.next() {
        let Some(s) = a.to_str().map(str::to_string).filter(|_| !after_dashes) else {
            out.args.push(a);
            continue;
        };
        if s == "--" {
            after_dashes = true;
            out.args.push(a);
            continue;
        }
        if let Some((_, has_value, hint)) = REFUSED
            .iter()
            .find(|(names, ..)| names.contains(&s.as_str()))
        {
            let v = if *has_value {
                it.next().map(|v| v.to_string_lossy().into_owned())
            } else {
                None
            };
            return Err(match v {
                Some(v) => format!("{s} {v}: {hint}"),
                None => format!("{s}: {hint}"),
            });
        }
        if takes_value(&s) {
            out.args.push(a);
            if let Some(v) = it.next() {
                out.args.push(v);
            }
            continue;
        }
        let mut value = |flag: &str| -> Result<String, String> {
            it.next()
                .and_then(|v| v.into_string().ok())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        if let Some((_, ours)) = RENAMED.iter().find(|(theirs, _)| *theirs == s) {
            let v = value(&s)?;
            out.args.extend([OsString::from(ours), OsString::from(v)]);
            continue;
        }
        let handled = nmap_flag(&s, &mut value, &mut out)?
            || masscan_flag(&s, &mut value, &mut out, read)?
            || zmap_flag(&s, &mut value, &mut out, &mut zmap_module)?;
        if !handled {
            out.args.push(a);
        }
    }
    let conf = std::mem::take(&mut out.conf);
    let kept = without_overridden(conf, &out.args);
    out.args.extend(kept);
    if let Some(module) = zmap_module {
        zmap_output_module(&mut out, &module);
    }
    check_zmap_output(&out.args)?;
    Ok(out)
}

/// Peers' flags that are one of xdpscan's under another name, their value kept.
const RENAMED: &[(&str, &str)] = &[
    ("--excludefile", "--exclude-file"),
    ("--max-retries", "--retries"),
    ("--adapter", "--interface"),
    ("--router-mac", "--gateway-mac"),
    ("-G", "--gateway-mac"),
];

/// The next argument, as a flag's value.
type Value<'a> = dyn FnMut(&str) -> Result<String, String> + 'a;

fn push(out: &mut Translated, v: &[&str]) {
    out.args.extend(v.iter().map(OsString::from));
}

/// nmap's flags; false when `s` is none of them.
fn nmap_flag(s: &str, value: &mut Value, out: &mut Translated) -> Result<bool, String> {
    match s {
        "-oA" => {
            let base = value("-oA")?;
            for f in crate::output::formats::Format::ALL {
                if let Some(ext) = f.row().all_extension {
                    push(out, &[f.row().long, &format!("{base}.{ext}")]);
                }
            }
        }
        t if t.len() == 3 && t.starts_with("-T") && t.as_bytes()[2].is_ascii_digit() => {
            let level = (t.as_bytes()[2] - b'0') as usize;
            let rate = TIMING_RATES.get(level).ok_or_else(|| {
                format!("{t}: nmap's timing templates are -T0 to -T5; xdpscan paces by --rate PPS")
            })?;
            push(out, &["--rate", &rate.to_string()]);
            out.notes.push(format!(
                "{t}: --rate {rate} (xdpscan paces by packets per second)"
            ));
        }
        "-Pn" => out
            .notes
            .push("-Pn: xdpscan never does host discovery; every address is probed".into()),
        "-n" => out.notes.push("-n: xdpscan never resolves names".into()),
        "-6" => out
            .notes
            .push("-6: the family comes from the targets (IPv6 addresses scan over IPv6)".into()),
        "-v" | "-vv" | "-vvv" => out.notes.push(format!(
            "{s}: progress and the summary are on by default (-q turns them off)"
        )),
        "-sn" => {
            push(out, &["-PE"]);
            out.notes.push(
                "-sn: an ICMP echo sweep (-PE); nmap's TCP and timestamp pings are not sent".into(),
            );
        }
        t if t.len() > 3
            && t.starts_with("-s")
            && t[2..].chars().all(|c| scan_letter(c).is_some()) =>
        {
            for c in t[2..].chars() {
                push(out, &[&scan_letter(c).unwrap_or_default()]);
            }
        }
        "--min-rate" | "--max-rate" => {
            let r = value(s)?;
            push(out, &["--rate", &r]);
            out.notes
                .push(format!("{s} {r}: --rate {r} (one rate, held)"));
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// masscan's flags; false when `s` is none of them.
fn masscan_flag(
    s: &str,
    value: &mut Value,
    out: &mut Translated,
    read: &dyn Fn(&str) -> Result<String, String>,
) -> Result<bool, String> {
    match s {
        // masscan's ranges (`A-B`, `P/LEN`) are -S's source pools.
        "--adapter-ip" => {
            let v = value(s)?;
            push(out, &["--source-ip", &v]);
        }
        "--echo" => out.echo = true,
        "-c" | "--conf" => {
            let file = value(s)?;
            let text = read(&file).map_err(|e| format!("{s} {file}: {e}"))?;
            out.conf.extend(masscan_conf(&file, &text)?);
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// ZMap's flags; false when `s` is none of them. `-O` is applied once every flag is read.
fn zmap_flag(
    s: &str,
    value: &mut Value,
    out: &mut Translated,
    module: &mut Option<String>,
) -> Result<bool, String> {
    match s {
        "-O" | "--output-module" => {
            let v = value(s)?;
            if v != "csv" && v != "json" {
                return Err(format!(
                    "-O {v}: ZMap's csv and json modules are -O csv and -O json; otherwise choose the format by its option: -o FILE (NDJSON), --csv FILE, -oX, -oG, -oL"
                ));
            }
            *module = Some(v);
        }
        "-M" | "--probe-module" => {
            let v = value(s)?;
            let t = crate::probe::ScanType::from_name(&v)
                .filter(|t| t.row().zmap == Some(v.as_str()))
                .ok_or_else(|| zmap_modules(&v))?;
            push(out, &[&format!("--scan={}", t.name())]);
            out.notes.push(format!("-M {v}: --scan {}", t.name()));
        }
        "-P" | "--probes" => {
            let v = value(s)?;
            let n: u32 = v.parse().ok().filter(|&n| n >= 1).ok_or_else(|| {
                format!("-P {v}: probes per target must be a number of 1 or more")
            })?;
            push(out, &["--retries", &(n - 1).to_string()]);
            out.notes.push(format!("-P {n}: --retries {}", n - 1));
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// ZMap's probe modules xdpscan has (the scan-type table's), for a `-M` it has not.
fn zmap_modules(asked: &str) -> String {
    let known: Vec<String> = crate::probe::ScanType::ALL
        .iter()
        .filter_map(|t| {
            let r = t.row();
            r.zmap.map(|z| format!("{z} ({})", r.flags[0]))
        })
        .collect();
    format!(
        "-M {asked}: the ZMap modules xdpscan has are {}; or choose the scan type with --scan NAME",
        known.join(", ")
    )
}

/// ZMap's `-O csv` makes its `-o FILE` (or stdout) CSV; `-O json` is xdpscan's NDJSON, whose
/// fields `-f` chooses as ZMap's do.
fn zmap_output_module(out: &mut Translated, module: &str) {
    if module == "csv" {
        let mut to_file = false;
        for a in out.args.iter_mut() {
            if a == "-o" || a == "--output-json" {
                *a = OsString::from("--csv");
                to_file = true;
            }
        }
        if !to_file {
            out.args.extend(["--csv", "-"].map(OsString::from));
        }
        out.notes
            .push("-O csv: --csv, with the columns of -f (ZMap's names)".into());
    } else {
        out.notes
            .push("-O json: NDJSON, one object per result (-f chooses its fields)".into());
    }
}

/// masscan's configuration names that differ from xdpscan's options, and what they become
/// (`range` is the targets).
const CONF_NAMES: &[(&str, &str)] = &[
    ("port", "--ports"),
    ("adapter", "--interface"),
    ("adapter-ip", "--source-ip"),
    ("adapter-port", "--source-port"),
    ("source-ip", "--source-ip"),
    ("router-mac", "--gateway-mac"),
    ("router-mac-ipv4", "--gateway-mac"),
    ("excludefile", "--exclude-file"),
    ("includefile", "--target-file"),
    ("max-rate", "--rate"),
    ("open-only", "--open"),
    ("output-filename", ""),
    ("output-format", ""),
];

/// The options a masscan configuration file (`name = value` lines, `#` comments), or one
/// `--echo` wrote, stands for. Names are masscan's or xdpscan's own long options.
pub(crate) fn masscan_conf(file: &str, text: &str) -> Result<Vec<OsString>, String> {
    let mut args: Vec<OsString> = Vec::new();
    let (mut format, mut filename) = (None, None);
    let mut ipv6_router: Option<String> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |why: &str| format!("{file} line {}: {why}", n + 1);
        let (name, value) = line
            .split_once('=')
            .map(|(a, b)| (a.trim(), b.trim()))
            .ok_or_else(|| err("expected NAME = VALUE"))?;
        match name {
            // What xdpscan always does (a random order), or masscan's TLS capture choices.
            "randomize-hosts" | "capture" | "nocapture" => {}
            // One next hop serves both families here: masscan's IPv6 one must be the same.
            "router-mac-ipv6" => ipv6_router = Some(value.to_string()),
            "range" | "ranges" | "ip" | "dst" => {
                args.extend(value.split(',').map(|t| OsString::from(t.trim())))
            }
            "output-format" => format = Some(value.to_string()),
            "output-filename" => filename = Some(value.to_string()),
            _ => {
                let long = CONF_NAMES
                    .iter()
                    .find(|(m, _)| *m == name)
                    .map_or_else(|| format!("--{name}"), |(_, x)| x.to_string());
                match value {
                    "true" => args.push(long.into()),
                    "false" => {}
                    v => args.extend([OsString::from(long), OsString::from(v)]),
                }
            }
        }
    }
    if let Some(v6) = ipv6_router {
        let v4 = args
            .windows(2)
            .find(|w| w[0] == "--gateway-mac")
            .map(|w| w[1].to_string_lossy().to_lowercase().replace('-', ":"));
        if v4.as_deref() != Some(&v6.to_lowercase().replace('-', ":")) {
            return Err(format!(
                "{file}: router-mac-ipv6 {v6} differs from the IPv4 router's; xdpscan takes one --gateway-mac"
            ));
        }
    }
    if let Some(f) = format.as_deref().or(filename.as_ref().map(|_| "list")) {
        let option = match f {
            "xml" => "--output-xml",
            "grepable" => "--output-grepable",
            "list" => "--output-list",
            "json" | "ndjson" => "--output-json",
            "csv" => "--csv",
            other => {
                return Err(format!(
                    "{file}: output-format {other} is not written; xml, grepable, list, json or csv"
                ))
            }
        };
        args.extend([option, filename.as_deref().unwrap_or("-")].map(OsString::from));
    }
    Ok(args)
}

/// masscan's `--echo`: the options of `args` (already translated and normalized) as a
/// configuration file that `-c` reads back, one `name = value` per option given.
pub fn echo(args: &[OsString]) -> Result<String, clap::Error> {
    use clap::{parser::ValueSource, CommandFactory};
    let cmd = crate::cli::Cli::command();
    let matches = cmd.clone().try_get_matches_from(args)?;
    let mut text =
        String::from("# xdpscan scan as a masscan configuration file (xdpscan -c FILE)\n");
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        if matches.value_source(id) != Some(ValueSource::CommandLine) {
            continue;
        }
        let name = match arg.get_long() {
            Some(l) => l.to_string(),
            None => "range".to_string(),
        };
        let values: Vec<String> = matches
            .get_raw(id)
            .map(|vs| vs.map(|v| v.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        if values.is_empty() {
            text.push_str(&format!("{name} = true\n"));
        } else if name == "range" {
            text.push_str(&format!("range = {}\n", values.join(",")));
        } else {
            for v in values {
                text.push_str(&format!("{name} = {v}\n"));
            }
        }
    }
    Ok(text)
}

/// ZMap's `-o out.csv` (without `-O`) means CSV; xdpscan's `-o` is NDJSON: refused rather than
/// misread.
fn check_zmap_output(args: &[OsString]) -> Result<(), String> {
    let s: Vec<&str> = args.iter().filter_map(|a| a.to_str()).collect();
    for w in s.windows(2) {
        if (w[0] == "-o" || w[0] == "--output-json") && w[1].ends_with(".csv") {
            return Err(format!(
                "-o writes NDJSON; for CSV use --csv {} (or ZMap's -O csv -o FILE)",
                w[1]
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(args: &[&str]) -> Result<Vec<String>, String> {
        let mut v = vec!["xdpscan"];
        v.extend_from_slice(args);
        let read = |f: &str| -> Result<String, String> {
            match f {
                "masscan.conf" => Ok("# from masscan --echo\nrate = 100000.00\nports = 80,443\nrange = 198.19.0.0/24, 198.19.1.0/24\nrandomize-hosts = true\noutput-format = xml\noutput-filename = scan.xml\nopen-only = true\nbanners = false\n".into()),
                _ => Err("No such file or directory".into()),
            }
        };
        translate(v.into_iter().map(OsString::from).collect(), &read).map(|t| {
            t.args[1..]
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect()
        })
    }

    #[test]
    fn nmap_flags_translate() {
        assert_eq!(
            t(&["-oA", "b", "x"]).unwrap(),
            [
                "--output-xml",
                "b.xml",
                "--output-grepable",
                "b.gnmap",
                "--output-normal",
                "b.nmap",
                "x"
            ]
        );
        assert_eq!(t(&["-T4"]).unwrap(), ["--rate", "10000"]);
        assert_eq!(t(&["-sSU"]).unwrap(), ["-sS", "-sU"]);
        assert_eq!(t(&["-sUV"]).unwrap(), ["-sU", "-sV"]);
        assert_eq!(t(&["-Pn", "-n", "-6", "-v"]).unwrap(), Vec::<String>::new());
        assert_eq!(t(&["--max-retries", "2"]).unwrap(), ["--retries", "2"]);
        assert_eq!(t(&["--excludefile", "f"]).unwrap(), ["--exclude-file", "f"]);
        // A value is never translated: a file named -T4 stays one.
        assert_eq!(t(&["-oJ", "-T4"]).unwrap(), ["-oJ", "-T4"]);
        assert_eq!(t(&["--", "-Pn"]).unwrap(), ["--", "-Pn"]);
        for flag in [
            "-p",
            "--rate",
            "--max-rate",
            "-oJ",
            "-oN",
            "-iL",
            "--resume",
            "-f",
            "--generate",
        ] {
            assert!(takes_value(flag), "{flag}");
        }
        for flag in ["--open", "-q", "--dry-run", "-sS", "-T4"] {
            assert!(!takes_value(flag), "{flag}");
        }
    }

    #[test]
    fn misreadable_flags_are_refused_with_a_hint() {
        for (args, names) in [
            (&["-oS", "x"][..], "-oN"),
            (&["-oA"][..], "needs a value"),
            (&["-T9"][..], "--rate"),
            (&["-c", "f"][..], "-c f: No such file"),
            (&["-O", "redis"][..], "--csv"),
            (&["-B", "10M"][..], "--rate"),
            (&["-M", "tcp_synackscan"][..], "tcp_synscan (-sS)"),
            (&["-o", "out.csv"][..], "--csv out.csv"),
            (&["-P", "0"][..], "1 or more"),
        ] {
            let e = t(args).unwrap_err();
            assert!(e.contains(names), "{args:?}: {e}");
        }
        assert_eq!(t(&["-P", "3"]).unwrap(), ["--retries", "2"]);
        assert_eq!(
            t(&["--adapter-ip", "198.18.0.1-198.18.0.8"]).unwrap(),
            ["--source-ip", "198.18.0.1-198.18.0.8"]
        );
        assert_eq!(t(&["-M", "udp"]).unwrap(), ["--scan=udp"]);
        assert_eq!(t(&["-M", "icmp_echoscan"]).unwrap(), ["--scan=ping"]);
        assert_eq!(
            t(&["--probe-module", "tcp_synscan"]).unwrap(),
            ["--scan=syn"]
        );
        assert_eq!(
            t(&["-O", "csv", "-o", "x.csv"]).unwrap(),
            ["--csv", "x.csv"]
        );
        assert_eq!(t(&["-O", "csv"]).unwrap(), ["--csv", "-"]);
        assert_eq!(t(&["-O", "json", "-f", "saddr"]).unwrap(), ["-f", "saddr"]);
        assert_eq!(t(&["--adapter", "eth1"]).unwrap(), ["--interface", "eth1"]);
        assert_eq!(
            t(&["-c", "masscan.conf"]).unwrap(),
            [
                "--rate",
                "100000.00",
                "--ports",
                "80,443",
                "198.19.0.0/24",
                "198.19.1.0/24",
                "--open",
                "--output-xml",
                "scan.xml"
            ]
        );
        assert_eq!(
            masscan_conf("f", "rate 5").unwrap_err(),
            "f line 1: expected NAME = VALUE"
        );
        assert!(masscan_conf("f", "output-format = binary")
            .unwrap_err()
            .contains("binary"));
    }

    #[test]
    fn echo_writes_a_file_that_c_reads_back() {
        let args: Vec<OsString> = [
            "xdpscan",
            "198.19.0.0/24",
            "198.19.1.1",
            "--ports",
            "22,80",
            "--rate",
            "5k",
            "--open",
            "--output-xml",
            "x.xml",
        ]
        .into_iter()
        .map(OsString::from)
        .collect();
        let text = echo(&args).unwrap();
        assert!(
            text.contains("range = 198.19.0.0/24,198.19.1.1\n"),
            "{text}"
        );
        assert!(
            text.contains("ports = 22,80\nrate = 5k\n") || text.contains("rate = 5k"),
            "{text}"
        );
        // The command line replaces a file's single options and adds to its targets.
        assert_eq!(
            t(&["-c", "masscan.conf", "--rate", "7", "198.19.2.0/24"]).unwrap()[..4],
            ["--rate", "7", "198.19.2.0/24", "--ports"]
        );
        let back = masscan_conf("echo", &text).unwrap();
        let mut again = vec![OsString::from("xdpscan")];
        again.extend(back);
        assert_eq!(echo(&again).unwrap(), text);
    }
}
