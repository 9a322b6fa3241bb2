//! Starting the app: a new process group, the terminal's foreground where the
//! shim had it, and nothing of the shim's own state passed on.

use std::ffi::{OsStr, OsString};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::signals;

/// The app the shim started.
#[derive(Debug, Clone, Copy)]
pub struct Child {
    pub pid: i32,
    pub started: Instant,
}

/// Why COMMAND did not start, with the exit code that says so.
#[derive(Debug)]
pub struct SpawnError {
    /// What went wrong, naming COMMAND (and a missing interpreter).
    pub message: String,
    /// 127: not found; 126: found but could not be run.
    pub code: i32,
}

/// Forks and execs `command`. Signals must already be blocked in the shim.
///
/// COMMAND is looked up in PATH here, as execvp would, so the shim knows
/// which file it runs: a file the kernel refuses as a format it does not
/// know (a script without `#!`) is then run with /bin/sh, as POSIX execvp
/// does (glibc's does, musl's does not: this makes every build the same),
/// and an ENOENT for a file that exists is its missing `#!` interpreter or
/// ELF loader, named in the error.
///
/// std's `Command` does the fork/exec: between the two it only makes
/// async-signal-safe calls, and it reports an exec failure back through a
/// close-on-exec pipe. Our `pre_exec` then empties the signal mask (the shim's
/// is full, and std leaves it as it is) and sets SIGPIPE to its default, as
/// docs/events.md and the README say it always is. Every other disposition is the shim's own,
/// and the shim sets none (it blocks signals instead of handling them), so an
/// ignore set by the shim's parent, such as nohup's SIGHUP, survives the exec
/// as it should. The child inherits the shim's cwd, environment and
/// inheritable fds; everything the shim opens is O_CLOEXEC.
///
/// `env`: what the app's environment gets beyond the shim's own
/// (NOTIFY_SOCKET and WATCHDOG_USEC).
///
/// `sigchld_ignored`: the shim's parent had set SIGCHLD to SIG_IGN, which the
/// shim undid for itself (see `signals::reclaim_sigchld`); the child gets it
/// back, as it would have without the shim.
pub fn start(
    command: &[OsString],
    sigchld_ignored: bool,
    env: &[(&str, OsString)],
) -> Result<Child, SpawnError> {
    let name = command[0].to_string_lossy();
    let fail = |code, why: String| SpawnError {
        message: format!("{name}: {why}"),
        code,
    };
    let path = resolve(&command[0]).map_err(|e| fail(exit_code(&e), e.to_string()))?;
    let take_terminal = shim_owns_terminal();
    let spawn = |program: &Path, args: &[&OsStr]| {
        let mut cmd = Command::new(program);
        cmd.arg0(&command[0]).args(args).process_group(0);
        for (k, v) in env {
            cmd.env(k, v);
        }
        // SAFETY: the closure runs in the child between fork and exec and only
        // makes async-signal-safe calls (rt_sigprocmask, tcsetpgrp, getpid,
        // signal).
        unsafe {
            cmd.pre_exec(move || {
                if take_terminal {
                    become_foreground();
                }
                if sigchld_ignored {
                    libc::signal(libc::SIGCHLD, libc::SIG_IGN);
                }
                // SIGPIPE is always the default in the app (as documented).
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                // Last: the mask the shim blocked everything with. Nothing is
                // pending here (a fork starts with no pending signals).
                signals::unblock_all()
            });
        }
        let started = Instant::now();
        // The std handle is dropped: the shim waits with waitid itself.
        cmd.spawn().map(|child| Child {
            pid: child.id() as i32,
            started,
        })
    };
    let args: Vec<&OsStr> = command[1..].iter().map(OsString::as_os_str).collect();
    match spawn(&path, &args) {
        Ok(child) => Ok(child),
        Err(e) if e.raw_os_error() == Some(libc::ENOEXEC) => {
            let mut with_path = vec![path.as_os_str()];
            with_path.extend(&args);
            spawn(Path::new("/bin/sh"), &with_path)
                .map_err(|e| fail(126, format!("not an executable format, and /bin/sh: {e}")))
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) && path.exists() => {
            let why = match missing_interpreter(&path) {
                Some(interp) => format!("its interpreter {interp} was not found"),
                None => e.to_string(),
            };
            Err(fail(126, why))
        }
        Err(e) => Err(fail(exit_code(&e), e.to_string())),
    }
}

