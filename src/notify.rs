//! Readiness: systemd's sd_notify protocol on a socket of the shim's, the
//! ready file, the relay to a supervisor above the shim, and `shim probe`.
//!
//! The socket is an abstract-namespace datagram socket (it needs no
//! writable file system). The kernel vouches for each sender
//! (SO_PASSCRED): a process outside the shim's PID namespace, such as
//! another container of a pod sharing the network namespace, arrives as
//! pid 0 and is ignored with everyone else the access rule leaves out.

use std::ffi::{OsStr, OsString};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use crate::diag;

/// The largest datagram read whole; a longer one is ignored.
const MAX_DATAGRAM: usize = 4096;

/// How many datagrams one wake-up takes at most: a flood cannot starve the
/// signals. The rest wait, queued by the kernel, for the next turn.
const PER_WAKE: usize = 64;

/// Whose notifications count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The main child only.
    Main,
    /// Any process the shim supervises.
    All,
}

/// One assignment the shim understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Ready,
    Reloading,
    Stopping,
    Status(String),
    WatchdogPing,
    WatchdogTrigger,
    WatchdogUsec(u64),
}

/// Parses one datagram: newline-separated `KEY=VALUE` assignments; what the
/// shim does not understand is skipped.
pub fn parse(datagram: &[u8]) -> Vec<Notice> {
    datagram
        .split(|&b| b == b'\n')
        .filter_map(|line| {
            let line = std::str::from_utf8(line).ok()?;
            let (key, value) = line.split_once('=')?;
            Some(match (key, value) {
                ("READY", "1") => Notice::Ready,
                ("RELOADING", "1") => Notice::Reloading,
                ("STOPPING", "1") => Notice::Stopping,
                ("STATUS", text) => Notice::Status(text.to_string()),
                ("WATCHDOG", "1") => Notice::WatchdogPing,
                ("WATCHDOG", "trigger") => Notice::WatchdogTrigger,
                ("WATCHDOG_USEC", n) => Notice::WatchdogUsec(n.trim().parse().ok()?),
                _ => return None,
            })
        })
        .collect()
}

/// A datagram and its sender's pid.
type Datagram = (i32, Vec<u8>);

/// The shim's notification socket.
pub struct Socket {
    fd: OwnedFd,
    /// `@name`: the value of NOTIFY_SOCKET for the app.
    name: String,
}

impl Socket {
    /// A fresh abstract socket, named after the shim's pid and the clock
    /// (two shims of one network namespace never share a name).
    pub fn open() -> io::Result<Socket> {
        let fd = unix_dgram()?;
        let one: libc::c_int = 1;
        // SAFETY: a valid socket and an int option.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PASSCRED,
                (&one as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("shim-notify-{}-{nanos:x}", std::process::id());
        let (addr, len) = sockaddr(&format!("@{name}"))?;
        // SAFETY: a valid socket and an address of `len` bytes.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_un).cast(),
                len,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Socket {
            fd,
            name: format!("@{name}"),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Takes up to PER_WAKE datagrams, each with the sender's pid as the
    /// kernel gave it (0 when it could not say, or for a sender outside the
    /// namespace). Oversized and credential-less datagrams are left out.
    /// Also says whether it stopped at the bound (more may be queued).
    pub fn receive(&self) -> (Vec<Datagram>, bool) {
        let mut got = Vec::new();
        for _ in 0..PER_WAKE {
            match self.receive_one() {
                Ok(Some(one)) => got.extend(one),
                Ok(None) => return (got, false),
                Err(e) => {
                    diag::debug!("reading the notification socket: {e}");
                    return (got, false);
                }
            }
        }
        (got, true)
    }

    /// Ok(None): nothing queued. Ok(Some(None)): a datagram was taken but
    /// ignored.
    fn receive_one(&self) -> io::Result<Option<Option<Datagram>>> {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // Room for one SCM_CREDENTIALS message (and alignment).
        let mut control = [0u64; 16];
        // SAFETY: a zeroed msghdr is a valid empty one.
        let mut msg: libc::msghdr = unsafe { MaybeUninit::zeroed().assume_init() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = size_of_val(&control) as _;
        // SAFETY: `msg` points at buffers that outlive the call.
        let n = unsafe {
            libc::recvmsg(
                self.fd.as_raw_fd(),
                &mut msg,
                libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC,
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            return match err.kind() {
                io::ErrorKind::WouldBlock => Ok(None),
                io::ErrorKind::Interrupted => Ok(Some(None)),
                _ => Err(err),
            };
        }
        let mut pid = None;
        // SAFETY: the kernel filled msg_control; the CMSG macros walk it
        // within msg_controllen.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            while !cmsg.is_null() {
                let c = &*cmsg;
                if c.cmsg_level == libc::SOL_SOCKET && c.cmsg_type == libc::SCM_CREDENTIALS {
                    let cred =
                        std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const libc::ucred);
                    pid = Some(cred.pid);
                } else if c.cmsg_level == libc::SOL_SOCKET && c.cmsg_type == libc::SCM_RIGHTS {
                    // Descriptors passed along (FDSTORE): not kept.
                    let data = libc::CMSG_DATA(cmsg) as *const libc::c_int;
                    let count = (c.cmsg_len as usize - libc::CMSG_LEN(0) as usize)
                        / size_of::<libc::c_int>();
                    for i in 0..count {
                        drop(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i))));
                    }
                }
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
        }
        if msg.msg_flags & libc::MSG_TRUNC != 0 {
            diag::debug!("ignored a notification larger than {MAX_DATAGRAM} bytes");
            return Ok(Some(None));
        }
        buf.truncate(n as usize);
        Ok(Some(pid.map(|p| (p, buf))))
    }
}

