//! Least privilege: started as root, the scanner runs as `nobody` with no capability once its
//! sockets are open and its program attached, while a file keeper (root, CAP_DAC_OVERRIDE only,
//! no descriptor of the scan) writes the late files into directories only root may write:
//! resume file and part files on Ctrl-C, metadata and status at the end. Checked on the running
//! processes through /proc, for SYN, connect and `xdpscan probe`.

mod common;

use std::{
    collections::BTreeMap,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use common::*;

/// Waits until the process has switched user (the drop comes after the transport is open).
fn dropped_status(pid: u32) -> BTreeMap<String, String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = status(pid);
        if s.get("Uid").is_some_and(|u| !u.starts_with("0\t")) || Instant::now() > deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn assert_unprivileged(s: &BTreeMap<String, String>, uid: &str) {
    let all = format!("{uid}\t{uid}\t{uid}\t{uid}");
    assert_eq!(s["Uid"], all, "real, effective, saved and fs uid: {s:?}");
    for set in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
        assert_eq!(s[set], "0000000000000000", "{set}");
    }
    assert_eq!(s["NoNewPrivs"], "1");
}

/// A directory only root may enter or write.
fn root_only_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xdpscan-priv-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
    d
}

fn spawn_in(lab: &Lab, dir: &Path, args: &[&str]) -> Child {
    lab.in_scan(BIN, args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn metadata(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn xdp_scan_drops_to_nobody_and_late_files_still_land() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let dir = root_only_dir("xdp");
    let args = [
        "198.19.0.0/20",
        "-p",
        "22,80",
        "--rate",
        "1500",
        "--wait",
        "1",
        "-q",
        "-oX",
        "out.xml",
        "-oG",
        "out.gnmap",
        "-m",
        "meta.json",
        "--status-file",
        "status.csv",
    ];
    let scan = spawn_in(&lab, &dir, &args);
    let pid = scan.id();
    let s = dropped_status(pid);
    assert_eq!(s["Name"], "xdpscan");
    assert_unprivileged(&s, "65534");
    assert_eq!(s["CapBnd"], "0000000000000000", "bounding set");
    assert_eq!(s["Gid"], "65534\t65534\t65534\t65534");
    // The keeper: root with CAP_DAC_OVERRIDE alone, holding nothing but its socket.
    let kids = children(pid);
    assert_eq!(kids.len(), 1, "one keeper: {kids:?}");
    let k = status(kids[0]);
    assert_eq!(k["Name"], "xdpscan-keeper");
    assert!(k["Uid"].starts_with("0\t"));
    assert_eq!(k["CapEff"], "0000000000000002", "cap_dac_override only");
    assert_eq!(k["CapPrm"], "0000000000000002");
    assert_eq!(k["CapBnd"], "0000000000000002");
    let fds: Vec<String> = std::fs::read_dir(format!("/proc/{}/fd", kids[0]))
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_link(e.path()).unwrap().display().to_string())
        .collect();
    assert_eq!(fds.len(), 4, "{fds:?}");
    assert_eq!(
        fds.iter().filter(|f| *f == "/dev/null").count(),
        3,
        "{fds:?}"
    );
    assert!(fds.iter().any(|f| f.starts_with("socket:")), "{fds:?}");

    // Ctrl-C mid-scan: the resume file and the part files go to the root-only directory.
    std::thread::sleep(Duration::from_millis(1500));
    unsafe_kill(pid, libc::SIGINT);
    let out = scan.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    for f in [
        "xdpscan-resume.json",
        "out.xml.xdpscan-part",
        "out.gnmap.xdpscan-part",
        "meta.json",
        "status.csv",
    ] {
        assert!(dir.join(f).exists(), "{f} written late: {}", stderr(&out));
    }
    let m = metadata(&dir.join("meta.json"));
    assert_eq!(m["stopped"], "interrupted");
    assert_eq!(m["privileges"]["user"], "nobody");
    assert_eq!(m["privileges"]["capabilities"], serde_json::json!([]));

    // The resumed run finishes the documents and removes the part files.
    let out = lab
        .in_scan(BIN, &["--resume", "xdpscan-resume.json"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!dir.join("out.xml.xdpscan-part").exists());
    assert!(!dir.join("out.gnmap.xdpscan-part").exists());
    let xml = std::fs::read_to_string(dir.join("out.xml")).unwrap();
    let expected_hosts = (0u32..4096)
        .map(|i| std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(198, 19, 0, 0)) + i))
        .filter(|ip| syn_truth(*ip, 22).is_some())
        .count();
    assert_eq!(xml.matches("<host ").count(), expected_hosts);
    assert_eq!(metadata(&dir.join("meta.json"))["stopped"], "completed");
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".xdpscan") || n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn unsafe_kill(pid: u32, sig: i32) {
    // SAFETY: sends a signal to our own child.
    unsafe { libc::kill(pid as i32, sig) };
}

