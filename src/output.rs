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
//! `waiting_fd`). A line that cannot be started is dropped whole, never
//! waited for: PID 1 must not wait on a reader.

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
    /// Part of it went out; the rest goes before anything else.
    Started,
    /// Not a byte of it went out.
    Dropped,
}

pub struct Output {
    fd: Fd,
    mode: Mode,
    regular: bool,
    /// The unwritten rest of a line the destination took only part of.
    rest: Vec<u8>,
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
            rest: Vec::new(),
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

    /// The descriptor to wait on for room, while the rest of a line waits
    /// (never a regular file: it is always "ready", and retried at the next
    /// line instead).
    pub fn waiting_fd(&self) -> Option<RawFd> {
        (!self.rest.is_empty() && !self.regular).then(|| self.raw())
    }

    /// Writes what it can of the waiting rest; true when none is left.
    pub fn resume(&mut self) -> bool {
        if self.rest.is_empty() {
            return true;
        }
        let rest = std::mem::take(&mut self.rest);
        match self.write_some(&rest) {
            Ok(n) if n < rest.len() => self.rest = rest[n..].to_vec(),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.rest = rest,
            // The destination is gone (a closed pipe): nothing more of this
            // line can ever be written.
            Err(_) => {}
        }
        self.rest.is_empty()
    }

    /// Writes `line` whole, or starts it and keeps the rest, or drops it.
    pub fn write_line(&mut self, line: &[u8]) -> io::Result<Written> {
        if !self.resume() {
            return Ok(Written::Dropped);
        }
        let n = match self.write_some(line) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Written::Dropped),
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
            return Ok(Written::Dropped);
        }
        self.rest = line[n..].to_vec();
        Ok(Written::Started)
    }

    /// Spends at most `limit` waiting for room for the rest of a line (at
    /// the shim's exit, the last chance to end a started line).
    pub fn drain(&mut self, limit: std::time::Duration) {
        let end = std::time::Instant::now() + limit;
        while let Some(fd) = self.waiting_fd() {
            let left = end.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return;
            }
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLOUT,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let ready = unsafe { libc::poll(&mut pfd, 1, left.as_millis().max(1) as i32) };
            if ready < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                return;
            }
            self.resume();
        }
        if self.regular {
            self.resume();
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
