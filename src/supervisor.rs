//! The one loop: wait for any event source (the signalfd, the OOM watch,
//! the notification socket, a slow events destination) or the earliest
//! deadline, react, repeat until the main child and everything it left
//! behind are gone. Adding a source is one more descriptor in `wait` and
//! one handler.
//!
//! The state is `Phase`, with the few facts the outcome rules need beside it
//! (which signals went where, whether the main child is reaped).

use std::time::{Duration, Instant};

use crate::cli::Config;
use crate::diag;
use crate::events::{Events, Exit, Outcome, Role, StopReason};
use crate::memory::Memory;
use crate::notify::{self, Access, Notice, Pacer, ReadyFile, Upstream, Watchdog};
use crate::procfs::{self, Proc, Seen};
use crate::reaper::{self, Reap, Reaped, Status};
use crate::signals::{self, Received, Sent, Signal, SignalFd, SignalSet, Target};
use crate::spawn::{self, Child};

/// How often SIGKILL is repeated after the grace period while something is
/// still alive (a process forked between the /proc scan and the kill).
const RESWEEP: Duration = Duration::from_secs(1);

/// How often the group is looked at when it has members but the shim has no
/// children to hear from (`--no-subreaper`: the members are someone else's).
const GROUP_POLL: Duration = Duration::from_millis(50);

/// Where the supervisor is between the spawn and its exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No stop requested, the main child alive or just reaped.
    Running,
    /// A stop is in progress; everything left gets SIGKILL at `kill_at`
    /// (None: no grace period applies, the runtime's own timeout decides).
    /// The deadline never moves later.
    Stopping {
        reason: StopReason,
        kill_at: Option<Instant>,
    },
    /// The grace period ran out and SIGKILL went to everything left; it is
    /// repeated at `resweep_at` while anything is.
    Killing {
        reason: StopReason,
        resweep_at: Instant,
    },
}

impl Phase {
    fn reason(self) -> Option<StopReason> {
        match self {
            Phase::Running => None,
            Phase::Stopping { reason, .. } | Phase::Killing { reason, .. } => Some(reason),
        }
    }

    fn deadline(self) -> Option<Instant> {
        match self {
            Phase::Running => None,
            Phase::Stopping { kill_at, .. } => kill_at,
            Phase::Killing { resweep_at, .. } => Some(resweep_at),
        }
    }
}

