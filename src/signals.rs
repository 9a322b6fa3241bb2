//! Signals: the type, the one table of names, and the shim's plumbing (the
//! kernel mask and the signalfd the loop waits on).
//!
//! The shim installs no handlers. It blocks every signal before it forks and
//! reads them from a signalfd, so nothing is lost between the fork and the
//! loop, and the loop can wait on signals and other descriptors together.
//!
//! Masks are set with raw system calls on the kernel's 64-bit set: the C
//! libraries keep 32-34 for themselves (glibc 32-33, musl 32-34) and silently
//! leave them out of `sigfillset`/`sigprocmask`, so a libc-built mask would
//! let those signals kill the shim (or, as PID 1, be lost).

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// A signal number, 1-64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Signal(i32);

impl Signal {
    pub const HUP: Signal = Signal(libc::SIGHUP);
    pub const INT: Signal = Signal(libc::SIGINT);
    pub const QUIT: Signal = Signal(libc::SIGQUIT);
    pub const ABRT: Signal = Signal(libc::SIGABRT);
    pub const KILL: Signal = Signal(libc::SIGKILL);
    pub const PIPE: Signal = Signal(libc::SIGPIPE);
    pub const TERM: Signal = Signal(libc::SIGTERM);
    pub const CHLD: Signal = Signal(libc::SIGCHLD);
    pub const CONT: Signal = Signal(libc::SIGCONT);
    pub const STOP: Signal = Signal(libc::SIGSTOP);
    pub const TSTP: Signal = Signal(libc::SIGTSTP);
    pub const TTIN: Signal = Signal(libc::SIGTTIN);
    pub const TTOU: Signal = Signal(libc::SIGTTOU);
    pub const XFSZ: Signal = Signal(libc::SIGXFSZ);

    /// The highest signal number the kernel knows.
    pub const MAX: i32 = 64;
    /// The kernel's first realtime signal (what bash, glibc tools, Python
    /// and Go call SIGRTMIN; the C libraries' own SIGRTMIN() is 35).
    const RTMIN: i32 = 34;

    /// A signal from a number the kernel gave (a wait status, a signalfd
    /// read): anything outside 1-64 is not a signal.
    pub fn new(signo: i32) -> Option<Signal> {
        (1..=Signal::MAX).contains(&signo).then_some(Signal(signo))
    }

    pub fn number(self) -> i32 {
        self.0
    }

    /// The name as bash's `kill -l` gives it on glibc, the same in every build.
    pub fn name(self) -> &'static str {
        NAMES[self.0 as usize]
    }

    /// SIGTERM, SIGINT and SIGQUIT (as received) ask the shim to stop.
    pub fn is_stop_request(self) -> bool {
        matches!(self, Signal::TERM | Signal::INT | Signal::QUIT)
    }

    /// The termination signals that, from elsewhere, still mean "stop" and
    /// not "crash": a terminal's Ctrl-C, a `kill` of the app itself.
    pub fn is_termination(self) -> bool {
        matches!(
            self,
            Signal::HUP | Signal::INT | Signal::QUIT | Signal::TERM
        )
    }

    /// Job-control signals, after which a shim that is not PID 1 suspends itself.
    pub fn is_job_control(self) -> bool {
        matches!(self, Signal::TSTP | Signal::TTIN | Signal::TTOU)
    }

    /// Parses a signal given as a number (1-64), or a name with or without
    /// `SIG`, in any case (`TERM`, `sigterm`, `15`, `RTMIN+2`, `RTMAX-1`).
    pub fn parse(text: &str) -> Result<Signal, String> {
        let t = text.trim();
        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
            return t
                .parse::<i32>()
                .ok()
                .and_then(Signal::new)
                .ok_or_else(|| format!("signal number {t} is not 1-64"));
        }
        let upper = t.to_ascii_uppercase();
        let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
        if let Some(n) = NAMES.iter().position(|name| name.get(3..) == Some(bare)) {
            return Ok(Signal(n as i32));
        }
        if let Some((_, n)) = ALIASES.iter().find(|(name, _)| *name == bare) {
            return Ok(Signal(*n));
        }
        let realtime = if let Some(k) = bare.strip_prefix("RTMIN+") {
            k.parse::<i32>()
                .ok()
                .and_then(|k| Signal::RTMIN.checked_add(k))
        } else if let Some(k) = bare.strip_prefix("RTMAX-") {
            k.parse::<i32>()
                .ok()
                .and_then(|k| Signal::MAX.checked_sub(k))
        } else {
            None
        };
        match realtime {
            Some(n) if (Signal::RTMIN..=Signal::MAX).contains(&n) => Ok(Signal(n)),
            _ => Err(format!("unknown signal '{text}'")),
        }
    }
}

