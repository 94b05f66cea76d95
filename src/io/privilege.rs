//! Least privilege: once its sockets are open and its XDP program is attached, the scanner
//! switches to an unprivileged user (`--user`, `nobody` by default when started as root) and
//! keeps only the capabilities it still needs, which for a scan is none: AF_XDP rings, AF_PACKET
//! sockets, map fds and the bpf_link (whose close detaches the program) need no capability once
//! they are open. Files written late go through the [`super::keeper`] (docs/design.md, "Least
//! privilege").

use std::{ffi::CString, io};

use super::IoError;

/// Empties the calling thread's capability sets (capabilities are per thread; threads it
/// starts inherit the empty sets). For threads that serve the network and never attach.
pub(crate) fn shed_thread_caps() {
    let _ = capset(Caps {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    });
}

/// The effective user id.
pub(crate) fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Capability numbers (linux/capability.h) this crate names.
pub(crate) mod cap {
    pub(crate) const DAC_OVERRIDE: u32 = 1;
    pub(crate) const NET_ADMIN: u32 = 12;
    pub(crate) const NET_RAW: u32 = 13;
    pub(crate) const IPC_LOCK: u32 = 14;
    pub(crate) const PERFMON: u32 = 38;
    pub(crate) const BPF: u32 = 39;

    /// The kernel's name of a capability, for reports.
    pub(crate) fn name(c: u32) -> String {
        const NAMES: [&str; 41] = [
            "chown",
            "dac_override",
            "dac_read_search",
            "fowner",
            "fsetid",
            "kill",
            "setgid",
            "setuid",
            "setpcap",
            "linux_immutable",
            "net_bind_service",
            "net_broadcast",
            "net_admin",
            "net_raw",
            "ipc_lock",
            "ipc_owner",
            "sys_module",
            "sys_rawio",
            "sys_chroot",
            "sys_ptrace",
            "sys_pacct",
            "sys_admin",
            "sys_boot",
            "sys_nice",
            "sys_resource",
            "sys_time",
            "sys_tty_config",
            "mknod",
            "lease",
            "audit_write",
            "audit_control",
            "setfcap",
            "mac_override",
            "mac_admin",
            "syslog",
            "wake_alarm",
            "block_suspend",
            "audit_read",
            "perfmon",
            "bpf",
            "checkpoint_restore",
        ];
        match NAMES.get(c as usize) {
            Some(n) => format!("cap_{n}"),
            None => format!("cap_{c}"),
        }
    }
}

/// Who the scanner becomes after the drop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub(crate) name: String,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    /// Supplementary groups (the user's, from the group database).
    pub(crate) groups: Vec<u32>,
}

/// Resolves `--user` (a name or a numeric uid). `None` means there is nothing to drop: started
/// without root, or `--user root`. A `--user` other than oneself needs root.
pub(crate) fn resolve(user: Option<&str>) -> Result<Option<RunAs>, IoError> {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    let wanted = match (user, euid) {
        (Some(u), _) => u,
        (None, 0) => "nobody",
        (None, _) => return Ok(None),
    };
    let who = lookup(wanted)?;
    if who.uid == 0 {
        return Ok(None);
    }
    if euid != 0 {
        if who.uid == euid {
            return Ok(None);
        }
        return Err(IoError::Setup(format!(
            "--user {wanted}: switching to another user needs root"
        )));
    }
    Ok(Some(who))
}

/// The passwd entry of a name or numeric uid.
fn lookup(user: &str) -> Result<RunAs, IoError> {
    let bad = || IoError::Setup(format!("--user {user}: no such user"));
    if user.is_empty() || user.contains('\0') {
        return Err(bad());
    }
    let mut pw: libc::passwd = unsafe_zeroed_passwd();
    let mut buf = vec![0 as libc::c_char; 16 << 10];
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    let rc = match user.parse::<u32>() {
        // SAFETY: pw, buf and found are valid for the call; buf's length is passed.
        Ok(uid) => unsafe {
            libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut found)
        },
        Err(_) => {
            let c = CString::new(user).map_err(|_| bad())?;
            // SAFETY: as above; c is NUL-terminated.
            unsafe {
                libc::getpwnam_r(c.as_ptr(), &mut pw, buf.as_mut_ptr(), buf.len(), &mut found)
            }
        }
    };
    if rc != 0 || found.is_null() {
        return Err(bad());
    }
    // SAFETY: getpw*_r filled pw_name with a NUL-terminated string inside buf.
    let name = unsafe { std::ffi::CStr::from_ptr(pw.pw_name) }
        .to_string_lossy()
        .into_owned();
    let groups = group_list(&name, pw.pw_gid);
    Ok(RunAs {
        name,
        uid: pw.pw_uid,
        gid: pw.pw_gid,
        groups,
    })
}

fn unsafe_zeroed_passwd() -> libc::passwd {
    // SAFETY: passwd is plain data (integers and pointers); all zeroes is a valid value.
    unsafe { std::mem::zeroed() }
}