pub fn run(config: Config, sigchld_ignored: bool) -> i32 {
    let me = std::process::id() as i32;
    let pid1 = me == 1;
    // Setup may fail loudly; once the app runs, nothing may stop the shim.
    let mut events = match Events::open(&config.events, config.termination_log.clone()) {
        Ok(events) => events,
        Err(msg) => crate::cli::usage_error(&msg),
    };
    let signals = match SignalFd::open() {
        Ok(fd) => fd,
        // Out of descriptors (a tight RLIMIT_NOFILE): the app cannot be
        // supervised, which is told like any other failure to start it.
        Err(e) => {
            let message = format!("cannot open a signalfd to supervise it: {e}");
            return cannot_start(&config, &mut events, &message);
        }
    };
    if !pid1 && config.subreaper {
        // Orphans of the app's descendants then come to the shim, not to the
        // host's init, so they are reaped and reported here.
        if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
            diag::warning!("cannot become a child subreaper: {e}");
        }
    }
    let adopts = pid1 || nix::sys::prctl::get_child_subreaper().unwrap_or(false);
    let parent = match config.parent_death {
        Some(sig) if !pid1 => watch_parent().map(|ppid| (ppid, sig)),
        _ => None,
    };
    let proc = Proc::open();
    if proc.is_none() {
        diag::info!("/proc is not this PID namespace's: no names, and no scans for descendants");
    }
    // Before the spawn: every OOM kill from here on is the app's.
    let mut memory = Memory::open(proc.as_ref());
    let mut child_env = Vec::new();
    let readiness = match config.notify {
        None => None,
        Some(access) => match notify::Socket::open() {
            Ok(socket) => {
                child_env.push(("NOTIFY_SOCKET", socket.name().into()));
                if let Some(period) = config.watchdog {
                    // At least 1: 0 would tell the app there is no watchdog.
                    let usec = period.as_micros().max(1);
                    child_env.push(("WATCHDOG_USEC", usec.to_string().into()));
                }
                Some(Readiness {
                    upstream: std::env::var_os("NOTIFY_SOCKET")
                        .as_deref()
                        .and_then(Upstream::connect),
                    socket,
                    access,
                    ready_file: config.ready_file.clone().map(ReadyFile::new),
                    ready: false,
                    stopping: false,
                    status: Pacer::default(),
                })
            }
            Err(e) => {
                let message = format!("cannot open a notification socket: {e}");
                return cannot_start(&config, &mut events, &message);
            }
        },
    };

    let main = match spawn::start(&config.command, sigchld_ignored, &child_env) {
        Ok(child) => child,
        Err(e) => {
            diag::error!("cannot run {}", e.message);
            events.spawn_failed(&e.message, e.code);
            let code = config.map_exit(e.code);
            let oom_kills = memory.as_ref().map(Memory::total);
            events.shim_exit(code, 0, oom_kills);
            return code;
        }
    };
    diag::info!("started {:?} as pid {}", config.command, main.pid);
    // The app has the working directory it was given; the shim itself moves
    // to / so it never holds a directory or a mount busy (as dumb-init and
    // catatonit do).
    if let Err(e) = std::env::set_current_dir("/") {
        diag::debug!("cannot change directory to /: {e}");
    }
    if let Some(rise) = memory.as_mut().and_then(Memory::watch) {
        events.oom_kill(&rise);
    }

    let watchdog = config.watchdog.map(Watchdog::new);
    Supervisor {
        readiness,
        watchdog,
        config,
        events,
        signals,
        me,
        pid1,
        adopts,
        proc,
        memory,
        main,
        parent,
        phase: Phase::Running,
        main_status: None,
        main_reaped_at: 0,
        children_left: true,
        forwarded: [None; Signal::MAX as usize + 1],
        swept: SignalSet::default(),
        reaped: 0,
    }
    .run()
}

/// Setup failed before the app could start: told like a failed spawn
/// (a `spawn_failed` line, exit 126).
fn cannot_start(config: &Config, events: &mut Events, message: &str) -> i32 {
    diag::error!("{message}");
    events.spawn_failed(message, 126);
    let code = config.map_exit(126);
    events.shim_exit(code, 0, None);
    code
}

/// Asks the kernel for a SIGCHLD when the shim's parent dies, and returns the
/// parent's pid to compare with later. SIGCHLD because it is never forwarded
/// and already wakes the loop; and the pid because PR_SET_PDEATHSIG fires when
/// the parent *thread* that forked the shim exits, which in a multi-threaded
/// parent is not the parent's death: only a changed getppid() is.
fn watch_parent() -> Option<i32> {
    let ppid = std::os::unix::process::parent_id() as i32;
    match nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGCHLD) {
        Ok(()) => Some(ppid),
        Err(e) => {
            diag::warning!("cannot watch for the parent's death: {e}");
            None
        }
    }
}

/// What `--notify` adds: the socket, the relay, the ready file.
struct Readiness {
    socket: notify::Socket,
    upstream: Option<Upstream>,
    access: Access,
    ready_file: Option<ReadyFile>,
    ready: bool,
    /// STOPPING=1 came: the app will not be ready again.
    stopping: bool,
    status: Pacer,
}

struct Supervisor {
    readiness: Option<Readiness>,
    /// Armed while the main child runs and no stop is in progress.
    watchdog: Option<Watchdog>,
    config: Config,
    events: Events,
    signals: SignalFd,
    me: i32,
    pid1: bool,
    /// Orphans are re-parented to the shim: it is PID 1 or a subreaper.
    adopts: bool,
    /// /proc, when it is this PID namespace's.
    proc: Option<Proc>,
    /// The memory cgroup's OOM-kill count, when it can be read.
    memory: Option<Memory>,
    main: Child,
    /// The parent pid being watched, and the signal its death stands for.
    parent: Option<(i32, Signal)>,
    phase: Phase,
    /// Set when the main child has been reaped.
    main_status: Option<Status>,
    /// When it was reaped, in /proc's clock ticks: a member of its group
    /// that started before then is a leftover, not a stranger that took up
    /// the freed group id.
    main_reaped_at: u64,
    /// False once waitid said the shim has no children at all.
    children_left: bool,
    /// For each signal delivered to the main child or its group, the signal
    /// as the shim received it.
    forwarded: [Option<Signal>; Signal::MAX as usize + 1],
    /// Signals the shim sent on its own to every leftover.
    swept: SignalSet,
    reaped: u64,
}

