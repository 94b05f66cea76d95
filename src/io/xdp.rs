//! AF_XDP transport: one socket per RX queue of the interface, each with its own UMEM split into
//! transmit and receive frames, and our XDP program (bpf/steer.bpf.c) attached through a
//! bpf_link so the kernel detaches it when the process dies, however it dies.

use std::{
    num::NonZeroU32,
    os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd},
    time::{Duration, Instant},
};

use libbpf_rs::{MapCore, MapFlags, Object, ObjectBuilder};
use xsk_rs::{
    config::{BindFlags, FrameSize, LibxdpFlags, QueueSize, SocketConfig, UmemConfig},
    CompQueue, FillQueue, FrameDesc, RxQueue as XskRx, Socket, TxQueue as XskTx, Umem,
};

use super::{sys, IoError, RxQueue, TxQueue};

/// The compiled XDP program (built by build.rs from bpf/steer.bpf.c).
const STEER_OBJ: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/steer.bpf.o"));

pub(super) const FRAME_SIZE: u32 = 2048;
pub(super) const TX_FRAMES: usize = 4096;
const RX_FRAMES: usize = 4096;
pub(super) const RING: u32 = 4096;
/// Frames taken from the receive ring at once before they go back to the fill ring.
const RX_BATCH: usize = 256;
/// SOL_XDP option (Linux >= 6.17) raising how many frames one copy-mode kick sends (default 32).
const XDP_MAX_TX_SKB_BUDGET: libc::c_int = 9;
const SOL_XDP: libc::c_int = 283;
/// Busy polling (Linux >= 5.11): the receive thread runs the driver's NAPI poll itself from its
/// own core, instead of waiting for the softirq on whichever core the traffic arrived on.
const SO_BUSY_POLL: libc::c_int = 46;
const SO_PREFER_BUSY_POLL: libc::c_int = 69;
const SO_BUSY_POLL_BUDGET: libc::c_int = 70;
const BUSY_POLL_USECS: i32 = 20;
const BUSY_POLL_BUDGET: i32 = 64;

/// Steering flags, as in bpf/steer.h.
const STEER_ECHO_REPLY: u32 = 1 << 0;
const STEER_ANY_QUOTED: u32 = 1 << 1;
const STEER_ALL_PROTOS: u32 = 1 << 2;
const STEER_ICMP_QUERY: u32 = 1 << 3;
const STEER_HAS_V4: u32 = 1 << 8;
const STEER_HAS_V6: u32 = 1 << 9;
const STEER_BARE_IP: u32 = 1 << 10;

/// Mirror of `struct steer_config` in bpf/steer.h.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SteerConfig {
    /// Our IPv4 source address, if the scan sends IPv4.
    pub(crate) src_v4: Option<std::net::Ipv4Addr>,
    /// Our IPv6 source address, if the scan sends IPv6.
    pub(crate) src_v6: Option<std::net::Ipv6Addr>,
    pub(crate) port_lo: u16,
    pub(crate) port_hi: u16,
    /// What to steer besides TCP/UDP to our ports and ICMP errors quoting them.
    pub(crate) replies: crate::probe::Replies,
    /// The source pool's size: the addresses from the source on (1: the source alone).
    pub(crate) sources: u32,
    /// The link carries bare IP packets (no Ethernet header): the program gives steered packets
    /// one, and the transmit halves send frames without theirs.
    pub(crate) bare_ip: bool,
}

impl SteerConfig {
    fn to_bytes(self) -> [u8; 64] {
        let mut b = [0u8; 64];
        let r = self.replies;
        let mut flags = [
            (r.echo_replies, STEER_ECHO_REPLY),
            (r.icmp_queries, STEER_ICMP_QUERY),
            (r.any_quoted, STEER_ANY_QUOTED),
            (r.all_protocols, STEER_ALL_PROTOS),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .fold(0, |f, (_, bit)| f | bit);
        if let Some(a) = self.src_v4 {
            b[0..4].copy_from_slice(&a.octets()); // network order, as the header wants
            flags |= STEER_HAS_V4;
        }
        b[4..6].copy_from_slice(&self.port_lo.to_ne_bytes());
        b[6..8].copy_from_slice(&self.port_hi.to_ne_bytes());
        if let Some(a) = self.src_v6 {
            b[12..28].copy_from_slice(&a.octets());
            flags |= STEER_HAS_V6;
        }
        if self.bare_ip {
            flags |= STEER_BARE_IP;
        }
        b[8..12].copy_from_slice(&flags.to_ne_bytes());
        b[28..60].copy_from_slice(&r.protocols);
        b[60..64].copy_from_slice(&self.sources.max(1).to_ne_bytes());
        b
    }
}

/// How the XDP program is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum XdpMode {
    /// In the driver where it has XDP support, else generic.
    Auto,
    /// In the driver (fails where unsupported).
    Native,
    /// In the generic receive path, after the skb is built: slower, but fed from the per-CPU
    /// backlog (`net.core.netdev_max_backlog`) rather than the driver's ring; on veth that
    /// ring holds 256 frames and overflows under reply bursts.
    Generic,
}

impl XdpMode {
    fn flags(self) -> u32 {
        match self {
            XdpMode::Auto => 0,
            XdpMode::Native => 1 << 2,  // XDP_FLAGS_DRV_MODE
            XdpMode::Generic => 1 << 1, // XDP_FLAGS_SKB_MODE
        }
    }
}

