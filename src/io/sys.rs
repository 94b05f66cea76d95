//! Thin safe wrappers over the few raw syscalls the transports and `netinfo` need.

use std::{
    ffi::CString,
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
    time::Duration,
};

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn cvt_size(r: isize) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// Opens a socket.
pub(crate) fn socket(
    domain: libc::c_int,
    ty: libc::c_int,
    proto: libc::c_int,
) -> io::Result<OwnedFd> {
    // SAFETY: socket(2) takes no pointers; a non-negative result is a fresh fd we now own.
    let fd = cvt(unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, proto) })?;
    // SAFETY: `fd` was just returned by socket(2) and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// setsockopt with a plain-old-data value.
pub(crate) fn setsockopt<T: Copy>(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    val: &T,
) -> io::Result<()> {
    // SAFETY: `val` points to `size_of::<T>()` readable bytes for the duration of the call.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (val as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// getsockopt into a plain-old-data value.
pub(crate) fn getsockopt<T: Copy + Default>(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
) -> io::Result<T> {
    let mut v = T::default();
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `v` is a valid, writable `T` and `len` tells the kernel its size.
    cvt(unsafe { libc::getsockopt(fd, level, name, (&mut v as *mut T).cast(), &mut len) })?;
    Ok(v)
}

/// Binds an AF_PACKET socket to an interface and protocol (host order `proto`).
pub(crate) fn bind_packet(fd: RawFd, ifindex: u32, proto: u16) -> io::Result<()> {
    // SAFETY: an all-zero sockaddr_ll is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto.to_be();
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: `sll` is a fully initialised sockaddr_ll and its size is passed.
    cvt(unsafe {
        libc::bind(
            fd,
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    })
    .map(drop)
}

/// Sends one datagram on a connected or bound socket.
pub(crate) fn send(fd: RawFd, buf: &[u8], flags: libc::c_int) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes.
    cvt_size(unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), flags) })
}

/// Message headers for `sendmmsg`, allocated once and reused for every batch.
pub(crate) struct MmsgBatch {
    iov: Vec<libc::iovec>,
    msgs: Vec<libc::mmsghdr>,
    /// Per-message link addresses, for bare IP packets (`send_ip`).
    names: Vec<libc::sockaddr_ll>,
}

// SAFETY: the raw pointers inside are rewritten before every send and not used after it returns;
// the batch owns no memory they point to.
unsafe impl Send for MmsgBatch {}

impl MmsgBatch {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self {
            iov: Vec::with_capacity(n),
            msgs: Vec::with_capacity(n),
            names: Vec::with_capacity(n),
        }
    }

    /// Sends `frames` (at most the capacity) with one syscall; returns how many went.
    pub(crate) fn send<'a>(
        &mut self,
        fd: RawFd,
        frames: impl Iterator<Item = &'a [u8]>,
    ) -> io::Result<usize> {
        self.send_on(fd, None, frames)
    }

    /// Sends bare IP packets out of `ifindex`, each with the protocol its version says: a link
    /// with no link header (tun, WireGuard, ipip) reads the packet's protocol from the socket
    /// buffer, which an AF_PACKET send sets from the address.
    pub(crate) fn send_ip<'a>(
        &mut self,
        fd: RawFd,
        ifindex: u32,
        packets: impl Iterator<Item = &'a [u8]>,
    ) -> io::Result<usize> {
        self.send_on(fd, Some(ifindex), packets)
    }

    fn send_on<'a>(
        &mut self,
        fd: RawFd,
        ifindex: Option<u32>,
        frames: impl Iterator<Item = &'a [u8]>,
    ) -> io::Result<usize> {
        self.iov.clear();
        self.names.clear();
        for b in frames.take(self.iov.capacity()) {
            self.iov.push(libc::iovec {
                iov_base: b.as_ptr() as *mut _,
                iov_len: b.len(),
            });
            if let Some(ifindex) = ifindex {
                // SAFETY: an all-zero sockaddr_ll is a valid value.
                let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
                sll.sll_family = libc::AF_PACKET as u16;
                let v6 = b.first().is_some_and(|v| v >> 4 == 6);
                sll.sll_protocol = if v6 { 0x86ddu16 } else { 0x0800 }.to_be();
                sll.sll_ifindex = ifindex as i32;
                self.names.push(sll);
            }
        }
        self.msgs.clear();
        for (i, v) in self.iov.iter_mut().enumerate() {
            // SAFETY: an all-zero mmsghdr is valid (no name, no control data).
            let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
            m.msg_hdr.msg_iov = v;
            m.msg_hdr.msg_iovlen = 1;
            if let Some(name) = self.names.get_mut(i) {
                m.msg_hdr.msg_name = (name as *mut libc::sockaddr_ll).cast();
                m.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as u32;
            }
            self.msgs.push(m);
        }
        // SAFETY: every mmsghdr points at one iovec of `self.iov`, which points into a frame
        // borrowed for the duration of this call, and at most at one address of `self.names`.
        let r = unsafe { libc::sendmmsg(fd, self.msgs.as_mut_ptr(), self.msgs.len() as u32, 0) };
        cvt(r).map(|n| n as usize)
    }
}