#[test]
fn connect_scans_and_probes_drop_too() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let dir = root_only_dir("connect");
    // -sT: kernel sockets opened one by one after the drop need no privilege.
    let out = lab
        .in_scan(
            BIN,
            &[
                "198.19.0.0/28",
                "-p",
                "22,80,8080",
                "-sT",
                "-q",
                "-m",
                "meta.json",
            ],
        )
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let results = parse_results(&out.stdout);
    assert_eq!(results.len(), 48);
    assert_eq!(results.iter().filter(|r| r.state == "open").count(), 32);
    let m = metadata(&dir.join("meta.json"));
    assert_eq!(m["privileges"]["user"], "nobody");
    assert_eq!(m["privileges"]["capabilities"], serde_json::json!([]));

    // `xdpscan probe` waiting on a silent host: already nobody.
    let probe = spawn_in(
        &lab,
        &dir,
        &["probe", "198.19.1.5", "-p", "22", "--timeout", "3"],
    );
    let s = dropped_status(probe.id());
    assert_unprivileged(&s, "65534");
    let out = probe.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "no answer: {}", stderr(&out));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn user_chooses_who_the_scanner_becomes() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let dir = root_only_dir("user");
    let run = |extra: &[&str]| {
        let mut args = vec!["198.19.0.0/28", "-p", "22", "-q", "-m", "meta.json"];
        args.extend_from_slice(extra);
        let out = lab.in_scan(BIN, &args).current_dir(&dir).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(parse_results(&out.stdout).len(), 16);
        metadata(&dir.join("meta.json"))["privileges"].clone()
    };
    let p = run(&["--user", "daemon"]);
    assert_eq!(
        (p["user"].as_str(), p["uid"].as_u64()),
        (Some("daemon"), Some(1))
    );
    let p = run(&["--user", "65534"]);
    assert_eq!(p["user"], "nobody");
    // `--user root` keeps root, as tcpdump's `-Z root` does.
    let p = run(&["--user", "root"]);
    assert_eq!(p["uid"], 0);
    assert!(p["capabilities"].as_array().unwrap().len() > 10);

    // Not root but granted capabilities (as by setcap): they are shed once the sockets are open.
    let caps = "+net_raw,+net_admin,+bpf,+perfmon,+ipc_lock";
    let scan = lab
        .in_scan(
            "setpriv",
            &[
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                &format!("--inh-caps={caps}"),
                &format!("--ambient-caps={caps}"),
                BIN,
                "198.19.0.0/22",
                "-p",
                "22",
                "--rate",
                "400",
                "-q",
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = scan.id();
    // setpriv execs xdpscan in place: wait for the capabilities to go.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut s = status(pid);
    while s.get("CapPrm").is_some_and(|c| c != "0000000000000000") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        s = status(pid);
    }
    assert_unprivileged(&s, "65534");
    let out = scan.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // Every address but the silent 198.19.1.0/24.
    assert_eq!(parse_results(&out.stdout).len(), 1024 - 256);

    // Bad users: one line, usage status.
    for (args, msg) in [
        (
            vec!["198.19.0.0/28", "--user", "no-such-user"],
            "--user no-such-user: no such user",
        ),
        (
            vec!["probe", "198.19.0.5", "--user", "no-such-user"],
            "no such user",
        ),
    ] {
        let out = lab.xdpscan(&args);
        assert_eq!(out.status.code(), Some(2));
        let e = stderr(&out);
        assert_eq!(e.lines().count(), 1, "{e}");
        assert!(e.contains(msg), "{e}");
    }
    let out = lab.xdpscan_unprivileged(&["198.19.0.0/28", "--user", "daemon"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("switching to another user needs root"));
    std::fs::remove_dir_all(&dir).unwrap();
}
