//! The flags nmap, masscan and ZMap users type, before the command line is parsed: each is
//! translated to xdpscan's own (with a note the caller prints once) or refused with one line
//! naming xdpscan's way. None is silently misread. Pure: no I/O, no environment.

use std::ffi::OsString;

/// The arguments to parse, and a note per translated flag.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Translated {
    pub args: Vec<OsString>,
    pub notes: Vec<String>,
}

/// nmap's `-T` templates as rates (xdpscan paces by packets per second only).
const TIMING_RATES: [u32; 6] = [1, 10, 100, 1_000, 10_000, 100_000];

/// Letters of nmap's `-s` scan types that xdpscan has, for combined forms (`-sSU`, `-sUV`).
fn scan_letter(c: char) -> Option<&'static str> {
    Some(match c {
        'S' => "-sS",
        'A' => "-sA",
        'W' => "-sW",
        'F' => "-sF",
        'N' => "-sN",
        'X' => "-sX",
        'M' => "-sM",
        'U' => "-sU",
        'O' => "-sO",
        'T' => "-sT",
        'V' => "-sV",
        _ => return None,
    })
}

/// Flags whose value is one argument after them (so a value that looks like a peer flag is not
/// translated).
const TAKES_VALUE: &[&str] = &[
    "-p",
    "-i",
    "-S",
    "-g",
    "-r",
    "-o",
    "-f",
    "-m",
    "--ports",
    "--rate",
    "--exclude",
    "--exclude-file",
    "--interface",
    "--source-ip",
    "--source-port",
    "--seed",
    "--shard",
    "-iL",
    "-oJ",
    "-oX",
    "-oG",
    "-oL",
    "--output-json",
    "--output-xml",
    "--output-grepable",
    "--output-normal",
    "-oN",
    "--output-list",
    "--csv",
    "--fields",
    "--metadata",
    "--resume",
    "--resume-file",
];

