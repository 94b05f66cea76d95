//! The file keeper: a small process forked before the privilege drop that keeps root's access
//! to the filesystem for the few files a scan writes late, and for nothing else. A scan stopped
//! by Ctrl-C writes its resume file and the part files of its grouped documents; a finished
//! one writes its metadata; a large grouped document spills sorted runs next to itself. Those
//! paths are known before the drop, and the keeper serves exactly them: it creates, renames or
//! removes one of them on request and hands the open file back over a Unix socket (SCM_RIGHTS),
//! so the scanner, which runs as `nobody`, can write where its user asked, root-owned
//! directories included. The keeper holds no socket, map or link of the scan, keeps only
//! CAP_DAC_OVERRIDE, and exits with the scanner (docs/design.md, "Least privilege").
//!
//! Without a keeper (no drop: not root, or `--user root`) the same calls act directly.

use std::{
    fs::{File, OpenOptions},
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use super::{privilege, IoError};

/// The paths the keeper may act on.
#[derive(Debug, Default, Clone)]
pub(crate) struct Allowed {
    /// Files it may create (truncating), rename between, and remove.
    pub(crate) files: Vec<PathBuf>,
    /// Directories where it may make unnamed files (spilled runs).
    pub(crate) dirs: Vec<PathBuf>,
}

struct Client {
    sock: OwnedFd,
    pid: libc::pid_t,
}

/// A handle on the keeper, handed to what writes late (sinks, the resume file, metadata, the
/// status file); without one (`Keeper::default()`: no drop) the same calls act directly.
/// Clones share the keeper.
#[derive(Clone, Default)]
pub(crate) struct Keeper {
    client: Arc<Mutex<Option<Client>>>,
}

impl std::fmt::Debug for Keeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keeper {{ running: {} }}", self.running())
    }
}

const OP_CREATE: u8 = 1;
const OP_RENAME: u8 = 2;
const OP_REMOVE: u8 = 3;
const OP_UNNAMED: u8 = 4;
const OP_CREATE_TEMP: u8 = 5;

/// Longest request: an op, two lengths and two paths.
const MAX_REQUEST: usize = 1 + 4 + 2 * 4096;

impl Keeper {
    /// Forks the keeper. Call it while the process has one thread, before the transport is open
    /// (the keeper must hold none of its descriptors).
    pub(crate) fn start(allowed: Allowed) -> Result<Keeper, IoError> {
        let mut fds = [0; 2];
        // SAFETY: fds has room for the two descriptors.
        if unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        } != 0
        {
            return Err(IoError::os(
                "file keeper: socketpair",
                io::Error::last_os_error(),
            ));
        }
        // SAFETY: socketpair returned two fresh descriptors that nothing else owns.
        let (ours, theirs) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: getpid has no preconditions.
        let parent = unsafe { libc::getpid() };
        // SAFETY: the process has one thread (checked by the caller's drop sequence); the child
        // only runs `serve`, which never returns.
        match unsafe { libc::fork() } {
            -1 => Err(IoError::os("file keeper: fork", io::Error::last_os_error())),
            0 => {
                drop(ours);
                serve(theirs, parent, &allowed)
            }
            pid => {
                drop(theirs);
                Ok(Keeper {
                    client: Arc::new(Mutex::new(Some(Client { sock: ours, pid }))),
                })
            }
        }
    }

    /// Whether a keeper serves this process.
    pub(crate) fn running(&self) -> bool {
        self.client.lock().map(|k| k.is_some()).unwrap_or(false)
    }

    /// Ends the keeper and waits for it.
    pub(crate) fn stop(&self) {
        let client = self.client.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(c) = client {
            drop(c.sock);
            let mut status = 0;
            // SAFETY: waits for our own child.
            unsafe { libc::waitpid(c.pid, &mut status, 0) };
        }
    }

    /// Creates (or truncates) `path` for writing.
    pub(crate) fn create(&self, path: &Path) -> io::Result<File> {
        match self.ask(OP_CREATE, path, None)? {
            Answer::Direct => File::create(path),
            Answer::File(f) => Ok(f),
            Answer::Done => Err(io::Error::other("file keeper: no file")),
        }
    }

    /// A temporary name, renamed over the real one when complete: whatever is there is removed
    /// and the file made anew with `O_EXCL`, so a name planted in advance (a hard link to a file
    /// of root's, a symlink) is never opened.
    pub(crate) fn create_temp(&self, path: &Path) -> io::Result<File> {
        match self.ask(OP_CREATE_TEMP, path, None)? {
            Answer::Direct => create_new(path),
            Answer::File(f) => Ok(f),
            Answer::Done => Err(io::Error::other("file keeper: no file")),
        }
    }

    /// `create_temp` and write all of `bytes`, synced.
    pub(crate) fn write_temp(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        use io::Write;
        let mut f = self.create_temp(path)?;
        f.write_all(bytes)?;
        f.sync_all()
    }

    /// `create` and write all of `bytes`.
    pub(crate) fn write(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        use io::Write;
        let mut f = self.create(path)?;
        f.write_all(bytes)?;
        f.sync_all()
    }

    pub(crate) fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        match self.ask(OP_RENAME, from, Some(to))? {
            Answer::Direct => std::fs::rename(from, to),
            _ => Ok(()),
        }
    }

    pub(crate) fn remove(&self, path: &Path) -> io::Result<()> {
        match self.ask(OP_REMOVE, path, None)? {
            Answer::Direct => std::fs::remove_file(path),
            _ => Ok(()),
        }
    }

    /// A read-write file in `dir` that has no name (nothing is left behind, whatever ends the
    /// process).
    pub(crate) fn unnamed(&self, dir: &Path) -> io::Result<File> {
        match self.ask(OP_UNNAMED, dir, None)? {
            Answer::Direct => unnamed_in(dir),
            Answer::File(f) => Ok(f),
            Answer::Done => Err(io::Error::other("file keeper: no file")),
        }
    }
}