/// A supervisor's own NOTIFY_SOCKET above the shim (systemd, podman): the
/// shim passes the app's readiness on to it.
pub struct Upstream {
    fd: OwnedFd,
    addr: libc::sockaddr_un,
    len: libc::socklen_t,
}

impl Upstream {
    pub fn connect(value: &OsStr) -> Option<Upstream> {
        let text = value.to_str()?;
        let (addr, len) = sockaddr(text).ok()?;
        let fd = unix_dgram().ok()?;
        Some(Upstream { fd, addr, len })
    }

    /// Sends one datagram, never waiting.
    pub fn send(&self, datagram: &str) {
        // SAFETY: a valid socket, a buffer and an address of `len` bytes.
        let rc = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                datagram.as_ptr().cast(),
                datagram.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                (&self.addr as *const libc::sockaddr_un).cast(),
                self.len,
            )
        };
        if rc < 0 {
            diag::debug!(
                "could not pass a notification on: {}",
                io::Error::last_os_error()
            );
        }
    }
}

fn unix_dgram() -> io::Result<OwnedFd> {
    // SAFETY: no pointers; the result is checked and then owned.
    let fd = unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A unix socket address: a path, or `@name` for the abstract namespace.
fn sockaddr(text: &str) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: a zeroed sockaddr_un is valid.
    let mut addr: libc::sockaddr_un = unsafe { MaybeUninit::zeroed().assume_init() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let (bytes, abstract_) = match text.strip_prefix('@') {
        Some(name) => (name.as_bytes(), true),
        None => (text.as_bytes(), false),
    };
    let start = usize::from(abstract_);
    if bytes.is_empty() || start + bytes.len() >= addr.sun_path.len() {
        return Err(io::ErrorKind::InvalidInput.into());
    }
    for (i, &b) in bytes.iter().enumerate() {
        addr.sun_path[start + i] = b as libc::c_char;
    }
    let base = std::mem::offset_of!(libc::sockaddr_un, sun_path);
    // An abstract name is exactly its bytes (after the leading NUL); a path
    // ends at its NUL.
    let len = base + start + bytes.len() + usize::from(!abstract_);
    Ok((addr, len as libc::socklen_t))
}

/// STATUS= lines at most one a second, the latest text winning.
#[derive(Default)]
pub struct Pacer {
    last: Option<std::time::Instant>,
    waiting: Option<(i32, String)>,
}

impl Pacer {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(1);

    /// The text to write now, if its turn has come; otherwise it waits
    /// (replacing any older one).
    pub fn offer(&mut self, pid: i32, text: String) -> Option<(i32, String)> {
        let now = std::time::Instant::now();
        if self.last.is_some_and(|t| now < t + Self::EVERY) {
            self.waiting = Some((pid, text));
            return None;
        }
        self.last = Some(now);
        Some((pid, text))
    }

    /// When the waiting text's turn comes.
    pub fn due(&self) -> Option<std::time::Instant> {
        self.waiting.as_ref()?;
        self.last.map(|t| t + Self::EVERY)
    }

    /// The waiting text, whether or not its turn has come (at the exit).
    pub fn take_waiting(&mut self) -> Option<(i32, String)> {
        self.waiting.take()
    }

    /// The waiting text, once its turn has come.
    pub fn take_due(&mut self) -> Option<(i32, String)> {
        let due = self.due()?;
        let now = std::time::Instant::now();
        if now < due {
            return None;
        }
        self.last = Some(now);
        self.waiting.take()
    }
}

/// The watchdog: the app must say WATCHDOG=1 at least every `period`.
#[derive(Debug, Clone, Copy)]
pub struct Watchdog {
    pub period: std::time::Duration,
    pub due: std::time::Instant,
}

impl Watchdog {
    pub fn new(period: std::time::Duration) -> Watchdog {
        Watchdog {
            period,
            due: Self::after(period),
        }
    }

    pub fn ping(&mut self) {
        self.due = Self::after(self.period);
    }

    /// Now + `period`; a period too long for the clock (`--watchdog 1e19`)
    /// is a century, which never comes either.
    fn after(period: std::time::Duration) -> std::time::Instant {
        let now = std::time::Instant::now();
        now.checked_add(period)
            .unwrap_or_else(|| now + std::time::Duration::from_secs(100 * 365 * 86_400))
    }
}

/// The ready file: exists exactly while the app is ready.
pub struct ReadyFile {
    path: PathBuf,
    /// STOPPING=1 or a stop: never again.
    retired: bool,
}

impl ReadyFile {
    pub fn new(path: PathBuf) -> ReadyFile {
        // Left over from an earlier run, it would say ready too soon.
        let _ = std::fs::remove_file(&path);
        ReadyFile {
            path,
            retired: false,
        }
    }

    /// Created atomically: written beside it, then renamed into place.
    pub fn create(&self) {
        if self.retired {
            return;
        }
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(OsString::from(format!(".{}.tmp", std::process::id())));
        let tmp = PathBuf::from(tmp);
        let result =
            std::fs::write(&tmp, b"ready\n").and_then(|()| std::fs::rename(&tmp, &self.path));
        if let Err(e) = result {
            let _ = std::fs::remove_file(&tmp);
            diag::warning!(
                "could not create the ready file {}: {e}",
                self.path.display()
            );
        }
    }

    pub fn remove(&self) {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                diag::warning!(
                    "could not remove the ready file {}: {e}",
                    self.path.display()
                );
            }
            _ => {}
        }
    }

    /// Removed for good (STOPPING=1, a stop, the shim's exit).
    pub fn retire(&mut self) {
        self.retired = true;
        self.remove();
    }
}