impl Supervisor {
    fn run(mut self) -> i32 {
        // The parent may have died before the death signal was armed.
        self.check_parent();
        while !self.done() {
            self.wait();
            self.on_deadline();
        }
        let status = self
            .main_status
            .expect("the loop ends after the main child");
        let code = self.config.map_exit(status.exit_code());
        self.look_for_oom_kills();
        if let Some(r) = self.readiness.as_mut() {
            // The latest status text still waiting for its turn is not lost.
            if let Some((pid, text)) = r.status.take_waiting() {
                self.events.status(pid, &text);
            }
        }
        if let Some(file) = self.readiness.as_mut().and_then(|r| r.ready_file.as_mut()) {
            file.retire();
        }
        let oom_kills = self.memory.as_ref().map(Memory::total);
        self.events.shim_exit(code, self.reaped, oom_kills);
        code
    }

    /// The main child is reaped, and nothing it left behind is alive.
    fn done(&self) -> bool {
        self.main_status.is_some() && !self.children_left && !self.group_has_members()
    }

    /// A scan of /proc, when it is the namespace's own.
    fn scan(&self) -> Option<Vec<Seen>> {
        self.proc.as_ref().map(|p| p.scan(self.me))
    }

    /// Whether signalling the app's group as a group reaches the app's own
    /// processes only. While the main child is unreaped it pins the id
    /// (no other group can take it). After that, a member (a zombie one
    /// too: it still holds the id) that descends from the shim shows the
    /// group never emptied: an id cannot be reused while any member lives,
    /// and a stranger that took a freed id descends from someone else. A
    /// shim that adopts nothing (`--no-subreaper`) has leftovers that are no
    /// longer its descendants: there a member that started before the main
    /// child's reap counts too (start times count 10 ms clock ticks, so a
    /// stranger that took the id within the reap's own tick would be taken
    /// for one). Without a scan, the group is all the shim can signal.
    fn group_is_ours(&self, scan: Option<&[Seen]>) -> bool {
        if self.main_status.is_none() {
            return true;
        }
        let Some(scan) = scan else {
            return true;
        };
        scan.iter().any(|s| {
            s.stat.pgid == self.main.pid
                && (s.descendant || (!self.adopts && s.stat.start <= self.main_reaped_at))
        })
    }

    /// The app's group still has members of its own (see `group_is_ours`),
    /// asked when the shim has no children left. A shim that adopts orphans
    /// (PID 1, a subreaper) then has no descendants, and the group none
    /// either; only one that adopts nothing can have members that are
    /// someone else's children now.
    fn group_has_members(&self) -> bool {
        if self.adopts {
            return false;
        }
        match self.scan() {
            Some(scan) => self.group_is_ours(Some(&scan)),
            None => signals::exists(Target::Group(self.main.pid)),
        }
    }

    /// The earliest time the loop must wake without an event.
    fn next_deadline(&self) -> Option<Instant> {
        let poll_group = (self.main_status.is_some() && !self.children_left)
            .then(|| Instant::now() + GROUP_POLL);
        let watchdog = self.watchdog.map(|w| w.due);
        let status = self.readiness.as_ref().and_then(|r| r.status.due());
        let memory = self.memory.as_ref().and_then(Memory::recheck_due);
        [self.phase.deadline(), poll_group, watchdog, status, memory]
            .into_iter()
            .flatten()
            .min()
    }