fn create_new(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

fn unnamed_in(dir: &Path) -> io::Result<File> {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!(".xdpscan-group-{}-{n}", std::process::id()));
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(f)
}

enum Answer {
    /// No keeper: act directly.
    Direct,
    Done,
    File(File),
}

impl Keeper {
    fn ask(&self, op: u8, a: &Path, b: Option<&Path>) -> io::Result<Answer> {
        let guard = self.client.lock().unwrap_or_else(|e| e.into_inner());
        let Some(client) = guard.as_ref() else {
            return Ok(Answer::Direct);
        };
        let a = a.as_os_str().as_bytes();
        let b = b.map(|p| p.as_os_str().as_bytes()).unwrap_or_default();
        if a.len() > 4096 || b.len() > 4096 {
            return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
        }
        let mut req = Vec::with_capacity(5 + a.len() + b.len());
        req.push(op);
        req.extend_from_slice(&(a.len() as u16).to_le_bytes());
        req.extend_from_slice(&(b.len() as u16).to_le_bytes());
        req.extend_from_slice(a);
        req.extend_from_slice(b);
        let sock = client.sock.as_raw_fd();
        // SAFETY: req is valid for its length.
        if unsafe { libc::send(sock, req.as_ptr().cast(), req.len(), libc::MSG_NOSIGNAL) } < 0 {
            return Err(io::Error::last_os_error());
        }
        let (errno, fd) = recv_answer(sock)?;
        if errno != 0 {
            return Err(io::Error::from_raw_os_error(errno));
        }
        Ok(match fd {
            Some(fd) => Answer::File(File::from(fd)),
            None => Answer::Done,
        })
    }
}

/// Room for one descriptor's control message, aligned for cmsghdr.
#[repr(C, align(8))]
struct ControlBuf([u8; 32]);

fn recv_answer(sock: RawFd) -> io::Result<(i32, Option<OwnedFd>)> {
    let mut errno = [0u8; 4];
    let mut iov = libc::iovec {
        iov_base: errno.as_mut_ptr().cast(),
        iov_len: errno.len(),
    };
    let mut control = ControlBuf([0; 32]);
    // SAFETY: msghdr is plain data; all zeroes is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    msg.msg_controllen = control.0.len() as _;
    // SAFETY: msg points at live buffers of the sizes it gives.
    let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    if n != 4 {
        return Err(io::Error::other("file keeper: no answer"));
    }
    let mut fd = None;
    // SAFETY: the kernel filled msg_control; CMSG_* walk it within msg_controllen.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        if !c.is_null()
            && (*c).cmsg_level == libc::SOL_SOCKET
            && (*c).cmsg_type == libc::SCM_RIGHTS
            && (*c).cmsg_len as usize >= libc::CMSG_LEN(4) as usize
        {
            let raw = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const RawFd);
            fd = Some(OwnedFd::from_raw_fd(raw));
        }
    }
    Ok((i32::from_ne_bytes(errno), fd))
}

