//! Exit events: one JSON object per line, written whole or not at all.
//!
//! An event that cannot be written (a full pipe nobody reads, a closed
//! stream, a full disk, a path that cannot be opened) is dropped: the shim
//! counts it, says so once on its own diagnostics, and goes on. It never
//! waits for a reader and never changes an exit code because of it.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::cli::EventsDest;
use crate::diag;
use crate::memory::Rise;
use crate::output::{self, Output, Written, shorten};
use crate::reaper::{Status, Usage};
use crate::signals::Signal;

/// How a process ended, from the shim's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Exited,
    Failed,
    Crashed,
    Stopped,
    Killed,
    /// The main child, after the watchdog ran out.
    Hung,
}

/// What started a stop, or (`External`) the termination signal from
/// elsewhere that ended a process while none was in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// A stop request, named as received (before any rewrite).
    Signal(Signal),
    ParentDeath,
    MainExited,
    Watchdog,
    External(Signal),
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::Signal(s) => write!(f, "signal:{}", s.name()),
            StopReason::ParentDeath => f.write_str("parent-death"),
            StopReason::MainExited => f.write_str("main-exited"),
            StopReason::Watchdog => f.write_str("watchdog"),
            StopReason::External(s) => write!(f, "external:{}", s.name()),
        }
    }
}

impl Outcome {
    /// The word the events use.
    fn word(self) -> &'static str {
        match self {
            Outcome::Exited => "exited",
            Outcome::Failed => "failed",
            Outcome::Crashed => "crashed",
            Outcome::Stopped => "stopped",
            Outcome::Killed => "killed",
            Outcome::Hung => "hung",
        }
    }

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

/// One `exit` line: the line written for every orphan of a storm, so it is
/// written straight into the line buffer (`write_to`) rather than through
/// serde_json, whose per-byte escaping of every key was most of PID 1's
/// work per orphan (BENCHMARKS.md); only the process's name needs escaping.
#[derive(Debug)]
pub struct Exit<'a> {
    ts: Timestamp,
    pid: i32,
    role: Role,
    comm: Option<&'a str>,
    outcome: Outcome,
    intentional: bool,
    code: Option<i32>,
    signal: Option<&'static str>,
    signo: Option<i32>,
    core_dumped: Option<bool>,
    runtime_ms: Option<u64>,
    stop_reason: Option<StopReason>,
    max_rss_kib: Option<u64>,
    cpu_user_ms: Option<u64>,
    cpu_sys_ms: Option<u64>,
    oom_killed: Option<bool>,
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
        stop_reason: Option<StopReason>,
        usage: Option<Usage>,
        oom_killed: Option<bool>,
    ) -> Self {
        let (code, signal, core_dumped) = match status {
            Status::Exited(code) => (Some(code), None, None),
            Status::Signaled {
                signal,
                core_dumped,
            } => (None, Some(signal), Some(core_dumped)),
        };
        Exit {
            ts: now(),
            pid,
            role,
            comm,
            outcome,
            intentional: outcome.intentional(),
            code,
            signal: signal.map(Signal::name),
            signo: signal.map(Signal::number),
            core_dumped,
            runtime_ms,
            stop_reason,
            max_rss_kib: usage.map(|u| u.max_rss_kib),
            cpu_user_ms: usage.map(|u| u.cpu_user_ms),
            cpu_sys_ms: usage.map(|u| u.cpu_sys_ms),
            oom_killed,
        }
    }
}