/// The loaded and attached program; dropping it closes the bpf_link, which detaches it. The
/// object holds the maps the sockets are registered in.
pub(crate) struct SteerProgram {
    _link: OwnedFd,
    _obj: Object,
}

/// An opened AF_XDP transport: one transmit half per queue and the receive half of all of them.
pub(crate) struct XdpTransport {
    pub(crate) program: SteerProgram,
    pub(crate) txs: Vec<XdpTx>,
    pub(crate) rx: XdpRx,
}

/// Number of RX queues of an interface, from sysfs (1 when unknown).
pub(crate) fn rx_queue_count(ifname: &str) -> u32 {
    std::fs::read_dir(format!("/sys/class/net/{ifname}/queues"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                .count() as u32
        })
        .ok()
        .filter(|&n| n > 0)
        .unwrap_or(1)
}

/// Opens sockets on every RX queue of `ifname`, loads and attaches the program.
pub(crate) fn open(
    ifname: &str,
    ifindex: u32,
    steer: SteerConfig,
    mode: XdpMode,
) -> Result<XdpTransport, IoError> {
    let queues = rx_queue_count(ifname);
    let obj = load_program(steer)?;
    let iface = ifname
        .parse()
        .map_err(|_| IoError::Setup(format!("interface name '{ifname}' is not valid")))?;
    let mut txs = Vec::new();
    let mut socks = Vec::new();
    for q in 0..queues {
        let (mut tx, rx) = queue_sockets(&obj, &iface, ifname, q)?;
        tx.strip_link = steer.bare_ip;
        txs.push(tx);
        socks.push(rx);
    }
    let link = attach_program(&obj, ifname, ifindex, mode)?;
    Ok(XdpTransport {
        program: SteerProgram {
            _link: link,
            _obj: obj,
        },
        txs,
        rx: XdpRx {
            socks,
            nic: NicLoss::new(ifname),
        },
    })
}

/// The steering program, loaded and configured with `steer`.
fn load_program(steer: SteerConfig) -> Result<Object, IoError> {
    // libbpf reports problems on stderr by itself; ours come back as errors, one line each.
    libbpf_rs::set_print(None);
    let obj = ObjectBuilder::default()
        .open_memory(STEER_OBJ)
        .and_then(|o| o.load())
        .map_err(|e| {
            let msg = format!("cannot load the XDP program: {e}");
            if e.kind() == libbpf_rs::ErrorKind::PermissionDenied {
                IoError::Denied(msg)
            } else {
                IoError::Setup(msg)
            }
        })?;
    {
        let cfg = obj
            .maps()
            .find(|m| m.name() == "config")
            .ok_or_else(|| IoError::Setup("XDP program has no config map".into()))?;
        cfg.update(&0u32.to_ne_bytes(), &steer.to_bytes(), MapFlags::ANY)
            .map_err(|e| IoError::Setup(format!("cannot configure the XDP program: {e}")))?;
    }
    Ok(obj)
}

/// The AF_XDP socket of queue `q`, with a UMEM of its own, registered in the program's map:
/// its transmit side and its receive side.
fn queue_sockets(
    obj: &Object,
    iface: &xsk_rs::config::Interface,
    ifname: &str,
    q: u32,
) -> Result<(XdpTx, RxSock), IoError> {
    let (umem, mut descs) = umem((TX_FRAMES + RX_FRAMES) as u32)?;
    let sock_cfg = socket_config();
    // SAFETY: the UMEM is not shared, so the INHIBIT_PROG_LOAD contract for shared UMEMs does not apply.
    let (tx_q, rx_q, fq_cq) = unsafe { Socket::new(sock_cfg, &umem, iface, q) }.map_err(|e| {
        IoError::setup(
            format!("cannot bind an AF_XDP socket to {ifname} queue {q}"),
            &e,
        )
    })?;
    let (mut fq, cq) = fq_cq
        .ok_or_else(|| IoError::Setup("AF_XDP socket came without fill/completion rings".into()))?;
    let fd = tx_q.fd().as_raw_fd();
    raise_tx_budget(fd);
    let busy_poll = sys::setsockopt(fd, libc::SOL_SOCKET, SO_PREFER_BUSY_POLL, &1i32).is_ok()
        && sys::setsockopt(fd, libc::SOL_SOCKET, SO_BUSY_POLL, &BUSY_POLL_USECS).is_ok()
        && sys::setsockopt(fd, libc::SOL_SOCKET, SO_BUSY_POLL_BUDGET, &BUSY_POLL_BUDGET).is_ok();
    let rx_descs = descs.split_off(TX_FRAMES);
    // SAFETY: these frames belong to this UMEM and are handed to the kernel only here.
    let filled = unsafe { fq.produce(&rx_descs) };
    if filled != rx_descs.len() {
        return Err(IoError::Setup("could not fill the AF_XDP fill ring".into()));
    }
    let xsks = obj
        .maps()
        .find(|m| m.name() == "xsks")
        .ok_or_else(|| IoError::Setup("XDP program has no xsks map".into()))?;
    xsks.update(&q.to_ne_bytes(), &(fd as u32).to_ne_bytes(), MapFlags::ANY)
        .map_err(|e| IoError::Setup(format!("cannot register socket for queue {q}: {e}")))?;
    let tx = XdpTx {
        umem: umem.clone(),
        tx: tx_q,
        cq,
        free: descs,
        batch: Vec::with_capacity(RING as usize),
        done: vec![FrameDesc::default(); RING as usize],
        fd,
        strip_link: false,
    };
    let rx = RxSock {
        umem,
        rx: rx_q,
        fq,
        scratch: vec![FrameDesc::default(); RX_BATCH],
        fd,
        busy_poll,
    };
    Ok((tx, rx))
}

