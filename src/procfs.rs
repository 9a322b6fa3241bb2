//! /proc: the one owner of the shim's view of other processes.
//!
//! /proc is opened once and checked to be this PID namespace's own (a shim
//! started in a new namespace without its own /proc mounted would otherwise
//! read, and signal, the host's processes by numbers that mean something
//! else here). Every read goes through that descriptor, never a path from
//! the root. Without it, nothing is scanned.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};

pub struct Proc {
    dir: OwnedFd,
}

/// The fields of /proc/PID/stat the shim uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub pid: i32,
    pub state: u8,
    pub ppid: i32,
    pub pgid: i32,
    pub threads: i64,
    /// Clock ticks after boot: with the pid, it names one process for good.
    pub start: u64,
}

impl Stat {
    /// Alive, for signalling: not a zombie, or a zombie thread-group leader
    /// whose other threads still run (it exited with pthread_exit; a plain
    /// zombie counts itself alone).
    pub fn alive(&self) -> bool {
        self.state != b'Z' || self.threads > 1
    }
}

/// A process's name, as /proc/PID/comm gave it, kept inline: an orphan storm
/// allocates nothing for the names it reports.
#[derive(Clone, Copy)]
pub struct Comm {
    bytes: [u8; 64],
    len: u8,
}

impl Comm {
    /// The name as text (the kernel takes any bytes for a name; bytes that
    /// are not UTF-8 become U+FFFD, which allocates only then).
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.bytes[..usize::from(self.len)])
    }
}

impl std::fmt::Debug for Comm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.text().fmt(f)
    }
}

/// A process as a scan saw it.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    pub stat: Stat,
    /// Its parent links lead to the shim.
    pub descendant: bool,
}

/// How to signal one process found by a scan.
pub enum Handle {
    /// A pidfd: reaches that process and no other, even after its pid is
    /// freed and reused.
    Fd(OwnedFd),
    /// Its pid, where the kernel has no pidfds (before 5.3) or the shim has
    /// no descriptor left for one.
    Pid(i32),
}

impl Proc {
    /// /proc, if it is this PID namespace's. Close-on-exec, like every
    /// descriptor the shim holds.
    pub fn open() -> Option<Proc> {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open("/proc")
            .ok()?;
        let proc = Proc { dir: dir.into() };
        let mut buf = [0u8; 512];
        let own = proc
            .read_at(c"self/stat", &mut buf)
            .and_then(parse_stat)
            .is_some_and(|s| s.pid == std::process::id() as i32);
        own.then_some(proc)
    }

    /// Opens a file under /proc through the held descriptor (no path walk
    /// from the root).
    fn open_at(&self, path: &CStr, flags: libc::c_int) -> Option<OwnedFd> {
        // SAFETY: a valid directory fd and NUL-terminated path; the result is
        // checked and owned below.
        let fd = unsafe {
            libc::openat(
                self.dir.as_raw_fd(),
                path.as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC | flags,
            )
        };
        // SAFETY: `fd` was just opened and is owned by nothing else.
        (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// Reads up to `buf.len()` bytes of a file under /proc.
    fn read_at<'b>(&self, path: &CStr, buf: &'b mut [u8]) -> Option<&'b [u8]> {
        let mut file = std::fs::File::from(self.open_at(path, 0)?);
        let n = std::io::Read::read(&mut file, buf).ok()?;
        Some(&buf[..n])
    }

    /// A whole file of the shim's own under /proc (`self/cgroup`), up to 1 MiB.
    pub fn read_self(&self, path: &CStr) -> Option<Vec<u8>> {
        let file = std::fs::File::from(self.open_at(path, 0)?);
        let mut out = Vec::with_capacity(4096);
        std::io::Read::read_to_end(&mut std::io::Read::take(file, 1 << 20), &mut out).ok()?;
        Some(out)
    }