/// Receives one datagram without blocking; `Ok(None)` when nothing waits.
pub(crate) fn recv_nonblocking(fd: RawFd, buf: &mut [u8]) -> io::Result<Option<usize>> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
    let r = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(None),
            _ => Err(e),
        };
    }
    Ok(Some(r as usize))
}

/// Waits until any of `fds` is readable (or writable when `write`), at most `timeout`.
pub(crate) fn poll(fds: &[RawFd], write: bool, timeout: Duration) -> io::Result<bool> {
    let ev = if write { libc::POLLOUT } else { libc::POLLIN };
    let mut p: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: ev,
            revents: 0,
        })
        .collect();
    // SAFETY: `p` is a valid array of pollfd of the length passed.
    let r = unsafe {
        libc::poll(
            p.as_mut_ptr(),
            p.len() as libc::nfds_t,
            timeout.as_millis().min(i32::MAX as u128) as i32,
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        return if e.raw_os_error() == Some(libc::EINTR) {
            Ok(false)
        } else {
            Err(e)
        };
    }
    Ok(r > 0)
}

/// The index of a named interface, if it exists.
pub(crate) fn if_nametoindex(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    // SAFETY: `c` is a valid NUL-terminated string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}

/// The name of an interface index.
pub(crate) fn if_indextoname(index: u32) -> Option<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `buf` has the IF_NAMESIZE bytes if_indextoname may write.
    let p = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: on success the buffer holds a NUL-terminated name.
    let s = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
    Some(s.to_string_lossy().into_owned())
}

/// Hardware address and ARP hardware type of an interface (SIOCGIFHWADDR).
pub(crate) fn if_hwaddr(name: &str) -> io::Result<([u8; 6], u16)> {
    let sock = socket(libc::AF_INET, libc::SOCK_DGRAM, 0)?;
    // SAFETY: an all-zero ifreq is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    let bytes = name.as_bytes();
    if bytes.len() >= libc::IF_NAMESIZE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "interface name too long",
        ));
    }
    for (d, s) in req.ifr_name.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    // SAFETY: `req` is a valid ifreq with a NUL-terminated name; the kernel fills ifru_hwaddr.
    cvt(unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFHWADDR, &mut req) })?;
    // SAFETY: SIOCGIFHWADDR initialised the hwaddr member of the union.
    let sa = unsafe { req.ifr_ifru.ifru_hwaddr };
    let mut mac = [0u8; 6];
    for (d, s) in mac.iter_mut().zip(sa.sa_data.iter()) {
        *d = *s as u8;
    }
    Ok((mac, sa.sa_family))
}

/// Attaches a classic BPF filter to a socket.
pub(crate) fn attach_filter(fd: RawFd, prog: &[libc::sock_filter]) -> io::Result<()> {
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut _,
    };
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog)
}

/// Receives one datagram, waiting at most `timeout`; `Ok(None)` on timeout.
pub(crate) fn recv_timeout(
    fd: RawFd,
    buf: &mut [u8],
    timeout: Duration,
) -> io::Result<Option<usize>> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(n) = recv_nonblocking(fd, buf)? {
            return Ok(Some(n));
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        poll(&[fd], false, left)?;
    }
}

