//! A scan cut short and resumed adds up to one scan, each key once, whatever cut it (issue 20,
//! items 14-16; docs/design.md, "Resume adds up"): `--report-silent` across a resume (the
//! resumed run used to report every probe answered before the cut as silent), `--max-results`
//! (its results past the limit were thrown away while the resume counted their probes done),
//! and a second Ctrl-C that cuts the cooldown (the probes of the last `--wait` were counted
//! done with their replies still on the way).

mod common;

use std::{
    collections::BTreeMap,
    net::Ipv4Addr,
    process::Stdio,
    time::{Duration, Instant},
};

use common::*;

const NET: &str = "198.19.0.0/20";

/// Runs xdpscan in the scanner namespace, sending SIGINT at each of `signals` (from the start).
fn run(lab: &Lab, args: &[&str], signals: &[Duration]) -> std::process::Output {
    let child = lab
        .in_scan(BIN, args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    for &at in signals {
        std::thread::sleep(at.saturating_sub(started.elapsed()));
        // SAFETY: a signal to our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    }
    child.wait_with_output().unwrap()
}

fn truth(silent_too: bool) -> BTreeMap<(Ipv4Addr, u16), (String, String)> {
    let first = u32::from(Ipv4Addr::new(198, 19, 0, 0));
    let mut m = syn_expected(first, 4096, &[22, 80]);
    if silent_too {
        for a in first..first + 4096 {
            for p in [22, 80] {
                m.entry((Ipv4Addr::from(a), p))
                    .or_insert(("filtered".into(), "no-response".into()));
            }
        }
    }
    m
}

/// A cut run, then its resume; the two outputs together.
fn cut_and_resume(
    lab: &Lab,
    name: &str,
    extra: &[&str],
    signals: &[Duration],
    resume_extra: &[&str],
) -> Vec<Result_> {
    let resume = std::env::temp_dir().join(format!("xdpscan-{}-{name}.resume", lab.prefix));
    let _ = std::fs::remove_file(&resume);
    let path = resume.to_str().unwrap();
    let mut args = vec![
        NET,
        "-p",
        "22,80",
        "--rate",
        "2000",
        "--wait",
        "2",
        "-q",
        "--resume-file",
        path,
    ];
    args.extend_from_slice(extra);
    let first = run(lab, &args, signals);
    assert!(
        resume.exists(),
        "{name}: no resume file: {}",
        stderr(&first)
    );
    let mut args = vec!["--resume", path, "-q"];
    args.extend_from_slice(resume_extra);
    let second = run(lab, &args, &[]);
    assert!(second.status.success(), "{name}: {}", stderr(&second));
    let (a, b) = (parse_results(&first.stdout), parse_results(&second.stdout));
    eprintln!("{name}: {} + {} results", a.len(), b.len());
    assert!(!a.is_empty() && !b.is_empty(), "{name}: both runs report");
    let _ = std::fs::remove_file(&resume);
    a.into_iter().chain(b).collect()
}

#[test]
fn a_resumed_scan_adds_up_to_one_scan() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let ms = Duration::from_millis;
    // Item 14: --report-silent across a resume, every key once (silent ones included).
    let both = cut_and_resume(&lab, "silent", &["--report-silent"], &[ms(1500)], &[]);
    assert_exact(&both, &truth(true));
    // Item 15: --max-results, then the rest (the limit raised on the resume).
    let both = cut_and_resume(
        &lab,
        "max-results",
        &["--max-results", "1500"],
        &[],
        &["--max-results", "100000"],
    );
    assert_exact(&both, &truth(false));
    // Item 16: a second Ctrl-C cuts the cooldown short.
    let both = cut_and_resume(&lab, "two-signals", &[], &[ms(1500), ms(1700)], &[]);
    assert_exact(&both, &truth(false));
}

/// A cut: its name, the first run's flags, its signals, the resume's flags.
type Cut<'a> = (&'a str, &'a [&'a str], &'a [Duration], &'a [&'a str]);

/// The connect scan goes through the same lifecycle: its results past `--max-results` are
/// carried to the resume and written first there (they used to be dropped: the connect
/// engine never wrote the carried results), and a target not finished when the run stops (a
/// timed-out connect waiting for its retry, a connect in flight abandoned by a second Ctrl-C)
/// is probed again by the resume (both used to be counted done and never reported). Silence is
/// reported, with a retry, so that every target must come out exactly once.
#[test]
fn a_resumed_connect_scan_adds_up_to_one_scan() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let ms = Duration::from_millis;
    let connect = [
        "-sT",
        "--connect-timeout",
        "1500",
        "--retries",
        "1",
        "--report-silent",
    ];
    let cases: [Cut; 2] = [
        (
            "connect-max-results",
            &["--max-results", "1500"],
            &[],
            &["--max-results", "100000"],
        ),
        ("connect-two-signals", &[], &[ms(1500), ms(1800)], &[]),
    ];
    // The kernel's reading of each target (errno), silence included.
    let first = u32::from(Ipv4Addr::new(198, 19, 0, 0));
    let want: BTreeMap<_, _> = (first..first + 4096)
        .flat_map(|a| [22, 80].map(|p| (Ipv4Addr::from(a), p)))
        .map(|(ip, p)| ((ip, p), common::truth("-sT", ip, p)))
        .collect();
    for (name, extra, signals, resume_extra) in cases {
        let args: Vec<&str> = connect.iter().chain(extra).copied().collect();
        let both = cut_and_resume(&lab, name, &args, signals, resume_extra);
        let mut seen = std::collections::HashSet::new();
        let twice: Vec<_> = both
            .iter()
            .filter(|r| !seen.insert((r.ip, r.port)))
            .map(|r| (r.ip, r.port))
            .take(5)
            .collect();
        assert!(twice.is_empty(), "{name}: a key twice: {twice:?}");
        let got: BTreeMap<_, _> = both.iter().map(|r| ((r.ip, r.port), &r.state)).collect();
        let wrong: Vec<_> = want
            .iter()
            .filter(|(k, (state, _))| got.get(k).is_none_or(|s| s != state))
            .map(|(k, (state, _))| (k, state, got.get(k)))
            .take(5)
            .collect();
        let extra: Vec<_> = got
            .keys()
            .filter(|k| !want.contains_key(k))
            .take(5)
            .collect();
        assert!(
            wrong.is_empty() && extra.is_empty(),
            "{name}: {} results, {} expected; wrong or missing {wrong:?}, extra {extra:?}",
            got.len(),
            want.len()
        );
    }
}
