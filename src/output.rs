//! Writing whole lines without ever blocking PID 1.
//!
//! The shim shares stdout and stderr with the app, so it cannot simply set
//! O_NONBLOCK on them: that flag lives on the open file description and would
//! change the app's writes too. Each destination gets its own non-blocking
//! path instead:
//! - a regular file never blocks;
//! - a socket is written with MSG_DONTWAIT (and MSG_NOSIGNAL);
//! - a pipe, FIFO or terminal is reopened through /proc/self/fd, a new
//!   description the shim alone owns; a terminal that refuses that (a
//!   root-owned pty and a shim running as another user) is reopened as
//!   /dev/tty when it is the shim's controlling terminal;
//! - failing both, O_NONBLOCK is set on the shared description for the one
//!   write and cleared again. The app then sees it only if it writes in
//!   that instant to a destination too full to take its write at once.
//!
//! A line is never torn: what a destination takes of it is remembered, and
//! the rest goes first as soon as it takes more (the loop waits for that with
//! `waiting_fd`). Lines that find no room wait behind it, in order, up to
//! `PENDING_MAX` bytes (a slow log reader delays them rather than losing
//! them); a line that does not fit there either is dropped whole. PID 1
//! never waits on a reader, except for a bounded moment at its exit.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Mutex;

enum Fd {
    Borrowed(RawFd),
    Owned(OwnedFd),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// write(2) cannot block: a regular file, or a description we own with
    /// O_NONBLOCK set.
    Plain,
    /// A socket: send(2) with MSG_DONTWAIT, so the shared description keeps
    /// its flags; MSG_NOSIGNAL, so a closed peer raises no SIGPIPE.
    Socket,
    /// A shared blocking description nothing else could replace: O_NONBLOCK
    /// for the one write.
    Toggled,
}

/// What became of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Whole,
    /// Not all of it went out yet: the rest waits, in order, for room.
    Pending,
    /// Not a byte of it went out, and there was no room to keep it.
    Dropped,
}

/// How much may wait for a slow destination: as much again as a pipe
/// holds, a burst of about two hundred exit lines. Beyond it a line is
/// dropped, so a reader that never reads costs the shim no more memory
/// than this.
const PENDING_MAX: usize = 64 * 1024;

pub struct Output {
    fd: Fd,
    mode: Mode,
    regular: bool,
    /// What the destination has not taken yet: the rest of a line it took
    /// only part of, then whole lines, oldest first.
    pending: Vec<u8>,
    /// The first pending line is the rest of one begun: it must be
    /// finished, or the destination holds a torn line.
    begun: bool,
    /// (device, inode) of what this writes to, taken once: an open
    /// descriptor's file never changes.
    identity: Option<(u64, u64)>,
}

impl Output {
    /// A non-blocking writer for an inherited descriptor (1, 2, or `fd:N`).
    pub fn for_fd(fd: RawFd) -> Output {
        let borrowed = |mode| Output::new(Fd::Borrowed(fd), mode);
        match file_type(fd) {
            Some(libc::S_IFREG) => borrowed(Mode::Plain),
            Some(libc::S_IFSOCK) => borrowed(Mode::Socket),
            None => borrowed(Mode::Plain),
            Some(_) => match reopen_nonblocking(format!("/proc/self/fd/{fd}"), false) {
                Ok(owned) => Output::new(Fd::Owned(owned), Mode::Plain),
                Err(_) => match controlling_terminal_for(fd) {
                    Some(owned) => Output::new(Fd::Owned(owned), Mode::Plain),
                    None => borrowed(Mode::Toggled),
                },
            },
        }
    }

    /// A file path, opened for appending (created 0644 if missing).
    pub fn append(path: &Path) -> io::Result<Output> {
        Ok(Output::new(
            Fd::Owned(reopen_nonblocking(path, true)?),
            Mode::Plain,
        ))
    }

