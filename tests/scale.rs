//! Issue 11 in the lab: a sweep at `--rate 0` reports every reply exactly once, loses none, and
//! keeps its memory bounded; the governor says what it decided.
//!
//! Alone in its test binary: the peak RSS read here is the largest of this process's children.

mod common;

use common::*;

/// The largest resident set of any child this process has waited for, in MiB.
fn children_peak_rss_mib() -> f64 {
    // SAFETY: getrusage fills the struct we pass and touches nothing else.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) };
    u.ru_maxrss as f64 / 1024.0
}

#[test]
fn rate_zero_sweep_is_exact_lossless_and_bounded() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let meta = std::env::temp_dir().join(format!("xdpscan-scale-{}.json", std::process::id()));
    let ports: Vec<u16> = (1..=100).collect();
    // 4096 addresses × 100 ports: 409,600 probes, about three seconds at full speed.
    let out = lab.xdpscan(&[
        "198.19.0.0/20",
        "-p",
        "1-100",
        "--rate",
        "0",
        "--wait",
        "3",
        "-m",
        meta.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let results = parse_results(&out.stdout);
    assert_exact(
        &results,
        &syn_expected(
            u32::from(std::net::Ipv4Addr::new(198, 19, 0, 0)),
            4096,
            &ports,
        ),
    );
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    let _ = std::fs::remove_file(&meta);
    assert_eq!(m["counts"]["dropped"], 0, "{m}");
    assert_eq!(m["counts"]["duplicates"], 0, "{m}");
    let g = &m["rate"]["governor"];
    assert!(g["cuts"].is_u64() && g["final_limit_pps"].is_u64(), "{m}");
    // The status line (stderr is not a terminal here) says what the governor decided.
    let err = stderr(&out);
    assert!(
        err.contains("rate: no limit") || err.contains("rate: limited to"),
        "{err}"
    );
    // Memory does not grow with the results: UMEM (16 MiB per queue, 2 queues) plus a little.
    let rss = children_peak_rss_mib();
    eprintln!(
        "{} results, peak RSS {rss:.0} MiB; governor {g}",
        results.len()
    );
    assert!(rss <= 64.0, "peak RSS {rss:.0} MiB");
}