    /// /proc/PID/comm without its newline (readable while PID is a zombie).
    pub fn comm(&self, pid: i32) -> Option<Comm> {
        let mut path = [0u8; 32];
        let path = pid_path(&mut path, pid, b"/comm\0")?;
        let mut comm = Comm {
            bytes: [0; 64],
            len: 0,
        };
        let mut len = self.read_at(path, &mut comm.bytes)?.len();
        if len > 0 && comm.bytes[len - 1] == b'\n' {
            len -= 1;
        }
        comm.len = u8::try_from(len).ok()?;
        Some(comm)
    }

    /// /proc/PID/stat (readable while PID is a zombie).
    pub fn stat(&self, pid: i32) -> Option<Stat> {
        let mut path = [0u8; 32];
        let path = pid_path(&mut path, pid, b"/stat\0")?;
        let mut buf = [0u8; 1024];
        parse_stat(self.read_at(path, &mut buf)?)
    }

    /// Whether `pid`'s parent links lead to `me` (a bounded walk).
    pub fn descends_from(&self, pid: i32, me: i32) -> bool {
        let mut p = pid;
        for _ in 0..64 {
            match self.stat(p) {
                Some(s) if s.ppid == me => return true,
                Some(s) if s.ppid > 1 => p = s.ppid,
                _ => return false,
            }
        }
        false
    }

    /// Every process of the namespace, as /proc lists them now.
    fn all(&self) -> Vec<Stat> {
        // A directory stream of its own: readdir keeps a position.
        let Some(fd) = self.open_at(c".", libc::O_DIRECTORY) else {
            return Vec::new();
        };
        let fd = fd.into_raw_fd();
        // SAFETY: fdopendir takes over the descriptor; closedir below
        // releases both.
        let dir = unsafe { libc::fdopendir(fd) };
        if dir.is_null() {
            // SAFETY: fdopendir failed, so `fd` is still ours alone.
            drop(unsafe { OwnedFd::from_raw_fd(fd) });
            return Vec::new();
        }
        let mut pids = Vec::new();
        loop {
            // SAFETY: `dir` is an open stream; the entry is read before the
            // next call.
            let entry = unsafe { libc::readdir(dir) };
            if entry.is_null() {
                break;
            }
            // SAFETY: d_name is NUL-terminated.
            let name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) };
            if let Some(pid) = std::str::from_utf8(name.to_bytes())
                .ok()
                .and_then(|s| s.parse::<i32>().ok())
            {
                pids.push(pid);
            }
        }
        // SAFETY: `dir` is open and not used after this.
        unsafe { libc::closedir(dir) };
        pids.into_iter().filter_map(|p| self.stat(p)).collect()
    }

    /// Every process of the namespace but `me` (zombies included: a zombie
    /// still holds its process group's id), each marked whether it descends
    /// from `me` (found by walking parent links).
    pub fn scan(&self, me: i32) -> Vec<Seen> {
        let all = self.all();
        let parents: std::collections::HashMap<i32, i32> =
            all.iter().map(|s| (s.pid, s.ppid)).collect();
        let is_descendant = |s: &Stat| {
            // Bounded walk: parent links lead to 0 or 1 eventually, but never
            // trust /proc to be consistent mid-change.
            let mut ppid = s.ppid;
            for _ in 0..all.len() {
                if ppid == me {
                    return true;
                }
                match parents.get(&ppid) {
                    Some(&p) if ppid > 1 => ppid = p,
                    _ => return false,
                }
            }
            false
        };
        all.iter()
            .filter(|s| s.pid != me)
            .map(|s| Seen {
                stat: *s,
                descendant: is_descendant(s),
            })
            .collect()
    }

    /// A handle on the process `seen` describes, opened now and checked to
    /// still name it (same start time), so a pid freed and reused since the
    /// scan is never signalled. None: it is gone.
    pub fn handle(&self, seen: &Stat) -> Option<Handle> {
        match pidfd_open(seen.pid) {
            Ok(fd) => {
                // The pidfd names whoever had the pid at the open; that is
                // the scanned process only if its start time agrees.
                let same = self
                    .stat(seen.pid)
                    .is_some_and(|now| now.start == seen.start);
                same.then_some(Handle::Fd(fd))
            }
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOSYS | libc::EMFILE | libc::ENFILE)
                ) =>
            {
                Some(Handle::Pid(seen.pid))
            }
            Err(_) => None,
        }
    }
}

