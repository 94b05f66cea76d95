//! A VPN stand-in for the lab: two tun devices, one in each of two namespaces, joined by a relay
//! thread of the test's own that copies every packet from one to the other. The devices vanish
//! with their file descriptors when the relay is dropped.

use std::{
    fs::File,
    os::fd::{AsRawFd, OwnedFd},
    process::Command,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::JoinHandle,
};

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TUN: libc::c_short = 0x0001;
const IFF_NO_PI: libc::c_short = 0x1000;

/// One end: a tun device named `name` in namespace `ns`, with these addresses (`ip addr add`
/// arguments) and routes (`ip route add` arguments) once it is up.
pub struct TunEnd<'a> {
    pub ns: &'a str,
    pub name: &'a str,
    pub addrs: &'a [&'a str],
    pub routes: &'a [&'a str],
}

pub struct TunRelay {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TunRelay {
    /// Makes both ends (`pi`: with tun's packet-information header, as socat makes them by
    /// default; without it, as OpenVPN and most VPNs do) and starts relaying.
    pub fn new(a: TunEnd, b: TunEnd, pi: bool) -> TunRelay {
        let fa = make(&a, pi);
        let fb = make(&b, pi);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || relay(fa, fb, &flag));
        TunRelay {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for TunRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Creates the device inside its namespace (from a thread that enters it), then configures it.
fn make(end: &TunEnd, pi: bool) -> OwnedFd {
    let ns = end.ns.to_string();
    let name = end.name.to_string();
    let fd = std::thread::spawn(move || {
        let netns = File::open(format!("/var/run/netns/{ns}")).expect("namespace exists");
        // SAFETY: setns on a namespace file descriptor we hold; it changes this thread only.
        let r = unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
        let tun = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/net/tun")
            .expect("/dev/net/tun");
        // struct ifreq: the name, then the flags (the rest of its 40 bytes unused).
        let mut ifr = [0u8; 40];
        ifr[..name.len()].copy_from_slice(name.as_bytes());
        let flags = IFF_TUN | if pi { 0 } else { IFF_NO_PI };
        ifr[16..18].copy_from_slice(&flags.to_ne_bytes());
        // SAFETY: TUNSETIFF reads and writes one struct ifreq, which `ifr` is large enough for.
        let r = unsafe { libc::ioctl(tun.as_raw_fd(), TUNSETIFF, ifr.as_mut_ptr()) };
        assert_eq!(r, 0, "TUNSETIFF: {}", std::io::Error::last_os_error());
        OwnedFd::from(tun)
    })
    .join()
    .expect("tun created");
    let ip = |args: &[&str]| {
        let mut a = vec!["-n", end.ns];
        a.extend_from_slice(args);
        let out = Command::new("ip").args(&a).output().expect("run ip");
        assert!(
            out.status.success(),
            "ip {a:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    for addr in end.addrs {
        let mut a: Vec<&str> = vec!["addr", "add"];
        a.extend(addr.split_whitespace());
        a.extend(["dev", end.name]);
        ip(&a);
    }
    ip(&["link", "set", end.name, "up"]);
    for route in end.routes {
        let mut a: Vec<&str> = vec!["route", "add"];
        a.extend(route.split_whitespace());
        a.extend(["dev", end.name]);
        ip(&a);
    }
    fd
}

/// Copies packets both ways until `stop`.
fn relay(a: OwnedFd, b: OwnedFd, stop: &AtomicBool) {
    let mut buf = vec![0u8; 65536];
    let fds = [a.as_raw_fd(), b.as_raw_fd()];
    while !stop.load(Ordering::Relaxed) {
        let mut polls = fds.map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        });
        // SAFETY: `polls` is a valid array of two pollfd.
        let n = unsafe { libc::poll(polls.as_mut_ptr(), 2, 100) };
        if n <= 0 {
            continue;
        }
        for (i, p) in polls.iter().enumerate() {
            if p.revents & libc::POLLIN == 0 {
                continue;
            }
            // SAFETY: `buf` is valid for writes of its length; the fds are open tun devices.
            let len = unsafe { libc::read(fds[i], buf.as_mut_ptr().cast(), buf.len()) };
            if len > 0 {
                // SAFETY: the first `len` bytes of `buf` were just read. A full device queue
                // drops the packet, as a VPN's would.
                unsafe { libc::write(fds[1 - i], buf.as_ptr().cast(), len as usize) };
            }
        }
    }
    // The fds close here, and the devices go with them.
    drop((a, b));
}