/// `shim probe FILE`: 0 when FILE exists, 1 when not, 2 for a usage error;
/// silent either way (an exec probe for the ready file).
pub fn probe(args: &[OsString]) -> i32 {
    match args {
        [file] => i32::from(!Path::new(file).exists()),
        _ => crate::cli::usage_error("probe takes exactly one FILE (shim probe FILE)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_are_newline_separated_assignments() {
        let got = parse(b"READY=1\nSTATUS=warming up\nMAINPID=7\nWATCHDOG=1\nbogus\n");
        assert_eq!(
            got,
            [
                Notice::Ready,
                Notice::Status("warming up".into()),
                Notice::WatchdogPing
            ]
        );
        assert_eq!(
            parse(b"WATCHDOG=trigger\nWATCHDOG_USEC=5000000\nRELOADING=1\nSTOPPING=1"),
            [
                Notice::WatchdogTrigger,
                Notice::WatchdogUsec(5_000_000),
                Notice::Reloading,
                Notice::Stopping
            ]
        );
        assert!(parse(b"READY=0\nWATCHDOG_USEC=x\n\xff\xfe").is_empty());
    }

    #[test]
    fn socket_addresses_are_paths_or_abstract_names() {
        let (a, len) = sockaddr("@x").unwrap();
        assert_eq!((a.sun_path[0], a.sun_path[1] as u8), (0, b'x'));
        assert_eq!(len as usize, 2 + 2);
        let (_, len) = sockaddr("/run/n").unwrap();
        assert_eq!(len as usize, 2 + 6 + 1);
        assert!(sockaddr("@").is_err());
        assert!(sockaddr(&"x".repeat(200)).is_err());
    }
}
