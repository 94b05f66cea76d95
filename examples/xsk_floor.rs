//! The kernel's AF_XDP transmit floor (`io::xdp_floor`): one 58-byte TCP SYN (the scanner's
//! template, stamped once) sent COUNT times from queue 0 of IFACE.
//!
//!     xsk_floor IFACE SRC DST GATEWAY_MAC COUNT [BATCH]
//!
//! Prints "frames seconds pps". `scripts/bench.sh` runs it in the sink lab's scanner namespace;
//! run it only where every frame stays in a namespace you built (198.18.0.0/15).

use std::net::IpAddr;

use anyhow::{bail, Context};
use xdpscan::{io::xdp_floor, wire::MacAddr};

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() < 5 {
        bail!("usage: xsk_floor IFACE SRC DST GATEWAY_MAC COUNT [BATCH]");
    }
    let src: IpAddr = a[1].parse().context("SRC")?;
    let dst: IpAddr = a[2].parse().context("DST")?;
    let gw: MacAddr = a[3].parse().context("GATEWAY_MAC")?;
    let count: u64 = a[4].parse().context("COUNT")?;
    let batch: usize = a.get(5).map_or(Ok(128), |b| b.parse()).context("BATCH")?;
    let mac = std::fs::read_to_string(format!("/sys/class/net/{}/address", a[0]))
        .with_context(|| format!("no interface {}", a[0]))?;
    let frame = xdpscan::bench::syn_frame(mac.trim().parse()?, gw, src, dst);
    let t = xdp_floor::transmit(&a[0], &frame, count, batch)?.elapsed;
    println!(
        "{count} {:.6} {:.0}",
        t.as_secs_f64(),
        count as f64 / t.as_secs_f64()
    );
    Ok(())
}
