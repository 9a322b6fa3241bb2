//! Signal names (the one table) and the shim's synchronous signal plumbing.
//!
//! The shim installs no handlers. It blocks every signal before it forks and
//! takes them one at a time with `sigtimedwait`, so nothing is lost between the
//! fork and the loop, and the loop can sleep until a signal or a deadline.

use std::borrow::Cow;
use std::io;
use std::mem::MaybeUninit;
use std::time::Duration;

/// Standard signals, canonical name first; later rows are input-only aliases.
/// Names carry the `SIG` so `name` never allocates for them.
const TABLE: &[(&str, i32)] = &[
    ("SIGHUP", libc::SIGHUP),
    ("SIGINT", libc::SIGINT),
    ("SIGQUIT", libc::SIGQUIT),
    ("SIGILL", libc::SIGILL),
    ("SIGTRAP", libc::SIGTRAP),
    ("SIGABRT", libc::SIGABRT),
    ("SIGBUS", libc::SIGBUS),
    ("SIGFPE", libc::SIGFPE),
    ("SIGKILL", libc::SIGKILL),
    ("SIGUSR1", libc::SIGUSR1),
    ("SIGSEGV", libc::SIGSEGV),
    ("SIGUSR2", libc::SIGUSR2),
    ("SIGPIPE", libc::SIGPIPE),
    ("SIGALRM", libc::SIGALRM),
    ("SIGTERM", libc::SIGTERM),
    ("SIGSTKFLT", libc::SIGSTKFLT),
    ("SIGCHLD", libc::SIGCHLD),
    ("SIGCONT", libc::SIGCONT),
    ("SIGSTOP", libc::SIGSTOP),
    ("SIGTSTP", libc::SIGTSTP),
    ("SIGTTIN", libc::SIGTTIN),
    ("SIGTTOU", libc::SIGTTOU),
    ("SIGURG", libc::SIGURG),
    ("SIGXCPU", libc::SIGXCPU),
    ("SIGXFSZ", libc::SIGXFSZ),
    ("SIGVTALRM", libc::SIGVTALRM),
    ("SIGPROF", libc::SIGPROF),
    ("SIGWINCH", libc::SIGWINCH),
    ("SIGIO", libc::SIGIO),
    ("SIGPWR", libc::SIGPWR),
    ("SIGSYS", libc::SIGSYS),
    // Aliases, accepted on input only.
    ("SIGIOT", libc::SIGIOT),
    ("SIGPOLL", libc::SIGPOLL),
    ("SIGCLD", libc::SIGCHLD),
];

fn rtmin() -> i32 {
    libc::SIGRTMIN()
}

fn rtmax() -> i32 {
    libc::SIGRTMAX()
}

/// The canonical name of a signal: `SIGTERM`, `SIGRTMIN+3`, or `SIG32` for a
/// number the C library reserves for itself.
pub fn name(signo: i32) -> Cow<'static, str> {
    if let Some((n, _)) = TABLE.iter().find(|(_, s)| *s == signo) {
        return Cow::Borrowed(n);
    }
    if (rtmin()..=rtmax()).contains(&signo) {
        return match signo - rtmin() {
            0 => Cow::Borrowed("SIGRTMIN"),
            k => Cow::Owned(format!("SIGRTMIN+{k}")),
        };
    }
    Cow::Owned(format!("SIG{signo}"))
}

/// Parses a signal given as a number, or a name with or without `SIG`, in any
/// case (`TERM`, `sigterm`, `15`, `RTMIN+2`, `RTMAX-1`).
pub fn parse(text: &str) -> Result<i32, String> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        // The numbers between the standard signals and SIGRTMIN are the C
        // library's own (glibc's thread cancellation, for one): not for users.
        return match t.parse::<i32>() {
            Ok(n) if (1..=31).contains(&n) || (rtmin()..=rtmax()).contains(&n) => Ok(n),
            _ => Err(format!(
                "signal number {t} is not 1-31 or {}-{}",
                rtmin(),
                rtmax()
            )),
        };
    }
    let upper = t.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some((_, n)) = TABLE.iter().find(|(name, _)| name[3..] == *bare) {
        return Ok(*n);
    }
    let realtime = if bare == "RTMIN" {
        Some(rtmin())
    } else if bare == "RTMAX" {
        Some(rtmax())
    } else if let Some(k) = bare.strip_prefix("RTMIN+") {
        k.parse::<i32>().ok().and_then(|k| rtmin().checked_add(k))
    } else if let Some(k) = bare.strip_prefix("RTMAX-") {
        k.parse::<i32>().ok().and_then(|k| rtmax().checked_sub(k))
    } else {
        None
    };
    match realtime {
        Some(n) if (rtmin()..=rtmax()).contains(&n) => Ok(n),
        _ => Err(format!("unknown signal '{text}'")),
    }
}

/// SIGTERM, SIGINT and SIGQUIT (as received) ask the shim to stop.
pub fn is_stop_request(signo: i32) -> bool {
    matches!(signo, libc::SIGTERM | libc::SIGINT | libc::SIGQUIT)
}

/// Job-control signals, after which a shim that is not PID 1 suspends itself.
pub fn is_job_control(signo: i32) -> bool {
    matches!(signo, libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU)
}

