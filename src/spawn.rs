//! Starting the app: a new process group, the terminal's foreground where the
//! shim had it, and nothing of the shim's own state passed on.

use std::ffi::OsString;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Instant;

/// The app the shim started.
#[derive(Debug, Clone, Copy)]
pub struct Child {
    pub pid: i32,
    pub started: Instant,
}

/// Why COMMAND did not start, with the exit code that says so.
#[derive(Debug)]
pub struct SpawnError {
    pub error: io::Error,
    /// 127: not found; 126: found but could not be run.
    pub code: i32,
}

/// Forks and execs `command`. Signals must already be blocked in the shim.
///
/// std's `Command` does the fork/exec: between the two it only makes
/// async-signal-safe calls, and it reports an exec failure back through a
/// close-on-exec pipe. Our `pre_exec` then empties the signal mask (the shim's
/// is full, and std leaves it as it is) and sets SIGPIPE to its default, as
/// the contract says it always is. Every other disposition is the shim's own,
/// and the shim sets none (it blocks signals instead of handling them), so an
/// ignore set by the shim's parent, such as nohup's SIGHUP, survives the exec
/// as it should. The child inherits the shim's cwd, environment and
/// inheritable fds; everything the shim opens is O_CLOEXEC.
///
/// `sigchld_ignored`: the shim's parent had set SIGCHLD to SIG_IGN, which the
/// shim undid for itself (see `signals::reclaim_sigchld`); the child gets it
/// back, as it would have without the shim.
pub fn start(command: &[OsString], sigchld_ignored: bool) -> Result<Child, SpawnError> {
    let take_terminal = shim_owns_terminal();
    let mut cmd = Command::new(&command[0]);
    cmd.args(&command[1..]).process_group(0);
    // SAFETY: the closure runs in the child between fork and exec and only
    // makes async-signal-safe calls (sigprocmask, tcsetpgrp, getpid, signal).
    unsafe {
        cmd.pre_exec(move || {
            if take_terminal {
                become_foreground();
            }
            if sigchld_ignored {
                libc::signal(libc::SIGCHLD, libc::SIG_IGN);
            }
            // SIGPIPE is always the default in the app (the contract).
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            // Last: the mask the shim blocked everything with. Nothing is
            // pending here (a fork starts with no pending signals).
            let mut empty = std::mem::zeroed::<libc::sigset_t>();
            libc::sigemptyset(&mut empty);
            libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            Ok(())
        });
    }
    let started = Instant::now();
    match cmd.spawn() {
        // The std handle is dropped: the shim waits with waitid itself.
        Ok(child) => Ok(Child {
            pid: child.id() as i32,
            started,
        }),
        Err(error) => {
            let code = match error.raw_os_error() {
                Some(libc::ENOENT) | Some(libc::ENOTDIR) => 127,
                _ => 126,
            };
            Err(SpawnError { error, code })
        }
    }
}

/// True when stdin is a terminal whose foreground group is the shim's own:
/// then the app's new group takes the foreground over. A shim started in the
/// background (`shim -- app &`) leaves the terminal to the shell.
fn shim_owns_terminal() -> bool {
    // SAFETY: tcgetpgrp and getpgrp only read process state.
    unsafe {
        libc::isatty(libc::STDIN_FILENO) == 1
            && libc::tcgetpgrp(libc::STDIN_FILENO) == libc::getpgrp()
    }
}

/// Runs in the child, after setpgid: makes its new group the terminal's
/// foreground. tcsetpgrp from what is now a background group raises SIGTTOU
/// unless that signal is blocked (it still is, inherited from the shim, but
/// block it explicitly so this does not depend on the order of the steps);
/// errors are ignored, as the app can run without the terminal's foreground.
fn become_foreground() {
    // SAFETY: sigemptyset/sigaddset/sigprocmask/tcsetpgrp/getpid are
    // async-signal-safe and operate on local, initialised memory.
    unsafe {
        let mut ttou = std::mem::zeroed::<libc::sigset_t>();
        let mut old = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut ttou);
        libc::sigaddset(&mut ttou, libc::SIGTTOU);
        libc::sigprocmask(libc::SIG_BLOCK, &ttou, &mut old);
        libc::tcsetpgrp(libc::STDIN_FILENO, libc::getpid());
        libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
    }
}