/// 127: not found; 126: found but could not be run.
fn exit_code(e: &io::Error) -> i32 {
    match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => 127,
        _ => 126,
    }
}

/// The file execvp would run for `name`: `name` itself when it holds a `/`,
/// else the first PATH entry that has it as an executable file (the first
/// that has it at all, when none is executable, so the error is EACCES).
fn resolve(name: &OsStr) -> io::Result<PathBuf> {
    let not_found = || io::Error::from_raw_os_error(libc::ENOENT);
    if name.is_empty() {
        return Err(not_found());
    }
    if name.as_bytes().contains(&b'/') {
        return Ok(PathBuf::from(name));
    }
    let search = std::env::var_os("PATH").unwrap_or_else(|| "/bin:/usr/bin".into());
    let mut found = None;
    for dir in std::env::split_paths(&search) {
        // An empty entry is the working directory.
        let candidate = if dir.as_os_str().is_empty() {
            Path::new(".").join(name)
        } else {
            dir.join(name)
        };
        let Ok(meta) = std::fs::metadata(&candidate) else {
            continue;
        };
        if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
            return Ok(candidate);
        }
        found.get_or_insert(candidate);
    }
    found.ok_or_else(not_found)
}

/// The `#!` interpreter or ELF loader that `path` names, when it is not there.
fn missing_interpreter(path: &Path) -> Option<String> {
    let mut head = vec![0u8; 4096];
    let n = std::fs::File::open(path).ok()?.read(&mut head).ok()?;
    head.truncate(n);
    let interp = if let Some(line) = head.strip_prefix(b"#!") {
        let line = line.split(|&b| b == b'\n').next()?;
        let line = String::from_utf8_lossy(line);
        line.split_whitespace().next()?.to_string()
    } else {
        elf_interpreter(&std::fs::read(path).ok()?)?
    };
    (!Path::new(&interp).exists()).then_some(interp)
}

/// PT_INTERP of an ELF file, 32- or 64-bit, either byte order.
fn elf_interpreter(elf: &[u8]) -> Option<String> {
    if elf.get(..4)? != b"\x7fELF" {
        return None;
    }
    let wide = *elf.get(4)? == 2;
    let big = *elf.get(5)? == 2;
    let num = |at: usize, len: usize| -> Option<u64> {
        let bytes = elf.get(at..at + len)?;
        let mut v = 0u64;
        for i in 0..len {
            let b = if big { bytes[i] } else { bytes[len - 1 - i] };
            v = v << 8 | u64::from(b);
        }
        Some(v)
    };
    let (phoff, phentsize, phnum) = if wide {
        (num(0x20, 8)?, num(0x36, 2)?, num(0x38, 2)?)
    } else {
        (num(0x1c, 4)?, num(0x2a, 2)?, num(0x2c, 2)?)
    };
    for i in 0..phnum {
        let ph = usize::try_from(phoff + i * phentsize).ok()?;
        const PT_INTERP: u64 = 3;
        if num(ph, 4)? != PT_INTERP {
            continue;
        }
        let (offset, size) = if wide {
            (num(ph + 8, 8)?, num(ph + 32, 8)?)
        } else {
            (num(ph + 4, 4)?, num(ph + 16, 4)?)
        };
        let start = usize::try_from(offset).ok()?;
        let bytes = elf.get(start..start + usize::try_from(size).ok()?)?;
        let bytes = bytes.split(|&b| b == 0).next()?;
        return Some(String::from_utf8_lossy(bytes).into_owned());
    }
    None
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_elf_loader_of_a_dynamic_binary_is_found() {
        let sh = std::fs::read("/bin/sh").unwrap();
        let interp = elf_interpreter(&sh).expect("/bin/sh is dynamic here");
        assert!(interp.starts_with('/'), "{interp}");
        assert_eq!(elf_interpreter(b"#!/bin/sh\n"), None);
    }

    #[test]
    fn a_command_without_a_slash_is_looked_up_in_path() {
        assert!(resolve(OsStr::new("sh")).unwrap().is_absolute());
        assert_eq!(resolve(OsStr::new("./x")).unwrap(), PathBuf::from("./x"));
        assert_eq!(
            resolve(OsStr::new("no-such-command-anywhere"))
                .unwrap_err()
                .kind(),
            io::ErrorKind::NotFound
        );
    }
}
