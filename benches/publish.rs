//! Results published per second from one worker's sink to a local broker (Debian's
//! nats-server, started here on loopback with JetStream file storage), against the same
//! results written as NDJSON to a file, in the same run: `cargo bench --bench publish`.
//! Each result is a SYN-ACK record as the receive thread makes it; publishing goes through
//! `cluster::publish` exactly as a worker's does (batches, acknowledged, 256 in flight).

use std::{
    net::{IpAddr, Ipv4Addr},
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use xdpscan::{
    cluster::{
        broker,
        publish::{self, Ledger, Naming, NatsSink},
    },
    output::{file::OutFile, ndjson::NdjsonSink, Record, RunEnd, Sink},
    probe::{PortState, Proto, Reason, ScanType},
};

const N: u64 = 2_000_000;
const PORT: u16 = 14_222;

fn records() -> impl Iterator<Item = Record> {
    (0..N).map(|i| {
        let mut r = Record::new(
            IpAddr::V4(Ipv4Addr::from(0xc613_0000u32 + (i / 4) as u32)),
            [22, 80, 443, 8080][(i % 4) as usize],
            Proto::Tcp,
            PortState::Open,
            Reason::SynAck,
            ScanType::Syn,
        );
        r.ttl = 64;
        r.ts = SystemTime::now();
        r
    })
}

fn end(n: u64) -> RunEnd {
    RunEnd {
        end: SystemTime::now(),
        elapsed: Duration::ZERO,
        results: n,
        error: false,
        complete: true,
    }
}

fn ndjson_file() -> f64 {
    let path = std::env::temp_dir().join(format!("xdpscan-bench-{}.json", std::process::id()));
    let t = Instant::now();
    let mut sink = NdjsonSink::new(OutFile::create(&path).unwrap());
    for r in records() {
        sink.write(&r).unwrap();
    }
    sink.finish(&end(N)).unwrap();
    let s = t.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(path);
    N as f64 / s
}

/// `per_result`: one message per result (`--publish`), else a worker's batches.
fn nats(per_result: bool, n: u64) -> (f64, u64) {
    let ledger = Arc::new(Ledger::default());
    let subject = if per_result {
        format!("xdpscan.results.single{}", std::process::id())
    } else {
        "xdpscan.results.bench".to_string()
    };
    let naming = if per_result {
        Naming::PerResult { scan: 1 }
    } else {
        Naming::Batches {
            prefix: format!("bench.{}", std::process::id()),
        }
    };
    let (mut sink, rx) = NatsSink::new(subject.clone(), naming, 1_000_000, ledger.clone());
    let l = ledger.clone();
    let pump = std::thread::spawn(move || {
        let rt = broker::runtime().unwrap();
        rt.block_on(async move {
            let client = broker::connect(&format!("nats://127.0.0.1:{PORT}"), &Default::default())
                .await
                .unwrap();
            let js = broker::jetstream(&client);
            broker::results_stream(&js, 1).await.unwrap();
            publish::pump(js, subject, rx, l).await;
        })
    });
    let t = Instant::now();
    for r in records().take(n as usize) {
        sink.write(&r).unwrap();
    }
    sink.finish(&end(n)).unwrap();
    let s = t.elapsed().as_secs_f64();
    pump.join().unwrap();
    (
        n as f64 / s,
        ledger.stored.load(std::sync::atomic::Ordering::Relaxed),
    )
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing: only build then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("xdpscan-bench-nats-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut server = match Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &PORT.to_string(), "-sd"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(s) => s,
        Err(_) => {
            eprintln!("publish: nats-server not installed (scripts/setup.sh installs it)");
            return;
        }
    };
    std::thread::sleep(Duration::from_millis(700));
    for round in 1..=3 {
        let file = ndjson_file();
        let (published, stored) = nats(false, N);
        let (single, single_stored) = nats(true, N / 10);
        println!(
            "round {round}: NDJSON file {file:.0} results/s; NATS JetStream (acknowledged, file storage), worker batches {published:.0} results/s ({stored} of {N} stored), publishing/file = {:.2}; --publish one message per result {single:.0} results/s ({single_stored} of {} stored)",
            published / file,
            N / 10
        );
    }
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