/// Every signal's name by number (index 0 unused). 32 and 33 have no name of
/// their own: bash on glibc prints them as `SIG32` and `SIG33`.
const NAMES: [&str; 65] = [
    "",
    "SIGHUP",
    "SIGINT",
    "SIGQUIT",
    "SIGILL",
    "SIGTRAP",
    "SIGABRT",
    "SIGBUS",
    "SIGFPE",
    "SIGKILL",
    "SIGUSR1",
    "SIGSEGV",
    "SIGUSR2",
    "SIGPIPE",
    "SIGALRM",
    "SIGTERM",
    "SIGSTKFLT",
    "SIGCHLD",
    "SIGCONT",
    "SIGSTOP",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGURG",
    "SIGXCPU",
    "SIGXFSZ",
    "SIGVTALRM",
    "SIGPROF",
    "SIGWINCH",
    "SIGIO",
    "SIGPWR",
    "SIGSYS",
    "SIG32",
    "SIG33",
    "SIGRTMIN",
    "SIGRTMIN+1",
    "SIGRTMIN+2",
    "SIGRTMIN+3",
    "SIGRTMIN+4",
    "SIGRTMIN+5",
    "SIGRTMIN+6",
    "SIGRTMIN+7",
    "SIGRTMIN+8",
    "SIGRTMIN+9",
    "SIGRTMIN+10",
    "SIGRTMIN+11",
    "SIGRTMIN+12",
    "SIGRTMIN+13",
    "SIGRTMIN+14",
    "SIGRTMIN+15",
    "SIGRTMAX-14",
    "SIGRTMAX-13",
    "SIGRTMAX-12",
    "SIGRTMAX-11",
    "SIGRTMAX-10",
    "SIGRTMAX-9",
    "SIGRTMAX-8",
    "SIGRTMAX-7",
    "SIGRTMAX-6",
    "SIGRTMAX-5",
    "SIGRTMAX-4",
    "SIGRTMAX-3",
    "SIGRTMAX-2",
    "SIGRTMAX-1",
    "SIGRTMAX",
];

/// Other names accepted on input.
const ALIASES: &[(&str, i32)] = &[
    ("IOT", libc::SIGIOT),
    ("POLL", libc::SIGPOLL),
    ("CLD", libc::SIGCHLD),
];

/// A set of signals, as the kernel's 64-bit mask (bit N-1 is signal N).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SignalSet(u64);

impl SignalSet {
    /// Every signal that can be blocked: all of 1-64 but SIGKILL and SIGSTOP.
    pub fn full() -> SignalSet {
        SignalSet(!(bit(Signal::KILL) | bit(Signal::STOP)))
    }

    pub fn insert(&mut self, sig: Signal) {
        self.0 |= bit(sig);
    }

    pub fn contains(self, sig: Signal) -> bool {
        self.0 & bit(sig) != 0
    }
}

fn bit(sig: Signal) -> u64 {
    1 << (sig.0 - 1)
}

