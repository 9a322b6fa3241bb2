//! The one loop: wait for a signal or the deadline, react, repeat until the
//! main child and everything it left behind have been reaped.
//!
//! State, all of it here:
//! - running: the main child is alive, no stop requested;
//! - stopping: the first stop request (or the main child's exit) set
//!   `stop_reason` and a `deadline` that never moves;
//! - killing: the deadline passed, SIGKILL went to everything left
//!   (`killed`), and is repeated every second while anything is left;
//! - done: the main child is reaped and the shim has no children.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::cli::Config;
use crate::events::{Events, Exit, Outcome, Role};
use crate::reaper::{self, Reap, Reaped, Status};
use crate::signals::{self, Received};
use crate::spawn::{self, Child};

/// How often SIGKILL is repeated after the grace period while something is
/// still alive (a process forked between the /proc scan and the kill).
const RESWEEP: Duration = Duration::from_secs(1);

pub fn run(config: Config, sigchld_ignored: bool) -> i32 {
    // SAFETY: getpid cannot fail.
    let me = unsafe { libc::getpid() };
    let pid1 = me == 1;
    if !pid1 && config.subreaper {
        // Orphans of the app's descendants then come to the shim, not to the
        // host's init, so they are reaped and reported here.
        if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
            tracing::warn!("cannot become a child subreaper: {e}");
        }
    }
    let parent = match config.parent_death {
        Some(sig) if !pid1 => watch_parent().map(|ppid| (ppid, sig)),
        _ => None,
    };
    let mut events = Events::open(&config.events, config.termination_log.clone());
    let proc = reaper::open_proc();
    if proc.is_none() {
        tracing::info!("/proc is not this PID namespace's: comm and process groups unknown");
    }

    let main = match spawn::start(&config.command, sigchld_ignored) {
        Ok(child) => child,
        Err(e) => {
            let error = format!("{}: {}", config.command[0].to_string_lossy(), e.error);
            tracing::error!("cannot run {error}");
            events.spawn_failed(&error, e.code);
            let code = config.map_exit(e.code);
            events.shim_exit(code, 0);
            return code;
        }
    };
    tracing::info!("started {:?} as pid {}", config.command, main.pid);
    // The app has the working directory it was given; the shim itself moves
    // to / so it never holds a directory or a mount busy (as dumb-init and
    // catatonit do).
    if let Err(e) = std::env::set_current_dir("/") {
        tracing::debug!("cannot change directory to /: {e}");
    }

    Supervisor {
        config,
        events,
        me,
        pid1,
        proc,
        main,
        parent,
        main_status: None,
        children_left: true,
        forwarded: HashMap::new(),
        terminated_rest: false,
        stop_reason: None,
        deadline: None,
        killed: false,
        reaped: 0,
    }
    .run()
}

/// Asks the kernel for a SIGCHLD when the shim's parent dies, and returns the
/// parent's pid to compare with later. SIGCHLD because it is never forwarded
/// and already wakes the loop; and the pid because PR_SET_PDEATHSIG fires when
/// the parent *thread* that forked the shim exits, which in a multi-threaded
/// parent is not the parent's death: only a changed getppid() is.
fn watch_parent() -> Option<i32> {
    // SAFETY: getppid cannot fail.
    let ppid = unsafe { libc::getppid() };
    match nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGCHLD) {
        Ok(()) => Some(ppid),
        Err(e) => {
            tracing::warn!("cannot watch for the parent's death: {e}");
            None
        }
    }
}

struct Supervisor {
    config: Config,
    events: Events,
    me: i32,
    pid1: bool,
    /// /proc, when it is this PID namespace's (see `reaper::open_proc`).
    proc: Option<std::os::fd::OwnedFd>,
    main: Child,
    /// The parent pid being watched, and the signal its death stands for.
    parent: Option<(i32, i32)>,
    /// Set when the main child has been reaped.
    main_status: Option<Status>,
    /// False once waitid said the shim has no children at all.
    children_left: bool,
    /// Signals delivered to the main child (or its group), by number, with
    /// the name of the signal the shim received for each.
    forwarded: HashMap<i32, Cow<'static, str>>,
    /// SIGTERM went to every leftover process after the main child exited.
    terminated_rest: bool,
    stop_reason: Option<String>,
    deadline: Option<Instant>,
    /// The grace period ran out and SIGKILL went to everything left.
    killed: bool,
    reaped: u64,
}