fn send_answer(sock: RawFd, errno: i32, fd: Option<RawFd>) {
    let bytes = errno.to_ne_bytes();
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr() as *mut _,
        iov_len: bytes.len(),
    };
    let mut control = ControlBuf([0; 32]);
    // SAFETY: msghdr is plain data; all zeroes is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if let Some(fd) = fd {
        msg.msg_control = control.0.as_mut_ptr().cast();
        // SAFETY: CMSG_SPACE is a pure size computation.
        msg.msg_controllen = unsafe { libc::CMSG_SPACE(4) } as _;
        // SAFETY: msg_control holds CMSG_SPACE(4) bytes, enough for one header and one fd.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(4) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut RawFd, fd);
        }
    }
    // SAFETY: msg points at live buffers of the sizes it gives.
    unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) };
}

/// The keeper's life: serve requests until the scanner closes its end, then exit.
fn serve(sock: OwnedFd, parent: libc::pid_t, allowed: &Allowed) -> ! {
    // SAFETY: plain prctl/signal calls on this process; _exit ends it without unwinding into
    // the scanner's code.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
        if libc::getppid() != parent {
            libc::_exit(0);
        }
        // Ctrl-C reaches the whole process group; the scanner decides when the keeper ends.
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGPIPE] {
            libc::signal(sig, libc::SIG_IGN);
        }
        libc::prctl(
            libc::PR_SET_NAME,
            c"xdpscan-keeper".as_ptr() as libc::c_ulong,
            0,
            0,
            0,
        );
        // Hold nothing of the scanner's: only the socket, moved to 3, and /dev/null as 0-2.
        let raw = sock.as_raw_fd();
        if raw != 3 && libc::dup2(raw, 3) < 0 {
            libc::_exit(1);
        }
        std::mem::forget(sock);
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        for fd in 0..3 {
            libc::dup2(null, fd);
        }
        libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 0u32);
        let _ = libc::fcntl(3, libc::F_SETFD, libc::FD_CLOEXEC);
    }
    if privilege::keep_only(&[privilege::cap::DAC_OVERRIDE]).is_err() {
        // SAFETY: ends the keeper.
        unsafe { libc::_exit(1) };
    }
    let _ = std::panic::catch_unwind(|| serve_loop(3, allowed));
    // SAFETY: ends the keeper without running the scanner's destructors.
    unsafe { libc::_exit(0) }
}

