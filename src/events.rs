//! Exit events: one JSON object per line, written whole or not at all.
//!
//! An event that cannot be written (a full pipe nobody reads, a closed
//! stream, a full disk, a path that cannot be opened) is dropped: the shim
//! counts it, says so once on its own diagnostics, and goes on. It never
//! waits for a reader and never changes an exit code because of it.

use std::borrow::Cow;
use std::path::PathBuf;
use std::time::SystemTime;

use serde::Serialize;

use crate::cli::EventsDest;
use crate::output::{self, Output};
use crate::reaper::Status;
use crate::signals;

/// How a process ended, from the shim's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Exited,
    Failed,
    Crashed,
    Stopped,
    Killed,
}

impl Outcome {
    pub fn intentional(self) -> bool {
        matches!(self, Outcome::Stopped | Outcome::Killed)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Main,
    Orphan,
}

/// One `exit` line.
#[derive(Debug, Serialize)]
pub struct Exit<'a> {
    #[serde(serialize_with = "display")]
    ts: Timestamp,
    event: &'static str,
    pid: i32,
    role: Role,
    comm: Option<&'a str>,
    outcome: Outcome,
    intentional: bool,
    code: Option<i32>,
    signal: Option<Cow<'static, str>>,
    signo: Option<i32>,
    core_dumped: Option<bool>,
    runtime_ms: Option<u64>,
    stop_reason: Option<&'a str>,
}

impl<'a> Exit<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        pid: i32,
        role: Role,
        comm: Option<&'a str>,
        status: Status,
        outcome: Outcome,
        runtime_ms: Option<u64>,
        stop_reason: Option<&'a str>,
    ) -> Self {
        let (code, signo, core_dumped) = match status {
            Status::Exited(code) => (Some(code), None, None),
            Status::Signaled { signo, core_dumped } => (None, Some(signo), Some(core_dumped)),
        };
        Exit {
            ts: now(),
            event: "exit",
            pid,
            role,
            comm,
            outcome,
            intentional: outcome.intentional(),
            code,
            signal: signo.map(signals::name),
            signo,
            core_dumped,
            runtime_ms,
            stop_reason,
        }
    }
}

#[derive(Debug, Serialize)]
struct SpawnFailed<'a> {
    #[serde(serialize_with = "display")]
    ts: Timestamp,
    event: &'static str,
    error: &'a str,
    code: i32,
}

#[derive(Debug, Serialize)]
struct ShimExit {
    #[serde(serialize_with = "display")]
    ts: Timestamp,
    event: &'static str,
    code: i32,
    reaped: u64,
}

/// RFC 3339 UTC with milliseconds: `2026-11-21T22:50:01.123Z`.
type Timestamp = humantime::Rfc3339Timestamp;

fn now() -> Timestamp {
    humantime::format_rfc3339_millis(SystemTime::now())
}