impl Supervisor {
    fn run(mut self) -> i32 {
        // The parent may have died before the death signal was armed.
        self.check_parent();
        while self.main_status.is_none() || self.children_left {
            let timeout = self
                .deadline
                .map(|d| d.saturating_duration_since(Instant::now()));
            if let Some(sig) = signals::wait(timeout) {
                self.on_signal(sig);
            }
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                self.on_deadline();
            }
        }
        let status = self.main_status.expect("loop ends after the main child");
        let code = self.config.map_exit(status.exit_code());
        self.events.shim_exit(code, self.reaped);
        code
    }

    fn on_signal(&mut self, sig: Received) {
        if sig.signo == libc::SIGCHLD {
            self.reap_all();
            self.check_parent();
        } else if sig.is_self_inflicted(self.me) {
            tracing::debug!(
                "ignored {} raised by the shim's own write",
                signals::name(sig.signo)
            );
        } else {
            self.on_received(sig.signo, false);
        }
    }

    /// A signal as received (or the one the parent's death stands for):
    /// rewrite, forward, then maybe stop, maybe suspend.
    fn on_received(&mut self, signo: i32, parent_death: bool) {
        let received = signals::name(signo);
        let deliver = self.config.rewrite(signo);
        if deliver == 0 {
            tracing::debug!("dropped {received} (rewritten to 0)");
            return;
        }
        self.forward(deliver, received.clone());
        if signals::is_stop_request(signo) {
            let reason = if parent_death {
                "parent-death".to_string()
            } else {
                format!("signal:{received}")
            };
            self.begin_stop(reason);
        }
        if signals::is_job_control(signo) && !self.pid1 {
            // Suspend with the app, so a shell's job control sees both stop;
            // the SIGCONT that resumes the shim is then forwarded too.
            signals::send(self.me, libc::SIGSTOP);
        }
    }

    fn forward(&mut self, deliver: i32, received: Cow<'static, str>) {
        tracing::debug!(
            "forwarding {} (received {received})",
            signals::name(deliver)
        );
        if self.main_status.is_none() {
            // The unreaped main child pins its pid, and so its group's id: no
            // other process can own either until the shim reaps it.
            // An app that left its group (setsid) still gets the signal.
            if self.config.single_child || !signals::send(-self.main.pid, deliver) {
                signals::send(self.main.pid, deliver);
            }
        } else if !self.config.single_child {
            // The group id is no longer pinned: signal the members one by one.
            for p in reaper::descendants() {
                if p.pgid == self.main.pid {
                    signals::send(p.pid, deliver);
                }
            }
        }
        self.forwarded.insert(deliver, received);
    }

    /// The first stop request sets the reason and the deadline; later ones
    /// change neither.
    fn begin_stop(&mut self, reason: String) {
        if self.stop_reason.is_none() {
            tracing::info!("stopping ({reason}): SIGKILL in {:?}", self.config.grace);
            self.stop_reason = Some(reason);
            // A grace too long for the clock (`--grace 1e19`) never ends.
            self.deadline = Instant::now().checked_add(self.config.grace);
        }
    }

    fn on_deadline(&mut self) {
        // Kill first, say so after: the diagnostic must not delay the kill.
        self.signal_everyone(libc::SIGKILL);
        if !self.killed {
            tracing::warn!(
                "grace period of {:?} is over: SIGKILL to everything left",
                self.config.grace
            );
            self.killed = true;
        }
        self.deadline = Some(Instant::now() + RESWEEP);
    }

    /// The main child's group while it is unreaped, and every other live
    /// descendant: as PID 1, kill(-1) reaches all of them in one call.
    fn signal_everyone(&self, signo: i32) {
        if self.main_status.is_none() && !signals::send(-self.main.pid, signo) {
            signals::send(self.main.pid, signo);
        }
        if self.pid1 {
            signals::send(-1, signo);
        } else {
            for p in reaper::descendants() {
                signals::send(p.pid, signo);
            }
        }
    }

    /// One SIGCHLD may stand for many exits (standard signals coalesce), so
    /// reap until nothing more has exited.
    fn reap_all(&mut self) {
        let main_was_running = self.main_status.is_none();
        loop {
            let want_details =
                |pid| self.events.enabled() || pid == self.main.pid || self.config.warn_on_reap;
            // With nothing to write a name or a group into, skip even the look.
            let proc = self.proc.as_ref().filter(|_| {
                self.events.enabled()
                    || self.events.has_termination_log()
                    || self.config.warn_on_reap
            });
            match reaper::reap_one(proc, want_details) {
                Ok(Reap::One(r)) => self.report(&r),
                Ok(Reap::NoneReady) => break,
                Ok(Reap::NoChildren) => {
                    self.children_left = false;
                    break;
                }
                Err(e) => {
                    tracing::warn!("waitid failed: {e}");
                    break;
                }
            }
        }
        self.events.flush();
        if main_was_running && self.main_status.is_some() {
            self.after_main_exit();
        }
    }

    fn report(&mut self, r: &Reaped) {
        let is_main = r.pid == self.main.pid;
        if is_main {
            self.main_status = Some(r.status);
        }
        self.reaped += 1;
        if self.config.warn_on_reap && !is_main {
            // tini's words, which scripts of tini users may look for.
            tracing::warn!("Reaped zombie process with pid={}", r.pid);
        }
        // With events off only the main child's event is written (to the
        // termination log): an orphan's would be built for nothing.
        if !is_main && !self.events.enabled() {
            return;
        }
        let sent = self.sent_to(r, is_main);
        let (outcome, stop_reason) =
            decide(r.status, sent, self.killed, self.stop_reason.as_deref());
        let runtime_ms = is_main.then(|| self.main.started.elapsed().as_millis() as u64);
        let role = if is_main { Role::Main } else { Role::Orphan };
        let comm = r.comm.as_ref().map(|c| c.text());
        let event = Exit::new(
            r.pid,
            role,
            comm.as_deref(),
            r.status,
            outcome,
            runtime_ms,
            stop_reason.as_deref(),
        );
        self.events.exit(&event);
    }

    /// The name (as received) of the signal that killed `r`, if the shim sent
    /// or forwarded that signal to it.
    fn sent_to(&self, r: &Reaped, is_main: bool) -> Option<Cow<'static, str>> {
        let Status::Signaled { signo, .. } = r.status else {
            return None;
        };
        if self.terminated_rest && signo == libc::SIGTERM {
            return Some(signals::name(signo));
        }
        let in_group = is_main || (!self.config.single_child && r.pgid == Some(self.main.pid));
        in_group
            .then(|| self.forwarded.get(&signo).cloned())
            .flatten()
    }

    /// The main child is gone: what is left of its group and the adopted
    /// orphans get SIGTERM now and SIGKILL when the grace period ends.
    fn after_main_exit(&mut self) {
        if self.children_left {
            self.begin_stop("main-exited".to_string());
            self.terminated_rest = true;
            self.signal_everyone(libc::SIGTERM);
        }
    }

    fn check_parent(&mut self) {
        let Some((ppid, sig)) = self.parent else {
            return;
        };
        // SAFETY: getppid cannot fail.
        if unsafe { libc::getppid() } != ppid {
            self.parent = None;
            tracing::info!("parent {ppid} died: acting as on {}", signals::name(sig));
            self.on_received(sig, true);
        }
    }
}