/// The user's groups as the group database lists them, primary group first.
fn group_list(name: &str, gid: u32) -> Vec<u32> {
    let Ok(c) = CString::new(name) else {
        return vec![gid];
    };
    let mut n: libc::c_int = 64;
    loop {
        let mut list = vec![0 as libc::gid_t; n as usize];
        let asked = n;
        // SAFETY: list has room for n entries and n says so.
        let rc = unsafe { libc::getgrouplist(c.as_ptr(), gid, list.as_mut_ptr(), &mut n) };
        if rc >= 0 {
            list.truncate(n.max(0) as usize);
            return list;
        }
        if n <= asked {
            return vec![gid];
        }
    }
}

/// The process's privileges now, for the metadata and the tests.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Current {
    pub(crate) user: String,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    /// Effective capabilities, by the kernel's names.
    pub(crate) capabilities: Vec<String>,
}

pub(crate) fn current() -> Current {
    // SAFETY: getuid/getgid have no preconditions.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let user = lookup(&uid.to_string())
        .map(|r| r.name)
        .unwrap_or_else(|_| uid.to_string());
    let capabilities = capget()
        .map(|c| {
            (0..64)
                .filter(|b| c.effective & (1u64 << b) != 0)
                .map(cap::name)
                .collect()
        })
        .unwrap_or_default();
    Current {
        user,
        uid,
        gid,
        capabilities,
    }
}

/// Switches to `to` for good (real, effective and saved ids), keeps exactly `keep` among the
/// capabilities (permitted and effective; nothing inheritable, ambient or in the bounding set
/// beyond them), and forbids gaining any back through exec. With `to` = `None` (not root, or
/// `--user root`) only capabilities beyond `keep` are dropped, when the process has any.
///
/// Capabilities are per thread: call it while the process has one thread, before the engine
/// starts its own.
pub(crate) fn drop_to(to: Option<&RunAs>, keep: &[u32]) -> Result<(), IoError> {
    let keep_mask = keep.iter().fold(0u64, |m, &c| m | (1u64 << c));
    let denied = |what: &str, e: io::Error| IoError::os(format!("dropping privileges: {what}"), e);
    let Some(to) = to else {
        // Started without root: shed what was granted (file capabilities) beyond `keep`.
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            return Ok(());
        }
        if let Ok(c) = capget() {
            if c.permitted & !keep_mask != 0 {
                capset(Caps {
                    effective: c.effective & keep_mask,
                    permitted: c.permitted & keep_mask,
                    inheritable: 0,
                })
                .map_err(|e| denied("capset", e))?;
                // SAFETY: prctl with integer arguments only.
                if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
                    return Err(denied("no_new_privs", io::Error::last_os_error()));
                }
            }
        }
        return Ok(());
    };
    let threads = thread_count();
    if threads != 1 {
        return Err(IoError::Setup(format!(
            "dropping privileges: {threads} threads are running (internal error)"
        )));
    }
    // SAFETY: prctl with integer arguments only.
    let prctl = |op: libc::c_int, a: libc::c_ulong| unsafe { libc::prctl(op, a, 0, 0, 0) };
    // Nothing left in the bounding set but `keep`: no exec can bring any back.
    for c in 0..=last_cap() {
        if keep_mask & (1u64 << c) == 0 && prctl(libc::PR_CAPBSET_DROP, c as _) != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINVAL) {
                return Err(denied("bounding set", e));
            }
        }
    }
    if prctl(libc::PR_SET_KEEPCAPS, (keep_mask != 0) as _) != 0 {
        return Err(denied("keepcaps", io::Error::last_os_error()));
    }
    // SAFETY: groups outlives the call and its length is passed.
    if unsafe { libc::setgroups(to.groups.len(), to.groups.as_ptr()) } != 0 {
        return Err(denied("setgroups", io::Error::last_os_error()));
    }
    // SAFETY: plain id arguments.
    if unsafe { libc::setresgid(to.gid, to.gid, to.gid) } != 0 {
        return Err(denied("setresgid", io::Error::last_os_error()));
    }
    // SAFETY: plain id arguments.
    if unsafe { libc::setresuid(to.uid, to.uid, to.uid) } != 0 {
        return Err(denied("setresuid", io::Error::last_os_error()));
    }
    capset(Caps {
        effective: keep_mask,
        permitted: keep_mask,
        inheritable: 0,
    })
    .map_err(|e| denied("capset", e))?;
    let _ = prctl(libc::PR_SET_KEEPCAPS, 0);
    // SAFETY: prctl with integer arguments only.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    if prctl(libc::PR_SET_NO_NEW_PRIVS, 1) != 0 {
        return Err(denied("no_new_privs", io::Error::last_os_error()));
    }
    // The drop must be final: root must be out of reach (as OpenSSH checks).
    // SAFETY: plain id argument; it must fail.
    if unsafe { libc::setuid(0) } == 0 {
        return Err(IoError::Setup(
            "dropping privileges: root was still reachable".into(),
        ));
    }
    Ok(())
}