    /// Sleeps until a signal, room on a slow events destination, or the
    /// earliest deadline: the shim's only sleep, so an idle shim never
    /// wakes up.
    fn wait(&mut self) {
        let waiting = self.events.waiting_fd();
        let mut fds = [
            libc::pollfd {
                fd: std::os::fd::AsRawFd::as_raw_fd(&std::os::fd::AsFd::as_fd(&self.signals)),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: waiting.unwrap_or(-1),
                events: libc::POLLOUT,
                revents: 0,
            },
            libc::pollfd {
                fd: self
                    .memory
                    .as_ref()
                    .and_then(Memory::watch_fd)
                    .unwrap_or(-1),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.readiness.as_ref().map_or(-1, |r| r.socket.fd()),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let timeout = self.next_deadline().map(|d| {
            let d = d.saturating_duration_since(Instant::now());
            libc::timespec {
                // Capped: time_t is 32 bits on some targets.
                tv_sec: d.as_secs().min(i32::MAX as u64) as _,
                tv_nsec: d.subsec_nanos() as _,
            }
        });
        let ts = timeout.as_ref().map_or(std::ptr::null(), |t| t as *const _);
        // SAFETY: valid pollfds (a negative fd is skipped); `ts` is null or points at a timespec
        // that outlives the call; no signal mask change.
        let rc = unsafe { libc::ppoll(fds.as_mut_ptr(), fds.len() as _, ts, std::ptr::null()) };
        if rc < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                // Never spin on an error that persists: say so once, and
                // slow the loop down until it passes.
                diag::warn_once(diag::Once::Wait, format_args!("ppoll failed: {err}"));
                std::thread::sleep(Duration::from_millis(100));
            }
            return;
        }
        if fds[1].revents != 0 {
            self.events.resume();
        }
        // Before the signals: an OOM kill's rise is then seen before the
        // SIGCHLD of the process it killed.
        if fds[2].revents != 0 {
            if let Some(rise) = self.memory.as_mut().and_then(Memory::on_watch) {
                self.events.oom_kill(&rise);
                self.events.flush();
            }
        }
        if fds[0].revents != 0 {
            self.take_signals();
        }
        if fds[3].revents != 0 {
            let _ = self.take_notifications();
        }
    }

    /// Reads the OOM-kill count and writes a line if it rose.
    fn look_for_oom_kills(&mut self) {
        if let Some(rise) = self.memory.as_mut().and_then(Memory::check) {
            self.events.oom_kill(&rise);
        }
    }

    fn take_signals(&mut self) {
        let mut got = [Received {
            signal: Signal::CHLD,
            code: 0,
            pid: 0,
        }; 16];
        loop {
            let n = match self.signals.read(&mut got) {
                Ok(n) => n,
                Err(e) => {
                    diag::warn_once(
                        diag::Once::Wait,
                        format_args!("reading the signalfd failed: {e}"),
                    );
                    0
                }
            };
            for r in &got[..n] {
                self.on_signal(*r);
            }
            if n < got.len() {
                break;
            }
        }
    }

    fn on_signal(&mut self, r: Received) {
        if r.signal == Signal::CHLD {
            self.reap_all();
            self.check_parent();
        } else if r.is_self_inflicted() {
            diag::debug!("ignored {} raised by the shim's own write", r.signal.name());
        } else {
            self.on_received(r.signal, false);
        }
    }

    /// A signal as received (or the one the parent's death stands for):
    /// rewrite, forward, then maybe stop, maybe suspend.
    fn on_received(&mut self, received: Signal, parent_death: bool) {
        let Some(deliver) = self.config.rewrite(received) else {
            diag::debug!("dropped {} (rewritten to 0)", received.name());
            return;
        };
        diag::debug!(
            "forwarding {} (received {})",
            deliver.name(),
            received.name()
        );
        if received.is_stop_request() {
            // First, so the ready file is gone before the app hears of it.
            let reason = if parent_death {
                StopReason::ParentDeath
            } else {
                StopReason::Signal(received)
            };
            self.begin_stop(reason);
        }
        self.forward(deliver);
        self.forwarded[deliver.number() as usize] = Some(received);
        if received.is_stop_request() {
            // A stopped process cannot act on the request until it runs.
            self.forward(Signal::CONT);
        }
        if received.is_job_control() && !self.pid1 {
            // Suspend with the app, so a shell's job control sees both stop;
            // the SIGCONT that resumes the shim is then forwarded too.
            signals::send(Target::Pid(self.me), Signal::STOP);
        }
    }