/// Clock ticks since boot, the unit of a process's start time in /proc.
pub fn ticks_now() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    // SAFETY: sysconf only reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    ts.tv_sec as u64 * hz + ts.tv_nsec as u64 * hz / 1_000_000_000
}

impl AsFd for Proc {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.dir.as_fd()
    }
}

/// pidfd_open(2), close-on-exec.
fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: no memory is passed; the result is checked and then owned.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0u32) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// "PID<suffix>" in `buf`, digits by hand: no allocation, no formatting
/// machinery and no libc memcpy (slow for a few bytes in musl) per orphan.
fn pid_path<'b>(buf: &'b mut [u8; 32], pid: i32, suffix: &[u8]) -> Option<&'b CStr> {
    let mut n = u32::try_from(pid).ok()?;
    let mut digits = 1;
    let mut rest = n / 10;
    while rest > 0 {
        digits += 1;
        rest /= 10;
    }
    for i in (0..digits).rev() {
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    for (i, &b) in suffix.iter().enumerate() {
        buf[digits + i] = b;
    }
    CStr::from_bytes_until_nul(&buf[..]).ok()
}

/// `pid (comm) S ppid pgrp ...`: comm may hold spaces and parentheses (and
/// any bytes), so the fields after it start at the last ')'.
fn parse_stat(text: &[u8]) -> Option<Stat> {
    let open = text.iter().position(|&b| b == b'(')?;
    let close = text.iter().rposition(|&b| b == b')')?;
    let pid = std::str::from_utf8(&text[..open])
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let rest = std::str::from_utf8(text.get(close + 2..)?).ok()?;
    // Fields from the state on: 3 state, 4 ppid, 5 pgrp, ... 20 num_threads,
    // ... 22 starttime (proc(5)), so index = field - 3.
    let fields: Vec<&str> = rest.split(' ').take(20).collect();
    Some(Stat {
        pid,
        state: *fields.first()?.as_bytes().first()?,
        ppid: fields.get(1)?.parse().ok()?,
        pgid: fields.get(2)?.parse().ok()?,
        threads: fields.get(17)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_paths_are_pid_slash_file() {
        let mut buf = [0xffu8; 32];
        for (pid, want) in [
            (1, "1/comm"),
            (42, "42/comm"),
            (i32::MAX, "2147483647/comm"),
        ] {
            let got = pid_path(&mut buf, pid, b"/comm\0").unwrap();
            assert_eq!(got.to_str().unwrap(), want);
        }
        assert!(pid_path(&mut buf, -1, b"/comm\0").is_none());
    }

    #[test]
    fn stat_parsing_survives_odd_names() {
        let line = b"42 (a (b) \xff c) Z 7 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 3 0 987 0";
        let s = parse_stat(line).unwrap();
        assert_eq!((s.pid, s.state, s.ppid, s.pgid), (42, b'Z', 7, 42));
        assert_eq!((s.threads, s.start), (3, 987));
        assert!(s.alive(), "a zombie leader with live threads is alive");
        assert!(parse_stat(b"garbage").is_none());
    }

    #[test]
    fn this_process_reads_itself() {
        let Some(proc) = Proc::open() else { return };
        let me = std::process::id() as i32;
        let s = proc.stat(me).unwrap();
        assert_eq!(s.pid, me);
        assert!(s.alive() && s.threads >= 1 && s.start > 0);
        assert!(proc.comm(me).is_some());
    }
}
