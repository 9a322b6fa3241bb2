//! Writing whole lines without ever blocking PID 1.
//!
//! The shim shares stdout and stderr with the app, so it cannot set
//! O_NONBLOCK on them: that flag lives on the open file description and would
//! change the app's writes too. Instead each destination gets its own
//! non-blocking path: a pipe, FIFO or terminal is reopened through
//! /proc/self/fd (a new description the shim alone owns), a socket is written
//! with MSG_DONTWAIT, a regular file never blocks. A line that cannot be
//! written at once is dropped, never retried: PID 1 must not wait on a reader.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

enum Fd {
    Borrowed(RawFd),
    Owned(OwnedFd),
}

enum Mode {
    /// write(2) cannot block: a regular file, or a description we own with
    /// O_NONBLOCK set.
    Plain,
    /// A socket: send(2) with MSG_DONTWAIT, so the shared description keeps
    /// its flags; MSG_NOSIGNAL, so a closed peer raises no SIGPIPE.
    Socket,
    /// Nothing better was possible: poll for room first, then write.
    Polled,
}

pub struct Output {
    fd: Fd,
    mode: Mode,
}

impl Output {
    /// A non-blocking writer for an inherited descriptor (1, 2, or `fd:N`).
    pub fn for_fd(fd: RawFd) -> Output {
        match file_type(fd) {
            Some(libc::S_IFREG) => Output {
                fd: Fd::Borrowed(fd),
                mode: Mode::Plain,
            },
            Some(libc::S_IFSOCK) => Output {
                fd: Fd::Borrowed(fd),
                mode: Mode::Socket,
            },
            _ => match reopen_nonblocking(format!("/proc/self/fd/{fd}"), false) {
                Ok(owned) => Output {
                    fd: Fd::Owned(owned),
                    mode: Mode::Plain,
                },
                Err(_) => Output {
                    fd: Fd::Borrowed(fd),
                    mode: Mode::Polled,
                },
            },
        }
    }

    /// A file path, opened for appending (created 0644 if missing).
    pub fn append(path: &Path) -> io::Result<Output> {
        Ok(Output {
            fd: Fd::Owned(reopen_nonblocking(path, true)?),
            mode: Mode::Plain,
        })
    }

    fn raw(&self) -> RawFd {
        match &self.fd {
            Fd::Borrowed(fd) => *fd,
            Fd::Owned(fd) => fd.as_raw_fd(),
        }
    }

    /// Writes `line` with one system call, or not at all. A short write (a
    /// full disk) is reported as an error, the rest of the line is dropped.
    pub fn write_line(&self, line: &[u8]) -> io::Result<()> {
        let fd = self.raw();
        if let Mode::Polled = self.mode {
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLOUT,
                revents: 0,
            };
            // SAFETY: one valid pollfd, zero timeout.
            let ready = unsafe { libc::poll(&mut pfd, 1, 0) };
            if ready != 1 || pfd.revents & libc::POLLOUT == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
        }
        loop {
            let n = match self.mode {
                // SAFETY: `line` is valid for reads of its length.
                Mode::Socket => unsafe {
                    libc::send(
                        fd,
                        line.as_ptr().cast(),
                        line.len(),
                        libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                    )
                },
                // SAFETY: as above.
                _ => unsafe { libc::write(fd, line.as_ptr().cast(), line.len()) },
            };
            if n < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(err);
            }
            if n as usize != line.len() {
                // A full disk took part of the line. In a file of the shim's
                // own, cut that part off again, so the file holds only whole
                // lines and the next one does not start mid-line.
                if let (Fd::Owned(_), Some(libc::S_IFREG)) = (&self.fd, file_type(fd)) {
                    truncate_tail(fd, n as u64);
                }
                return Err(io::Error::new(io::ErrorKind::WriteZero, "short write"));
            }
            return Ok(());
        }
    }
}

/// The S_IFMT bits of what `fd` refers to, or None if it is not open.
fn file_type(fd: RawFd) -> Option<libc::mode_t> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat writes a whole `stat` into the buffer when it returns 0.
    if unsafe { libc::fstat(fd, st.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: fstat succeeded, so the buffer is initialised.
    Some(unsafe { st.assume_init() }.st_mode & libc::S_IFMT)
}

/// Drops the last `n` bytes of the regular file `fd`.
fn truncate_tail(fd: RawFd, n: u64) {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat writes a whole `stat` into the buffer when it returns 0.
    if unsafe { libc::fstat(fd, st.as_mut_ptr()) } != 0 {
        return;
    }
    // SAFETY: fstat succeeded, so the buffer is initialised.
    let size = unsafe { st.assume_init() }.st_size as u64;
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
    let out = Output {
        fd: Fd::Owned(file.into()),
        mode: Mode::Plain,
    };
    out.write_line(content)
}

/// The shim's own diagnostics go to stderr through the same non-blocking path
/// as the events, so a stuck stderr can never stall PID 1 either.
pub struct Diagnostics;

static STDERR: std::sync::OnceLock<Output> = std::sync::OnceLock::new();

pub fn stderr() -> &'static Output {
    STDERR.get_or_init(|| Output::for_fd(libc::STDERR_FILENO))
}

impl io::Write for Diagnostics {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // A diagnostic that cannot be written is dropped: it must never cost
        // the app anything.
        let _ = stderr().write_line(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Keeps the shim's own later opens off fds 0-2: a closed standard descriptor
/// is filled with /dev/null marked close-on-exec, so the app still sees it
/// closed and no file of the shim's can be mistaken for the app's stderr.
pub fn guard_standard_fds() {
    for fd in 0..=2 {
        // SAFETY: F_GETFD only queries the descriptor table.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            // SAFETY: a plain open of a constant path; the result is checked.
            let got = unsafe {
                libc::open(
                    c"/dev/null".as_ptr(),
                    libc::O_RDWR | libc::O_CLOEXEC | libc::O_NOCTTY,
                )
            };
            if got != fd && got >= 0 {
                // Lower fds were open after all: nothing to hold here.
                // SAFETY: `got` is a descriptor this function just opened.
                unsafe { libc::close(got) };
            }
        }
    }
}