/// Translates or refuses the peers' flags in `args` (the program name first).
pub fn translate(args: Vec<OsString>) -> Result<Translated, String> {
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
        if TAKES_VALUE.contains(&s.as_str()) {
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
        let push = |out: &mut Translated, v: &[&str]| out.args.extend(v.iter().map(OsString::from));
        match s.as_str() {
            "-oA" => {
                let base = value("-oA")?;
                push(&mut out, &["--output-xml", &format!("{base}.xml")]);
                push(&mut out, &["--output-grepable", &format!("{base}.gnmap")]);
                push(&mut out, &["--output-normal", &format!("{base}.nmap")]);
            }
            "-oS" => {
                return Err(
                    "-oS (nmap's script kiddie output) is not written; use -oN FILE, -oX FILE or -oG FILE"
                        .into(),
                )
            }
            t if t.len() == 3 && t.starts_with("-T") && t.as_bytes()[2].is_ascii_digit() => {
                let level = (t.as_bytes()[2] - b'0') as usize;
                let rate = TIMING_RATES.get(level).ok_or_else(|| {
                    format!("{t}: nmap's timing templates are -T0 to -T5; xdpscan paces by --rate PPS")
                })?;
                push(&mut out, &["--rate", &rate.to_string()]);
                out.notes.push(format!("{t}: --rate {rate} (xdpscan paces by packets per second)"));
            }
            "-Pn" => out
                .notes
                .push("-Pn: xdpscan never does host discovery; every address is probed".into()),
            "-n" => out.notes.push("-n: xdpscan never resolves names".into()),
            "-6" => out
                .notes
                .push("-6: the family comes from the targets (IPv6 addresses scan over IPv6)".into()),
            "-v" | "-vv" | "-vvv" => out
                .notes
                .push(format!("{s}: progress and the summary are on by default (-q turns them off)")),
            "-sn" => {
                push(&mut out, &["-PE"]);
                out.notes
                    .push("-sn: an ICMP echo sweep (-PE); nmap's TCP and timestamp pings are not sent".into());
            }
            t if t.len() > 3 && t.starts_with("-s") && t[2..].chars().all(|c| scan_letter(c).is_some()) => {
                for c in t[2..].chars() {
                    push(&mut out, &[scan_letter(c).unwrap_or_default()]);
                }
            }
            "--excludefile" => {
                let f = value(&s)?;
                push(&mut out, &["--exclude-file", &f]);
            }
            "--min-rate" | "--max-rate" => {
                let r = value(&s)?;
                push(&mut out, &["--rate", &r]);
                out.notes.push(format!("{s} {r}: --rate {r} (one rate, held)"));
            }
            "--max-retries" => {
                let n = value(&s)?;
                push(&mut out, &["--retries", &n]);
            }
            // masscan
            "--adapter" => {
                let v = value(&s)?;
                push(&mut out, &["--interface", &v]);
            }
            "--adapter-ip" => {
                let v = value(&s)?;
                if v.contains('-') || v.contains('/') {
                    return Err(format!(
                        "--adapter-ip {v}: one source address (-S ADDR); source address pools are not supported"
                    ));
                }
                push(&mut out, &["--source-ip", &v]);
            }
            "--router-mac" => {
                let v = value(&s)?;
                push(&mut out, &["--gateway-mac", &v]);
            }
            "--adapter-mac" | "--source-mac" => {
                return Err(format!(
                    "{s}: xdpscan sends from the interface's own MAC; choose the interface with -i"
                ))
            }
            "--echo" | "-c" | "--conf" => {
                return Err(format!(
                    "{s}: masscan's configuration files are not read; give the options on the command line (a stopped scan resumes with --resume FILE)"
                ))
            }
            // ZMap
            "-O" | "--output-module" => {
                let v = value(&s)?;
                zmap_module = Some(match v.as_str() {
                    "csv" | "json" => v,
                    _ => {
                        return Err(format!(
                            "-O {v}: ZMap's csv and json modules are -O csv and -O json; otherwise choose the format by its option: -o FILE (NDJSON), --csv FILE, -oX, -oG, -oL"
                        ))
                    }
                });
            }
            "-B" | "--bandwidth" => {
                let v = value(&s)?;
                return Err(format!("-B {v}: xdpscan paces by packets per second: --rate PPS"));
            }
            "-M" | "--probe-module" => {
                let v = value(&s)?;
                return Err(format!(
                    "-M {v}: choose the scan type: -sS (tcp_synscan), -sU (udp), -PE (icmp_echoscan), or --scan NAME"
                ));
            }
            "-G" | "--gateway-mac" => {
                let v = value(&s)?;
                push(&mut out, &["--gateway-mac", &v]);
            }
            "-P" | "--probes" => {
                let v = value(&s)?;
                let n: u32 = v
                    .parse()
                    .ok()
                    .filter(|&n| n >= 1)
                    .ok_or_else(|| format!("-P {v}: probes per target must be a number of 1 or more"))?;
                push(&mut out, &["--retries", &(n - 1).to_string()]);
                out.notes.push(format!("-P {n}: --retries {}", n - 1));
            }
            _ => out.args.push(a),
        }
    }
    if let Some(module) = zmap_module {
        zmap_output_module(&mut out, &module);
    }
    check_zmap_output(&out.args)?;
    Ok(out)
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
        translate(v.into_iter().map(OsString::from).collect()).map(|t| {
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
    }

    #[test]
    fn misreadable_flags_are_refused_with_a_hint() {
        for (args, names) in [
            (&["-oS", "x"][..], "-oN"),
            (&["-oA"][..], "needs a value"),
            (&["-T9"][..], "--rate"),
            (&["-c", "f"][..], "command line"),
            (&["-O", "redis"][..], "--csv"),
            (&["-B", "10M"][..], "--rate"),
            (&["-M", "udp"][..], "-sU"),
            (&["-o", "out.csv"][..], "--csv out.csv"),
            (&["--adapter-ip", "198.18.0.1-198.18.0.8"][..], "-S"),
            (&["-P", "0"][..], "1 or more"),
        ] {
            let e = t(args).unwrap_err();
            assert!(e.contains(names), "{args:?}: {e}");
        }
        assert_eq!(t(&["-P", "3"]).unwrap(), ["--retries", "2"]);
        assert_eq!(
            t(&["-O", "csv", "-o", "x.csv"]).unwrap(),
            ["--csv", "x.csv"]
        );
        assert_eq!(t(&["-O", "csv"]).unwrap(), ["--csv", "-"]);
        assert_eq!(t(&["-O", "json", "-f", "saddr"]).unwrap(), ["-f", "saddr"]);
        assert_eq!(t(&["--adapter", "eth1"]).unwrap(), ["--interface", "eth1"]);
    }
}
