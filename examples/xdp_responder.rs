//! The lab responder (`io::responder`, bpf/responder.bpf.c) attached to IFACE until SIGINT or
//! SIGTERM; prints the answers it has sent five times a second, cumulative: "open closed
//! unreachable silent repeated runs nanos" (the last two: the program's runs and its own run
//! time, from the kernel's BPF statistics). With `--repeat`, a quarter of the answers go twice
//! (`responder::copies`).
//!
//!     xdp_responder IFACE [--repeat]
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
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (iface, repeat) = match args.as_slice() {
        [i] => (i, false),
        [i, r] if r == "--repeat" => (i, true),
        _ => bail!("usage: xdp_responder IFACE [--repeat]"),
    };
    let stop = Arc::new(AtomicUsize::new(0));
    sys::count_signals(&[libc::SIGINT, libc::SIGTERM], stop.clone()).context("signals")?;
    let r = Responder::attach(iface, repeat)?;
    println!("attached to {iface}");
    while stop.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        std::thread::sleep(Duration::from_millis(200));
        let (a, t) = (r.answered(), r.run_time());
        println!(
            "{} {} {} {} {} {} {}",
            a.open, a.closed, a.unreachable, a.silent, a.repeated, t.runs, t.nanos
        );
    }
    Ok(())
}
