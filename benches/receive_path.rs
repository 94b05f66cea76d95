//! The receive path with no network: parse, validate (cookie), classify and deduplicate
//! synthetic SYN-ACKs, as `engine::receive` does for each frame (minus handing results to the
//! output thread). Two figures:
//!
//! - criterion's `receive_path/classify_validate_dedup`: replies per second on one core over a
//!   chunk of 1 M replies, 20 % of them retransmissions, into a fresh duplicate filter;
//! - a one-shot run of `RX_BENCH_REPLIES` replies (default 200 M, 20 % retransmitted) through
//!   one filter, the way a long scan fills it: replies per second and the process's peak RSS.
//!   Frames are generated a chunk at a time outside the timed part.

use std::{
    net::{IpAddr, Ipv4Addr},
    time::{Duration, Instant},
};

use criterion::{black_box, criterion_group, BatchSize, Criterion, Throughput};
use xdpscan::{
    cookie::{CookieJar, PortRange},
    engine::dedup::{Dedup, Seen},
    permute::{Cycle, Walker},
    probe::{udp_payloads::Payloads, Classified, ClassifyCtx, PortScan, ScanType},
    targets::{parse_target, PortList, RangeSet, Target, TargetSpace},
    wire::{checksum, IpPacket},
};

const SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const CHUNK: usize = 1 << 20;
/// Frames per receive batch, as `io::xdp` hands them over.
const RX_BATCH: usize = 256;
/// Ethernet + IPv4 + TCP with no options.
const FRAME: usize = 54;

/// 10.0.0.0/8 × 10 ports: 167.8 M probes, more than the distinct replies of the one-shot run.
fn space() -> TargetSpace {
    let Target::V4(r) = parse_target("10.0.0.0/8").unwrap() else {
        unreachable!()
    };
    TargetSpace::new(
        RangeSet::from_ranges(vec![r]),
        PortList::parse("1-10").unwrap(),
    )
}

struct Replies {
    space: TargetSpace,
    jar: CookieJar,
    walker: Walker,
    rng: u64,
}

impl Replies {
    fn new() -> Self {
        let space = space();
        let walker = Cycle::new(space.len(), 7).walker(0, 1, 0, 1);
        Self {
            space,
            jar: CookieJar::new(
                [7; 16],
                PortRange {
                    lo: 32768,
                    hi: 61000,
                },
            ),
            walker,
            rng: 0x9e37_79b9_7f4a_7c15,
        }
    }

    fn next_rand(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// A SYN-ACK from `dst:port` answering our probe, checksums valid.
    fn syn_ack(&self, f: &mut [u8], dst: IpAddr, port: u16) {
        let IpAddr::V4(d) = dst else { unreachable!() };
        let c = self.jar.cookie(IpAddr::V4(SRC), dst, port, 6);
        f[..FRAME].fill(0);
        f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&40u16.to_be_bytes());
        ip[6] = 0x40;
        ip[8] = 57;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&d.octets());
        ip[16..20].copy_from_slice(&SRC.octets());
        let ck = checksum::finish(checksum::sum(0, ip));
        ip[10..12].copy_from_slice(&ck.to_be_bytes());
        let t = &mut f[34..54];
        t[0..2].copy_from_slice(&port.to_be_bytes());
        t[2..4].copy_from_slice(&c.src_port.to_be_bytes());
        t[4..8].copy_from_slice(&0x1234_5678u32.to_be_bytes());
        t[8..12].copy_from_slice(&c.seq.wrapping_add(1).to_be_bytes());
        t[12] = 0x50;
        t[13] = 0x12;
        t[14..16].copy_from_slice(&65535u16.to_be_bytes());
        let pseudo = checksum::sum_u32(u32::from(d)) + checksum::sum_u32(u32::from(SRC)) + 6 + 20;
        let ck = checksum::finish(checksum::sum(pseudo, t));
        t[16..18].copy_from_slice(&ck.to_be_bytes());
    }

    /// Fills `buf` with `count` frames: 4 in 5 answer a new probe, the rest repeat one of the
    /// chunk's earlier replies (a retransmission). Returns the number of new ones.
    fn chunk(&mut self, buf: &mut [u8], count: usize) -> usize {
        let mut fresh = 0;
        for j in 0..count {
            let r = self.next_rand();
            if j > 0 && r.is_multiple_of(5) {
                let k = (r >> 8) as usize % j;
                buf.copy_within(k * FRAME..(k + 1) * FRAME, j * FRAME);
                continue;
            }
            let i = self.walker.next().expect("the space outlasts the run");
            let (dst, port) = self.space.get(i);
            self.syn_ack(&mut buf[j * FRAME..(j + 1) * FRAME], dst, port);
            fresh += 1;
        }
        fresh
    }
}