/// Keeps only `keep` (permitted and effective) while staying the same user: what the file
/// keeper does for itself.
pub(crate) fn keep_only(keep: &[u32]) -> io::Result<()> {
    let keep_mask = keep.iter().fold(0u64, |m, &c| m | (1u64 << c));
    for c in 0..=last_cap() {
        // SAFETY: prctl with integer arguments only; failures (EINVAL past the last cap,
        // EPERM without CAP_SETPCAP) leave the set as it was.
        if keep_mask & (1u64 << c) == 0 {
            unsafe { libc::prctl(libc::PR_CAPBSET_DROP, c as libc::c_ulong, 0, 0, 0) };
        }
    }
    let now = capget()?;
    capset(Caps {
        effective: now.effective & keep_mask,
        permitted: now.permitted & keep_mask,
        inheritable: 0,
    })?;
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Which side of [`fork_apart`] the caller is on.
pub(crate) enum Forked {
    /// The new process, alone in a process group of its own (a terminal's Ctrl-C reaches only
    /// the parent, which decides what its children hear), killed when its parent dies.
    Child,
    Parent(u32),
}

/// Forks a process that keeps what this one holds now (user, capabilities), named `name`;
/// refused while other threads run, whose locks the child would inherit held.
pub(crate) fn fork_apart(name: &std::ffi::CStr) -> Result<Forked, IoError> {
    let threads = thread_count();
    if threads != 1 {
        return Err(IoError::Setup(format!(
            "fork: {threads} threads are running (internal error)"
        )));
    }
    let parent = std::process::id();
    // SAFETY: the process has one thread (checked above), so the child's copy of memory holds
    // no lock another thread took.
    match unsafe { libc::fork() } {
        -1 => Err(IoError::os("fork", io::Error::last_os_error())),
        0 => {
            // SAFETY: prctl, getppid, setpgid and signal with plain arguments, on this process.
            unsafe {
                libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                );
                if libc::getppid() as u32 != parent {
                    libc::_exit(0);
                }
                libc::setpgid(0, 0);
                for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGPIPE] {
                    libc::signal(sig, libc::SIG_IGN);
                }
                libc::prctl(libc::PR_SET_NAME, name.as_ptr() as libc::c_ulong, 0, 0, 0);
            }
            Ok(Forked::Child)
        }
        pid => Ok(Forked::Parent(pid as u32)),
    }
}

fn thread_count() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or(1)
}

fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
        .min(63)
}

/// The three capability sets of this thread, as 64-bit masks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Caps {
    effective: u64,
    permitted: u64,
    inheritable: u64,
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// _LINUX_CAPABILITY_VERSION_3: two 32-bit words per set.
const CAP_V3: u32 = 0x2008_0522;

fn capget() -> io::Result<Caps> {
    let mut h = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let mut d = [CapData::default(); 2];
    // SAFETY: header and a two-element data array, as version 3 requires.
    if unsafe { libc::syscall(libc::SYS_capget, &mut h, d.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let join = |lo: u32, hi: u32| lo as u64 | (hi as u64) << 32;
    Ok(Caps {
        effective: join(d[0].effective, d[1].effective),
        permitted: join(d[0].permitted, d[1].permitted),
        inheritable: join(d[0].inheritable, d[1].inheritable),
    })
}

fn capset(c: Caps) -> io::Result<()> {
    let mut h = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let d = [
        CapData {
            effective: c.effective as u32,
            permitted: c.permitted as u32,
            inheritable: c.inheritable as u32,
        },
        CapData {
            effective: (c.effective >> 32) as u32,
            permitted: (c.permitted >> 32) as u32,
            inheritable: (c.inheritable >> 32) as u32,
        },
    ];
    // SAFETY: header and a two-element data array, as version 3 requires.
    if unsafe { libc::syscall(libc::SYS_capset, &mut h, d.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_resolve_by_name_and_number() {
        let root = lookup("root").unwrap();
        assert_eq!((root.uid, root.gid), (0, 0));
        assert_eq!(lookup("0").unwrap().name, "root");
        assert!(lookup("no-such-user-xdpscan").is_err());
        assert!(lookup("").is_err());
    }

    #[test]
    fn root_means_no_drop() {
        assert_eq!(resolve(Some("root")).unwrap(), None);
    }

    #[test]
    fn capability_names_follow_the_kernel() {
        assert_eq!(cap::name(cap::NET_RAW), "cap_net_raw");
        assert_eq!(cap::name(cap::BPF), "cap_bpf");
        assert_eq!(cap::name(cap::DAC_OVERRIDE), "cap_dac_override");
        assert_eq!(cap::name(99), "cap_99");
    }

    #[test]
    fn the_capability_sets_read_back() {
        let c = capget().unwrap();
        assert_eq!(c.effective & !c.permitted, 0);
    }
}
