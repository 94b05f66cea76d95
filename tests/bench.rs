//! `xdpscan bench` (issue 25): in namespaces it makes itself, every figure is there, the
//! receive rows equal the responder's rule, and the namespaces are gone afterwards; on a given
//! interface it says where the probes go before it sends, and sends only there (the lab's).

mod common;

use std::process::Command;

use common::*;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_xdpscan")
}

fn bench_namespaces() -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("xdpscan-bench-"))
        .map(String::from)
        .collect()
}

#[test]
fn bench_in_its_own_namespaces_measures_everything_and_leaves_nothing() {
    if !lab_available() {
        return;
    }
    let json = std::env::temp_dir().join(format!("xdpscan-bench-{}.json", std::process::id()));
    let before = bench_namespaces();
    let out = Command::new(bin())
        .args([
            "bench",
            "--probes",
            "100000",
            "--threads",
            "1,2",
            "--batch",
            "64,256",
            "-o",
        ])
        .arg(&json)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{}{}", text, stderr(&out));
    assert!(
        text.starts_with("xdpscan bench: in namespaces xdpscan-bench-"),
        "{text}"
    );
    assert!(text.contains("| receive |"), "{text}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["setup"]["lab"], true);
    assert!(
        ["copy", "zero-copy"].contains(&v["setup"]["socket_mode"].as_str().unwrap()),
        "{v}"
    );
    assert_eq!(v["generation"].as_array().unwrap().len(), 2);
    assert_eq!(v["floor"].as_array().unwrap().len(), 2);
    assert_eq!(v["transmit"].as_array().unwrap().len(), 4);
    for row in v["generation"]
        .as_array()
        .unwrap()
        .iter()
        .chain(v["transmit"].as_array().unwrap())
    {
        assert!(row["probes"].as_u64().unwrap() >= 100_000, "{row}");
        assert!(row["probes_per_sec"].as_f64().unwrap() > 0.0, "{row}");
    }
    let rx = v["receive"].as_array().unwrap();
    assert_eq!(rx.len(), 2);
    for row in rx {
        let due = row["replies_due"].as_u64().unwrap();
        let got = row["replies"].as_u64().unwrap();
        let lost = [
            "dropped_by_link",
            "answers_dropped_by_link",
            "dropped_by_scanner",
        ]
        .iter()
        .map(|k| row[k].as_u64().unwrap())
        .sum::<u64>();
        // Exact, unless the link's own counters explain the shortfall to the frame.
        assert!(
            (row["exact"] == true && got == due) || (got < due && due - got <= lost),
            "{row}"
        );
        // The responder sends a quarter of its answers twice: the filter takes the copies.
        assert!(row["duplicates"].as_u64().unwrap() > due / 8, "{row}");
    }
    let cost = &v["responder"];
    assert!(cost["runs"].as_u64().unwrap() >= 200_000, "{cost}");
    assert!(
        cost["answers_per_core_sec"].as_f64().unwrap() > 0.0,
        "{cost}"
    );
    assert!(text.contains("| the lab's responder"), "{text}");
    assert_eq!(bench_namespaces(), before, "namespaces left behind");
    let _ = std::fs::remove_file(&json);
}

#[test]
fn bench_on_an_interface_says_where_it_sends_and_sends_only_there() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let iface = format!("{}s", lab.prefix);
    let out = lab
        .in_scan(
            bin(),
            &[
                "bench",
                "-i",
                &iface,
                "--to",
                "198.19.0.0/24",
                "--probes",
                "20000",
                "--threads",
                "1",
                "--batch",
                "64",
                "-o",
                "-",
            ],
        )
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let first = err.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!(
            "xdpscan bench: every probe goes to 198.19.0.0/24 through {iface}, next hop "
        )),
        "{err}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["setup"]["lab"], false);
    assert_eq!(v["setup"]["destination"], "198.19.0.0/24");
    // The lab's kernel answers: the receive row has replies, and no rule to check them by.
    let rx = &v["receive"][0];
    assert!(rx["replies"].as_u64().unwrap() > 0, "{rx}");
    assert!(rx["exact"].is_null(), "{rx}");
}

#[test]
fn bench_refuses_what_it_cannot_measure_in_one_line() {
    for (args, want) in [
        (&["bench", "--to", "198.18.0.9"][..], "--interface"),
        (
            &["bench", "-i", "nosuch0", "--to", "198.18.0.9"][..],
            "nosuch0",
        ),
        (
            &["bench", "-i", "lo", "--to", "198.18.0.300"][..],
            "198.18.0.300",
        ),
        (&["bench", "--threads", "0"][..], "--threads"),
        (&["bench", "--probes", "10"][..], "--probes"),
    ] {
        let out = Command::new(bin()).args(args).output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}