/// Counts deliveries of `signals` in `counter` instead of dying on them.
pub fn count_signals(
    signals: &[libc::c_int],
    counter: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> io::Result<()> {
    for &sig in signals {
        let c = counter.clone();
        // SAFETY: the handler only does an atomic increment, which is async-signal-safe.
        unsafe {
            signal_hook::low_level::register(sig, move || {
                c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            })?;
        }
    }
    Ok(())
}

/// Asks the kernel to back `buf` with transparent huge pages where it can (`MADV_HUGEPAGE`).
/// A large table read at random (the duplicate filter's bitmap) then costs a cache miss per
/// lookup instead of a cache miss plus a page walk, which under a hypervisor is most of the
/// time. Best effort: kernels without THP ignore it.
pub(crate) fn advise_huge_pages<T: Copy>(buf: &mut [T]) {
    const PAGE: usize = 4096;
    let start = buf.as_mut_ptr() as usize;
    let end = start + std::mem::size_of_val(buf);
    let first = start.next_multiple_of(PAGE);
    if end <= first + PAGE {
        return;
    }
    // SAFETY: the range lies inside `buf`, which we borrow mutably; MADV_HUGEPAGE changes only
    // how the kernel backs the pages, never their contents.
    unsafe {
        libc::madvise(
            first as *mut libc::c_void,
            (end - first) / PAGE * PAGE,
            libc::MADV_HUGEPAGE,
        );
    }
}

/// Sends SIGINT to `pid` (a process of ours: the worker's shard process).
pub(crate) fn interrupt(pid: u32) -> io::Result<()> {
    // SAFETY: kill with plain integer arguments.
    cvt(unsafe { libc::kill(pid as libc::pid_t, libc::SIGINT) }).map(|_| ())
}

/// Waits for our child `pid` to end; its exit status, or 128 + the signal that ended it (as
/// shells report it).
pub(crate) fn wait_exit(pid: u32) -> io::Result<i32> {
    let mut status = 0;
    loop {
        // SAFETY: waits for our own child; `status` outlives the call.
        let r = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) };
        if r >= 0 {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    if libc::WIFEXITED(status) {
        Ok(libc::WEXITSTATUS(status))
    } else {
        Ok(128 + libc::WTERMSIG(status))
    }
}

/// The system calls [`forbid_io`] leaves: memory, locks, writing what is already open, and
/// exiting.
#[cfg(target_arch = "x86_64")]
const NO_IO_ALLOWED: [libc::c_long; 12] = [
    libc::SYS_brk,
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mremap,
    libc::SYS_madvise,
    libc::SYS_mprotect,
    libc::SYS_futex,
    libc::SYS_write,
    libc::SYS_sigaltstack,
    libc::SYS_rt_sigprocmask,
    libc::SYS_exit,
    libc::SYS_exit_group,
];

/// From here on, this thread may not open, read, stat, look up or ask anything of the system:
/// any system call but memory management, locks, `write` and exit kills the process (SIGSYS).
/// For tests that show a step does no I/O (parsing the request).
#[cfg(target_arch = "x86_64")]
pub fn forbid_io() -> io::Result<()> {
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jump = |k: u32, jt: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf: 0,
        k,
    };
    let n = NO_IO_ALLOWED.len() as u8;
    let mut prog = vec![
        // seccomp_data.arch at offset 4, .nr at 0.
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 4),
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 1,
            jf: 0,
            k: AUDIT_ARCH_X86_64,
        },
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_KILL_PROCESS),
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
    ];
    for (i, &nr) in NO_IO_ALLOWED.iter().enumerate() {
        // To the ALLOW at the end: past the rest of the list and the KILL.
        prog.push(jump(nr as u32, n - i as u8));
    }
    prog.push(stmt(
        libc::BPF_RET | libc::BPF_K,
        libc::SECCOMP_RET_KILL_PROCESS,
    ));
    prog.push(stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW));
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_mut_ptr(),
    };
    // SAFETY: PR_SET_NO_NEW_PRIVS takes plain integers.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fprog points at `prog`, alive for the call; the kernel copies the program.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &fprog as *const libc::sock_fprog,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