impl Exit<'_> {
    /// The line, in the documented field order, with its newline.
    fn write_to(&self, line: &mut Vec<u8>) {
        use std::io::Write;
        let mut l = Line(line);
        l.raw(b"{\"ts\":\"");
        let _ = write!(l.0, "{}", self.ts);
        l.raw(b"\",\"event\":\"exit\",\"pid\":");
        l.int(Some(i64::from(self.pid)));
        l.raw(match self.role {
            Role::Main => b",\"role\":\"main\",\"comm\":",
            Role::Orphan => b",\"role\":\"orphan\",\"comm\":",
        });
        match self.comm {
            Some(comm) => {
                let _ = serde_json::to_writer(Pieces(l.0), comm);
            }
            None => l.raw(b"null"),
        }
        l.raw(b",\"outcome\":");
        l.text(Some(self.outcome.word()));
        l.raw(b",\"intentional\":");
        l.boolean(Some(self.intentional));
        l.raw(b",\"code\":");
        l.int(self.code.map(i64::from));
        l.raw(b",\"signal\":");
        l.text(self.signal);
        l.raw(b",\"signo\":");
        l.int(self.signo.map(i64::from));
        l.raw(b",\"core_dumped\":");
        l.boolean(self.core_dumped);
        l.raw(b",\"runtime_ms\":");
        l.int(self.runtime_ms.map(|n| n as i64));
        l.raw(b",\"stop_reason\":");
        match self.stop_reason {
            Some(r) => {
                let _ = write!(l.0, "\"{r}\"");
            }
            None => l.raw(b"null"),
        }
        l.raw(b",\"max_rss_kib\":");
        l.int(self.max_rss_kib.map(|n| n as i64));
        l.raw(b",\"cpu_user_ms\":");
        l.int(self.cpu_user_ms.map(|n| n as i64));
        l.raw(b",\"cpu_sys_ms\":");
        l.int(self.cpu_sys_ms.map(|n| n as i64));
        l.raw(b",\"oom_killed\":");
        l.boolean(self.oom_killed);
        l.raw(b"}\n");
    }
}

/// Pieces of a JSON line whose keys and words need no escaping.
struct Line<'a>(&'a mut Vec<u8>);

impl Line<'_> {
    #[inline(always)]
    fn raw(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    fn int(&mut self, n: Option<i64>) {
        match n {
            Some(n) => self.raw(itoa::Buffer::new().format(n).as_bytes()),
            None => self.raw(b"null"),
        }
    }

    fn boolean(&mut self, b: Option<bool>) {
        self.raw(match b {
            Some(true) => b"true",
            Some(false) => b"false",
            None => b"null",
        });
    }

    /// A word of the shim's own vocabulary (an outcome, a signal name):
    /// plain ASCII, nothing to escape.
    fn text(&mut self, word: Option<&str>) {
        match word {
            Some(w) => {
                self.raw(b"\"");
                self.raw(w.as_bytes());
                self.raw(b"\"");
            }
            None => self.raw(b"null"),
        }
    }
}

/// One `oom_kill` line: the memory cgroup's OOM-kill count rose.
#[derive(Debug, Serialize)]
struct OomKill {
    #[serde(serialize_with = "display")]
    ts: Timestamp,
    event: &'static str,
    count: u64,
    total: u64,
    memory_max_kib: Option<u64>,
    memory_peak_kib: Option<u64>,
}

#[derive(Debug, Serialize)]
struct SpawnFailed<'a> {
    #[serde(serialize_with = "display")]
    ts: Timestamp,
    event: &'static str,
    error: &'a str,
    code: i32,
}

/// A line about the app's readiness: `ready`, `reloading`, `stopping`,
/// `status`, `watchdog`.
#[derive(Debug, Serialize)]
struct Notice<'a> {
    #[serde(serialize_with = "display")]
    ts: Timestamp,
    event: &'static str,
    pid: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    after_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signal: Option<&'static str>,
}

impl Notice<'_> {
    fn new(event: &'static str, pid: i32) -> Self {
        Notice {
            ts: now(),
            event,
            pid,
            after_ms: None,
            text: None,
            timeout_ms: None,
            signal: None,
        }
    }
}

#[derive(Debug, Serialize)]
struct ShimExit {
    #[serde(serialize_with = "display")]
    ts: Timestamp,
    event: &'static str,
    code: i32,
    reaped: u64,
    oom_kills: Option<u64>,
}

/// RFC 3339 UTC with milliseconds: `2026-11-21T22:50:01.123Z`.
type Timestamp = humantime::Rfc3339Timestamp;

