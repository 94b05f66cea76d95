//! AF_PACKET transport, used where AF_XDP cannot bind. Sends with `sendmmsg` straight to the
//! driver (qdisc bypass); receives IPv4 frames addressed to us through a socket filter.
//!
//! Unlike AF_XDP, the local kernel also sees the replies here and answers SYN-ACKs with RSTs,
//! as it does for nmap and masscan; that does not change what a SYN scan reports.

use std::{
    os::fd::{AsRawFd, OwnedFd},
    time::Duration,
};

use super::{sys, IoError, RxQueue, TxQueue};

const BATCH: usize = 64;
const FRAME: usize = 2048;
const ETH_P_IP: u16 = 0x0800;

pub struct PacketTx {
    fd: OwnedFd,
    bufs: Vec<[u8; FRAME]>,
    lens: Vec<usize>,
    batch: sys::MmsgBatch,
}

/// A transmit socket bound to `ifindex`.
pub fn open_tx(ifindex: u32) -> Result<PacketTx, IoError> {
    let fd = sys::socket(libc::AF_PACKET, libc::SOCK_RAW, 0)
        .map_err(|e| IoError::os("AF_PACKET socket", e))?;
    sys::bind_packet(fd.as_raw_fd(), ifindex, 0)
        .map_err(|e| IoError::os("bind AF_PACKET socket", e))?;
    // Skipping the qdisc roughly doubles the rate; kernels without it still work.
    let _ = sys::setsockopt(
        fd.as_raw_fd(),
        libc::SOL_PACKET,
        libc::PACKET_QDISC_BYPASS,
        &1i32,
    );
    let _ = sys::setsockopt(
        fd.as_raw_fd(),
        libc::SOL_SOCKET,
        libc::SO_SNDBUF,
        &(4i32 << 20),
    );
    Ok(PacketTx {
        fd,
        bufs: vec![[0u8; FRAME]; BATCH],
        lens: vec![0; BATCH],
        batch: sys::MmsgBatch::with_capacity(BATCH),
    })
}

impl TxQueue for PacketTx {
    fn send_batch<F: FnMut(&mut [u8]) -> usize>(
        &mut self,
        max: usize,
        mut fill: F,
    ) -> Result<usize, IoError> {
        let mut n = 0;
        while n < max.min(BATCH) {
            let len = fill(&mut self.bufs[n]);
            if len == 0 {
                break;
            }
            self.lens[n] = len;
            n += 1;
        }
        let mut sent = 0;
        while sent < n {
            let frames = (sent..n).map(|i| &self.bufs[i][..self.lens[i]]);
            match self.batch.send(self.fd.as_raw_fd(), frames) {
                Ok(k) => sent += k,
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ENOBUFS) | Some(libc::EAGAIN) | Some(libc::EINTR)
                    ) =>
                {
                    // The device queue is full: wait for it rather than lose probes.
                    let _ = sys::poll(&[self.fd.as_raw_fd()], true, Duration::from_millis(1));
                }
                Err(e) => return Err(IoError::os("AF_PACKET send", e)),
            }
        }
        Ok(n)
    }

    fn drain(&mut self, _timeout: Duration) -> Result<(), IoError> {
        Ok(()) // sendmmsg returns once the frames are queued to the device
    }
}

pub struct PacketRx {
    fd: OwnedFd,
    buf: Vec<u8>,
    drops: u64,
}

/// A receive socket for IPv4 frames to `src_ip` (host order) arriving on `ifindex`.
pub fn open_rx(ifindex: u32, src_ip: u32) -> Result<PacketRx, IoError> {
    let fd = sys::socket(libc::AF_PACKET, libc::SOCK_RAW, ETH_P_IP.to_be() as i32)
        .map_err(|e| IoError::os("AF_PACKET socket", e))?;
    let raw = fd.as_raw_fd();
    // ldh [12]; jne #0x800, drop; ld [30]; jne #src, drop; ret #65535; drop: ret #0
    let prog = [
        bpf_stmt(0x28, 12),
        bpf_jump(0x15, ETH_P_IP as u32, 0, 3),
        bpf_stmt(0x20, 30),
        bpf_jump(0x15, src_ip, 0, 1),
        bpf_stmt(0x06, 0xffff),
        bpf_stmt(0x06, 0),
    ];
    sys::attach_filter(raw, &prog).map_err(|e| IoError::os("attach socket filter", e))?;
    let _ = sys::setsockopt(raw, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, &1i32);
    if sys::setsockopt(raw, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &(64i32 << 20)).is_err() {
        let _ = sys::setsockopt(raw, libc::SOL_SOCKET, libc::SO_RCVBUF, &(64i32 << 20));
    }
    sys::bind_packet(raw, ifindex, ETH_P_IP)
        .map_err(|e| IoError::os("bind AF_PACKET socket", e))?;
    Ok(PacketRx {
        fd,
        buf: vec![0; 65536],
        drops: 0,
    })
}

fn bpf_stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn bpf_jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

impl RxQueue for PacketRx {
    fn recv_batch<F: FnMut(&[u8])>(&mut self, mut f: F) -> Result<usize, IoError> {
        let mut n = 0;
        while n < 256 {
            match sys::recv_nonblocking(self.fd.as_raw_fd(), &mut self.buf) {
                Ok(Some(len)) => {
                    f(&self.buf[..len]);
                    n += 1;
                }
                Ok(None) => break,
                Err(e) => return Err(IoError::os("AF_PACKET receive", e)),
            }
        }
        Ok(n)
    }

    fn wait(&mut self, timeout: Duration) -> Result<(), IoError> {
        sys::poll(&[self.fd.as_raw_fd()], false, timeout)
            .map(drop)
            .map_err(|e| IoError::os("poll", e))
    }

    fn drops(&mut self) -> u64 {
        // PACKET_STATISTICS resets on every read, so accumulate.
        if let Ok(st) = sys::getsockopt::<TpacketStats>(
            self.fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
        ) {
            self.drops += st.drops as u64;
        }
        self.drops
    }
}

#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
struct TpacketStats {
    packets: u32,
    drops: u32,
}
