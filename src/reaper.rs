//! Reaping: wait statuses (decoded here and nowhere else), what /proc says of
//! a zombie before it goes, and the list of live descendants.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Exited(i32),
    Signaled { signo: i32, core_dumped: bool },
}

impl Status {
    /// Decodes a `waitid` result: the one place a wait status is read.
    fn from_siginfo(info: &libc::siginfo_t) -> Status {
        // SAFETY: for a CLD_* si_code the kernel sets si_status.
        let status = unsafe { info.si_status() };
        match info.si_code {
            libc::CLD_EXITED => Status::Exited(status),
            libc::CLD_DUMPED => Status::Signaled {
                signo: status,
                core_dumped: true,
            },
            _ => Status::Signaled {
                signo: status,
                core_dumped: false,
            },
        }
    }

    /// The conventional exit code: the code, or 128+N for signal N.
    pub fn exit_code(self) -> i32 {
        match self {
            Status::Exited(code) => code,
            Status::Signaled { signo, .. } => 128 + signo,
        }
    }
}

/// A process the shim has reaped.
#[derive(Debug, Clone)]
pub struct Reaped {
    pub pid: i32,
    /// Its process group while it was a zombie, if /proc could tell.
    pub pgid: Option<i32>,
    pub comm: Option<Comm>,
    pub status: Status,
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

pub enum Reap {
    One(Reaped),
    /// Children exist, but none has exited yet.
    NoneReady,
    /// No children at all (ECHILD).
    NoChildren,
}

/// /proc, opened once, if it is this PID namespace's: a shim started in a
/// new namespace without its own /proc mounted would otherwise read other
/// processes' names. Close-on-exec, like every descriptor the shim holds.
pub fn open_proc() -> Option<OwnedFd> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // SAFETY: getpid cannot fail.
    let me = unsafe { libc::getpid() };
    if stat.split(' ').next().and_then(|p| p.parse().ok()) != Some(me) {
        return None;
    }
    let dir = std::fs::File::open("/proc").ok()?;
    Some(dir.into())
}

/// Reaps one exited child, if any. It first looks with WNOWAIT, so the
/// process stays a zombie while its name (and, if a signal ended it, its
/// group) is read (after the reap its PID may belong to someone else), then
/// reaps that PID only. `want_details(pid)` says whether those reads are
/// worth their system calls: with events off, an orphan's name is never shown.
/// Without `proc` (nothing will ever show a name or a group) it reaps in one
/// call, as a bare wait loop would.
pub fn reap_one(proc: Option<&OwnedFd>, want_details: impl Fn(i32) -> bool) -> io::Result<Reap> {
    let peek = if proc.is_some() { libc::WNOWAIT } else { 0 };
    let (pid, peeked) = match waitid(libc::P_ALL, 0, peek) {
        Ok(Some(found)) => found,
        Ok(None) => return Ok(Reap::NoneReady),
        Err(e) if e.raw_os_error() == Some(libc::ECHILD) => return Ok(Reap::NoChildren),
        Err(e) => return Err(e),
    };
    let Some(dir) = proc else {
        return Ok(Reap::One(Reaped {
            pid,
            pgid: None,
            comm: None,
            status: peeked,
        }));
    };
    let (comm, pgid) = if want_details(pid) {
        // Only a signal death needs the group (was the signal forwarded to
        // it?); getpgid answers for a zombie too.
        let pgid = matches!(peeked, Status::Signaled { .. })
            // SAFETY: getpgid only reads; `pid` is our unreaped child.
            .then(|| unsafe { libc::getpgid(pid) })
            .filter(|g| *g > 0);
        (read_comm(dir, pid), pgid)
    } else {
        (None, None)
    };
    match waitid(libc::P_PID, pid as libc::id_t, 0)? {
        Some((_, status)) => Ok(Reap::One(Reaped {
            pid,
            pgid,
            comm,
            status,
        })),
        // Seen a moment ago and only the shim reaps it: cannot happen, but
        // looking again is always safe.
        None => Ok(Reap::NoneReady),
    }
}