/// rt_sigprocmask(SIG_SETMASK) with the kernel's own set size, bypassing the
/// C library's filter. Async-signal-safe: the child calls it before exec.
fn set_mask(set: SignalSet) -> io::Result<()> {
    // SAFETY: the kernel reads 8 bytes from a valid u64 and writes nothing
    // (the old-set pointer is null).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &set.0 as *const u64,
            std::ptr::null_mut::<u64>(),
            8usize,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Blocks every signal in the shim. Must run before the fork: a SIGCHLD (or a
/// SIGTERM) that arrives before the loop then waits, pending, instead of being
/// lost or killing the shim. The child empties its mask before exec.
pub fn block_all() -> io::Result<()> {
    set_mask(SignalSet::full())
}

/// Empties the signal mask: for the child, between fork and exec.
pub fn unblock_all() -> io::Result<()> {
    set_mask(SignalSet::default())
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
    pub signal: Signal,
    /// `si_code`: SI_USER for kill(2), SI_KERNEL or a CLD_* code otherwise.
    pub code: i32,
    /// `si_pid`: the sender, for SI_USER/SI_QUEUE and SIGCHLD.
    pub pid: i32,
}

impl Received {
    /// A SIGPIPE or SIGXFSZ the kernel raised because the shim itself wrote to
    /// a closed pipe or past a file-size limit. Blocked, it stays pending, so
    /// it would otherwise be forwarded to the app as if someone had sent it.
    pub fn is_self_inflicted(&self) -> bool {
        matches!(self.signal, Signal::PIPE | Signal::XFSZ)
            && self.code == libc::SI_USER
            && self.pid == std::process::id() as i32
    }
}

/// The signalfd the loop reads every signal from: the one owner of the
/// pending signals once the loop runs.
pub struct SignalFd(OwnedFd);

impl SignalFd {
    /// A non-blocking, close-on-exec signalfd for the full kernel set (made
    /// with the raw call, like the mask, so 32-34 are in it).
    pub fn open() -> io::Result<SignalFd> {
        let set = SignalSet::full();
        // SAFETY: the kernel reads an 8-byte mask from a valid u64; the
        // result is checked and then owned.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_signalfd4,
                -1,
                &set.0 as *const u64,
                8usize,
                libc::SFD_NONBLOCK | libc::SFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new descriptor that nothing else owns.
        Ok(SignalFd(unsafe { OwnedFd::from_raw_fd(fd as i32) }))
    }

    /// Takes up to `out.len()` pending signals without blocking; returns
    /// how many. Ok(0): none is pending.
    pub fn read(&self, out: &mut [Received]) -> io::Result<usize> {
        const N: usize = 16;
        // Left uninitialised: only the records the kernel fills are read
        // (zeroing, then copying out, 2 KiB per wake-up was most of the
        // loop's own work in an orphan storm).
        let mut buf = [const { MaybeUninit::<libc::signalfd_siginfo>::uninit() }; N];
        let want = out.len().min(N) * size_of::<libc::signalfd_siginfo>();
        let n = loop {
            // SAFETY: `buf` is valid for writes of `want` bytes.
            let n = unsafe { libc::read(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), want) };
            if n >= 0 {
                break n as usize;
            }
            let err = io::Error::last_os_error();
            match err.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => return Ok(0),
                _ => return Err(err),
            }
        };
        let count = n / size_of::<libc::signalfd_siginfo>();
        let mut taken = 0;
        for info in &buf[..count] {
            // SAFETY: the kernel filled the first n bytes with whole records.
            let info = unsafe { info.assume_init_ref() };
            if let Some(signal) = Signal::new(info.ssi_signo as i32) {
                out[taken] = Received {
                    signal,
                    code: info.ssi_code,
                    pid: info.ssi_pid as i32,
                };
                taken += 1;
            }
        }
        Ok(taken)
    }
}

impl AsFd for SignalFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// Where a signal goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// One process by pid: only for a pid the shim holds (its unreaped
    /// child), which no other process can own.
    Pid(i32),
    /// A process group: its id cannot be reused while any member lives.
    Group(i32),
    /// kill(-1): as PID 1, every other process of its namespace.
    All,
}

impl Target {
    /// kill(2)'s pid argument.
    fn raw(self) -> i32 {
        match self {
            Target::Pid(p) => p,
            Target::Group(g) => -g,
            Target::All => -1,
        }
    }
}

/// What a send came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    Delivered,
    /// ESRCH: nobody there.
    NoOne,
    /// Any other error (EPERM), already reported once.
    Refused,
}

/// Sends `sig` to `target` (see `sent` for what errors come to).
pub fn send(target: Target, sig: Signal) -> Sent {
    sent(
        kill(target, sig.0),
        format_args!("kill({}, {})", target.raw(), sig.name()),
    )
}

