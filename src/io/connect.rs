//! Non-blocking kernel TCP connects for `-sT`, many in flight, watched with epoll. Needs no
//! privileges: the kernel does the handshake, and `SO_LINGER 0` ends each one with a RST.

use std::{
    collections::HashMap,
    io,
    net::IpAddr,
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
    time::{Duration, Instant},
};

use super::sys;

/// What the kernel said about one connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnectOutcome {
    Connected,
    /// The errno the connect failed with (ECONNREFUSED, EHOSTUNREACH...).
    Failed(i32),
    TimedOut,
}

struct Pending {
    _fd: OwnedFd,
    ip: IpAddr,
    port: u16,
    deadline: Instant,
}

pub(crate) struct Connector {
    epoll: OwnedFd,
    pending: HashMap<RawFd, Pending>,
    bind_ip: Option<IpAddr>,
    iface: Option<String>,
    events: Vec<libc::epoll_event>,
}

impl Connector {
    pub(crate) fn new(bind_ip: Option<IpAddr>, iface: Option<String>) -> io::Result<Self> {
        // SAFETY: epoll_create1 takes no pointers; a non-negative result is a new fd we own.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just created and is owned by nobody else.
        let epoll = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self {
            epoll,
            pending: HashMap::new(),
            bind_ip,
            iface,
            events: vec![libc::epoll_event { events: 0, u64: 0 }; 1024],
        })
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Raises the open-files limit as far as allowed; returns how many connects may be in flight.
    pub(crate) fn raise_fd_limit(want: usize) -> usize {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `lim` is a valid rlimit for the kernel to fill.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
            return want.min(900);
        }
        let target = (want as u64 + 64).min(lim.rlim_max);
        if target > lim.rlim_cur {
            let new = libc::rlimit {
                rlim_cur: target,
                rlim_max: lim.rlim_max,
            };
            // SAFETY: `new` is a valid rlimit within the hard limit.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) } == 0 {
                lim.rlim_cur = target;
            }
        }
        want.min(lim.rlim_cur.saturating_sub(64) as usize).max(1)
    }

    /// Starts a connect; returns an outcome at once when the kernel decides synchronously.
    pub(crate) fn start(
        &mut self,
        ip: IpAddr,
        port: u16,
        timeout: Duration,
    ) -> io::Result<Option<ConnectOutcome>> {
        let family = if ip.is_ipv4() {
            libc::AF_INET
        } else {
            libc::AF_INET6
        };
        let fd = sys::socket(family, libc::SOCK_STREAM | libc::SOCK_NONBLOCK, 0)?;
        let raw = fd.as_raw_fd();
        // Close with a RST, never linger in TIME_WAIT across a large scan.
        sys::setsockopt(
            raw,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &libc::linger {
                l_onoff: 1,
                l_linger: 0,
            },
        )?;
        if let Some(dev) = &self.iface {
            let mut name = dev.as_bytes().to_vec();
            name.push(0);
            // SAFETY: `name` is a NUL-terminated buffer of the length passed.
            let r = unsafe {
                libc::setsockopt(
                    raw,
                    libc::SOL_SOCKET,
                    libc::SO_BINDTODEVICE,
                    name.as_ptr().cast(),
                    name.len() as u32,
                )
            };
            if r < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        // A source of the other family is for the other family's targets.
        if let Some(src) = self.bind_ip.filter(|s| s.is_ipv4() == ip.is_ipv4()) {
            let (sa, len) = sockaddr(src, 0);
            // SAFETY: `sa` is an initialised sockaddr of the family `len` describes.
            let r = unsafe { libc::bind(raw, (&sa as *const libc::sockaddr_storage).cast(), len) };
            if r < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        let (sa, len) = sockaddr(ip, port);
        // SAFETY: as above.
        let r = unsafe { libc::connect(raw, (&sa as *const libc::sockaddr_storage).cast(), len) };
        if r == 0 {
            return Ok(Some(ConnectOutcome::Connected));
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINPROGRESS) => {}
            Some(libc::EMFILE)
            | Some(libc::ENFILE)
            | Some(libc::ENOBUFS)
            | Some(libc::EADDRNOTAVAIL) => return Err(e),
            Some(code) => return Ok(Some(ConnectOutcome::Failed(code))),
            None => return Err(e),
        }
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLOUT | libc::EPOLLERR | libc::EPOLLHUP) as u32,
            u64: raw as u64,
        };
        // SAFETY: `ev` is a valid epoll_event and both fds are open.
        if unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, raw, &mut ev) } < 0
        {
            return Err(io::Error::last_os_error());
        }
        self.pending.insert(
            raw,
            Pending {
                _fd: fd,
                ip,
                port,
                deadline: Instant::now() + timeout,
            },
        );
        Ok(None)
    }

    /// Waits up to `wait` for connects to finish, then expires the overdue ones; reports each.
    pub(crate) fn poll(
        &mut self,
        wait: Duration,
        mut f: impl FnMut(IpAddr, u16, ConnectOutcome),
    ) -> io::Result<()> {
        if !self.pending.is_empty() {
            // SAFETY: `events` has room for the count passed.
            let n = unsafe {
                libc::epoll_wait(
                    self.epoll.as_raw_fd(),
                    self.events.as_mut_ptr(),
                    self.events.len() as i32,
                    wait.as_millis().min(1000) as i32,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EINTR) {
                    return Err(e);
                }
            }
            for i in 0..n.max(0) as usize {
                let fd = self.events[i].u64 as RawFd;
                let Some(p) = self.pending.remove(&fd) else {
                    continue;
                };
                let err: i32 =
                    sys::getsockopt(fd, libc::SOL_SOCKET, libc::SO_ERROR).unwrap_or(libc::EIO);
                f(
                    p.ip,
                    p.port,
                    if err == 0 {
                        ConnectOutcome::Connected
                    } else {
                        ConnectOutcome::Failed(err)
                    },
                );
                // Dropping `p` closes the socket, which removes it from the epoll set.
            }
        } else if !wait.is_zero() {
            std::thread::sleep(wait.min(Duration::from_millis(10)));
        }
        let now = Instant::now();
        let overdue: Vec<RawFd> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(&fd, _)| fd)
            .collect();
        for fd in overdue {
            if let Some(p) = self.pending.remove(&fd) {
                f(p.ip, p.port, ConnectOutcome::TimedOut);
            }
        }
        Ok(())
    }

    /// Abandons every connect in flight.
    pub(crate) fn abandon(&mut self) {
        self.pending.clear();
    }
}

/// A socket address of either family, and its length.
fn sockaddr(ip: IpAddr, port: u16) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero bytes are a valid sockaddr_storage.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match ip {
        IpAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as u16,
                sin_port: port.to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from(a).to_be(),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        IpAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as u16,
                sin6_port: port.to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.octets(),
                },
                sin6_scope_id: 0,
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}