    /// To the main child's group (`--single-child`: the main child alone).
    fn forward(&self, sig: Signal) {
        let group = Target::Group(self.main.pid);
        match (self.main_status.is_none(), self.config.single_child) {
            // The unreaped main child pins its pid: no other process can
            // own it. An app that left its group (setsid) still gets it.
            (true, false) => {
                if signals::send(group, sig) == Sent::NoOne {
                    signals::send(Target::Pid(self.main.pid), sig);
                }
            }
            (true, true) => {
                signals::send(Target::Pid(self.main.pid), sig);
            }
            (false, false) => {
                if self.group_is_ours(self.scan().as_deref()) {
                    signals::send(group, sig);
                }
            }
            (false, true) => {}
        }
    }

    /// The first stop request sets the reason and the deadline; later ones
    /// change neither.
    fn begin_stop(&mut self, reason: StopReason) {
        if self.phase != Phase::Running {
            return;
        }
        // A readiness probe fails while the app drains; a draining app
        // owes no keep-alives.
        self.watchdog = None;
        if let Some(file) = self.readiness.as_mut().and_then(|r| r.ready_file.as_mut()) {
            file.retire();
        }
        // A grace too long for the clock (`--grace 1e19`) never ends.
        let kill_at = self
            .config
            .grace
            .and_then(|g| Instant::now().checked_add(g));
        match self.config.grace {
            Some(g) => diag::info!("stopping ({reason}): SIGKILL in {g:?}"),
            None => diag::info!("stopping ({reason})"),
        }
        self.phase = Phase::Stopping { reason, kill_at };
    }

    /// Whatever deadline has come: a look at the OOM-kill count after an
    /// OOM event, the status line's turn, the watchdog, the grace period.
    fn on_deadline(&mut self) {
        if let Some(rise) = self.memory.as_mut().and_then(Memory::on_recheck) {
            self.events.oom_kill(&rise);
            self.events.flush();
        }
        if let Some((pid, text)) = self.readiness.as_mut().and_then(|r| r.status.take_due()) {
            self.write_status(pid, &text);
            self.events.flush();
        }
        if self.watchdog.is_some_and(|w| Instant::now() >= w.due) {
            self.on_watchdog();
        }
        self.on_grace_deadline();
    }

    fn on_grace_deadline(&mut self) {
        let Some(deadline) = self.phase.deadline() else {
            return;
        };
        if Instant::now() < deadline {
            return;
        }
        // Kill first, say so after: the diagnostic must not delay the kill.
        self.sweep(&[Signal::KILL]);
        let reason = self.phase.reason().unwrap_or(StopReason::MainExited);
        if let Phase::Stopping { .. } = self.phase {
            diag::warning!("the grace period is over: SIGKILL to everything left");
        }
        self.phase = Phase::Killing {
            reason,
            resweep_at: Instant::now() + RESWEEP,
        };
    }

    /// `sigs`, in order, to the main child's group and to every other live
    /// descendant. As PID 1, kill(-1) reaches all of them in one call. A
    /// subreaper signals the group while it is its own (`group_is_ours`),
    /// and every other descendant a scan of /proc finds through a pidfd
    /// opened after the scan, so a pid reused since is never hit; without
    /// its own /proc, it signals the group and nothing else.
    fn sweep(&self, sigs: &[Signal]) {
        if self.pid1 {
            for &sig in sigs {
                signals::send(Target::All, sig);
            }
            return;
        }
        let scan = self.scan();
        let group = self.group_is_ours(scan.as_deref());
        if group {
            for &sig in sigs {
                if signals::send(Target::Group(self.main.pid), sig) == Sent::NoOne
                    && self.main_status.is_none()
                {
                    signals::send(Target::Pid(self.main.pid), sig);
                }
            }
        }
        let (Some(proc), Some(scan)) = (&self.proc, scan) else {
            return;
        };
        for seen in scan.iter().filter(|s| s.descendant && s.stat.alive()) {
            if group && seen.stat.pgid == self.main.pid {
                continue; // reached through the group
            }
            // One descriptor at a time: a storm of leftovers must not
            // exhaust the shim's descriptors.
            if let Some(handle) = proc.handle(&seen.stat) {
                for &sig in sigs {
                    signals::send_handle(&handle, sig);
                }
            }
        }
    }