#[derive(Default, Debug)]
struct Counts {
    results: u64,
    duplicates: u64,
    other: u64,
}

/// What the receive thread does with each batch of frames (`engine::receive`: classify every
/// frame, then the duplicate filter decides on the batch), minus sending the records on.
fn receive(
    buf: &[u8],
    module: &dyn PortScan,
    ctx: &ClassifyCtx,
    space: &TargetSpace,
    dedup: &mut Dedup,
    n: &mut Counts,
) {
    let mut pending = Vec::with_capacity(RX_BATCH);
    let mut firsts = Vec::with_capacity(RX_BATCH);
    for batch in buf.chunks(RX_BATCH * FRAME) {
        pending.clear();
        for f in batch.chunks_exact(FRAME) {
            let Some(ip) = IpPacket::from_frame(f) else {
                n.other += 1;
                continue;
            };
            if !ctx.is_ours(ip.dst()) {
                n.other += 1;
                continue;
            }
            match module.classify(&ip, ctx) {
                Classified::Reply(v) => pending.push(v),
                _ => n.other += 1,
            }
        }
        dedup.first_batch(
            space,
            pending.iter().map(|v| (v.ip, 0, v.port, v.proto)),
            &mut firsts,
        );
        for &seen in &firsts {
            match seen {
                Seen::First => n.results += 1,
                Seen::Again => n.duplicates += 1,
                Seen::Outside => n.other += 1,
            }
        }
    }
}

fn ctx(jar: &CookieJar) -> ClassifyCtx {
    ClassifyCtx {
        jar: jar.clone(),
        src_v4: Some(SRC),
        src_v6: None,
    }
}

fn chunk_bench(c: &mut Criterion) {
    let mut gen = Replies::new();
    let mut buf = vec![0u8; CHUNK * FRAME];
    gen.chunk(&mut buf, CHUNK);
    let module = ScanType::Syn
        .module(None, &Payloads::empty())
        .expect("a raw scan");
    let ctx = ctx(&gen.jar);
    let mut g = c.benchmark_group("receive_path");
    g.throughput(Throughput::Elements(CHUNK as u64));
    g.sample_size(20);
    g.bench_function("classify_validate_dedup", |b| {
        b.iter_batched(
            || Dedup::for_space(gen.space.len()),
            |mut d| {
                let mut n = Counts::default();
                receive(&buf, module.as_ref(), &ctx, &gen.space, &mut d, &mut n);
                black_box(n.results)
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// The long run: one filter over `RX_BENCH_REPLIES` replies.
fn one_shot() {
    let total: u64 = std::env::var("RX_BENCH_REPLIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000_000);
    let mut gen = Replies::new();
    let module = ScanType::Syn
        .module(None, &Payloads::empty())
        .expect("a raw scan");
    let ctx = ctx(&gen.jar);
    let mut dedup = Dedup::for_space(gen.space.len());
    let mut buf = vec![0u8; CHUNK * FRAME];
    let (mut n, mut fresh, mut done) = (Counts::default(), 0u64, 0u64);
    let mut timed = Duration::ZERO;
    while done < total {
        let take = ((total - done) as usize).min(CHUNK);
        fresh += gen.chunk(&mut buf, take) as u64;
        let t = Instant::now();
        receive(
            &buf[..take * FRAME],
            module.as_ref(),
            &ctx,
            &gen.space,
            &mut dedup,
            &mut n,
        );
        timed += t.elapsed();
        done += take as u64;
    }
    assert_eq!(n.other, 0, "every synthetic reply validates");
    assert_eq!(n.results, fresh, "each new reply reported once");
    println!(
        "receive_path/one_shot: {done} replies ({} results, {} retransmissions) in {:.2} s: {:.2} M replies/s on one core; peak RSS {:.0} MiB",
        n.results,
        n.duplicates,
        timed.as_secs_f64(),
        done as f64 / timed.as_secs_f64() / 1e6,
        peak_rss_mib()
    );
}

criterion_group!(rx, chunk_bench);

fn main() {
    rx();
    Criterion::default().configure_from_args().final_summary();
    // `cargo bench` passes --bench; a filter that names another group skips the long run.
    let filter = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_default();
    if filter.is_empty() || "receive_path/one_shot".contains(&filter) {
        one_shot();
    }
}