/// The wall clock, held within the years RFC 3339 can write (humantime
/// panics before 1970 and writes no valid time past 9999): a clock set
/// that wrong must not cost PID 1 its life, nor a line its shape.
fn now() -> Timestamp {
    let epoch = SystemTime::UNIX_EPOCH;
    // 9999-12-31T23:59:59.999Z
    let last = epoch + Duration::from_millis(253_402_300_799_999);
    let t = SystemTime::now().clamp(epoch, last);
    humantime::format_rfc3339_millis(t)
}

/// Writes a field through its Display, straight into the line (no String).
fn display<S: serde::Serializer>(v: &impl std::fmt::Display, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

enum Sink {
    Off,
    /// Shared with the shim's diagnostics, so the two never share a line.
    Stderr,
    Out(Output),
    /// A path, opened again when log rotation moved or deleted the file.
    Path(PathBuf, Output),
}

/// Kubernetes reads at most this much of a termination message.
const TERMINATION_LOG_MAX: usize = 4096;

/// How long the shim's exit waits, at most, for a slow destination to take
/// what is pending.
const EXIT_DRAIN: Duration = Duration::from_millis(250);

/// The termination log, and what was at its path before the app started:
/// a file that changed since holds the app's own message.
struct TerminationLog {
    path: PathBuf,
    before: Option<FileState>,
}

type FileState = (u64, u64, i64, i64, u64);

fn file_state(path: &std::path::Path) -> Option<FileState> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.dev(), m.ino(), m.mtime(), m.mtime_nsec(), m.size()))
}

/// The events destination and the termination log.
pub struct Events {
    sink: Sink,
    termination_log: Option<TerminationLog>,
    dropped: u64,
    line: Vec<u8>,
    /// Lines queued for one write (see `flush`), and how many.
    batch: Vec<u8>,
    batched: u64,
}

