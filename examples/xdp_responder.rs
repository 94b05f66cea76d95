//! The lab responder (`io::responder`, bpf/responder.bpf.c) attached to IFACE until SIGINT or
//! SIGTERM; prints the answers it has sent ("open closed unreachable silent", cumulative) five
//! times a second.
//!
//!     xdp_responder IFACE
//!
//! Run it only on the target side of a lab link inside namespaces you built (198.18.0.0/15,
//! 2001:db8::/32): `scripts/live.sh` and `tests/responder.rs` do.

use std::{
    sync::{atomic::AtomicUsize, Arc},
    time::Duration,
};

use anyhow::{bail, Context};
use xdpscan::io::{responder::Responder, sys};

fn main() -> anyhow::Result<()> {
    let Some(iface) = std::env::args().nth(1) else {
        bail!("usage: xdp_responder IFACE");
    };
    let stop = Arc::new(AtomicUsize::new(0));
    sys::count_signals(&[libc::SIGINT, libc::SIGTERM], stop.clone()).context("signals")?;
    let r = Responder::attach(&iface)?;
    println!("attached to {iface}");
    while stop.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        std::thread::sleep(Duration::from_millis(200));
        let a = r.answered();
        println!("{} {} {} {}", a.open, a.closed, a.unreachable, a.silent);
    }
    Ok(())
}