/// kill(2): true when it succeeded (errno says why not).
fn kill(target: Target, signo: i32) -> bool {
    // SAFETY: kill(2) has no memory effects; any pid/signal pair is valid
    // input, signal 0 included (it only checks).
    unsafe { libc::kill(target.raw(), signo) == 0 }
}

/// What a send came to, from its success and, failing, errno. ESRCH is not
/// worth reporting; other errors are warned about once per run, so a
/// one-second re-sweep does not repeat them.
fn sent(ok: bool, what: std::fmt::Arguments<'_>) -> Sent {
    if ok {
        return Sent::Delivered;
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ESRCH) {
        return Sent::NoOne;
    }
    crate::diag::warn_once(
        crate::diag::Once::Kill,
        format_args!("{what} failed: {err}"),
    );
    Sent::Refused
}

/// Whether `target` names any process the shim may signal (kill with
/// signal 0); a process it may not signal is no business of its own.
pub fn exists(target: Target) -> bool {
    kill(target, 0)
}

/// Sends `sig` to a process found by a /proc scan.
pub fn send_handle(handle: &crate::procfs::Handle, sig: Signal) -> Sent {
    match handle {
        crate::procfs::Handle::Fd(fd) => send_pidfd(fd.as_fd(), sig),
        crate::procfs::Handle::Pid(pid) => send(Target::Pid(*pid), sig),
    }
}

/// Sends `sig` through a pidfd: reaches exactly the process the descriptor
/// was opened for, never one that reused its pid.
pub fn send_pidfd(pidfd: BorrowedFd<'_>, sig: Signal) -> Sent {
    // SAFETY: a valid pidfd, a null siginfo (as kill(2) would fill it), no flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig.0,
            std::ptr::null::<libc::siginfo_t>(),
            0u32,
        )
    };
    sent(rc == 0, format_args!("pidfd_send_signal({})", sig.name()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_parse() {
        for n in 1..=Signal::MAX {
            let sig = Signal::new(n).unwrap();
            assert_eq!(Signal::parse(sig.name()), Ok(sig), "{}", sig.name());
            assert_eq!(Signal::parse(&n.to_string()), Ok(sig));
        }
    }

    #[test]
    fn names_follow_bash_on_glibc_in_every_build() {
        let name = |n| Signal::new(n).unwrap().name();
        assert_eq!(name(15), "SIGTERM");
        assert_eq!((name(32), name(33)), ("SIG32", "SIG33"));
        assert_eq!(
            (name(34), name(35), name(49)),
            ("SIGRTMIN", "SIGRTMIN+1", "SIGRTMIN+15")
        );
        assert_eq!(
            (name(50), name(63), name(64)),
            ("SIGRTMAX-14", "SIGRTMAX-1", "SIGRTMAX")
        );
    }

    #[test]
    fn parse_accepts_bare_lowercase_numbers_and_realtime_offsets() {
        let p = |s| Signal::parse(s).map(Signal::number);
        assert_eq!(p("term"), Ok(15));
        assert_eq!(p("SIGHUP"), Ok(1));
        assert_eq!(p("iot"), Ok(6));
        assert_eq!(p("9"), Ok(9));
        assert_eq!(p("32"), Ok(32));
        assert_eq!(p("RTMIN"), Ok(34));
        assert_eq!(p("RTMIN+2"), Ok(36));
        assert_eq!(p("RTMIN+20"), Ok(54));
        assert_eq!(p("sigrtmax-1"), Ok(63));
        assert_eq!(p("RTMAX-30"), Ok(34));
        for bad in [
            "0",
            "65",
            "FOO",
            "RTMIN+31",
            "RTMAX-31",
            "RTMIN+2147483647",
            "RTMAX--2147483648",
            "",
        ] {
            assert!(Signal::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_full_set_holds_everything_but_kill_and_stop() {
        let full = SignalSet::full();
        for n in 1..=Signal::MAX {
            let sig = Signal::new(n).unwrap();
            assert_eq!(
                full.contains(sig),
                sig != Signal::KILL && sig != Signal::STOP
            );
        }
    }
}