impl Events {
    /// Opens the destination; an error names what could not be opened.
    pub fn open(dest: &EventsDest, termination_log: Option<PathBuf>) -> Result<Events, String> {
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
            EventsDest::Path(path) => match Output::append(path) {
                Ok(out) => Sink::Path(path.clone(), out),
                Err(e) => {
                    return Err(format!(
                        "cannot open the events file {}: {e}",
                        path.display()
                    ));
                }
            },
        };
        Ok(Events {
            sink,
            termination_log: termination_log.map(|path| TerminationLog {
                before: file_state(&path),
                path,
            }),
            dropped: 0,
            line: Vec::with_capacity(512),
            batch: Vec::with_capacity(libc::PIPE_BUF),
            batched: 0,
        })
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
        self.emit_with(|line| event.write_to(line), event.role == Role::Main);
    }

    /// The `spawn_failed` line. `error` names COMMAND, which may be huge.
    pub fn spawn_failed(&mut self, error: &str, code: i32) {
        let line = within_pipe_buf(error, |line, error| {
            let event = SpawnFailed {
                ts: now(),
                event: "spawn_failed",
                error,
                code,
            };
            fill_line(line, &event);
        });
        self.emit_with(|out| out.extend_from_slice(&line), true);
        self.flush();
    }

    /// `ready`: the sender, and the time since the spawn.
    pub fn ready(&mut self, pid: i32, after_ms: u64) {
        let line = Notice {
            after_ms: Some(after_ms),
            ..Notice::new("ready", pid)
        };
        self.emit(&line, false);
    }

    /// `reloading` or `stopping`.
    pub fn notice(&mut self, event: &'static str, pid: i32) {
        self.emit(&Notice::new(event, pid), false);
    }

    /// `status`: the app's text, up to a datagram's worth, escaped.
    pub fn status(&mut self, pid: i32, text: &str) {
        let line = within_pipe_buf(text, |line, text| {
            let event = Notice {
                text: Some(text),
                ..Notice::new("status", pid)
            };
            fill_line(line, &event);
        });
        self.emit_with(|out| out.extend_from_slice(&line), false);
    }

    /// `watchdog`: the main child sent no WATCHDOG=1 for `timeout_ms`.
    pub fn watchdog(&mut self, pid: i32, timeout_ms: u64, signal: Signal) {
        let line = Notice {
            timeout_ms: Some(timeout_ms),
            signal: Some(signal.name()),
            ..Notice::new("watchdog", pid)
        };
        self.emit(&line, false);
    }

    pub fn oom_kill(&mut self, rise: &Rise) {
        let event = OomKill {
            ts: now(),
            event: "oom_kill",
            count: rise.count,
            total: rise.total,
            memory_max_kib: rise.memory_max_kib,
            memory_peak_kib: rise.memory_peak_kib,
        };
        self.emit(&event, false);
    }

    pub fn shim_exit(&mut self, code: i32, reaped: u64, oom_kills: Option<u64>) {
        let event = ShimExit {
            ts: now(),
            event: "shim_exit",
            code,
            reaped,
            oom_kills,
        };
        self.emit(&event, false);
        self.flush();
        // The last chance for what waits for a slow destination, and then
        // for diagnostics waiting on stderr (this warning among them).
        let end = std::time::Instant::now() + EXIT_DRAIN;
        self.drain(EXIT_DRAIN);
        // What is still pending now never will be written.
        self.dropped += self.with_output(|out| out.pending_lines()).unwrap_or(0);
        if self.dropped > 0 {
            diag::warning!(
                "{} event line(s) could not be written and were dropped",
                self.dropped
            );
        }
        output::with_stderr(|out| {
            out.drain(end.saturating_duration_since(std::time::Instant::now()))
        });
    }

    /// Serializes `event` into the line buffer (kept between events, so an
    /// orphan storm allocates nothing for its lines) and queues it.
    fn emit(&mut self, event: &impl Serialize, to_termination_log: bool) {
        self.emit_with(|line| fill_line(line, event), to_termination_log);
    }

    /// Queues the line `fill` writes (into a cleared buffer).
    fn emit_with(&mut self, fill: impl FnOnce(&mut Vec<u8>), to_termination_log: bool) {
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        fill(&mut line);
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
    /// per line; a batch never exceeds PIPE_BUF bytes (no line does), so a
    /// pipe takes all of it or none, and every line goes out whole.
    pub fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let batch = &self.batch;
        let result = match &mut self.sink {
            Sink::Off => Ok(Written::Whole),
            Sink::Stderr => output::with_stderr(|out| out.write_line(batch)),
            Sink::Out(out) => out.write_line(batch),
            Sink::Path(path, out) => {
                reopen_if_moved(path, out);
                out.write_line(batch)
            }
        };
        let lost = match result {
            Ok(Written::Whole | Written::Pending) => None,
            Ok(Written::Dropped) => Some("the destination is full".to_string()),
            Err(e) => Some(e.to_string()),
        };
        if let Some(why) = lost {
            diag::warn_once(
                diag::Once::Events,
                format_args!(
                    "could not write an event line ({why}); it is dropped, and so are later ones that cannot be written"
                ),
            );
            self.dropped += self.batched;
        }
        self.batch.clear();
        self.batched = 0;
    }

    fn with_output<R>(&mut self, f: impl FnOnce(&mut Output) -> R) -> Option<R> {
        match &mut self.sink {
            Sink::Off => None,
            Sink::Stderr => Some(output::with_stderr(f)),
            Sink::Out(out) | Sink::Path(_, out) => Some(f(out)),
        }
    }

    /// The descriptor the loop waits on for room, while a line the
    /// destination took only part of waits for its rest.
    pub fn waiting_fd(&mut self) -> Option<std::os::fd::RawFd> {
        self.with_output(|out| out.waiting_fd()).flatten()
    }

    /// The destination has room: write the rest of the started line.
    pub fn resume(&mut self) {
        self.with_output(Output::resume);
    }

    fn drain(&mut self, limit: Duration) {
        self.with_output(|out| out.drain(limit));
    }

    /// Overwrites the termination log with `line`, keeping the app's own
    /// message, if it wrote one there, as `message`.
    fn write_termination_log(&self, line: &[u8]) {
        let Some(log) = &self.termination_log else {
            return;
        };
        let mut content = line.to_vec();
        if file_state(&log.path) != log.before {
            if let Some(message) = read_message(&log.path) {
                content = with_message(line, &message);
            }
        }
        if let Err(e) = output::replace_file(&log.path, &content) {
            diag::warning!(
                "could not write the termination log {}: {e}",
                log.path.display()
            );
        }
    }
}

