//! The hot steps of the data path, one benchmark each, plus the whole transmit path with no
//! I/O (permutation → index → cookie → frame), reported as probes per second on one core.

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use xdpscan::{
    cookie::{CookieJar, PortRange},
    permute::Cycle,
    probe::{udp_payloads::Payloads, ClassifyCtx, ScanType},
    targets::{blocklist, parse_target, Iid, PortList, RangeSet, Target, TargetSpace},
    wire::{template::FrameParams, IpPacket, MacAddr},
};

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const SRC: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));
const SRC6: IpAddr = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
const DST: IpAddr = IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4));

fn params_of(src: IpAddr) -> FrameParams {
    FrameParams {
        src_mac: MacAddr([2, 0, 0, 0, 0, 1]),
        dst_mac: MacAddr([2, 0, 0, 0, 0, 2]),
        src,
        ttl: 64,
    }
}

fn params() -> FrameParams {
    params_of(SRC)
}

fn internet_space() -> TargetSpace {
    let Target::V4(all) = parse_target("0.0.0.0/0").unwrap() else {
        unreachable!()
    };
    let (set, _) = blocklist::apply(&[all]);
    TargetSpace::new(set, PortList::parse("80").unwrap())
}

/// XMap's kind of IPv6 sweep: one random address in each /48 of 2000::/16 minus the blocklist.
fn ipv6_window_space() -> TargetSpace {
    let Target::Window(w) = parse_target("2000::/16-48").unwrap() else {
        unreachable!()
    };
    let nets = RangeSet::from_ranges(vec![xdpscan::targets::Ipv6Range::new(0, w.networks() - 1)]);
    TargetSpace::build(
        RangeSet::new(),
        RangeSet::new(),
        Vec::new(),
        &[(w, nets)],
        Iid::Random { seed: 1 },
        PortList::parse("80").unwrap(),
    )
    .unwrap()
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
    let module = ScanType::Syn
        .module(None, &Payloads::empty())
        .expect("a raw scan");
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
        b.iter(|| black_box(jar.cookie(SRC, black_box(DST), 80, 6)))
    });
    let dst6: IpAddr = "2001:db8:1::5".parse().unwrap();
    g.bench_function("cookie_v6", |b| {
        b.iter(|| black_box(jar.cookie(SRC6, black_box(dst6), 80, 6)))
    });
    let mut frame = [0u8; 128];
    let ck = jar.cookie(SRC, DST, 80, 6);
    g.bench_function("template_patch", |b| {
        b.iter(|| black_box(module.write(&mut frame, &tpl, black_box(DST), 80, &ck)))
    });
    let tpl6 = module.template(&params_of(SRC6), 80);
    let ck6 = jar.cookie(SRC6, dst6, 80, 6);
    g.bench_function("template_patch_v6", |b| {
        b.iter(|| black_box(module.write(&mut frame, &tpl6, black_box(dst6), 80, &ck6)))
    });
    let ctx = ClassifyCtx {
        jar: jar.clone(),
        src_v4: Some(Ipv4Addr::new(198, 18, 0, 1)),
        src_v6: None,
    };
    let reply = syn_ack(&jar);
    g.bench_function("classify_syn_ack", |b| {
        b.iter(|| {
            black_box(module.classify(&IpPacket::parse(black_box(&reply[..])).unwrap(), &ctx))
        })
    });
    g.finish();

    // The IPv6 build path: a prefix window's targets (random IIDs) as 78-byte SYN frames.
    let space6 = ipv6_window_space();
    let cycle6 = Cycle::new(space6.len(), 1);
    let mut g = c.benchmark_group("dry_run_v6");
    const N6: u64 = 1 << 20;
    g.throughput(Throughput::Elements(N6));
    g.sample_size(10);
    g.bench_function("build_probes_one_core", |b| {
        b.iter_batched(
            || cycle6.walker(0, 1, 0, 1),
            |mut w| {
                let mut buf = [0u8; 128];
                let mut bytes = 0usize;
                for _ in 0..N6 {
                    let i = w.next().expect("space is larger than N");
                    let (dst, port) = space6.get(i);
                    let c = jar.cookie(SRC6, dst, port, 6);
                    bytes += module.write(&mut buf, &tpl6, dst, port, &c);
                }
                black_box(bytes)
            },
            BatchSize::SmallInput,
        )
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
    let c = jar.cookie(SRC, DST, 443, 6);
    let mut v = Vec::new();
    etherparse::PacketBuilder::ipv4([1, 2, 3, 4], [198, 18, 0, 1], 57)
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
            let dst = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (i & 0xffff)));
            let ck = jar.cookie(SRC, dst, 80, trace.cookie_tag());
            black_box(trace.write(&mut frame, &tpls[(i % 30) as usize], dst, 80, &ck))
        })
    });
    if let Ok(db) = ServiceProbes::load(std::path::Path::new(DEFAULT_PATH)) {
        let ssh = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n";
        let http = b"HTTP/1.0 200 OK\r\nServer: SimpleHTTP/0.6 Python/3.11.7\r\nDate: Sun, 22 Nov 2026 05:47:32 GMT\r\nContent-type: text/html\r\n\r\n<html></html>";
        let (null, get) = (
            db.tcp_index("NULL").unwrap(),
            db.tcp_index("GetRequest").unwrap(),
        );
        // Warm the lazily compiled patterns first: the benchmark measures matching.
        db.first_match(null, ssh);
        db.first_match(get, http);
        g.bench_function("identify_ssh_greeting", |b| {
            b.iter(|| black_box(db.first_match(null, ssh)))
        });
        g.bench_function("identify_http_response", |b| {
            b.iter(|| black_box(db.first_match(get, http)))
        });
    }
    g.finish();
}

criterion_group!(hot, benches, detection);
criterion_main!(hot);
