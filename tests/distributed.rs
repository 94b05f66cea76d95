//! Scans across machines on NATS JetStream, in the lab: Debian's nats-server (one node, or a
//! 3-node cluster) runs in the target namespace on 198.18.0.2; workers run in their own scanner
//! namespaces joined to the target by one bridge (`LAB_WORKERS=3 scripts/lab.sh up`). A job of
//! 8 shards survives a SIGKILLed worker and a broker (node) killed and restarted mid-scan:
//! `collect` equals the lab's truth exactly, each (address, port) once. Bad input gets one line.

mod common;

use std::{
    net::Ipv4Addr,
    path::PathBuf,
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use common::*;

/// nats-server nodes with JetStream in the target namespace, killed and their stores removed
/// on drop.
struct Nats {
    ns: String,
    nodes: Vec<Node>,
    cluster: bool,
}

struct Node {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Nats {
    fn start(lab: &Lab, n: usize) -> Nats {
        let tag = format!("{}-{}", std::process::id(), lab.prefix);
        let nodes = (0..n)
            .map(|i| {
                let dir = std::env::temp_dir().join(format!("xdpscan-nats-{tag}-{i}"));
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).unwrap();
                Node {
                    port: 4222 + i as u16,
                    dir,
                    child: None,
                }
            })
            .collect();
        let mut nats = Nats {
            ns: lab.tgt_ns(),
            nodes,
            cluster: n > 1,
        };
        for i in 0..n {
            nats.run(i);
        }
        nats.wait_ready();
        nats
    }

    fn run(&mut self, i: usize) {
        let ports: Vec<u16> = self.nodes.iter().map(|n| n.port).collect();
        let node = &mut self.nodes[i];
        let mut args: Vec<String> = [
            "netns",
            "exec",
            &self.ns,
            "nats-server",
            "-js",
            "-a",
            "198.18.0.2",
            "-p",
            &node.port.to_string(),
            "-sd",
            node.dir.to_str().unwrap(),
            "-n",
            &format!("n{i}"),
            "-m",
            &(8222 + i).to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if self.cluster {
            let routes: Vec<String> = ports
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, p)| format!("nats://198.18.0.2:{}", p + 2000))
                .collect();
            args.extend([
                "--cluster_name".into(),
                "xd".into(),
                "--cluster".into(),
                format!("nats://198.18.0.2:{}", node.port + 2000),
                "--routes".into(),
                routes.join(","),
            ]);
        }
        node.child = Some(
            Command::new("ip")
                .args(&args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("nats-server (apt install nats-server)"),
        );
    }

    /// Every node accepts clients (a cluster also elects its JetStream leader: the first
    /// submit retries until it can).
    fn wait_ready(&self) {
        for n in &self.nodes {
            let deadline = Instant::now() + Duration::from_secs(15);
            // The address lives in the target namespace: probe from there.
            while !Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &self.ns,
                    "bash",
                    "-c",
                    &format!("exec 3<>/dev/tcp/198.18.0.2/{}", n.port),
                ])
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
            {
                assert!(Instant::now() < deadline, "nats-server did not start");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    fn url(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("nats://198.18.0.2:{}", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn restart(&mut self, i: usize) {
        self.kill(i);
        self.run(i);
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
            let _ = std::fs::remove_dir_all(&self.nodes[i].dir);
        }
    }
}

fn worker_ns(lab: &Lab, k: usize) -> String {
    format!("{}-w{k}", lab.prefix)
}

fn xdpscan_in(ns: &str, args: &[&str]) -> Output {
    Command::new("ip")
        .args(["netns", "exec", ns, BIN])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn spawn_worker(lab: &Lab, k: usize, url: &str, job: &str) -> Child {
    Command::new("ip")
        .args([
            "netns",
            "exec",
            &worker_ns(lab, k),
            BIN,
            "worker",
            "--nats",
            url,
            "--job",
            job,
            "--exit-when-idle",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// `submit`, tried again while a new cluster elects its JetStream leader.
fn submit(lab: &Lab, url: &str, job: &str, extra: &[&str]) {
    let mut args = vec![
        "submit",
        "--nats",
        url,
        "--job",
        job,
        "--shards",
        "8",
        "198.19.0.0/18",
        "-p",
        "22,80,443,8080",
        "--rate",
        "2000",
        "--wait",
        "2",
    ];
    args.extend_from_slice(extra);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = xdpscan_in(&lab.scan_ns(), &args);
        if out.status.success() {
            return;
        }
        let err = stderr(&out);
        assert!(
            Instant::now() < deadline && !err.contains("already submitted"),
            "submit: {err}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn wait_all(workers: Vec<Child>, limit: Duration) -> Vec<(Option<i32>, String)> {
    let deadline = Instant::now() + limit;
    workers
        .into_iter()
        .map(|mut w| loop {
            if let Some(st) = w.try_wait().unwrap() {
                let mut err = String::new();
                use std::io::Read;
                let _ = w.stderr.take().unwrap().read_to_string(&mut err);
                break (st.code(), err);
            }
            if Instant::now() > deadline {
                let _ = w.kill();
                let _ = w.wait();
                let mut err = String::new();
                use std::io::Read;
                let _ = w.stderr.take().unwrap().read_to_string(&mut err);
                panic!("a worker did not finish in {limit:?}: {err}");
            }
            std::thread::sleep(Duration::from_millis(200));
        })
        .collect()
}

fn collect_exact(lab: &Lab, url: &str, job: &str) -> String {
    let out = xdpscan_in(&lab.scan_ns(), &["collect", "--nats", url, "--job", job]);
    assert!(out.status.success(), "collect: {}", stderr(&out));
    let results = parse_results(&out.stdout);
    let first = u32::from(Ipv4Addr::new(198, 19, 0, 0));
    assert_exact(&results, &syn_expected(first, 16384, &[22, 80, 443, 8080]));
    eprintln!("{job}: {} results; {}", results.len(), stderr(&out).trim());
    stderr(&out)
}

fn nats_available() -> bool {
    let ok = Command::new("nats-server")
        .arg("--version")
        .output()
        .is_ok();
    if !ok && std::env::var_os("XDPSCAN_REQUIRE_LAB").is_some() {
        panic!("nats-server is missing (scripts/setup.sh installs it)");
    }
    ok
}

#[test]
fn a_killed_worker_and_a_restarted_broker_lose_nothing() {
    if !lab_available() || !nats_available() {
        return;
    }
    let lab = Lab::up_with(&[("LAB_WORKERS", "3")]);
    let mut nats = Nats::start(&lab, 1);
    let url = nats.url();
    submit(&lab, &url, "sweep", &[]);
    let mut workers: Vec<Child> = (1..=3)
        .map(|k| spawn_worker(&lab, k, &url, "sweep"))
        .collect();
    // A worker dies without a word in the middle of a shard, after its first checkpoints;
    // the shard goes to another worker within the ack wait and continues from the checkpoint.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let names: Vec<String> = workers
        .iter()
        .map(|w| format!("{}-{}", host.trim(), w.id()))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let victim = loop {
        let st = xdpscan_in(
            &lab.scan_ns(),
            &["status", "--nats", &url, "--job", "sweep", "--json"],
        );
        let s: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap_or_default();
        let busy = s["per_shard"].as_array().and_then(|a| {
            a.iter()
                .filter(|r| r["state"] == "running")
                .find_map(|r| names.iter().position(|n| r["worker"] == n.as_str()))
        });
        if let Some(k) = busy {
            break k;
        }
        assert!(Instant::now() < deadline, "no worker took a shard: {s}");
        std::thread::sleep(Duration::from_millis(100));
    };
    std::thread::sleep(Duration::from_millis(3500));
    let mut killed = workers.remove(victim);
    killed.kill().unwrap();
    let _ = killed.wait();
    // Then the broker itself goes down and comes back with what it stored.
    std::thread::sleep(Duration::from_millis(1500));
    nats.kill(0);
    std::thread::sleep(Duration::from_secs(3));
    nats.restart(0);
    nats.wait_ready();
    let mut resumed = false;
    let done = wait_all(workers, Duration::from_secs(240));
    for (code, err) in &done {
        eprint!("exit {code:?}: {err}");
    }
    for (code, err) in done {
        assert_eq!(code, Some(0), "worker: {err}");
        resumed |= err.contains("(resuming)");
    }
    assert!(
        resumed,
        "the dead worker's shard continued from its checkpoint"
    );
    let summary = collect_exact(&lab, &url, "sweep");
    assert!(summary.contains("sent twice and dropped"), "{summary}");
    let status = xdpscan_in(
        &lab.scan_ns(),
        &["status", "--nats", &url, "--job", "sweep", "--json"],
    );
    let s: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(
        (s["done"].as_u64(), s["pending"].as_u64()),
        (Some(8), Some(0)),
        "{s}"
    );
}

/// Issue 20, item 1: a slow, dense shard (every probe answered, a result every 4 ms) never
/// leaves its open batch on age alone, and checkpoints were taken past the results in it. A
/// worker SIGKILLed after several checkpoints, a second one finishing from the last: `collect`
/// equals the truth, each key once.
#[test]
fn a_worker_killed_in_a_dense_shard_loses_nothing() {
    if !lab_available() || !nats_available() {
        return;
    }
    let lab = Lab::up_with(&[("LAB_WORKERS", "3")]);
    let nats = Nats::start(&lab, 1);
    let url = nats.url();
    let submitted = xdpscan_in(
        &lab.scan_ns(),
        &[
            "submit",
            "--nats",
            &url,
            "--job",
            "dense",
            "--shards",
            "1",
            "198.19.10.0/23",
            "-p",
            "22,80,443,8080",
            "--rate",
            "250",
            "--wait",
            "1",
        ],
    );
    assert!(submitted.status.success(), "{}", stderr(&submitted));
    // Two workers: whichever takes the shard is killed, the other finishes it.
    let mut workers: Vec<Child> = (1..=2)
        .map(|k| spawn_worker(&lab, k, &url, "dense"))
        .collect();
    // Checkpoints cover 30 % of the shard (600 probes, 2.4 s of it): several taken.
    let victim = shard_holder(&lab, &url, "dense", &mut workers, |shard, _| {
        shard["progress"].as_f64().unwrap_or(0.0) >= 0.3
    });
    let mut killed = workers.remove(victim);
    let apart = separated_privileges(killed.id());
    killed.kill().unwrap();
    let _ = killed.wait();
    // The launcher and the shard process die with their worker.
    let deadline = Instant::now() + Duration::from_secs(5);
    while apart
        .iter()
        .any(|p| std::path::Path::new(&format!("/proc/{p}")).exists())
    {
        assert!(Instant::now() < deadline, "{apart:?} outlived their worker");
        std::thread::sleep(Duration::from_millis(50));
    }
    for (code, err) in wait_all(workers, Duration::from_secs(120)) {
        assert_eq!(code, Some(0), "worker: {err}");
        assert!(err.contains("(resuming)"), "{err}");
    }
    let out = xdpscan_in(
        &lab.scan_ns(),
        &["collect", "--nats", &url, "--job", "dense"],
    );
    assert!(out.status.success(), "collect: {}", stderr(&out));
    let first_ip = u32::from(Ipv4Addr::new(198, 19, 10, 0));
    let expected = syn_expected(first_ip, 512, &[22, 80, 443, 8080]);
    assert_eq!(expected.len(), 2048, "every probe of the shard is answered");
    assert_exact(&parse_results(&out.stdout), &expected);
}

/// A scanning worker's processes (issue 20, item 19): the worker (broker, metrics) and the
/// shard process (hostile packets) hold no capability in any thread; only the launcher between
/// them, one thread, keeps the attach capabilities. Returns the launcher's and the shard's pids.
fn separated_privileges(worker: u32) -> Vec<u32> {
    const NOTHING: &str = "0000000000000000";
    // net_admin, net_raw, ipc_lock, perfmon, bpf
    const ATTACH: &str = "000000c000007000";
    let unprivileged = |pid: u32, who: &str| {
        let threads = thread_statuses(pid);
        assert!(!threads.is_empty(), "{who} {pid} is gone");
        for t in threads {
            assert!(
                t["Uid"].starts_with("65534\t"),
                "{who} runs as nobody: {t:?}"
            );
            for set in ["CapPrm", "CapEff", "CapAmb"] {
                assert_eq!(t[set], NOTHING, "{who} thread {}: {set}", t["Name"]);
            }
        }
    };
    unprivileged(worker, "the worker");
    let launcher = children(worker);
    assert_eq!(launcher.len(), 1, "the worker's one child, the launcher");
    let l = status(launcher[0]);
    assert_eq!(l["Name"], "xdpscan-launch");
    assert_eq!(
        l["Threads"], "1",
        "the launcher shares memory with no thread"
    );
    assert_eq!(l["CapPrm"], ATTACH);
    assert_eq!(l["CapEff"], ATTACH);
    assert_eq!(l["NoNewPrivs"], "1");
    let shard = children(launcher[0]);
    assert_eq!(shard.len(), 1, "one shard process");
    unprivileged(shard[0], "the shard process");
    assert_eq!(status(shard[0])["NoNewPrivs"], "1");
    vec![launcher[0], shard[0]]
}

/// Which of `workers` runs the job's only shard, once `ready(shard record, time running)` holds.
fn shard_holder(
    lab: &Lab,
    url: &str,
    job: &str,
    workers: &mut Vec<Child>,
    ready: impl Fn(&serde_json::Value, Duration) -> bool,
) -> usize {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let names: Vec<String> = workers
        .iter()
        .map(|w| format!("{}-{}", host.trim(), w.id()))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut running_since = None;
    loop {
        let st = xdpscan_in(
            &lab.scan_ns(),
            &["status", "--nats", url, "--job", job, "--json"],
        );
        let s: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap_or_default();
        let shard = &s["per_shard"][0];
        if shard["state"] == "running" {
            let since = *running_since.get_or_insert_with(Instant::now);
            if ready(shard, since.elapsed()) {
                if let Some(k) = names.iter().position(|n| shard["worker"] == n.as_str()) {
                    return k;
                }
            }
        }
        if Instant::now() > deadline {
            let connz = Command::new("ip")
                .args(["netns", "exec", &lab.tgt_ns(), "curl", "-s"])
                .arg("http://198.18.0.2:8222/connz")
                .output()
                .unwrap();
            for w in workers.iter_mut() {
                let _ = w.kill();
            }
            let errs = wait_all(std::mem::take(workers), Duration::from_secs(5));
            panic!(
                "{job}: the shard never got there: {s}\nworkers: {errs:?}\nconnz: {}",
                String::from_utf8_lossy(&connz.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Results held in the process (a grab waiting for its banner, an application-layer grab of
/// `--grab`, a trace waiting for the end of the scan) hold the checkpoint back: a worker killed
/// while it holds them loses none.
#[test]
fn a_worker_killed_while_it_holds_banners_grabs_and_traces_loses_nothing() {
    if !lab_available() || !nats_available() {
        return;
    }
    let lab = Lab::up_with(&[("LAB_WORKERS", "2"), ("LAB_SERVICES", "1")]);
    let nats = Nats::start(&lab, 1);
    let url = nats.url();
    // 64 hosts x (22: an SSH greeting at once, 9999: silent, held the whole --banner-wait).
    let jobs: [(&str, &[&str]); 3] = [
        (
            "held-banners",
            &[
                "-p",
                "22,9999",
                "--banners",
                "--banner-wait",
                "3",
                "--rate",
                "16",
            ],
        ),
        (
            "held-traces",
            &["-p", "22", "--traceroute", "--rate", "100"],
        ),
        // --grab auto: 22 identified by its greeting, 9999 held through the greeting's wait
        // and a ClientHello and a request that get nothing.
        (
            "held-grabs",
            &[
                "-p",
                "22,9999",
                "--grab",
                "auto",
                "--banner-wait",
                "3",
                "--rate",
                "16",
            ],
        ),
    ];
    for (job, extra) in jobs {
        let mut args = vec!["submit", "--nats", &url, "--job", job, "--shards", "1"];
        args.extend_from_slice(&["198.19.0.0/26", "--wait", "1"]);
        args.extend_from_slice(extra);
        let submitted = xdpscan_in(&lab.scan_ns(), &args);
        assert!(submitted.status.success(), "{}", stderr(&submitted));
        let mut workers: Vec<Child> = (1..=2).map(|k| spawn_worker(&lab, k, &url, job)).collect();
        // 3 s into the shard: checkpoints taken, results held (about half the probes sent).
        let victim = shard_holder(&lab, &url, job, &mut workers, |_, t| {
            t >= Duration::from_secs(3)
        });
        let mut killed = workers.remove(victim);
        killed.kill().unwrap();
        let _ = killed.wait();
        for (code, err) in wait_all(workers, Duration::from_secs(120)) {
            assert_eq!(code, Some(0), "{job} worker: {err}");
        }
        let out = xdpscan_in(&lab.scan_ns(), &["collect", "--nats", &url, "--job", job]);
        assert!(out.status.success(), "collect: {}", stderr(&out));
        let results: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let mut keys: Vec<(String, u64)> = results
            .iter()
            .map(|r| {
                (
                    r["ip"].as_str().unwrap().to_string(),
                    r["port"].as_u64().unwrap(),
                )
            })
            .collect();
        keys.sort();
        keys.dedup();
        let ports = if job == "held-traces" { 1 } else { 2 };
        assert_eq!(
            (results.len(), keys.len()),
            (64 * ports, 64 * ports),
            "{job}: each key once"
        );
        for r in &results {
            assert_eq!(r["state"], "open", "{job}: {r}");
            if job == "held-grabs" {
                // The lab's 22 greets and then waits: the key exchange times out.
                let data = &r["data"];
                match r["port"].as_u64() {
                    Some(22) => {
                        assert_eq!(data["ssh"]["status"], "io-timeout", "{r}");
                        let id = &data["ssh"]["result"]["server_id"];
                        assert_eq!(id["software"], "OpenSSH_9.2p1", "{r}");
                    }
                    _ => assert_eq!(data["banner"]["error"], "no service: the port says nothing"),
                }
            } else if job == "held-banners" {
                let banner = r["banner"].as_str().expect("a banner field");
                match r["port"].as_u64() {
                    Some(22) => assert!(banner.starts_with("SSH-2.0-"), "{r}"),
                    _ => assert_eq!(banner, "", "{r}"),
                }
            } else {
                let hops = r["trace"]["hops"].as_array().expect("a trace");
                assert_eq!(hops.len(), 1, "{r}");
                assert_eq!(hops[0]["ip"], r["ip"], "{r}");
                assert_eq!(r["trace"]["reached"], true, "{r}");
            }
        }
        eprintln!("{job}: {} results; {}", results.len(), stderr(&out).trim());
    }
}

#[test]
fn a_cluster_node_restarted_mid_scan_loses_nothing() {
    if !lab_available() || !nats_available() {
        return;
    }
    let lab = Lab::up_with(&[("LAB_WORKERS", "3")]);
    let mut nats = Nats::start(&lab, 3);
    let url = nats.url();
    submit(&lab, &url, "clustered", &["--replicas", "3"]);
    let workers: Vec<Child> = (1..=3)
        .map(|k| spawn_worker(&lab, k, &url, "clustered"))
        .collect();
    std::thread::sleep(Duration::from_millis(3000));
    nats.kill(1);
    std::thread::sleep(Duration::from_secs(3));
    nats.restart(1);
    for (code, err) in wait_all(workers, Duration::from_secs(240)) {
        assert_eq!(code, Some(0), "worker: {err}");
    }
    collect_exact(&lab, &url, "clustered");
}

#[test]
fn bad_input_and_a_worker_that_cannot_attach() {
    if !lab_available() || !nats_available() {
        return;
    }
    let lab = Lab::up_with(&[("LAB_WORKERS", "2")]);
    let nats = Nats::start(&lab, 1);
    let url = nats.url();
    let scan = lab.scan_ns();
    let one_line = |out: &Output, code: i32, needle: &str| {
        let e = stderr(out);
        assert_eq!(out.status.code(), Some(code), "{e}");
        assert_eq!(e.lines().count(), 1, "{e}");
        assert!(e.contains(needle), "{needle:?} in {e}");
    };
    // Nothing listens there.
    let out = xdpscan_in(
        &scan,
        &["status", "--nats", "nats://198.18.0.2:4299", "--job", "x"],
    );
    one_line(
        &out,
        1,
        "cannot reach the NATS server at nats://198.18.0.2:4299",
    );
    let out = xdpscan_in(
        &scan,
        &["collect", "--nats", "nats://198.18.0.2:4299", "--job", "x"],
    );
    one_line(&out, 1, "cannot reach");
    let out = xdpscan_in(
        &scan,
        &[
            "submit",
            "--nats",
            "nats:/bad url",
            "--job",
            "x",
            "--shards",
            "2",
            "198.19.0.0/24",
            "-p",
            "80",
        ],
    );
    assert_ne!(out.status.code(), Some(0));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    let small_submit = |job: &str, target: &str, extra: &[&str]| {
        let mut a = vec![
            "submit", "--nats", &url, "--job", job, "--shards", "2", target, "-p", "80",
        ];
        a.extend_from_slice(extra);
        xdpscan_in(&scan, &a)
    };
    // Unknown jobs.
    submit(&lab, &url, "known", &[]);
    for cmd in ["status", "collect", "worker"] {
        let out = xdpscan_in(&scan, &[cmd, "--nats", &url, "--job", "nosuch"]);
        one_line(&out, 1, "no job \"nosuch\"");
    }
    // A job is submitted once.
    let out = small_submit("known", "198.19.0.0/24", &[]);
    one_line(&out, 1, "already submitted");
    // Names and options a job cannot have.
    let out = small_submit("a.b", "198.19.0.0/24", &[]);
    one_line(&out, 2, "a job name is");
    let out = small_submit("j2", "198.19.0.0/24", &["-oX", "x.xml"]);
    one_line(&out, 2, "not part of a job");
    let out = small_submit("j3", "198.19.0.0/33", &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = xdpscan_in(
        &scan,
        &["collect", "--nats", &url, "--job", "known", "-p", "22"],
    );
    one_line(&out, 2, "not an output option");
    // --publish to nowhere.
    let out = lab.xdpscan(&[
        "198.19.0.0/28",
        "-p",
        "22",
        "--publish",
        "nats://198.18.0.2:4299/x.y",
    ]);
    one_line(&out, 1, "--publish");
    let out = lab.xdpscan(&[
        "198.19.0.0/28",
        "-p",
        "22",
        "--publish",
        "nats://198.18.0.2:4222/x.*",
    ]);
    one_line(&out, 2, "--publish");

    // A worker whose interface does not exist gives its shard back and says so; another
    // worker then does the whole job.
    let out = xdpscan_in(
        &worker_ns(&lab, 1),
        &[
            "worker",
            "--nats",
            &url,
            "--job",
            "known",
            "-i",
            "nosuch0",
            "--exit-when-idle",
        ],
    );
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(e.contains("given back") && e.contains("nosuch0"), "{e}");
    let w = spawn_worker(&lab, 2, &url, "known");
    for (code, err) in wait_all(vec![w], Duration::from_secs(240)) {
        assert_eq!(code, Some(0), "worker: {err}");
    }
    collect_exact(&lab, &url, "known");
}

/// Messages a stream holds, from the server's monitoring endpoint.
fn stream_messages(lab: &Lab, stream: &str) -> u64 {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.tgt_ns(),
            "curl",
            "-s",
            "http://198.18.0.2:8222/jsz?streams=true",
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v["account_details"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|a| a["stream_detail"].as_array().cloned().unwrap_or_default())
        .find(|s| s["name"] == stream)
        .and_then(|s| s["state"]["messages"].as_u64())
        .unwrap_or(0)
}

#[test]
fn publish_stores_each_result_once() {
    if !lab_available() || !nats_available() {
        return;
    }
    let lab = Lab::up();
    let _nats = Nats::start(&lab, 1);
    let args = [
        "198.19.0.0/20",
        "-p",
        "22,80",
        "--rate",
        "5000",
        "--wait",
        "1",
        "-q",
        "--publish",
        "nats://198.18.0.2:4222/lab.results",
    ];
    let out = lab.xdpscan(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let results = parse_results(&out.stdout);
    let first = u32::from(Ipv4Addr::new(198, 19, 0, 0));
    assert_exact(&results, &syn_expected(first, 4096, &[22, 80]));
    assert_eq!(
        stream_messages(&lab, "XDPSCAN_PUB_lab_results"),
        results.len() as u64
    );
    // Another scan to the same subject inside the dedup window (-sA after -sS): its results
    // are its own, all stored (issue 20, item 5: they were taken for repeats and dropped).
    let mut ack_args = args.to_vec();
    ack_args.push("-sA");
    let out = lab.xdpscan(&ack_args);
    assert!(out.status.success(), "{}", stderr(&out));
    let acks = parse_results(&out.stdout).len() as u64;
    assert!(acks > 0);
    let mut total = results.len() as u64 + acks;
    assert_eq!(stream_messages(&lab, "XDPSCAN_PUB_lab_results"), total);
    // A rescan, cut short and resumed: one scan, each key stored once, nothing lost.
    let resume = std::env::temp_dir().join(format!("xdpscan-pub-{}.resume", lab.prefix));
    let mut cut = args.to_vec();
    cut[4] = "2000";
    let resume_s = resume.to_str().unwrap();
    cut.extend(["--resume-file", resume_s]);
    let child = lab
        .in_scan(BIN, &cut)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let first_part = child.wait_with_output().unwrap();
    assert!(resume.exists(), "{}", stderr(&first_part));
    let second_part = lab.xdpscan(&["--resume", resume_s, "-q"]);
    assert!(second_part.status.success(), "{}", stderr(&second_part));
    let mut both = parse_results(&first_part.stdout);
    both.extend(parse_results(&second_part.stdout));
    let keys: std::collections::BTreeSet<_> = both.iter().map(|r| (r.ip, r.port)).collect();
    assert_eq!(
        keys.len(),
        results.len(),
        "the two parts add up to the scan"
    );
    total += keys.len() as u64;
    assert_eq!(stream_messages(&lab, "XDPSCAN_PUB_lab_results"), total);
    let _ = std::fs::remove_file(&resume);
}

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl {args:?}: {}", stderr(&out));
}

#[test]
fn tls_and_passwords_and_metrics() {
    if !lab_available() || !nats_available() {
        return;
    }
    let lab = Lab::up_with(&[("LAB_WORKERS", "1")]);
    let dir = std::env::temp_dir().join(format!("xdpscan-nats-tls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("store")).unwrap();
    openssl(
        &dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "1",
            "-subj",
            "/CN=xdpscan test CA",
        ],
    );
    openssl(
        &dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "srv.key",
            "-out",
            "srv.csr",
            "-subj",
            "/CN=198.18.0.2",
        ],
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:198.18.0.2\n").unwrap();
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "srv.pem",
            "-days",
            "1",
            "-extfile",
            "san.ext",
        ],
    );
    let conf = format!(
        "listen: 198.18.0.2:4230\njetstream {{ store_dir: \"{0}/store\" }}\ntls {{ cert_file: \"{0}/srv.pem\", key_file: \"{0}/srv.key\" }}\nauthorization {{ user: scan, password: s3cret }}\n",
        dir.display()
    );
    std::fs::write(dir.join("nats.conf"), conf).unwrap();
    let mut server = Command::new("ip")
        .args(["netns", "exec", &lab.tgt_ns(), "nats-server", "-c"])
        .arg(dir.join("nats.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    struct Kill<'a>(&'a mut Child, PathBuf);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
            let _ = std::fs::remove_dir_all(&self.1);
        }
    }
    let _guard = Kill(&mut server, dir.clone());
    std::thread::sleep(Duration::from_millis(800));
    let ca = dir.join("ca.pem");
    let ca = ca.to_str().unwrap();
    let url = "tls://198.18.0.2:4230";
    let auth = [
        "--nats-tls-ca",
        ca,
        "--nats-user",
        "scan",
        "--nats-password",
        "s3cret",
    ];
    let with = |cmd: &[&str], extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
        v.extend(["--nats".to_string(), url.to_string()]);
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run = |ns: &str, v: Vec<String>| {
        let a: Vec<&str> = v.iter().map(|s| s.as_str()).collect();
        xdpscan_in(ns, &a)
    };
    // Wrong password, no CA: one line each.
    let out = run(
        &lab.scan_ns(),
        with(
            &["status", "--job", "x"],
            &[
                "--nats-tls-ca",
                ca,
                "--nats-user",
                "scan",
                "--nats-password",
                "wrong",
            ],
        ),
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("authorization violation"),
        "{}",
        stderr(&out)
    );
    let out = run(
        &lab.scan_ns(),
        with(
            &["status", "--job", "x"],
            &["--nats-user", "scan", "--nats-password", "s3cret"],
        ),
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));

    let mut submit = with(&["submit", "--job", "tls", "--shards", "2"], &auth);
    submit.extend(
        [
            "198.19.0.0/20",
            "-p",
            "22,80,443,8080",
            "--rate",
            "3000",
            "--wait",
            "1",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    let out = run(&lab.scan_ns(), submit);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut wargs: Vec<String> = [
        BIN,
        "worker",
        "--job",
        "tls",
        "--exit-when-idle",
        "--metrics",
        "127.0.0.1:9464",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    wargs.extend(["--nats".to_string(), url.to_string()]);
    wargs.extend(auth.iter().map(|s| s.to_string()));
    let worker = Command::new("ip")
        .args(["netns", "exec", &worker_ns(&lab, 1)])
        .args(&wargs)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Prometheus' text while the shard runs.
    let deadline = Instant::now() + Duration::from_secs(20);
    let page = loop {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &worker_ns(&lab, 1),
                "curl",
                "-s",
                "http://127.0.0.1:9464/metrics",
            ])
            .output()
            .unwrap();
        let page = String::from_utf8_lossy(&out.stdout).into_owned();
        let sent = page
            .lines()
            .find_map(|l| l.strip_prefix("xdpscan_probes_sent_total "))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        if sent > 0 {
            break page;
        }
        assert!(Instant::now() < deadline, "no metrics: {page}");
        std::thread::sleep(Duration::from_millis(200));
    };
    for name in [
        "xdpscan_replies_total",
        "xdpscan_drops_total",
        "xdpscan_send_rate_pps",
        "xdpscan_shard_progress_ratio{job=\"tls\"",
        "xdpscan_results_stored_total",
    ] {
        assert!(page.contains(name), "{name} in {page}");
    }
    for (code, err) in wait_all(vec![worker], Duration::from_secs(120)) {
        assert_eq!(code, Some(0), "worker: {err}");
    }
    let out = run(&lab.scan_ns(), with(&["collect", "--job", "tls"], &auth));
    assert!(out.status.success(), "{}", stderr(&out));
    let first = u32::from(Ipv4Addr::new(198, 19, 0, 0));
    assert_exact(
        &parse_results(&out.stdout),
        &syn_expected(first, 4096, &[22, 80, 443, 8080]),
    );
}
