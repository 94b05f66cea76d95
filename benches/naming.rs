//! Naming what open ports say (`-sV`): answers matched against the whole nmap-service-probes on
//! the version worker, reported as answers named per second on one core. The corpus is a mix
//! of greetings and probe answers of real daemons, and answers nothing matches (the worst case:
//! every pattern of the probe, its fallbacks and NULL is tried).

use std::{hint::black_box, path::Path, time::Duration};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use xdpscan::service::{
    detect::{Detection, End, Step},
    ServiceProbes,
};

/// (port, probe the answer came to, answer)
const CORPUS: &[(u16, &str, &[u8])] = &[
    (22, "NULL", b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"),
    (21, "NULL", b"220 (vsFTPd 3.0.3)\r\n"),
    (25, "NULL", b"220 mail.example.com ESMTP Postfix (Debian/GNU)\r\n"),
    (80, "GetRequest", b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Wed, 02 Dec 2026 00:00:00 GMT\r\nContent-Type: text/html\r\nContent-Length: 12\r\nConnection: close\r\n\r\nxdpscan lab\n"),
    (6379, "GetRequest", b"-ERR wrong number of arguments for 'get' command\r\n"),
    (11211, "GetRequest", b"ERROR\r\n"),
    (8080, "GetRequest", b"HTTP/1.0 200 OK\r\nServer: SimpleHTTP/0.6 Python/3.11.7\r\n\r\n"),
    (9999, "GetRequest", b"\x00\x17\x03\xffnothing matches this answer at all\x01\x02"),
    (443, "SSLSessionReq", b"\x15\x03\x00\x00\x02\x02\x28"),
    (3306, "NULL", b"J\x00\x00\x00\x0a8.0.35\x00\x08\x00\x00\x00abcdefgh\x00\xff\xf7"),
];

fn naming(c: &mut Criterion) {
    let Ok(db) = ServiceProbes::load(Path::new(xdpscan::service::probes::DEFAULT_PATH)) else {
        eprintln!("naming: nmap-service-probes not installed (scripts/setup.sh installs nmap)");
        return;
    };
    let answers: Vec<(u16, usize, &[u8])> = CORPUS
        .iter()
        .map(|&(port, probe, data)| {
            (
                port,
                db.tcp_index(probe).expect("a probe of the file"),
                data,
            )
        })
        .collect();
    // Patterns compile on first use: warm them so the figure is the steady state.
    for &(_, p, data) in &answers {
        black_box(db.first_match(p, data));
    }
    let mut g = c.benchmark_group("naming");
    g.throughput(Throughput::Elements(answers.len() as u64));
    g.bench_function("first_match over the corpus", |b| {
        b.iter(|| {
            for &(_, p, data) in &answers {
                black_box(db.first_match(p, black_box(data)));
            }
        })
    });
    // The worker's whole step per answer: the detection state machine around the match.
    g.bench_function("detection step over the corpus", |b| {
        b.iter(|| {
            for &(port, p, data) in &answers {
                let mut d = Detection::new(port, 7, true);
                let mut s = d.start(&db);
                while let Step::Probe { probe, .. } = s {
                    if probe == p || db.probes[probe].name == "NULL" && p != probe {
                        s = d.answer(
                            &db,
                            if probe == p { data } else { b"" },
                            End::Quiet,
                            Duration::ZERO,
                        );
                        if probe == p {
                            break;
                        }
                    } else {
                        s = d.answer(&db, b"", End::Quiet, Duration::ZERO);
                    }
                }
                black_box(s);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, naming);
criterion_main!(benches);
