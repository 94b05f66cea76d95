//! The hot steps of the data path, one benchmark each, plus the whole transmit path with no
//! I/O (permutation → index → cookie → frame), reported as probes per second on one core.

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use xdpscan::{
    cookie::{CookieJar, PortRange},
    permute::Cycle,
    probe::{udp_payloads::Payloads, ClassifyCtx, ScanType},
    target::{blocklist, parse_target, PortList, TargetSpace},
    wire::{template::FrameParams, Ipv4Packet, MacAddr},
};

const SRC: u32 = 0xc612_0001;

fn params() -> FrameParams {
    FrameParams {
        src_mac: MacAddr([2, 0, 0, 0, 0, 1]),
        dst_mac: MacAddr([2, 0, 0, 0, 0, 2]),
        src_ip: SRC,
        ttl: 64,
    }
}

fn internet_space() -> TargetSpace {
    let (set, _) = blocklist::apply(&[parse_target("0.0.0.0/0").unwrap()]);
    TargetSpace::new(set, PortList::parse("80").unwrap())
}

fn benches(c: &mut Criterion) {
    let space = internet_space();
    let cycle = Cycle::new(space.len(), 1);
    let jar = CookieJar::new(
        [7; 16],
        PortRange {
            lo: 61000,
            hi: 65535,
        },
    );
    let module = ScanType::Syn.module(None, &Payloads::empty());
    let tpl = module.template(&params(), 80);

    let mut g = c.benchmark_group("step");
    g.throughput(Throughput::Elements(1));
    let mut walker = cycle.walker(0, 1, 0, 1);
    g.bench_function("permutation_next", |b| b.iter(|| black_box(walker.next())));
    let mut i = 0u64;
    g.bench_function("index_to_target", |b| {
        b.iter(|| {
            i = (i + 0x9e37_79b9) % space.len();
            black_box(space.get(black_box(i)))
        })
    });
    g.bench_function("cookie", |b| {
        b.iter(|| black_box(jar.cookie(SRC, black_box(0x0102_0304), 80, 6)))
    });
    let mut frame = [0u8; 128];
    let ck = jar.cookie(SRC, 0x0102_0304, 80, 6);
    g.bench_function("template_patch", |b| {
        b.iter(|| black_box(module.write(&mut frame, &tpl, black_box(0x0102_0304), 80, &ck)))
    });
    let ctx = ClassifyCtx {
        jar: jar.clone(),
        src_ip: SRC,
    };
    let reply = syn_ack(&jar);
    g.bench_function("classify_syn_ack", |b| {
        b.iter(|| {
            black_box(module.classify(
                &Ipv4Packet::new_checked(black_box(&reply[..])).unwrap(),
                &ctx,
            ))
        })
    });
    g.finish();

    // The whole build path for 1M probes of a /0 single-port scan, on one core.
    let mut g = c.benchmark_group("dry_run");
    const N: u64 = 1 << 20;
    g.throughput(Throughput::Elements(N));
    g.sample_size(10);
    g.bench_function("build_probes_one_core", |b| {
        b.iter_batched(
            || cycle.walker(0, 1, 0, 1),
            |mut w| {
                let mut buf = [0u8; 128];
                let mut bytes = 0usize;
                for _ in 0..N {
                    let i = w.next().expect("space is larger than N");
                    let (dst, port) = space.get(i);
                    let c = jar.cookie(SRC, dst, port, 6);
                    bytes += module.write(&mut buf, &tpl, dst, port, &c);
                }
                black_box(bytes)
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn syn_ack(jar: &CookieJar) -> Vec<u8> {
    let c = jar.cookie(SRC, 0x0102_0304, 443, 6);
    let mut v = Vec::new();
    etherparse::PacketBuilder::ipv4([1, 2, 3, 4], SRC.to_be_bytes(), 57)
        .tcp(443, c.src_port, 1, 65535)
        .syn()
        .ack(c.seq.wrapping_add(1))
        .write(&mut v, &[])
        .unwrap();
    v
}

/// The issue-6 paths: a traceroute probe (TTL, time and mark patched), and naming a banner
/// against Debian's nmap-service-probes (done on the output thread, once per open port).
fn detection(c: &mut Criterion) {
    use xdpscan::{
        probe::{
            traceroute::{TraceProto, TracerouteScan},
            ProbeModule,
        },
        service::{probes::DEFAULT_PATH, ServiceProbes},
    };
    let jar = CookieJar::new(
        [7; 16],
        PortRange {
            lo: 61000,
            hi: 65535,
        },
    );
    let mut g = c.benchmark_group("detection");
    g.throughput(Throughput::Elements(1));
    let trace = TracerouteScan::new(TraceProto::Tcp, (1, 30), jar.ports());
    let tpls = trace.variants(&params(), 80);
    let mut frame = [0u8; 128];
    let mut i = 0u32;
    g.bench_function("traceroute_probe", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            let dst = 0x0a00_0000 | (i & 0xffff);
            let ck = jar.cookie(SRC, dst, 80, trace.cookie_tag());
            black_box(trace.write(&mut frame, &tpls[(i % 30) as usize], dst, 80, &ck))
        })
    });
    if let Ok(db) = ServiceProbes::load(std::path::Path::new(DEFAULT_PATH)) {
        let ssh = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n";
        let http = b"HTTP/1.0 200 OK\r\nServer: SimpleHTTP/0.6 Python/3.11.7\r\nDate: Sun, 22 Nov 2026 05:47:32 GMT\r\nContent-type: text/html\r\n\r\n<html></html>";
        // Warm the lazily compiled patterns first: the benchmark measures matching.
        db.identify("NULL", ssh);
        db.identify("GetRequest", http);
        g.bench_function("identify_ssh_greeting", |b| {
            b.iter(|| black_box(db.identify("NULL", ssh)))
        });
        g.bench_function("identify_http_response", |b| {
            b.iter(|| black_box(db.identify("GetRequest", http)))
        });
    }
    g.finish();
}

criterion_group!(hot, benches, detection);
criterion_main!(hot);