/// /proc/PID/comm, through the /proc directory held open (no path walk
/// from the root), without its newline.
fn read_comm(proc: &OwnedFd, pid: i32) -> Option<Comm> {
    let mut path = [0u8; 32];
    let path = comm_path(&mut path, pid)?;
    // SAFETY: a valid directory fd and NUL-terminated path; the result is
    // checked and owned below.
    let fd = unsafe {
        libc::openat(
            proc.as_raw_fd(),
            path.as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return None;
    }
    // SAFETY: `fd` was just opened and is owned by nothing else.
    let file = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut comm = Comm {
        bytes: [0; 64],
        len: 0,
    };
    // SAFETY: `comm.bytes` is valid for writes of its length.
    let n = unsafe {
        libc::read(
            file.as_raw_fd(),
            comm.bytes.as_mut_ptr().cast(),
            comm.bytes.len(),
        )
    };
    let mut len = usize::try_from(n).ok()?;
    if len > 0 && comm.bytes[len - 1] == b'\n' {
        len -= 1;
    }
    comm.len = u8::try_from(len).ok()?;
    Some(comm)
}

/// "PID/comm\0" in `buf`, digits by hand: no allocation, no formatting
/// machinery and no libc memcpy (slow for a few bytes in musl) per orphan.
fn comm_path(buf: &mut [u8; 32], pid: i32) -> Option<&std::ffi::CStr> {
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
    for (i, &b) in b"/comm\0".iter().enumerate() {
        buf[digits + i] = b;
    }
    std::ffi::CStr::from_bytes_until_nul(&buf[..]).ok()
}

/// waitid(2) for an exited child, never blocking. Ok(None): none has exited.
fn waitid(
    idtype: libc::idtype_t,
    id: libc::id_t,
    extra: libc::c_int,
) -> io::Result<Option<(i32, Status)>> {
    let mut info = MaybeUninit::<libc::siginfo_t>::zeroed();
    loop {
        // SAFETY: `info` is valid for writes; the flags never block.
        let rc = unsafe {
            libc::waitid(
                idtype,
                id,
                info.as_mut_ptr(),
                libc::WEXITED | libc::WNOHANG | extra,
            )
        };
        if rc == 0 {
            break;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    // SAFETY: zeroed, then filled by a successful waitid.
    let info = unsafe { info.assume_init() };
    // SAFETY: with WNOHANG and nothing to report, the kernel leaves si_pid 0.
    let pid = unsafe { info.si_pid() };
    Ok((pid != 0).then(|| (pid, Status::from_siginfo(&info))))
}

/// The fields of /proc/PID/stat the shim uses.
#[derive(Debug, Clone)]
pub struct Stat {
    pub pid: i32,
    pub state: u8,
    pub ppid: i32,
    pub pgid: i32,
}

/// Reads /proc/PID/stat, which still answers while PID is a zombie.
pub fn read_stat(pid: i32) -> Option<Stat> {
    let text = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
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
    let mut fields = rest.split(' ');
    let state = *fields.next()?.as_bytes().first()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgid = fields.next()?.parse().ok()?;
    Some(Stat {
        pid,
        state,
        ppid,
        pgid,
    })
}

/// Every live (not zombie) descendant of the shim, found by walking parent
/// links in /proc. Used only when the shim is not PID 1; as PID 1, kill(-1)
/// reaches every other process in the namespace at once.
pub fn descendants() -> Vec<Stat> {
    // SAFETY: getpid cannot fail.
    let me = unsafe { libc::getpid() };
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let all: Vec<Stat> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(read_stat)
        .collect();
    let parents: std::collections::HashMap<i32, i32> =
        all.iter().map(|s| (s.pid, s.ppid)).collect();
    let parent_of = |pid: i32| parents.get(&pid).copied();
    all.iter()
        .filter(|s| s.state != b'Z' && s.pid != me)
        .filter(|s| {
            // Bounded walk: parent links always lead to 0 or 1 eventually,
            // but never trust /proc to be consistent mid-change.
            let mut ppid = s.ppid;
            for _ in 0..all.len() {
                if ppid == me {
                    return true;
                }
                match parent_of(ppid) {
                    Some(p) if ppid > 1 => ppid = p,
                    _ => return false,
                }
            }
            false
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comm_path_is_pid_slash_comm() {
        let mut buf = [0xffu8; 32];
        for (pid, want) in [
            (1, "1/comm"),
            (42, "42/comm"),
            (i32::MAX, "2147483647/comm"),
        ] {
            assert_eq!(comm_path(&mut buf, pid).unwrap().to_str().unwrap(), want);
        }
        assert!(comm_path(&mut buf, -1).is_none());
    }

    #[test]
    fn stat_parsing_survives_odd_names() {
        let s = parse_stat(b"42 (a (b) \xff c) Z 7 42 42 0 -1").unwrap();
        assert_eq!((s.pid, s.state, s.ppid, s.pgid), (42, b'Z', 7, 42));
        assert!(parse_stat(b"garbage").is_none());
    }

    #[test]
    fn exit_codes_follow_the_shell_convention() {
        assert_eq!(Status::Exited(3).exit_code(), 3);
        assert_eq!(
            Status::Signaled {
                signo: 9,
                core_dumped: false
            }
            .exit_code(),
            137
        );
    }
}