/// The path now names another file (rotated) or none (deleted): open it
/// again, so events go where the path says. Failing that, the old file.
fn reopen_if_moved(path: &std::path::Path, out: &mut Output) {
    use std::os::unix::fs::MetadataExt;
    let now = std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()));
    if now.is_some() && now == out.identity() {
        return;
    }
    if let Ok(fresh) = Output::append(path) {
        *out = fresh;
    }
}

/// The app's own termination message: the file's text, if it is not empty.
fn read_message(path: &std::path::Path) -> Option<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    let file = std::fs::File::open(path).ok()?;
    file.take(TERMINATION_LOG_MAX as u64 * 4)
        .read_to_end(&mut bytes)
        .ok()?;
    (!bytes.is_empty()).then(|| String::from_utf8_lossy(&bytes).into_owned())
}

/// `line` (an object and its newline) with `"message":...` added, the
/// message's end cut at a character boundary where the whole would pass
/// Kubernetes's limit.
fn with_message(line: &[u8], message: &str) -> Vec<u8> {
    let Some(object) = line.strip_suffix(b"}\n") else {
        return line.to_vec();
    };
    let mut message = std::borrow::Cow::Borrowed(message);
    loop {
        let mut out = object.to_vec();
        out.extend_from_slice(b",\"message\":");
        let _ = serde_json::to_writer(&mut out, &*message);
        out.extend_from_slice(b"}\n");
        let excess = out.len().saturating_sub(TERMINATION_LOG_MAX);
        if excess == 0 || message.is_empty() {
            return out;
        }
        message = shorten(&message, excess).into();
    }
}

/// The line `fill` writes for `text`, with `text` shortened as far as needed
/// for the line to stay within PIPE_BUF, which a pipe takes whole.
fn within_pipe_buf(text: &str, fill: impl Fn(&mut Vec<u8>, &str)) -> Vec<u8> {
    let mut text = std::borrow::Cow::Borrowed(text);
    let mut line = Vec::new();
    fill(&mut line, "");
    let bare = line.len();
    loop {
        fill(&mut line, &text);
        let excess = line.len().saturating_sub(libc::PIPE_BUF);
        if excess == 0 || text.is_empty() {
            return line;
        }
        // JSON escapes grow a byte of text into as many as six: cut the
        // text in proportion to what it takes up in the line.
        let escaped = line.len() - bare;
        text = shorten(&text, (excess * text.len()).div_ceil(escaped)).into();
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
                signal: Signal::new(11).unwrap(),
                core_dumped: true,
            },
            Outcome::Crashed,
            Some(1234),
            None,
            Some(Usage {
                max_rss_kib: 2048,
                cpu_user_ms: 7,
                cpu_sys_ms: 3,
            }),
            Some(false),
        );
        let mut line = Vec::new();
        e.write_to(&mut line);
        let line = String::from_utf8(line).unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["comm"], "server");
        let rest = line.split_once(",\"event\"").unwrap().1;
        assert_eq!(
            rest,
            ":\"exit\",\"pid\":42,\"role\":\"main\",\"comm\":\"server\",\"outcome\":\"crashed\",\"intentional\":false,\"code\":null,\"signal\":\"SIGSEGV\",\"signo\":11,\"core_dumped\":true,\"runtime_ms\":1234,\"stop_reason\":null,\"max_rss_kib\":2048,\"cpu_user_ms\":7,\"cpu_sys_ms\":3,\"oom_killed\":false}\n"
        );
    }

    #[test]
    fn a_status_text_escaped_past_pipe_buf_is_shortened_to_one_whole_line() {
        // A datagram's worth of control characters, each escaped to six.
        let text = "\u{1}".repeat(4000);
        let line = within_pipe_buf(&text, |line, text| {
            let event = Notice {
                text: Some(text),
                ..Notice::new("status", 7)
            };
            fill_line(line, &event);
        });
        assert!(line.len() <= libc::PIPE_BUF, "{} bytes", line.len());
        assert_eq!(line.last(), Some(&b'\n'));
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert!(v["text"].as_str().unwrap().ends_with('…'), "{v}");
    }
}
