//! The kernel's floor for AF_XDP transmit: the smallest loop that keeps a socket's transmit ring
//! full, with the scanner's own socket set-up (ring sizes, kick budget, need-wakeup) and nothing
//! of a scan: one frame is written once into every UMEM frame, then the loop only produces
//! descriptors, kicks and reclaims completions. `scripts/bench.sh` runs it (through
//! `examples/xsk_floor.rs`) beside the scanner in the sink lab and reports the scanner's rate as a
//! fraction of this one (BENCHMARKS.md, "Speed history").

use std::{
    os::fd::AsRawFd,
    time::{Duration, Instant},
};

use xsk_rs::{FrameDesc, Socket};

use super::{sys, xdp, IoError};

/// One run of the floor.
#[derive(Debug, Clone, Copy)]
pub struct FloorRun {
    /// From the first kick until every frame completed.
    pub elapsed: Duration,
    /// The kernel bound the socket in zero-copy mode (`None`: it did not say).
    pub zero_copy: Option<bool>,
}

/// Sends `count` copies of `frame` from queue 0 of `ifname` as fast as the kernel takes them,
/// `batch` descriptors per kick.
pub fn transmit(ifname: &str, frame: &[u8], count: u64, batch: usize) -> Result<FloorRun, IoError> {
    let ring = xdp::RING;
    let (umem, mut free) = xdp::umem(xdp::TX_FRAMES as u32)?;
    let sock_cfg = xdp::socket_config();
    let iface = ifname
        .parse()
        .map_err(|_| IoError::Setup(format!("interface name '{ifname}' is not valid")))?;
    // SAFETY: the UMEM is not shared, so the INHIBIT_PROG_LOAD contract for shared UMEMs does not
    // apply.
    let (mut tx, _rx, fq_cq) = unsafe { Socket::new(sock_cfg, &umem, &iface, 0) }
        .map_err(|e| IoError::setup(format!("cannot bind an AF_XDP socket to {ifname}"), &e))?;
    let (_fq, mut cq) =
        fq_cq.ok_or_else(|| IoError::Setup("AF_XDP socket came without rings".into()))?;
    xdp::raise_tx_budget(tx.fd().as_raw_fd());
    let zero_copy = xdp::zero_copy(tx.fd().as_raw_fd());
    for d in &mut free {
        // SAFETY: `d` is a frame of this UMEM that nothing else references yet.
        unsafe {
            let mut data = umem.data_mut(d);
            data.cursor().set_pos(usize::MAX);
            data.contents_mut()[..frame.len()].copy_from_slice(frame);
            data.cursor().set_pos(frame.len());
        }
    }
    let mut done = vec![FrameDesc::default(); ring as usize];
    let (mut produced, mut completed) = (0u64, 0u64);
    let start = Instant::now();
    while completed < count {
        // SAFETY: completed descriptors are ours again and came from this UMEM.
        let n = unsafe { cq.consume(&mut done) };
        for d in &mut done[..n] {
            // SAFETY: a completed frame is ours again; only its descriptor's length is set (a
            // completion carries the address alone), the bytes written at the start stay.
            unsafe { umem.data_mut(d).cursor().set_pos(frame.len()) };
        }
        free.extend_from_slice(&done[..n]);
        completed += n as u64;
        let want = (count - produced).min(batch as u64) as usize;
        let k = want.min(free.len()).min(tx.nb_free(want as u32) as usize);
        if k > 0 {
            let at = free.len() - k;
            // SAFETY: every descriptor handed over holds the frame written above and is ours.
            let p = unsafe { tx.produce(&free[at..]) };
            free.truncate(free.len() - p);
            produced += p as u64;
        }
        if tx.needs_wakeup() {
            tx.wakeup()
                .map_err(|e| IoError::os("AF_XDP transmit kick", e))?;
        } else if k == 0 {
            let _ = sys::poll(&[tx.fd().as_raw_fd()], true, Duration::from_millis(1));
        }
    }
    Ok(FloorRun {
        elapsed: start.elapsed(),
        zero_copy,
    })
}
