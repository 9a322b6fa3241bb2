//! Reaping: wait statuses (decoded here and nowhere else), and what /proc
//! says of a zombie before it goes.

use std::io;
use std::mem::MaybeUninit;

use crate::procfs::{Comm, Proc};
use crate::signals::Signal;

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Exited(i32),
    Signaled { signal: Signal, core_dumped: bool },
}

impl Status {
    /// Decodes a `waitid` result: the one place a wait status is read.
    fn from_siginfo(info: &libc::siginfo_t) -> Status {
        // SAFETY: for a CLD_* si_code the kernel sets si_status.
        let status = unsafe { info.si_status() };
        let core_dumped = info.si_code == libc::CLD_DUMPED;
        match (info.si_code, Signal::new(status)) {
            (libc::CLD_EXITED, _) | (_, None) => Status::Exited(status),
            (_, Some(signal)) => Status::Signaled {
                signal,
                core_dumped,
            },
        }
    }

    /// The conventional exit code: the code, or 128+N for signal N.
    pub fn exit_code(self) -> i32 {
        match self {
            Status::Exited(code) => code,
            Status::Signaled { signal, .. } => 128 + signal.number(),
        }
    }
}

/// A process the shim has reaped.
#[derive(Debug, Clone)]
pub struct Reaped {
    pub pid: i32,
    /// Its process group while it was a zombie, if asked for.
    pub pgid: Option<i32>,
    pub comm: Option<Comm>,
    pub status: Status,
    /// What it used, as the kernel counts it at the reap (its own and that
    /// of the descendants it waited for), if asked for.
    pub usage: Option<Usage>,
}

/// A reaped process's resource usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub max_rss_kib: u64,
    pub cpu_user_ms: u64,
    pub cpu_sys_ms: u64,
}

impl Usage {
    fn from_rusage(ru: &libc::rusage) -> Usage {
        let ms = |t: libc::timeval| t.tv_sec as u64 * 1000 + t.tv_usec as u64 / 1000;
        Usage {
            // Linux reports ru_maxrss in KiB.
            max_rss_kib: ru.ru_maxrss.max(0) as u64,
            cpu_user_ms: ms(ru.ru_utime),
            cpu_sys_ms: ms(ru.ru_stime),
        }
    }
}

pub enum Reap {
    One(Reaped),
    /// Children exist, but none has exited yet.
    NoneReady,
    /// No children at all (ECHILD).
    NoChildren,
}

/// Reaps one exited child, if any. With `look`, it first looks with
/// WNOWAIT, so the process stays a zombie while its name (from `proc`, if
/// the shim has its own) and, if a signal ended it, its group are read
/// (after the reap its PID may belong to someone else), then reaps that PID
/// only; `want_details(pid)` says whether those reads are worth their system
/// calls. Without `look` (nothing will ever show a name or a group) it reaps
/// in one call, as a bare wait loop would.
pub fn reap_one(
    look: bool,
    proc: Option<&Proc>,
    want_details: impl Fn(i32) -> bool,
) -> io::Result<Reap> {
    let peek = if look { libc::WNOWAIT } else { 0 };
    let (pid, peeked) = match waitid(libc::P_ALL, 0, peek) {
        Ok(Some(found)) => found,
        Ok(None) => return Ok(Reap::NoneReady),
        Err(e) if e.raw_os_error() == Some(libc::ECHILD) => return Ok(Reap::NoChildren),
        Err(e) => return Err(e),
    };
    if !look {
        return Ok(Reap::One(Reaped {
            pid,
            pgid: None,
            comm: None,
            status: peeked,
            usage: None,
        }));
    }
    let (comm, pgid) = if want_details(pid) {
        // Only a signal death needs the group (was the signal forwarded to
        // it?); getpgid answers for a zombie too.
        let pgid = matches!(peeked, Status::Signaled { .. })
            // SAFETY: getpgid only reads; `pid` is our unreaped child.
            .then(|| unsafe { libc::getpgid(pid) })
            .filter(|g| *g > 0);
        (proc.and_then(|p| p.comm(pid)), pgid)
    } else {
        (None, None)
    };
    match reap_with_usage(pid)? {
        Some((status, usage)) => Ok(Reap::One(Reaped {
            pid,
            pgid,
            comm,
            status,
            usage: Some(usage),
        })),
        // Seen a moment ago and only the shim reaps it: cannot happen, but
        // looking again is always safe.
        None => Ok(Reap::NoneReady),
    }
}

/// Reaps `pid`, an exited child, with its resource usage: the raw waitid
/// system call takes a `struct rusage` (the C library's wrapper does not),
/// so the status is still decoded from a siginfo, in one place.
fn reap_with_usage(pid: i32) -> io::Result<Option<(Status, Usage)>> {
    let mut info = MaybeUninit::<libc::siginfo_t>::zeroed();
    let mut ru = MaybeUninit::<libc::rusage>::zeroed();
    loop {
        // SAFETY: `info` and `ru` are valid for writes; WNOHANG never blocks.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_waitid,
                libc::P_PID,
                pid,
                info.as_mut_ptr(),
                libc::WEXITED | libc::WNOHANG,
                ru.as_mut_ptr(),
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
    let (info, ru) = unsafe { (info.assume_init(), ru.assume_init()) };
    // SAFETY: with WNOHANG and nothing to report, the kernel leaves si_pid 0.
    if unsafe { info.si_pid() } == 0 {
        return Ok(None);
    }
    Ok(Some((Status::from_siginfo(&info), Usage::from_rusage(&ru))))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_shell_convention() {
        assert_eq!(Status::Exited(3).exit_code(), 3);
        assert_eq!(
            Status::Signaled {
                signal: Signal::KILL,
                core_dumped: false
            }
            .exit_code(),
            137
        );
    }
}
