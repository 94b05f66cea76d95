//! A pair of network namespaces joined by a veth, for `xdpscan bench` to measure in when it is
//! given no interface: built with iproute2's `ip`, removed when dropped (on an error or a
//! panic too), so nothing it sends can leave the machine. The scanner side holds 198.18.0.1
//! and 2001:db8::1 and routes 198.19.0.0/16 and 2001:db8:1::/48 to the target side
//! (198.18.0.2, 2001:db8::2), whose kernel forwards nothing: a sink until the responder
//! (`responder.rs`) is attached there.

use std::{
    fs::File,
    os::fd::{AsRawFd, OwnedFd},
    process::Command,
};

use super::IoError;

/// The pair, deleted on drop.
pub(crate) struct NamespacePair {
    pub(crate) scan: String,
    pub(crate) target: String,
    pub(crate) scan_if: String,
    pub(crate) target_if: String,
    /// The namespace this process started in, to come back to.
    home: OwnedFd,
}

/// The scanner side's address, the target side's, and the range routed to the target.
pub(crate) const TARGET_V4: &str = "198.18.0.2";
pub(crate) const ROUTED_V4: &str = "198.19.0.0/16";

impl NamespacePair {
    /// Builds the pair; `queues` transmit and receive queues on each end of the veth.
    pub(crate) fn create(queues: u32) -> Result<NamespacePair, IoError> {
        let id = std::process::id();
        let home = File::open("/proc/self/ns/net")
            .map_err(|e| IoError::os("cannot open this process's network namespace", e))?;
        let pair = NamespacePair {
            scan: format!("xdpscan-bench-{id}-s"),
            target: format!("xdpscan-bench-{id}-t"),
            scan_if: format!("xbs{id}"),
            target_if: format!("xbt{id}"),
            home: home.into(),
        };
        let q = queues.max(1).to_string();
        let (s, t) = (pair.scan.as_str(), pair.target.as_str());
        let (si, ti) = (pair.scan_if.as_str(), pair.target_if.as_str());
        let steps: [&[&str]; 13] = [
            &["netns", "add", s],
            &["netns", "add", t],
            &[
                "link",
                "add",
                si,
                "netns",
                s,
                "numtxqueues",
                &q,
                "numrxqueues",
                &q,
                "type",
                "veth",
                "peer",
                "name",
                ti,
                "netns",
                t,
                "numtxqueues",
                &q,
                "numrxqueues",
                &q,
            ],
            &["-n", s, "link", "set", "lo", "up"],
            &["-n", t, "link", "set", "lo", "up"],
            &["-n", s, "addr", "add", "198.18.0.1/24", "dev", si],
            &["-n", t, "addr", "add", "198.18.0.2/24", "dev", ti],
            &[
                "-n",
                s,
                "-6",
                "addr",
                "add",
                "2001:db8::1/64",
                "dev",
                si,
                "nodad",
            ],
            &[
                "-n",
                t,
                "-6",
                "addr",
                "add",
                "2001:db8::2/64",
                "dev",
                ti,
                "nodad",
            ],
            &["-n", s, "link", "set", si, "up"],
            &["-n", t, "link", "set", ti, "up"],
            &["-n", s, "route", "add", ROUTED_V4, "via", TARGET_V4],
            &[
                "-n",
                s,
                "-6",
                "route",
                "add",
                "2001:db8:1::/48",
                "via",
                "2001:db8::2",
            ],
        ];
        for step in steps {
            ip(step)?;
        }
        Ok(pair)
    }

    /// Moves this thread into `ns` (one of the pair's, or back home with `None`). Threads
    /// started afterwards inherit it; child processes should use [`Self::command`].
    pub(crate) fn enter(&self, ns: Option<&str>) -> Result<(), IoError> {
        let file;
        let fd = match ns {
            Some(name) => {
                file = File::open(format!("/run/netns/{name}"))
                    .map_err(|e| IoError::os(format!("cannot open namespace {name}"), e))?;
                file.as_raw_fd()
            }
            None => self.home.as_raw_fd(),
        };
        // SAFETY: `fd` is an open network-namespace file for the duration of the call.
        if unsafe { libc::setns(fd, libc::CLONE_NEWNET) } < 0 {
            return Err(IoError::os(
                "cannot enter the bench's namespace",
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    /// `program` run inside `ns` (with that namespace's /sys, as `ip netns exec` mounts it).
    pub(crate) fn command(&self, ns: &str, program: &std::path::Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns]).arg(program);
        c
    }

    /// Probes the veth dropped on their way out of the scanner's side (its TX dropped: the
    /// target side's 256-frame ring was full). Replies lost on the way in the scanner counts
    /// itself, from its interface's receive drops.
    pub(crate) fn probes_dropped(&self) -> u64 {
        tx_dropped(&self.scan, &self.scan_if)
    }

    /// Answers the veth dropped on their way back, out of the target's side (the scanner's
    /// ring full): a loss no scanner can see.
    pub(crate) fn answers_dropped(&self) -> u64 {
        tx_dropped(&self.target, &self.target_if)
    }
}

/// The TX dropped counter of `ifname` in namespace `ns`.
fn tx_dropped(ns: &str, ifname: &str) -> u64 {
    Command::new("ip")
        .args(["-n", ns, "-s", "-j", "link", "show", ifname])
        .output()
        .ok()
        .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
        .and_then(|v| v[0]["stats64"]["tx"]["dropped"].as_u64())
        .unwrap_or(0)
}

impl Drop for NamespacePair {
    fn drop(&mut self) {
        let _ = self.enter(None);
        for ns in [&self.scan, &self.target] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// One `ip` command; its complaint, if any, as the error.
fn ip(args: &[&str]) -> Result<(), IoError> {
    let out = Command::new("ip").args(args).output().map_err(|e| {
        IoError::os(
            "xdpscan bench needs iproute2's ip to build its namespaces",
            e,
        )
    })?;
    if !out.status.success() {
        return Err(IoError::Setup(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}