/// Writes a field through its Display, straight into the line (no String).
fn display<S: serde::Serializer>(v: &impl std::fmt::Display, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

enum Sink {
    Off,
    /// Shared with the shim's diagnostics, so the two never interleave.
    Stderr,
    Out(Output),
    /// A path: opened at start, and again at the next event if that failed.
    Path(PathBuf, Option<Output>),
}

/// The events destination and the termination log.
pub struct Events {
    sink: Sink,
    termination_log: Option<PathBuf>,
    dropped: u64,
    line: Vec<u8>,
    /// Lines queued for one write (see `flush`), and how many.
    batch: Vec<u8>,
    batched: u64,
}

impl Events {
    pub fn open(dest: &EventsDest, termination_log: Option<PathBuf>) -> Events {
        let sink = match dest {
            EventsDest::Off => Sink::Off,
            EventsDest::Fd(libc::STDERR_FILENO) => Sink::Stderr,
            EventsDest::Fd(fd) => {
                if *fd > libc::STDERR_FILENO {
                    // The app must not inherit the shim's events descriptor
                    // (stdout and stderr are the app's as much as ours).
                    // SAFETY: F_SETFD on a descriptor cli checked is open.
                    unsafe { libc::fcntl(*fd, libc::F_SETFD, libc::FD_CLOEXEC) };
                }
                Sink::Out(Output::for_fd(*fd))
            }
            EventsDest::Path(path) => {
                let out = Output::append(path)
                    .map_err(|e| {
                        let p = path.display();
                        tracing::warn!(
                            "could not open the events file {p}: {e}; trying again at each event"
                        )
                    })
                    .ok();
                Sink::Path(path.clone(), out)
            }
        };
        Events {
            sink,
            termination_log,
            dropped: 0,
            line: Vec::with_capacity(512),
            batch: Vec::with_capacity(libc::PIPE_BUF),
            batched: 0,
        }
    }

    /// False with `--events off`: nothing but the termination log is written.
    pub fn enabled(&self) -> bool {
        !matches!(self.sink, Sink::Off)
    }

    pub fn has_termination_log(&self) -> bool {
        self.termination_log.is_some()
    }

    /// Writes the `exit` line of a reaped process; the main child's also goes
    /// to the termination log.
    pub fn exit(&mut self, event: &Exit) {
        self.emit(event, event.role == Role::Main);
    }

    pub fn spawn_failed(&mut self, error: &str, code: i32) {
        let event = SpawnFailed {
            ts: now(),
            event: "spawn_failed",
            error,
            code,
        };
        self.emit(&event, true);
        self.flush();
    }

    pub fn shim_exit(&mut self, code: i32, reaped: u64) {
        let event = ShimExit {
            ts: now(),
            event: "shim_exit",
            code,
            reaped,
        };
        self.emit(&event, false);
        self.flush();
        if self.dropped > 0 {
            tracing::warn!(
                "{} exit event(s) could not be written and were dropped",
                self.dropped
            );
        }
    }

    /// Serializes `event` into the line buffer (kept between events, so an
    /// orphan storm allocates nothing for its lines) and queues it.
    fn emit(&mut self, event: &impl Serialize, to_termination_log: bool) {
        let mut line = std::mem::take(&mut self.line);
        fill_line(&mut line, event);
        if to_termination_log {
            self.write_termination_log(&line);
        }
        if self.enabled() {
            if self.batch.len() + line.len() > libc::PIPE_BUF {
                self.flush();
            }
            self.batch.extend_from_slice(&line);
            self.batched += 1;
        }
        self.line = line;
    }

    /// Writes the queued lines. The supervisor flushes after each burst of
    /// exits it reaps, so a storm of orphans costs one write per burst, not
    /// per line; a batch never exceeds PIPE_BUF bytes unless one line does,
    /// so a pipe takes all of it or none (such writes are atomic), and every
    /// line goes out whole.
    pub fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let result = match &mut self.sink {
            Sink::Off => Ok(()),
            Sink::Stderr => output::stderr().write_line(&self.batch),
            Sink::Out(out) => out.write_line(&self.batch),
            Sink::Path(path, out) => {
                // Not there at the start, or gone: try again, quietly (a
                // failure counts as a dropped event, warned about once).
                if out.is_none() {
                    *out = Output::append(path).ok();
                }
                match out {
                    Some(out) => out.write_line(&self.batch),
                    None => Err(std::io::Error::other(format!(
                        "cannot open {}",
                        path.display()
                    ))),
                }
            }
        };
        if let Err(e) = result {
            if self.dropped == 0 {
                tracing::warn!(
                    "could not write an exit event ({e}); it is dropped, and so are later ones that cannot be written"
                );
            }
            self.dropped += self.batched;
        }
        self.batch.clear();
        self.batched = 0;
    }

    fn write_termination_log(&self, line: &[u8]) {
        if let Some(path) = &self.termination_log {
            if let Err(e) = output::replace_file(path, line) {
                tracing::warn!(
                    "could not write the termination log {}: {e}",
                    path.display()
                );
            }
        }
    }
}

fn fill_line(line: &mut Vec<u8>, event: &impl Serialize) {
    line.clear();
    // Serializing plain structs of strings and numbers into a Vec cannot fail.
    let _ = serde_json::to_writer(Pieces(line), event);
    line.push(b'\n');
}

/// The line as serde_json writes it: in dozens of tiny pieces per event (a
/// quote, a colon, a key). Appended with `extend_from_slice`, each piece is a
/// call to libc's memcpy, and musl's (the static build's libc) costs tens of
/// cycles however few bytes it copies: about 3 µs per event in an orphan
/// storm (BENCHMARKS.md). Short pieces are pushed byte by byte instead;
/// inlined, a constant piece becomes a plain store.
struct Pieces<'a>(&'a mut Vec<u8>);

impl std::io::Write for Pieces<'_> {
    #[inline(always)]
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.write_all(bytes)?;
        Ok(bytes.len())
    }

    #[inline(always)]
    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if bytes.len() <= 16 {
            for &b in bytes {
                self.0.push(b);
            }
        } else {
            self.0.extend_from_slice(bytes);
        }
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_line_has_every_field_in_order() {
        let e = Exit::new(
            42,
            Role::Main,
            Some("server"),
            Status::Signaled {
                signo: 11,
                core_dumped: true,
            },
            Outcome::Crashed,
            Some(1234),
            None,
        );
        let mut line = Vec::new();
        fill_line(&mut line, &e);
        let line = String::from_utf8(line).unwrap();
        let rest = line.split_once(",\"event\"").unwrap().1;
        assert_eq!(
            rest,
            ":\"exit\",\"pid\":42,\"role\":\"main\",\"comm\":\"server\",\"outcome\":\"crashed\",\"intentional\":false,\"code\":null,\"signal\":\"SIGSEGV\",\"signo\":11,\"core_dumped\":true,\"runtime_ms\":1234,\"stop_reason\":null}\n"
        );
    }
}