/// The contract's rules for `outcome`, in order; returns it with the
/// `stop_reason` to report. `sent`: the received name of the signal the shim
/// sent or forwarded that ended the process, if it did.
fn decide(
    status: Status,
    sent: Option<Cow<'static, str>>,
    killed: bool,
    stop: Option<&str>,
) -> (Outcome, Option<String>) {
    let stop = stop.map(str::to_string);
    match status {
        Status::Signaled {
            signo: libc::SIGKILL,
            ..
        } if killed => (Outcome::Killed, stop),
        Status::Signaled { .. } => match sent {
            None => (Outcome::Crashed, stop),
            Some(received) => (
                Outcome::Stopped,
                stop.or_else(|| Some(format!("signal:{received}"))),
            ),
        },
        Status::Exited(_) if stop.is_some() => (Outcome::Stopped, stop),
        Status::Exited(0) => (Outcome::Exited, None),
        Status::Exited(_) => (Outcome::Failed, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(signo: i32) -> Status {
        Status::Signaled {
            signo,
            core_dumped: false,
        }
    }

    #[test]
    fn exits_without_a_stop_are_exited_or_failed() {
        assert_eq!(
            decide(Status::Exited(0), None, false, None),
            (Outcome::Exited, None)
        );
        assert_eq!(
            decide(Status::Exited(3), None, false, None),
            (Outcome::Failed, None)
        );
    }

    #[test]
    fn any_exit_during_a_stop_is_stopped_with_its_reason() {
        let r = Some("signal:SIGTERM".to_string());
        assert_eq!(
            decide(Status::Exited(1), None, false, r.as_deref()),
            (Outcome::Stopped, r)
        );
    }

    #[test]
    fn the_grace_sigkill_is_killed_other_sigkills_crashed() {
        let r = Some("main-exited".to_string());
        assert_eq!(
            decide(sig(9), None, true, r.as_deref()),
            (Outcome::Killed, r.clone())
        );
        assert_eq!(decide(sig(9), None, false, None), (Outcome::Crashed, None));
        assert_eq!(
            decide(sig(11), None, true, r.as_deref()),
            (Outcome::Crashed, r)
        );
    }

    #[test]
    fn a_forwarded_signal_is_stopped_named_as_received() {
        assert_eq!(
            decide(
                sig(3),
                Some("SIGTERM".into()),
                false,
                Some("signal:SIGTERM")
            ),
            (Outcome::Stopped, Some("signal:SIGTERM".into()))
        );
        assert_eq!(
            decide(sig(1), Some("SIGHUP".into()), false, None),
            (Outcome::Stopped, Some("signal:SIGHUP".into()))
        );
    }
}