    fn new(fd: Fd, mode: Mode) -> Output {
        let raw = match &fd {
            Fd::Borrowed(fd) => *fd,
            Fd::Owned(fd) => fd.as_raw_fd(),
        };
        let st = fstat(raw);
        Output {
            regular: st.is_some_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG),
            identity: st.map(|st| (st.st_dev, st.st_ino)),
            fd,
            mode,
            pending: Vec::new(),
            begun: false,
        }
    }

    fn raw(&self) -> RawFd {
        match &self.fd {
            Fd::Borrowed(fd) => *fd,
            Fd::Owned(fd) => fd.as_raw_fd(),
        }
    }

    /// (device, inode) of what this writes to.
    pub fn identity(&self) -> Option<(u64, u64)> {
        self.identity
    }

    /// The descriptor to wait on for room, while something is pending
    /// (never a regular file: it is always "ready", and retried at the next
    /// line instead).
    pub fn waiting_fd(&self) -> Option<RawFd> {
        (!self.pending.is_empty() && !self.regular).then(|| self.raw())
    }

    /// Writes what it can of what is pending; true when none is left.
    pub fn resume(&mut self) -> bool {
        self.resume_within(usize::MAX)
    }

    /// As `resume`, but of the first `max` pending bytes only; true when
    /// they are all written. At most
    /// PIPE_BUF bytes go in one write, ending at a line's end where one is
    /// in reach, so a pipe shared with the app takes whole lines only.
    fn resume_within(&mut self, max: usize) -> bool {
        let max = max.min(self.pending.len());
        let mut done = 0;
        while done < max {
            let left = &self.pending[done..max];
            let chunk = chunk_len(left);
            match self.write_some(&left[..chunk]) {
                Ok(n) => {
                    done += n;
                    if n < chunk {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // The destination is gone (a closed pipe): nothing pending
                // can ever be written.
                Err(_) => {
                    done = self.pending.len();
                    break;
                }
            }
        }
        let finished = done >= max;
        if done > 0 {
            self.begun = self.pending[done - 1] != b'\n';
            self.pending.drain(..done);
        }
        if self.pending.is_empty() {
            self.begun = false;
            if self.pending.capacity() > 2 * libc::PIPE_BUF {
                // A burst's worth of memory goes back once it is written.
                self.pending = Vec::new();
            }
        }
        finished
    }

    /// Writes `line` whole, or keeps what the destination did not take to
    /// go first when it has room, or drops it.
    pub fn write_line(&mut self, line: &[u8]) -> io::Result<Written> {
        if !self.resume() {
            return Ok(self.keep(line));
        }
        let n = match self.write_some(line) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(e) => return Err(e),
        };
        if n == line.len() {
            return Ok(Written::Whole);
        }
        if self.regular {
            // A full disk took part of the line. In a file of the shim's own,
            // cut that part off again so the file holds only whole lines; in
            // a shared one, the rest goes at the next line.
            if let Fd::Owned(_) = self.fd {
                truncate_tail(self.raw(), n as u64);
                return Err(io::Error::new(io::ErrorKind::WriteZero, "short write"));
            }
        }
        if n == 0 {
            return Ok(self.keep(line));
        }
        // Begun: the rest must follow, whatever the bound.
        self.pending.extend_from_slice(&line[n..]);
        self.begun = true;
        Ok(Written::Pending)
    }

    /// How many whole lines are still pending.
    pub fn pending_lines(&self) -> u64 {
        self.pending.iter().filter(|&&b| b == b'\n').count() as u64
    }

    /// Keeps a line that found no room, if it fits behind what waits.
    fn keep(&mut self, line: &[u8]) -> Written {
        if self.regular || self.pending.len() + line.len() > PENDING_MAX {
            return Written::Dropped;
        }
        self.pending.extend_from_slice(line);
        Written::Pending
    }

    /// Spends at most `limit` waiting for room for what is pending (at the
    /// shim's exit, its last chance to write it). A line left begun then
    /// gets as long again for its rest alone: better one line late than a
    /// torn one.
    pub fn drain(&mut self, limit: std::time::Duration) {
        self.wait_and_resume(limit, usize::MAX);
        if self.begun {
            let rest = self
                .pending
                .iter()
                .position(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            self.wait_and_resume(limit, rest);
        }
    }

    /// Writes the first `max` pending bytes, waiting for room for at most
    /// `limit`.
    fn wait_and_resume(&mut self, limit: std::time::Duration, max: usize) {
        let end = std::time::Instant::now() + limit;
        while !self.resume_within(max) && !self.regular {
            let left = end.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return;
            }
            let mut pfd = libc::pollfd {
                fd: self.raw(),
                events: libc::POLLOUT,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let ready = unsafe { libc::poll(&mut pfd, 1, left.as_millis().max(1) as i32) };
            if ready < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                return;
            }
        }
    }

    /// One write of as much of `bytes` as the destination takes now.
    fn write_some(&self, bytes: &[u8]) -> io::Result<usize> {
        let fd = self.raw();
        let toggled = self.mode == Mode::Toggled && set_nonblocking(fd, true);
        let result = loop {
            let n = match self.mode {
                // SAFETY: `bytes` is valid for reads of its length.
                Mode::Socket => unsafe {
                    libc::send(
                        fd,
                        bytes.as_ptr().cast(),
                        bytes.len(),
                        libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                    )
                },
                // SAFETY: as above.
                _ => unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) },
            };
            if n >= 0 {
                break Ok(n as usize);
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                break Err(err);
            }
        };
        if toggled {
            set_nonblocking(fd, false);
        }
        result
    }
}