    /// One SIGCHLD may stand for many exits (standard signals coalesce), so
    /// reap until nothing more has exited.
    fn reap_all(&mut self) {
        let main_was_running = self.main_status.is_none();
        if main_was_running {
            // What the main child sent before it exited (READY=1, then
            // STOPPING=1 and exit, is common) is queued before its SIGCHLD:
            // read it while the sender still counts as the main child.
            for _ in 0..16 {
                if !self.take_notifications() {
                    break;
                }
            }
        }
        // With nothing to write a name or a group into, skip even the look.
        let look = self.events.enabled() || self.events.has_termination_log();
        // Where the kernel does not notify, or a rise is awaited, look.
        if self.memory.as_ref().is_some_and(Memory::needs_looking) {
            self.look_for_oom_kills();
        }
        loop {
            let main = self.main.pid;
            let all = self.events.enabled();
            match reaper::reap_one(look, self.proc.as_ref(), |pid| all || pid == main) {
                Ok(Reap::One(r)) => self.report(&r),
                Ok(Reap::NoneReady) => break,
                Ok(Reap::NoChildren) => {
                    self.children_left = false;
                    break;
                }
                Err(e) => {
                    diag::warn_once(diag::Once::Wait, format_args!("waitid failed: {e}"));
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
            self.main_reaped_at = procfs::ticks_now();
        }
        self.reaped += 1;
        if self.config.warn_on_reap && !is_main {
            // tini's words, which scripts of tini users may look for.
            diag::warning!("Reaped zombie process with pid={}", r.pid);
        }
        // With events off only the main child's event is written (to the
        // termination log): an orphan's would be built for nothing.
        if !is_main && !self.events.enabled() {
            return;
        }
        let killed = matches!(self.phase, Phase::Killing { .. });
        let (outcome, stop_reason) = decide(
            is_main,
            r.status,
            self.sent_to(r, is_main),
            killed,
            self.phase.reason(),
        );
        let oom_killed = self.oom_killed(r.status, outcome);
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
            stop_reason,
            r.usage,
            oom_killed,
        );
        self.events.exit(&event);
    }

    /// Whether the OOM killer ended a process: only a SIGKILL nobody here
    /// sent can be its, and only with a rise of the count to claim (None:
    /// no count to read).
    fn oom_killed(&mut self, status: Status, outcome: Outcome) -> Option<bool> {
        self.memory.as_ref()?;
        let unexplained_kill = outcome == Outcome::Crashed
            && matches!(
                status,
                Status::Signaled {
                    signal: Signal::KILL,
                    ..
                }
            );
        if !unexplained_kill {
            return Some(false);
        }
        self.look_for_oom_kills();
        self.memory.as_mut().map(Memory::claim)
    }

    /// The signal (as received) behind the one that ended `r`, if the shim
    /// sent or forwarded that signal to it.
    fn sent_to(&self, r: &Reaped, is_main: bool) -> Option<Signal> {
        let Status::Signaled { signal, .. } = r.status else {
            return None;
        };
        if self.swept.contains(signal) {
            return Some(signal);
        }
        let in_group = is_main || (!self.config.single_child && r.pgid == Some(self.main.pid));
        in_group
            .then(|| self.forwarded[signal.number() as usize])
            .flatten()
    }

    /// The main child is gone: what is left of its group and the adopted
    /// orphans get SIGTERM (and SIGCONT) now, and SIGKILL when the grace
    /// for leftovers ends.
    fn after_main_exit(&mut self) {
        self.watchdog = None;
        if !self.children_left && !self.group_has_members() {
            return;
        }
        let kill_at = Instant::now().checked_add(self.config.leftover_grace);
        self.phase = match self.phase {
            Phase::Running => Phase::Stopping {
                reason: StopReason::MainExited,
                kill_at,
            },
            // A stop in progress keeps its reason; its deadline only moves
            // earlier (the drop-in modes' short grace for leftovers).
            Phase::Stopping {
                reason,
                kill_at: old,
            } => Phase::Stopping {
                reason,
                kill_at: [old, kill_at].into_iter().flatten().min(),
            },
            killing @ Phase::Killing { .. } => killing,
        };
        self.swept.insert(Signal::TERM);
        self.sweep(&[Signal::TERM, Signal::CONT]);
    }

    /// The notifications queued on the socket (a bounded number per call).
    /// Returns whether more may be queued.
    fn take_notifications(&mut self) -> bool {
        let Some(r) = &self.readiness else {
            return false;
        };
        let (got, more) = r.socket.receive();
        for (pid, datagram) in got {
            if !self.may_notify(pid) {
                diag::debug!("ignored a notification from pid {pid}");
                continue;
            }
            let notices = notify::parse(&datagram);
            let mut relay = Vec::new();
            for notice in notices {
                self.on_notice(pid, notice, &mut relay);
            }
            self.relay(&relay);
        }
        self.events.flush();
        more
    }

    /// The access rule, on the sender the kernel vouched for.
    fn may_notify(&self, pid: i32) -> bool {
        let Some(r) = &self.readiness else {
            return false;
        };
        if pid <= 0 {
            return false;
        }
        let main = self.main_status.is_none() && pid == self.main.pid;
        match r.access {
            Access::Main => main,
            Access::All => {
                main || self
                    .proc
                    .as_ref()
                    .is_some_and(|p| p.descends_from(pid, self.me))
            }
        }
    }

    fn on_notice(&mut self, pid: i32, notice: Notice, relay: &mut Vec<String>) {
        let Some(r) = self.readiness.as_mut() else {
            return;
        };
        match notice {
            Notice::Ready => {
                if !r.ready && !r.stopping {
                    r.ready = true;
                    let after = self.main.started.elapsed().as_millis() as u64;
                    if self.phase == Phase::Running {
                        if let Some(file) = &r.ready_file {
                            file.create();
                        }
                    }
                    self.events.ready(pid, after);
                    relay.insert(0, "READY=1".into());
                }
            }
            Notice::Reloading => {
                r.ready = false;
                if let Some(file) = &r.ready_file {
                    file.remove();
                }
                self.events.notice("reloading", pid);
            }
            Notice::Stopping => {
                if !r.stopping {
                    r.stopping = true;
                    r.ready = false;
                    if let Some(file) = r.ready_file.as_mut() {
                        file.retire();
                    }
                    self.events.notice("stopping", pid);
                    relay.push("STOPPING=1".into());
                }
            }
            Notice::Status(text) => {
                if let Some((pid, text)) = r.status.offer(pid, text) {
                    self.write_status(pid, &text);
                }
            }
            Notice::WatchdogPing => {
                if let Some(w) = self.watchdog.as_mut() {
                    w.ping();
                }
            }
            Notice::WatchdogTrigger => {
                if let Some(w) = self.watchdog.as_mut() {
                    w.due = Instant::now();
                }
            }
            Notice::WatchdogUsec(usec) => {
                if let Some(w) = self.watchdog.as_mut() {
                    if usec > 0 {
                        w.period = Duration::from_micros(usec);
                        w.ping();
                    }
                }
            }
        }
    }

    fn write_status(&mut self, pid: i32, text: &str) {
        self.events.status(pid, text);
        self.relay(&[format!("STATUS={text}")]);
    }

    /// Passes assignments on to the supervisor above the shim, READY=1
    /// first (runc forwards only a datagram that starts with it).
    fn relay(&self, lines: &[String]) {
        if lines.is_empty() {
            return;
        }
        if let Some(up) = self.readiness.as_ref().and_then(|r| r.upstream.as_ref()) {
            up.send(&lines.join("\n"));
        }
    }

    /// The main child sent no keep-alive in time: say so, give it the
    /// watchdog signal (so it can dump its state), and stop.
    fn on_watchdog(&mut self) {
        let Some(w) = self.watchdog.take() else {
            return;
        };
        if self.main_status.is_some() || self.phase != Phase::Running {
            return;
        }
        let sig = self.config.watchdog_signal;
        self.events
            .watchdog(self.main.pid, w.period.as_millis() as u64, sig);
        self.events.flush();
        diag::warning!("the watchdog ran out: {} to the app", sig.name());
        // The stop first: the ready file is gone before the signal lands.
        self.begin_stop(StopReason::Watchdog);
        signals::send(Target::Pid(self.main.pid), sig);
    }

    fn check_parent(&mut self) {
        let Some((ppid, sig)) = self.parent else {
            return;
        };
        if std::os::unix::process::parent_id() as i32 != ppid {
            self.parent = None;
            diag::info!("parent {ppid} died: acting as on {}", sig.name());
            self.on_received(sig, true);
        }
    }
}

/// The rules for `outcome` (docs/events.md), in order; returns it with the
/// `stop_reason` to report. `main`: the process is the main child; `sent`:
/// the received name of the signal the shim sent or forwarded that ended
/// the process, if it did; `stop`: the reason of the stop in progress.
fn decide(
    main: bool,
    status: Status,
    sent: Option<Signal>,
    killed: bool,
    stop: Option<StopReason>,
) -> (Outcome, Option<StopReason>) {
    if main && stop == Some(StopReason::Watchdog) {
        return (Outcome::Hung, stop);
    }
    match status {
        Status::Signaled {
            signal: Signal::KILL,
            ..
        } if killed => (Outcome::Killed, stop),
        Status::Signaled { signal, .. } => match sent {
            Some(received) => (
                Outcome::Stopped,
                stop.or(Some(StopReason::Signal(received))),
            ),
            None if signal.is_termination() => (
                Outcome::Stopped,
                stop.or(Some(StopReason::External(signal))),
            ),
            None => (Outcome::Crashed, stop),
        },
        Status::Exited(_) if stop.is_some() => (Outcome::Stopped, stop),
        Status::Exited(0) => (Outcome::Exited, None),
        Status::Exited(_) => (Outcome::Failed, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(n: i32) -> Signal {
        Signal::new(n).unwrap()
    }

    fn died(n: i32) -> Status {
        Status::Signaled {
            signal: sig(n),
            core_dumped: false,
        }
    }

    const TERM: Option<StopReason> = Some(StopReason::Signal(Signal::TERM));

    #[test]
    fn rule_0_the_main_child_ending_after_the_watchdog_is_hung() {
        let w = Some(StopReason::Watchdog);
        for status in [died(6), died(9), Status::Exited(0)] {
            assert_eq!(decide(true, status, None, true, w), (Outcome::Hung, w));
        }
        assert_eq!(
            decide(false, died(6), None, false, w),
            (Outcome::Crashed, w),
            "an orphan's outcome follows the other rules"
        );
    }

    #[test]
    fn rule_6_exits_without_a_stop_are_exited_or_failed() {
        assert_eq!(
            decide(false, Status::Exited(0), None, false, None),
            (Outcome::Exited, None)
        );
        assert_eq!(
            decide(false, Status::Exited(3), None, false, None),
            (Outcome::Failed, None)
        );
    }

    #[test]
    fn rule_5_any_exit_during_a_stop_is_stopped_with_its_reason() {
        assert_eq!(
            decide(false, Status::Exited(1), None, false, TERM),
            (Outcome::Stopped, TERM)
        );
    }

    #[test]
    fn rule_1_the_grace_sigkill_is_killed_rule_4_other_sigkills_crashed() {
        let r = Some(StopReason::MainExited);
        assert_eq!(decide(false, died(9), None, true, r), (Outcome::Killed, r));
        assert_eq!(
            decide(false, died(9), None, false, None),
            (Outcome::Crashed, None)
        );
        assert_eq!(
            decide(false, died(11), None, true, r),
            (Outcome::Crashed, r)
        );
        assert_eq!(
            decide(false, died(6), None, false, None),
            (Outcome::Crashed, None)
        );
    }

    #[test]
    fn rule_2_a_forwarded_signal_is_stopped_named_as_received() {
        assert_eq!(
            decide(false, died(3), Some(Signal::TERM), false, TERM),
            (Outcome::Stopped, TERM)
        );
        assert_eq!(
            decide(false, died(10), Some(sig(10)), false, None),
            (Outcome::Stopped, Some(StopReason::Signal(sig(10))))
        );
    }

    #[test]
    fn rule_3_a_termination_signal_from_elsewhere_is_an_external_stop() {
        for n in [1, 2, 3, 15] {
            assert_eq!(
                decide(false, died(n), None, false, None),
                (Outcome::Stopped, Some(StopReason::External(sig(n))))
            );
        }
        assert_eq!(
            decide(false, died(2), None, false, TERM),
            (Outcome::Stopped, TERM),
            "a stop in progress keeps its reason"
        );
        assert_eq!(
            StopReason::External(Signal::INT).to_string(),
            "external:SIGINT"
        );
    }
}