fn serve_loop(sock: RawFd, allowed: &Allowed) {
    let mut buf = vec![0u8; MAX_REQUEST];
    loop {
        // SAFETY: buf is valid for its length.
        let n = unsafe { libc::recv(sock, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        if n <= 0 {
            return;
        }
        let (errno, file) = match answer(&buf[..n as usize], allowed) {
            Ok(f) => (0, f),
            Err(e) => (e.raw_os_error().unwrap_or(libc::EIO), None),
        };
        send_answer(sock, errno, file.as_ref().map(|f| f.as_raw_fd()));
    }
}

fn answer(req: &[u8], allowed: &Allowed) -> io::Result<Option<File>> {
    let bad = || io::Error::from_raw_os_error(libc::EINVAL);
    if req.len() < 5 {
        return Err(bad());
    }
    let la = u16::from_le_bytes([req[1], req[2]]) as usize;
    let lb = u16::from_le_bytes([req[3], req[4]]) as usize;
    if req.len() != 5 + la + lb {
        return Err(bad());
    }
    let path = |b: &[u8]| PathBuf::from(std::ffi::OsStr::from_bytes(b));
    let a = path(&req[5..5 + la]);
    let b = path(&req[5 + la..]);
    let file_ok = |p: &Path| allowed.files.iter().any(|f| f == p);
    let denied = || io::Error::from_raw_os_error(libc::EPERM);
    match req[0] {
        // Not through a symlink planted by the unprivileged scanner.
        OP_CREATE if file_ok(&a) => {
            use std::os::unix::fs::OpenOptionsExt;
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&a)
                .map(Some)
        }
        OP_CREATE_TEMP if file_ok(&a) => create_new(&a).map(Some),
        OP_RENAME if file_ok(&a) && file_ok(&b) => std::fs::rename(&a, &b).map(|_| None),
        OP_REMOVE if file_ok(&a) => std::fs::remove_file(&a).map(|_| None),
        OP_UNNAMED if allowed.dirs.iter().any(|d| d == &a) => unnamed_in(&a).map(Some),
        OP_CREATE | OP_CREATE_TEMP | OP_RENAME | OP_REMOVE | OP_UNNAMED => Err(denied()),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn req(op: u8, a: &str, b: &str) -> Vec<u8> {
        let mut r = vec![op];
        r.extend_from_slice(&(a.len() as u16).to_le_bytes());
        r.extend_from_slice(&(b.len() as u16).to_le_bytes());
        r.extend_from_slice(a.as_bytes());
        r.extend_from_slice(b.as_bytes());
        r
    }

    #[test]
    fn the_keeper_acts_only_on_its_paths() {
        let dir = std::env::temp_dir().join(format!("xdpscan-keeper-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ok = dir.join("resume.json");
        let tmp = dir.join("resume.tmp");
        let allowed = Allowed {
            files: vec![ok.clone(), tmp.clone()],
            dirs: vec![dir.clone()],
        };
        let s = |p: &Path| p.to_str().unwrap().to_string();
        assert!(answer(&req(OP_CREATE, &s(&tmp), ""), &allowed)
            .unwrap()
            .is_some());
        answer(&req(OP_RENAME, &s(&tmp), &s(&ok)), &allowed).unwrap();
        assert!(ok.exists() && !tmp.exists());
        // Issue 20, item 18: a temporary name planted in advance as a hard link to another
        // file: made anew, the other file untouched.
        let victim = dir.join("victim");
        std::fs::write(&victim, "keep").unwrap();
        std::fs::hard_link(&victim, &tmp).unwrap();
        let mut f = answer(&req(OP_CREATE_TEMP, &s(&tmp), ""), &allowed)
            .unwrap()
            .unwrap();
        std::io::Write::write_all(&mut f, b"resume").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(std::fs::read_to_string(&tmp).unwrap(), "resume");
        std::os::unix::fs::symlink(&victim, dir.join("link.tmp")).unwrap();
        assert!(
            create_new(&dir.join("link.tmp")).is_ok(),
            "the link is removed, not followed"
        );
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        for f in [victim, tmp.clone(), dir.join("link.tmp")] {
            std::fs::remove_file(f).unwrap();
        }
        let other = dir.join("other");
        let denied = |r: Vec<u8>| answer(&r, &allowed).unwrap_err().raw_os_error();
        assert_eq!(denied(req(OP_CREATE, &s(&other), "")), Some(libc::EPERM));
        assert_eq!(
            denied(req(OP_RENAME, &s(&ok), &s(&other))),
            Some(libc::EPERM)
        );
        assert_eq!(denied(req(OP_REMOVE, "/etc/passwd", "")), Some(libc::EPERM));
        assert_eq!(denied(req(OP_UNNAMED, "/etc", "")), Some(libc::EPERM));
        assert_eq!(denied(req(9, "x", "")), Some(libc::EINVAL));
        assert_eq!(
            denied(vec![OP_CREATE, 200, 0, 0, 0, b'x']),
            Some(libc::EINVAL)
        );
        assert_eq!(denied(vec![]), Some(libc::EINVAL));
        // A path that only resembles an allowed one (`..`, trailing slash) is another path.
        let sneaky = format!(
            "{}/../{}/resume.json",
            s(&dir),
            dir.file_name().unwrap().to_str().unwrap()
        );
        assert_eq!(denied(req(OP_CREATE, &sneaky, "")), Some(libc::EPERM));
        let f = answer(&req(OP_UNNAMED, &s(&dir), ""), &allowed)
            .unwrap()
            .unwrap();
        assert_eq!(f.metadata().unwrap().nlink(), 0);
        answer(&req(OP_REMOVE, &s(&ok), ""), &allowed).unwrap();
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        std::fs::remove_dir(&dir).unwrap();
    }

    #[test]
    fn without_a_keeper_the_calls_act_directly() {
        let dir = std::env::temp_dir();
        let p = dir.join(format!("xdpscan-direct-{}", std::process::id()));
        let k = Keeper::default();
        assert!(!k.running());
        k.write(&p, b"x").unwrap();
        let q = p.with_extension("moved");
        k.rename(&p, &q).unwrap();
        assert_eq!(std::fs::read(&q).unwrap(), b"x");
        k.remove(&q).unwrap();
        k.unnamed(&dir).unwrap();
    }
}