/// How much of `pending` one write may take: all of it up to PIPE_BUF,
/// else up to the last line's end within PIPE_BUF (no line is longer; the
/// rest of a started one may be, and then goes as it is).
fn chunk_len(pending: &[u8]) -> usize {
    if pending.len() <= libc::PIPE_BUF {
        return pending.len();
    }
    pending[..libc::PIPE_BUF]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(libc::PIPE_BUF, |i| i + 1)
}

/// `text` less at least `by` bytes from its end, cut at a character
/// boundary, with an ellipsis to say so.
pub fn shorten(text: &str, by: usize) -> String {
    const MORE: &str = "…";
    let keep = text.len().saturating_sub(by + MORE.len());
    if keep == 0 {
        return String::new();
    }
    let mut end = keep;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    // A trailing ellipsis already there is cut again, not added to.
    let kept = text[..end].strip_suffix(MORE).unwrap_or(&text[..end]);
    format!("{kept}{MORE}")
}

/// Sets (or clears) O_NONBLOCK; true when it changed something.
fn set_nonblocking(fd: RawFd, on: bool) -> bool {
    // SAFETY: F_GETFL/F_SETFL only change the description's status flags.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || (flags & libc::O_NONBLOCK != 0) == on {
            return false;
        }
        let flags = if on {
            flags | libc::O_NONBLOCK
        } else {
            flags & !libc::O_NONBLOCK
        };
        libc::fcntl(fd, libc::F_SETFL, flags) == 0
    }
}

/// The S_IFMT bits of what `fd` refers to, or None if it is not open.
fn file_type(fd: RawFd) -> Option<libc::mode_t> {
    fstat(fd).map(|st| st.st_mode & libc::S_IFMT)
}

/// fstat(2) of a descriptor that may be borrowed (std's `File::metadata`
/// would need to own it), or None if it is not open.
fn fstat(fd: RawFd) -> Option<libc::stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat writes a whole `stat` into the buffer when it returns 0.
    if unsafe { libc::fstat(fd, st.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: fstat succeeded, so the buffer is initialised.
    Some(unsafe { st.assume_init() })
}

/// Whether `fd` is an open descriptor.
pub fn is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only queries the descriptor table.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

/// /dev/tty opened non-blocking, when it is the same terminal as `fd`: the
/// controlling terminal opens whatever the pty's own permissions say.
fn controlling_terminal_for(fd: RawFd) -> Option<OwnedFd> {
    let want = std::fs::metadata(format!("/proc/self/fd/{fd}"))
        .ok()
        .map(|m| m.rdev())
        .or_else(|| fstat(fd).map(|st| st.st_rdev))?;
    let tty = reopen_nonblocking("/dev/tty", false).ok()?;
    let got = std::fs::File::from(tty);
    (got.metadata().ok()?.rdev() == want).then(|| got.into())
}

/// Drops the last `n` bytes of the regular file `fd`.
fn truncate_tail(fd: RawFd, n: u64) {
    let Some(st) = fstat(fd) else {
        return;
    };
    let size = st.st_size as u64;
    // SAFETY: ftruncate on a descriptor we own; shrinking cannot fail for
    // lack of space.
    unsafe { libc::ftruncate(fd, size.saturating_sub(n) as libc::off_t) };
}

/// Opens `path` write-only, non-blocking, close-on-exec (the app must not
/// inherit it) and without making a terminal our controlling one.
fn reopen_nonblocking(path: impl AsRef<Path>, append: bool) -> io::Result<OwnedFd> {
    let file = OpenOptions::new()
        .write(true)
        .append(append)
        .create(append)
        .mode(0o644)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)?;
    Ok(file.into())
}

/// Overwrites `path` with `content` (the termination log).
pub fn replace_file(path: &Path, content: &[u8]) -> io::Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)?;
    let mut out = Output::new(Fd::Owned(file.into()), Mode::Plain);
    match out.write_line(content)? {
        Written::Whole => Ok(()),
        _ => Err(io::Error::new(io::ErrorKind::WriteZero, "short write")),
    }
}