/// Attaches the program to `ifindex` (a bpf_link: detached when its fd closes).
fn attach_program(
    obj: &Object,
    ifname: &str,
    ifindex: u32,
    mode: XdpMode,
) -> Result<OwnedFd, IoError> {
    let prog = obj
        .progs()
        .find(|p| p.name() == "xdpscan_steer")
        .ok_or_else(|| IoError::Setup("XDP program not found in object".into()))?;
    attach(prog.as_fd().as_raw_fd(), ifindex, mode).map_err(|e| match e.raw_os_error() {
        Some(libc::EBUSY) | Some(libc::EEXIST) => IoError::Setup(format!(
            "{ifname} already has an XDP program attached; detach it first (ip link set dev {ifname} xdp off)"
        )),
        Some(libc::EOPNOTSUPP) | Some(libc::EINVAL) if mode == XdpMode::Native => {
            IoError::Setup(format!("{ifname} has no native XDP support; use --xdp-mode generic"))
        }
        _ => IoError::os(format!("cannot attach the XDP program to {ifname}"), e),
    })
}

/// A UMEM of `frames` frames with the scan's ring sizes, and its frames.
pub(super) fn umem(frames: u32) -> Result<(Umem, Vec<FrameDesc>), IoError> {
    let cfg = UmemConfig::builder()
        .frame_size(FrameSize::new(FRAME_SIZE).expect("power of two"))
        .fill_queue_size(QueueSize::new(RING).expect("power of two"))
        .comp_queue_size(QueueSize::new(RING).expect("power of two"))
        .build()
        .map_err(|e| IoError::Setup(format!("UMEM config: {e}")))?;
    Umem::new(cfg, NonZeroU32::new(frames).expect("non-zero"), false)
        .map_err(|e| IoError::setup("cannot create UMEM", &e))
}

/// Our sockets: rings of `RING`, need-wakeup, and no program loaded by libxdp (ours is
/// attached by `open`).
pub(super) fn socket_config() -> SocketConfig {
    SocketConfig::builder()
        .rx_queue_size(QueueSize::new(RING).expect("power of two"))
        .tx_queue_size(QueueSize::new(RING).expect("power of two"))
        .libxdp_flags(LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD)
        .bind_flags(BindFlags::XDP_USE_NEED_WAKEUP)
        .build()
}

/// getsockopt(SOL_XDP, XDP_OPTIONS): how the kernel bound a socket.
const XDP_OPTIONS: libc::c_int = 8;
const XDP_OPTIONS_ZEROCOPY: u32 = 1;

/// Whether the kernel bound the AF_XDP socket `fd` in zero-copy mode (the driver's own rings)
/// rather than copy mode; `None` when it does not say.
pub(crate) fn zero_copy(fd: RawFd) -> Option<bool> {
    sys::getsockopt::<u32>(fd, SOL_XDP, XDP_OPTIONS)
        .ok()
        .map(|f| f & XDP_OPTIONS_ZEROCOPY != 0)
}

/// Raises how many frames one copy-mode kick sends, where the kernel has the option; older
/// kernels refuse it and keep their 32.
pub(super) fn raise_tx_budget(fd: RawFd) {
    for budget in [RING, 1024, 256] {
        if sys::setsockopt(fd, SOL_XDP, XDP_MAX_TX_SKB_BUDGET, &budget).is_ok() {
            break;
        }
    }
}