fn full_set() -> libc::sigset_t {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigfillset initialises the set it is given; it cannot fail for a
    // valid pointer.
    unsafe {
        libc::sigfillset(set.as_mut_ptr());
        set.assume_init()
    }
}

/// Blocks every signal in the shim. Must run before the fork: a SIGCHLD (or a
/// SIGTERM) that arrives before the loop then waits, pending, instead of being
/// lost or killing the shim. The child empties its mask before exec.
pub fn block_all() -> io::Result<()> {
    let set = full_set();
    // SAFETY: `set` is an initialised sigset; the old mask is not wanted.
    let rc = unsafe { libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sets SIGCHLD back to its default if the shim's parent left it ignored, and
/// says whether it was. With SIGCHLD ignored the kernel reaps children itself
/// and waitid sees no exit statuses at all, so the shim could report nothing.
pub fn reclaim_sigchld() -> bool {
    // SAFETY: signal(2) with SIG_DFL installs no handler; the previous
    // disposition it returns is only compared.
    let previous = unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
    previous == libc::SIG_IGN
}

/// One signal taken from the pending set.
#[derive(Debug, Clone, Copy)]
pub struct Received {
    pub signo: i32,
    /// `si_code`: SI_USER for kill(2), SI_KERNEL or a CLD_* code otherwise.
    pub code: i32,
    /// `si_pid`: the sender, for SI_USER/SI_QUEUE and SIGCHLD.
    pub pid: i32,
}

impl Received {
    /// A SIGPIPE or SIGXFSZ the kernel raised because the shim itself wrote to
    /// a closed pipe or past a file-size limit. Blocked, it stays pending
    /// (even where its disposition is SIG_IGN: the kernel cannot know it still
    /// will be when the signal is unblocked), so it would otherwise reach
    /// `sigtimedwait` and be forwarded to the app as if someone had sent it.
    pub fn is_self_inflicted(&self, own_pid: i32) -> bool {
        matches!(self.signo, libc::SIGPIPE | libc::SIGXFSZ)
            && self.code == libc::SI_USER
            && self.pid == own_pid
    }
}

/// Sleeps until a signal is pending or `timeout` passes (`None`: no timeout).
/// Returns `None` on timeout or interruption. This is the shim's only sleep, so an idle shim
/// wakes up for nothing but signals.
pub fn wait(timeout: Option<Duration>) -> Option<Received> {
    let set = full_set();
    let ts = timeout.map(|d| libc::timespec {
        // Capped at i32::MAX seconds: time_t is 32 bits on some targets.
        tv_sec: d.as_secs().min(i32::MAX as u64) as _,
        tv_nsec: d.subsec_nanos() as _,
    });
    let ts_ptr = ts.as_ref().map_or(std::ptr::null(), |t| t as *const _);
    let mut info = MaybeUninit::<libc::siginfo_t>::zeroed();
    // SAFETY: `set` and `info` are valid for the call; `ts_ptr` is null or
    // points at a timespec that outlives it.
    let signo = unsafe { libc::sigtimedwait(&set, info.as_mut_ptr(), ts_ptr) };
    if signo <= 0 {
        // EAGAIN (timed out) or EINTR (a SIGSTOP/SIGCONT pair interrupted the
        // wait): either way the caller re-checks its deadline and waits again.
        return None;
    }
    // SAFETY: sigtimedwait filled `info` for the returned signal; it was
    // zeroed first, so si_pid reads 0 where the kernel set none.
    let info = unsafe { info.assume_init() };
    // SAFETY: as above; si_pid is the union member every sender sets.
    let pid = unsafe { info.si_pid() };
    Some(Received {
        signo,
        code: info.si_code,
        pid,
    })
}

/// Sends `signo` to `target` (a pid, or `-pgid` for a group). Returns false
/// when nothing matched (ESRCH), which is not worth reporting; other errors
/// are logged, and the shim goes on.
pub fn send(target: i32, signo: i32) -> bool {
    // SAFETY: kill(2) has no memory effects; any pid/signal pair is valid input.
    if unsafe { libc::kill(target, signo) } == 0 {
        return true;
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::ESRCH) {
        tracing::warn!("kill({target}, {}) failed: {err}", name(signo));
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_parse() {
        for signo in 1..=rtmax() {
            let n = name(signo);
            if n.starts_with("SIG3") && signo < rtmin() {
                continue; // reserved by the C library, numbers only
            }
            assert_eq!(parse(&n), Ok(signo), "{n}");
        }
    }

    #[test]
    fn parse_accepts_bare_lowercase_and_numbers() {
        assert_eq!(parse("term"), Ok(libc::SIGTERM));
        assert_eq!(parse("SIGHUP"), Ok(libc::SIGHUP));
        assert_eq!(parse("9"), Ok(9));
        assert_eq!(parse("RTMIN+2"), Ok(rtmin() + 2));
        assert_eq!(parse("sigrtmax-1"), Ok(rtmax() - 1));
        assert!(parse("0").is_err());
        assert!(parse("65").is_err());
        assert!(parse("32").is_err(), "reserved by the C library");
        assert!(parse("FOO").is_err());
        assert!(parse("RTMIN+99").is_err());
        assert!(parse("RTMIN+2147483647").is_err());
        assert!(parse("RTMAX--2147483648").is_err());
        assert!(parse("").is_err());
    }
}