/// stderr: one writer for the diagnostics and for events sent there, so the
/// two never share a line.
static STDERR: Mutex<Option<Output>> = Mutex::new(None);

pub fn with_stderr<R>(f: impl FnOnce(&mut Output) -> R) -> R {
    let mut guard = STDERR.lock().unwrap_or_else(|e| e.into_inner());
    f(guard.get_or_insert_with(|| Output::for_fd(libc::STDERR_FILENO)))
}

/// Keeps the shim's own later opens off fds 0-2: a closed standard descriptor
/// is filled with /dev/null marked close-on-exec, so the app still sees it
/// closed and no file of the shim's can be mistaken for the app's stderr.
pub fn guard_standard_fds() {
    use std::os::fd::IntoRawFd;
    for fd in 0..=2 {
        if is_open(fd) {
            continue;
        }
        // std opens close-on-exec; the lowest free descriptor is `fd`.
        let null = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open("/dev/null");
        match null {
            // Held for the whole run: it only fills the slot.
            Ok(file) if std::os::fd::AsRawFd::as_raw_fd(&file) == fd => {
                let _ = file.into_raw_fd();
            }
            // Lower fds were open after all (dropped: nothing to hold), or
            // there is no /dev/null: nothing to be done.
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::FromRawFd;

    /// A pipe: (read end, write end), both close-on-exec.
    fn pipe() -> (std::fs::File, OwnedFd) {
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two descriptors into the array.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: both are fresh and owned by nobody else.
        unsafe {
            (
                std::fs::File::from_raw_fd(fds[0]),
                OwnedFd::from_raw_fd(fds[1]),
            )
        }
    }

    fn read_all_now(r: &mut std::fs::File) -> Vec<u8> {
        set_nonblocking(r.as_raw_fd(), true);
        let mut got = Vec::new();
        let mut buf = [0u8; 65536];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        got
    }

    #[test]
    fn lines_that_find_a_full_pipe_wait_in_order_and_go_out_whole() {
        let (mut r, w) = pipe();
        let mut out = Output::for_fd(w.as_raw_fd());
        let filler = vec![b'x'; 1000];
        let mut filled = 0;
        while out.write_some(&filler).unwrap_or(0) > 0 {
            filled += 1;
        }
        assert!(filled > 0);
        let lines: Vec<Vec<u8>> = (0..50)
            .map(|i| format!("{{\"n\":{i},\"pad\":\"{}\"}}\n", "p".repeat(100)).into_bytes())
            .collect();
        for line in &lines {
            assert_eq!(out.write_line(line).unwrap(), Written::Pending);
        }
        assert_eq!(out.pending_lines(), 50);
        assert!(out.waiting_fd().is_some());
        let mut got = read_all_now(&mut r);
        assert!(out.resume(), "all of it fits once the pipe is empty");
        assert_eq!(out.waiting_fd(), None);
        got.extend(read_all_now(&mut r));
        let text = String::from_utf8(got).unwrap();
        let after: Vec<&str> = text.trim_start_matches('x').lines().collect();
        let want: Vec<String> = lines
            .iter()
            .map(|l| String::from_utf8(l.clone()).unwrap().trim_end().to_owned())
            .collect();
        assert_eq!(after, want);
    }

    #[test]
    fn a_line_beyond_what_may_wait_is_dropped_and_the_rest_still_arrive() {
        let (mut r, w) = pipe();
        let mut out = Output::for_fd(w.as_raw_fd());
        while out.write_some(&[b'x'; 4096]).unwrap_or(0) > 0 {}
        let line = [vec![b'y'; 1023], vec![b'\n']].concat();
        let fits = PENDING_MAX / line.len();
        for _ in 0..fits {
            assert_eq!(out.write_line(&line).unwrap(), Written::Pending);
        }
        assert_eq!(out.write_line(&line).unwrap(), Written::Dropped);
        read_all_now(&mut r);
        while !out.resume() {
            read_all_now(&mut r);
        }
        let mut got = read_all_now(&mut r);
        got.retain(|&b| b == b'\n');
        assert!(!got.is_empty());
        assert_eq!(out.pending_lines(), 0);
    }

    #[test]
    fn a_write_takes_whole_lines_up_to_pipe_buf() {
        let line = [vec![b'a'; 999], vec![b'\n']].concat();
        let many = line.repeat(10);
        assert_eq!(chunk_len(&many), 4000);
        assert_eq!(chunk_len(&many[..3000]), 3000);
        let long = vec![b'b'; 10_000];
        assert_eq!(chunk_len(&long), libc::PIPE_BUF);
    }
}