/// Attaches through a bpf_link (BPF_LINK_CREATE), which the kernel removes with its last fd,
/// so the program never outlives this process.
pub(super) fn attach(prog_fd: RawFd, ifindex: u32, mode: XdpMode) -> std::io::Result<OwnedFd> {
    // SAFETY: an all-zero opts struct is valid; `sz` tells libbpf which fields we know.
    let mut opts: libbpf_sys::bpf_link_create_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<libbpf_sys::bpf_link_create_opts>() as _;
    opts.flags = mode.flags();
    // SAFETY: `prog_fd` is a loaded XDP program and `opts` is initialised and outlives the call.
    let fd =
        unsafe { libbpf_sys::bpf_link_create(prog_fd, ifindex as i32, libbpf_sys::BPF_XDP, &opts) };
    if fd < 0 {
        return Err(std::io::Error::from_raw_os_error(-fd));
    }
    // SAFETY: a non-negative return is a new link fd that we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The transmit half of one socket.
pub(crate) struct XdpTx {
    umem: Umem,
    tx: XskTx,
    cq: CompQueue,
    free: Vec<FrameDesc>,
    batch: Vec<FrameDesc>,
    done: Vec<FrameDesc>,
    fd: RawFd,
    /// Send frames without their Ethernet header (a bare-IP link).
    strip_link: bool,
}

impl XdpTx {
    fn reclaim(&mut self) {
        // SAFETY: completed descriptors are ours again and were produced from this UMEM.
        let n = unsafe { self.cq.consume(&mut self.done) };
        self.free.extend_from_slice(&self.done[..n]);
    }

    fn kick(&mut self) -> Result<(), IoError> {
        if self.tx.needs_wakeup() {
            self.tx
                .wakeup()
                .map_err(|e| IoError::os("AF_XDP transmit kick", e))?;
        }
        Ok(())
    }
}

impl TxQueue for XdpTx {
    #[inline]
    fn send_batch<F: FnMut(&mut [u8]) -> usize>(
        &mut self,
        max: usize,
        mut fill: F,
    ) -> Result<usize, IoError> {
        self.reclaim();
        let room = self.tx.nb_free(max as u32) as usize;
        let n = max.min(room).min(self.free.len());
        self.batch.clear();
        for _ in 0..n {
            let mut desc = self.free.pop().expect("n <= free.len()");
            // SAFETY: `desc` came from this UMEM's free list, so neither the kernel nor any other
            // reference touches this frame until it is produced below.
            let len = unsafe {
                let mut data = self.umem.data_mut(&mut desc);
                data.cursor().set_pos(usize::MAX); // expose the whole frame
                let frame = data.contents_mut();
                let mut len = fill(frame);
                if self.strip_link && len > 0 {
                    len = super::strip_link_header(frame, len);
                }
                data.cursor().set_pos(len);
                len
            };
            if len == 0 {
                self.free.push(desc);
                break;
            }
            self.batch.push(desc);
        }
        if self.batch.is_empty() {
            self.kick()?;
            return Ok(0);
        }
        // SAFETY: every descriptor in `batch` is a filled frame of this UMEM that we own.
        let sent = unsafe { self.tx.produce(&self.batch) };
        debug_assert_eq!(sent, self.batch.len(), "ring room was checked");
        self.kick()?;
        Ok(sent)
    }

    fn drain(&mut self, timeout: Duration) -> Result<(), IoError> {
        let deadline = Instant::now() + timeout;
        while self.free.len() < TX_FRAMES && Instant::now() < deadline {
            self.kick()?;
            self.reclaim();
            if self.free.len() < TX_FRAMES {
                let _ = sys::poll(&[self.fd], true, Duration::from_millis(1));
            }
        }
        Ok(())
    }
}

struct RxSock {
    umem: Umem,
    rx: XskRx,
    fq: FillQueue,
    scratch: Vec<FrameDesc>,
    fd: RawFd,
    busy_poll: bool,
}

/// The receive halves of every socket.
pub(crate) struct XdpRx {
    socks: Vec<RxSock>,
    nic: NicLoss,
}

/// Frames the interface itself lost, counted from when the scan began: replies its rings
/// overflowed on (a physical NIC counts them in `rx_missed_errors`, `rx_fifo_errors`,
/// `rx_over_errors`) and probes it dropped on the way out (`tx_dropped`: a veth whose peer's
/// ring was full, a NIC's full queue). Either is a result lost, so the governor slows for both
/// (docs/design.md, "Rate governor"). The counter files stay open: the governor reads them
/// every tick, one pread each.
struct NicLoss {
    files: Vec<std::fs::File>,
    at_start: u64,
}

impl NicLoss {
    const COUNTERS: [&str; 4] = [
        "rx_missed_errors",
        "rx_fifo_errors",
        "rx_over_errors",
        "tx_dropped",
    ];

    fn new(ifname: &str) -> Self {
        let dir = std::path::Path::new("/sys/class/net")
            .join(ifname)
            .join("statistics");
        let mut n = Self {
            files: Self::COUNTERS
                .iter()
                .filter_map(|c| std::fs::File::open(dir.join(c)).ok())
                .collect(),
            at_start: 0,
        };
        n.at_start = n.total();
        n
    }

    fn total(&self) -> u64 {
        use std::os::unix::fs::FileExt;
        let mut sum = 0;
        let mut buf = [0u8; 24];
        for f in &self.files {
            let Ok(n) = f.read_at(&mut buf, 0) else {
                continue;
            };
            let text = std::str::from_utf8(&buf[..n]).unwrap_or_default();
            sum += text.trim().parse::<u64>().unwrap_or(0);
        }
        sum
    }

    fn since_start(&self) -> u64 {
        self.total().saturating_sub(self.at_start)
    }
}

impl RxQueue for XdpRx {
    #[inline]
    fn recv_batch<F: FnMut(&[&[u8]])>(&mut self, mut f: F) -> Result<usize, IoError> {
        let mut total = 0;
        for s in &mut self.socks {
            // SAFETY: the descriptors consumed are frames of this socket's UMEM the kernel has
            // finished writing; we read them and give them back to the fill ring below.
            let mut n = unsafe { s.rx.consume(&mut s.scratch) };
            if n == 0 && s.busy_poll {
                // An empty ring: run the driver's poll from here (recvmsg busy-polls).
                let _ = sys::recv_nonblocking(s.fd, &mut []);
                // SAFETY: as above.
                n = unsafe { s.rx.consume(&mut s.scratch) };
            }
            if n == 0 {
                continue;
            }
            {
                let data: Vec<_> = s.scratch[..n]
                    .iter()
                    .map(|d| {
                        // SAFETY: the frame was just received and is not in the fill ring
                        // until produced below, after `f` is done with it.
                        unsafe { s.umem.data(d) }
                    })
                    .collect();
                let frames: Vec<&[u8]> = data.iter().map(|d| d.contents()).collect();
                f(&frames);
            }
            let mut given = 0;
            while given < n {
                // SAFETY: returning the frames we just consumed to the kernel.
                given += unsafe { s.fq.produce(&s.scratch[given..n]) };
            }
            if s.fq.needs_wakeup() {
                let fd = s.rx.fd_mut();
                let _ = s.fq.wakeup(fd, 0);
            }
            total += n;
        }
        Ok(total)
    }

    fn wait(&mut self, timeout: Duration) -> Result<(), IoError> {
        // Not poll(): in copy mode, polling an AF_XDP socket also runs its pending transmit
        // under the socket's mutex, which the transmit thread then spins on. A short sleep
        // costs nothing: the rings hold far more than arrives meanwhile.
        std::thread::sleep(timeout.min(Duration::from_micros(500)));
        Ok(())
    }

    fn capacity(&self) -> (usize, usize) {
        (RX_BATCH, RING as usize)
    }

    fn drops(&mut self) -> u64 {
        let mut d = self.nic.since_start();
        for s in &self.socks {
            if let Ok(st) = s.rx.fd().xdp_statistics() {
                d += st.rx_dropped() + st.rx_ring_full();
            }
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Replies;

    #[test]
    fn config_bytes_as_steer_h_lays_them_out() {
        let c = SteerConfig {
            src_v4: Some([198, 18, 0, 1].into()),
            src_v6: Some("2001:db8::1".parse().unwrap()),
            port_lo: 61000,
            port_hi: 65535,
            replies: Replies {
                echo_replies: true,
                all_protocols: true,
                ..Replies::default()
            },
            sources: 8,
            bare_ip: false,
        };
        let b = c.to_bytes();
        assert_eq!(u32::from_ne_bytes(b[60..64].try_into().unwrap()), 8);
        assert_eq!(&b[0..4], &[198, 18, 0, 1]);
        assert_eq!(u16::from_ne_bytes([b[4], b[5]]), 61000);
        assert_eq!(u16::from_ne_bytes([b[6], b[7]]), 65535);
        let flags = u32::from_ne_bytes(b[8..12].try_into().unwrap());
        assert_eq!(
            flags,
            STEER_ECHO_REPLY | STEER_ALL_PROTOS | STEER_HAS_V4 | STEER_HAS_V6
        );
        assert_eq!(b[12..14], [0x20, 0x01]);
        // No IPv6 source: no IPv6 flag, and the address stays zero.
        let b = SteerConfig { src_v6: None, ..c }.to_bytes();
        assert_eq!(
            u32::from_ne_bytes(b[8..12].try_into().unwrap()) & STEER_HAS_V6,
            0
        );
        assert_eq!(b[12..28], [0; 16]);
        // -sO's protocols: bit p % 8 of byte p / 8, after the IPv6 address.
        let b = SteerConfig {
            replies: c.replies.with_protocol(47).with_protocol(255),
            ..c
        }
        .to_bytes();
        assert_eq!((b[28 + 5], b[28 + 31]), (1 << 7, 1 << 7));
    }
}

/// The steering program itself, run by the kernel on frames we build (`BPF_PROG_TEST_RUN`): with
/// no socket in `xsks`, a frame it would steer to us comes back as the redirect's fallback
/// (`XDP_DROP`), one it leaves to the kernel as `XDP_PASS`. Needs root (CAP_BPF); CI runs it.
#[cfg(test)]
mod program_tests {
    use std::net::Ipv6Addr;

    use libbpf_rs::{MapCore, MapFlags, ObjectBuilder};

    use super::*;
    use crate::probe::Replies;

    const STEERED: u32 = 1; // XDP_DROP: the redirect's fallback
    const PASSED: u32 = 2; // XDP_PASS

    const US6: &str = "2001:db8::1";

    fn root() -> bool {
        // SAFETY: geteuid takes no arguments and cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        if !root && std::env::var("XDPSCAN_REQUIRE_LAB").as_deref() == Ok("1") {
            panic!("BPF_PROG_TEST_RUN needs root and XDPSCAN_REQUIRE_LAB=1 forbids skipping");
        }
        root
    }

    /// The kernel's verdict on each frame.
    fn verdicts(frames: &[Vec<u8>]) -> Vec<u32> {
        verdicts_with(Replies::default(), frames)
    }

    /// The same, for a scan whose replies are `replies` (its steering flags).
    fn verdicts_with(replies: Replies, frames: &[Vec<u8>]) -> Vec<u32> {
        outputs(replies, false, frames)
            .into_iter()
            .map(|(v, _)| v)
            .collect()
    }

    /// The kernel's verdict on each frame and the frame it leaves, on a link that carries
    /// Ethernet or (`bare_ip`) bare IP packets.
    fn outputs(replies: Replies, bare_ip: bool, frames: &[Vec<u8>]) -> Vec<(u32, Vec<u8>)> {
        let obj = ObjectBuilder::default()
            .open_memory(STEER_OBJ)
            .and_then(|o| o.load())
            .expect("the steering program loads");
        let cfg = SteerConfig {
            src_v4: Some([198, 18, 0, 1].into()),
            src_v6: Some(US6.parse().unwrap()),
            port_lo: 61000,
            port_hi: 65535,
            replies,
            sources: 1,
            bare_ip,
        };
        obj.maps()
            .find(|m| m.name() == "config")
            .unwrap()
            .update(&0u32.to_ne_bytes(), &cfg.to_bytes(), MapFlags::ANY)
            .unwrap();
        let prog = obj
            .progs_mut()
            .find(|p| p.name() == "xdpscan_steer")
            .expect("the program is in the object");
        frames
            .iter()
            .map(|f| {
                let mut out = vec![0u8; f.len() + 64];
                let input = libbpf_rs::ProgramInput {
                    data_in: Some(f),
                    data_out: Some(&mut out),
                    ..Default::default()
                };
                let verdict = prog.test_run(input).expect("test run").return_value;
                (verdict, out)
            })
            .collect()
    }

    /// On a bare-IP link (tun, tunnels) the packet starts with its IP header: a reply to us is
    /// steered with a made-up Ethernet header in front, anything else passes untouched.
    #[test]
    fn bare_ip_replies_are_steered_with_an_ethernet_header() {
        if !root() {
            return;
        }
        let to_us = ip4([198, 18, 0, 1], 6, 5, 0, &ports(61000));
        let to_other_port = ip4([198, 18, 0, 1], 6, 5, 0, &ports(80));
        let mut v6 = v6(US6, &[], 61001);
        let v6 = v6.split_off(14);
        let got = outputs(
            Replies::default(),
            true,
            &[to_us.clone(), to_other_port.clone(), v6.clone()],
        );
        assert_eq!(got[0].0, STEERED);
        assert_eq!(&got[0].1[..14], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0]);
        assert_eq!(&got[0].1[14..14 + to_us.len()], &to_us[..]);
        assert_eq!(got[1].0, PASSED);
        assert_eq!(&got[1].1[..to_other_port.len()], &to_other_port[..]);
        assert_eq!(got[2].0, STEERED);
        assert_eq!(&got[2].1[12..14], &[0x86, 0xdd]);
        assert_eq!(&got[2].1[14..14 + v6.len()], &v6[..]);
        // The same packets framed in Ethernet on a bare-IP link are not IP: passed.
        let framed = outputs(Replies::default(), true, &[eth(to_us)]);
        assert_eq!(framed[0].0, PASSED);
    }

    /// Ethernet + IPv6 to `dst` through the extension headers `chain` (type, length in bytes),
    /// then a TCP header to `dport`.
    fn v6(dst: &str, chain: &[(u8, usize)], dport: u16) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x86, 0xdd];
        let ext: usize = chain.iter().map(|c| c.1).sum();
        let next = |i: usize| chain.get(i).map_or(6, |c| c.0);
        f.extend([0x60, 0, 0, 0]);
        f.extend(((ext + 20) as u16).to_be_bytes());
        f.extend([next(0), 64]);
        f.extend("2001:db8:1::5".parse::<Ipv6Addr>().unwrap().octets());
        f.extend(dst.parse::<Ipv6Addr>().unwrap().octets());
        for (i, &(ty, len)) in chain.iter().enumerate() {
            let mut h = vec![0u8; len];
            h[0] = next(i + 1);
            match ty {
                44 => h[2..4].copy_from_slice(&0u16.to_be_bytes()), // first fragment, more: 0
                51 => h[1] = (len / 4 - 2) as u8,                   // AH counts 4-byte words
                _ => h[1] = (len / 8 - 1) as u8,
            }
            f.extend(h);
        }
        let mut tcp = [0u8; 20];
        tcp[0..2].copy_from_slice(&80u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&dport.to_be_bytes());
        tcp[12] = 0x50;
        tcp[13] = 0x12;
        f.extend(tcp);
        f
    }

    #[test]
    fn ipv6_extension_headers_are_walked_to_our_port() {
        if !root() {
            return;
        }
        let (hbh, rt, frag, dst, ah) = ((0, 8), (43, 24), (44, 8), (60, 16), (51, 16));
        let table: Vec<(&str, Vec<u8>, u32)> = vec![
            ("plain TCP to our port", v6(US6, &[], 61000), STEERED),
            ("plain TCP to another port", v6(US6, &[], 22), PASSED),
            (
                "TCP to another address",
                v6("2001:db8::9", &[], 61000),
                PASSED,
            ),
            ("hop-by-hop", v6(US6, &[hbh], 61000), STEERED),
            ("hop-by-hop, another port", v6(US6, &[hbh], 80), PASSED),
            (
                "routing + destination options",
                v6(US6, &[rt, dst], 65535),
                STEERED,
            ),
            (
                "hop-by-hop + fragment",
                v6(US6, &[hbh, frag], 61001),
                STEERED,
            ),
            ("authentication header", v6(US6, &[ah], 61002), STEERED),
            ("eight headers", v6(US6, &[dst; 8], 61000), STEERED),
            (
                "nine headers: past the walk's bound",
                v6(US6, &[dst; 9], 61000),
                PASSED,
            ),
            (
                "truncated inside an extension header",
                {
                    let mut f = v6(US6, &[rt], 61000);
                    f.truncate(14 + 40 + 12);
                    f
                },
                PASSED,
            ),
            (
                "truncated fixed header",
                v6(US6, &[], 61000)[..14 + 30].to_vec(),
                PASSED,
            ),
        ];
        let got = verdicts(&table.iter().map(|t| t.1.clone()).collect::<Vec<_>>());
        for ((name, _, want), got) in table.iter().zip(got) {
            assert_eq!(got, *want, "{name}");
        }
    }

    const US4: [u8; 4] = [198, 18, 0, 1];
    const ETH4: [u8; 14] = [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];

    /// An IPv4 header from 198.19.0.5 to `dst` (IHL `ihl`, fragment field `frag`) and `l4`.
    fn ip4(dst: [u8; 4], proto: u8, ihl: u8, frag: u16, l4: &[u8]) -> Vec<u8> {
        let hl = (ihl as usize * 4).max(20);
        let mut h = vec![0u8; hl];
        h[0] = 0x40 | ihl;
        h[2..4].copy_from_slice(&((hl + l4.len()) as u16).to_be_bytes());
        h[6..8].copy_from_slice(&frag.to_be_bytes());
        h[8] = 64;
        h[9] = proto;
        h[12..16].copy_from_slice(&[198, 19, 0, 5]);
        h[16..20].copy_from_slice(&dst);
        h.extend_from_slice(l4);
        h
    }

    /// TCP (or UDP: the same first four bytes) from port 80 to `dport`.
    fn ports(dport: u16) -> Vec<u8> {
        let mut t = vec![0u8; 20];
        t[0..2].copy_from_slice(&80u16.to_be_bytes());
        t[2..4].copy_from_slice(&dport.to_be_bytes());
        t[12] = 0x50;
        t[13] = 0x12;
        t
    }

    fn eth(ip: Vec<u8>) -> Vec<u8> {
        let mut f = ETH4.to_vec();
        f.extend(ip);
        f
    }

    /// An ICMP error of `ty` quoting `quoted`.
    fn icmp4(ty: u8, quoted: &[u8]) -> Vec<u8> {
        let mut m = vec![ty, 0, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(quoted);
        m
    }

    /// Issue 20, item 13: with -PE, -sO or ICMP traceroute (any quoted protocol), only ICMP
    /// errors quoting one of our probes are steered; a frag-needed for the host's own
    /// connection (a source port outside ours) stays the kernel's, so path MTU discovery works
    /// while a scan runs.
    #[test]
    fn icmp_errors_are_steered_only_when_they_quote_our_probes() {
        if !root() {
            return;
        }
        // A packet from us to 198.19.0.5 of protocol `proto` with `l4`.
        let from_us = |proto: u8, l4: &[u8]| {
            let mut p = ip4([198, 19, 0, 5], proto, 5, 0, l4);
            p[12..16].copy_from_slice(&US4);
            p[16..20].copy_from_slice(&[198, 19, 0, 5]);
            p
        };
        let frag_needed = |quoted: Vec<u8>| {
            let mut m = icmp4(3, &quoted);
            m[1] = 4;
            eth(ip4(US4, 1, 5, 0, &m))
        };
        let tcp_from = |sport: u16| {
            let mut t = ports(443);
            t[0..2].copy_from_slice(&sport.to_be_bytes());
            t
        };
        let echo = |id: u16| {
            let mut e = vec![8, 0, 0, 0, 0, 0, 0, 1];
            e[4..6].copy_from_slice(&id.to_be_bytes());
            e
        };
        let table: Vec<(&str, Vec<u8>, u32, u32)> = vec![
            // (name, frame, under -sO, under -sS)
            (
                "frag-needed for the host's own connection",
                frag_needed(from_us(6, &tcp_from(40000))),
                PASSED,
                PASSED,
            ),
            (
                "frag-needed for our TCP probe",
                frag_needed(from_us(6, &tcp_from(61000))),
                STEERED,
                STEERED,
            ),
            (
                "unreachable for our echo request",
                eth(ip4(US4, 1, 5, 0, &icmp4(3, &from_us(1, &echo(61005))))),
                STEERED,
                PASSED,
            ),
            (
                "unreachable for the host's own ping",
                eth(ip4(US4, 1, 5, 0, &icmp4(3, &from_us(1, &echo(1234))))),
                PASSED,
                PASSED,
            ),
            (
                "time exceeded for a GRE packet of ours (-sO)",
                eth(ip4(US4, 1, 5, 0, &icmp4(11, &from_us(47, &[0; 8])))),
                STEERED,
                PASSED,
            ),
            (
                "time exceeded for an ESP packet (not scanned)",
                eth(ip4(US4, 1, 5, 0, &icmp4(11, &from_us(50, &[0; 8])))),
                PASSED,
                PASSED,
            ),
            (
                "GRE to us (-sO scans 47)",
                eth(ip4(US4, 47, 5, 0, &[0; 8])),
                STEERED,
                PASSED,
            ),
            (
                "ESP to us (the host's)",
                eth(ip4(US4, 50, 5, 0, &[0; 8])),
                PASSED,
                PASSED,
            ),
        ];
        let frames: Vec<Vec<u8>> = table.iter().map(|t| t.1.clone()).collect();
        // -sO over protocols 1, 6, 17 and 47.
        let ip_proto = [1, 6, 17, 47].iter().fold(
            Replies {
                any_quoted: true,
                all_protocols: true,
                ..Replies::default()
            },
            |r, &p| r.with_protocol(p),
        );
        let (with, without) = (verdicts_with(ip_proto, &frames), verdicts(&frames));
        for (i, (name, _, want_any, want_plain)) in table.iter().enumerate() {
            assert_eq!(with[i], *want_any, "{name}, -sO");
            assert_eq!(without[i], *want_plain, "{name}");
        }
    }

    #[test]
    fn hostile_ipv4_frames_get_their_verdicts() {
        if !root() {
            return;
        }
        let tcp = |dport| eth(ip4(US4, 6, 5, 0x4000, &ports(dport)));
        // What we sent: from us to the target, from our port 61000.
        let probe = {
            let mut p = ip4([198, 19, 0, 5], 17, 5, 0, &[]);
            p[12..16].copy_from_slice(&US4);
            p[16..20].copy_from_slice(&[198, 19, 0, 5]);
            p.extend_from_slice(&[0xee, 0x48, 0, 53, 0, 8, 0, 0]);
            p
        };
        let mut table: Vec<(String, Vec<u8>, u32)> = vec![
            ("TCP to our port".into(), tcp(61000), STEERED),
            ("TCP to another port".into(), tcp(22), PASSED),
            (
                "UDP to our port".into(),
                eth(ip4(US4, 17, 5, 0, &ports(65535))),
                STEERED,
            ),
            (
                "SCTP to our port (-sY, -sZ)".into(),
                eth(ip4(US4, 132, 5, 0, &ports(61000))),
                STEERED,
            ),
            (
                "SCTP to another port".into(),
                eth(ip4(US4, 132, 5, 0, &ports(80))),
                PASSED,
            ),
            (
                "unreachable quoting our SCTP probe".into(),
                {
                    let mut q = ip4([198, 19, 0, 5], 132, 5, 0, &ports(80));
                    q[12..16].copy_from_slice(&US4);
                    q[16..20].copy_from_slice(&[198, 19, 0, 5]);
                    q[20..22].copy_from_slice(&61000u16.to_be_bytes());
                    eth(ip4(US4, 1, 5, 0, &icmp4(3, &q)))
                },
                STEERED,
            ),
            (
                "to another address".into(),
                eth(ip4([198, 18, 0, 9], 6, 5, 0, &ports(61000))),
                PASSED,
            ),
            (
                "IHL 15 (40 bytes of options)".into(),
                eth(ip4(US4, 6, 15, 0, &ports(61000))),
                STEERED,
            ),
            (
                "IHL 15, truncated before the ports".into(),
                eth(ip4(US4, 6, 15, 0, &[])),
                PASSED,
            ),
            (
                "first fragment (more fragments)".into(),
                eth(ip4(US4, 6, 5, 0x2000, &ports(61000))),
                STEERED,
            ),
            (
                "later fragment whose data looks like our port".into(),
                eth(ip4(US4, 6, 5, 0x0003, &ports(61000))),
                PASSED,
            ),
            (
                "VLAN-tagged".into(),
                {
                    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x81, 0, 0, 5, 0x08, 0];
                    f.extend(ip4(US4, 6, 5, 0, &ports(61000)));
                    f
                },
                PASSED,
            ),
            ("an Ethernet header alone".into(), ETH4.to_vec(), PASSED),
            (
                "truncated IPv4 header".into(),
                tcp(61000)[..14 + 12].to_vec(),
                PASSED,
            ),
            (
                "truncated TCP header".into(),
                tcp(61000)[..14 + 20 + 3].to_vec(),
                PASSED,
            ),
            (
                "version 6 in an IPv4 ethertype".into(),
                {
                    let mut f = tcp(61000);
                    f[14] = 0x65;
                    f
                },
                PASSED,
            ),
            (
                "ICMP port unreachable quoting our probe".into(),
                eth(ip4(US4, 1, 5, 0, &icmp4(3, &probe))),
                STEERED,
            ),
            (
                "ICMP quoting a packet from someone else".into(),
                eth(ip4(
                    US4,
                    1,
                    5,
                    0,
                    &icmp4(3, &ip4([198, 19, 0, 5], 17, 5, 0, &ports(61000))),
                )),
                PASSED,
            ),
            (
                "ICMP quoting garbage".into(),
                eth(ip4(US4, 1, 5, 0, &icmp4(3, &[0x4f, 1, 2, 3, 4, 5, 6]))),
                PASSED,
            ),
            (
                "ICMP quoting our probe with IHL 3".into(),
                {
                    let mut q = probe.clone();
                    q[0] = 0x43;
                    eth(ip4(US4, 1, 5, 0, &icmp4(3, &q)))
                },
                PASSED,
            ),
            (
                "ICMP quoting our probe, cut before its ports".into(),
                eth(ip4(US4, 1, 5, 0, &icmp4(11, &probe[..21]))),
                PASSED,
            ),
            (
                "ICMP echo reply (not asked for)".into(),
                eth(ip4(US4, 1, 5, 0, &[0, 0, 0, 0, 0xee, 0x48, 0, 1])),
                PASSED,
            ),
        ];
        for ihl in 0..5u8 {
            table.push((
                format!("IHL {ihl}"),
                eth(ip4(US4, 6, ihl, 0, &ports(61000))),
                PASSED,
            ));
        }
        let got = verdicts(&table.iter().map(|t| t.1.clone()).collect::<Vec<_>>());
        for ((name, _, want), got) in table.iter().zip(got) {
            assert_eq!(got, *want, "{name}");
        }
    }
}
