//! Test harness: runs the real `shim` binary with the `kid` helper
//! (tests/helpers/kid.c) as its child, either plainly (the shim is then a
//! child subreaper, not PID 1) or as PID 1 of a fresh PID namespace
//! (`unshare --pid --fork --mount-proc`).
//!
//! Every wait here has a timeout: a hang kills what the test started and
//! fails the test instead of stalling the run.
#![allow(dead_code)]

use serde_json::Value;
use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The shim binary under test: `SHIM_BIN` when it is set and not empty (a
/// relative path is taken from the crate root, e.g.
/// `SHIM_BIN=target/static/shim`), else the debug build cargo made for this
/// test run. scripts/test runs the integration tests against both.
pub fn shim_bin() -> &'static str {
    static BIN: OnceLock<String> = OnceLock::new();
    BIN.get_or_init(|| {
        let Some(given) = std::env::var_os("SHIM_BIN").filter(|v| !v.is_empty()) else {
            return env!("CARGO_BIN_EXE_shim").to_owned();
        };
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(given);
        assert!(
            path.is_file(),
            "SHIM_BIN names {}, which is not a file",
            path.display()
        );
        path.into_os_string()
            .into_string()
            .expect("SHIM_BIN must be valid UTF-8")
    })
}

/// How long a test waits for something that should happen at once.
pub const T: Duration = Duration::from_secs(20);

// Linux signal numbers (x86_64 and aarch64 agree on all of these).
pub const SIGHUP: i32 = 1;
pub const SIGINT: i32 = 2;
pub const SIGQUIT: i32 = 3;
pub const SIGABRT: i32 = 6;
pub const SIGKILL: i32 = 9;
pub const SIGUSR1: i32 = 10;
pub const SIGSEGV: i32 = 11;
pub const SIGUSR2: i32 = 12;
pub const SIGPIPE: i32 = 13;
pub const SIGTERM: i32 = 15;
pub const SIGCHLD: i32 = 17;
pub const SIGCONT: i32 = 18;
pub const SIGTSTP: i32 = 20;
pub const SIGWINCH: i32 = 28;
/// The kernel's first realtime signal (glibc's SIGRTMIN is 34 as well).
pub const SIGRTMIN: i32 = 34;
pub const SIGRTMAX: i32 = 64;

mod sys {
    // The few libc calls the harness needs, declared here so the tests need
    // no dev-dependency beyond serde_json.
    unsafe extern "C" {
        pub fn kill(pid: i32, sig: i32) -> i32;
        pub fn umask(mask: u32) -> u32;
        pub fn dup2(old: i32, new: i32) -> i32;
        pub fn close(fd: i32) -> i32;
        pub fn fcntl(fd: i32, cmd: i32, ...) -> i32;
        pub fn syscall(n: i64, ...) -> i64;
        pub fn pipe2(fds: *mut i32, flags: i32) -> i32;
        pub fn gettid() -> i32;
    }
    /// The kernel's struct sigaction (the trailing word is unused where
    /// the architecture has no sa_restorer; all zero means SIG_DFL).
    #[repr(C)]
    pub struct KernelSigaction {
        pub handler: usize,
        pub flags: u64,
        pub restorer: usize,
        pub mask: u64,
    }
    #[cfg(target_arch = "x86_64")]
    pub const SYS_RT_SIGACTION: i64 = 13;
    #[cfg(target_arch = "aarch64")]
    pub const SYS_RT_SIGACTION: i64 = 134;
    pub const SIG_DFL: usize = 0;
    pub const SIG_IGN: usize = 1;
    pub const F_GETFD: i32 = 1;
    pub const F_SETFD: i32 = 2;
    pub const F_GETFL: i32 = 3;
    pub const F_SETFL: i32 = 4;
    pub const FD_CLOEXEC: i32 = 1;
    pub const O_NONBLOCK: i32 = 0o4000;
    pub const O_CLOEXEC: i32 = 0o2000000;
}

/// Sends `sig` to `pid`; true when the kernel accepted it.
pub fn kill(pid: i32, sig: i32) -> bool {
    assert!(pid > 0, "refusing to signal pid {pid}");
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { sys::kill(pid, sig) == 0 }
}

/// Sets every signal's disposition to default, then SIGHUP to ignored when
/// `nohup`. For a `pre_exec` hook: async-signal-safe. Uses the raw syscall
/// because glibc refuses signals 32 and 33, which the test process may
/// have inherited as ignored (a glibc posix_spawn quirk in the process
/// that started it); the shim would rightly pass those ignores on.
pub fn reset_signals(nohup: bool) {
    for sig in 1..=64 {
        if sig == SIGKILL || sig == 19 {
            continue;
        }
        let act = sys::KernelSigaction {
            handler: if nohup && sig == SIGHUP {
                sys::SIG_IGN
            } else {
                sys::SIG_DFL
            },
            flags: 0,
            restorer: 0,
            mask: 0,
        };
        // SAFETY: rt_sigaction with a valid struct and a null old-action
        // pointer; sigsetsize 8 as the kernel expects.
        unsafe {
            sys::syscall(
                sys::SYS_RT_SIGACTION,
                sig as i64,
                &act as *const _,
                0usize,
                8usize,
            );
        }
    }
}

/// A pipe that holds 1 MiB (as much as the system allows, at least the
/// default 64 KiB).
pub fn roomy_pipe() -> (fs::File, fs::File) {
    let (r, w) = pipe();
    set_pipe_size(&r, 1 << 20);
    (r, w)
}

/// Resizes a pipe's buffer (F_SETPIPE_SZ, rounded up to pages by the
/// kernel); returns the new size, or -1 (the pipe left as it was).
pub fn set_pipe_size(pipe: &impl AsRawFd, bytes: i32) -> i32 {
    const F_SETPIPE_SZ: i32 = 1031;
    // SAFETY: F_SETPIPE_SZ only resizes the pipe's buffer.
    unsafe { sys::fcntl(pipe.as_raw_fd(), F_SETPIPE_SZ, bytes) }
}

/// A pipe, (read end, write end), both close-on-exec.
pub fn pipe() -> (fs::File, fs::File) {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 writes two descriptors into the array we pass.
    let r = unsafe { sys::pipe2(fds.as_mut_ptr(), sys::O_CLOEXEC) };
    assert_eq!(r, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors are fresh and owned by nobody else.
    unsafe {
        (
            fs::File::from(OwnedFd::from_raw_fd(fds[0])),
            fs::File::from(OwnedFd::from_raw_fd(fds[1])),
        )
    }
}

/// The calling thread's kernel id.
pub fn gettid() -> i32 {
    // SAFETY: gettid(2) has no preconditions.
    unsafe { sys::gettid() }
}

/// Makes a pipe's write end non-blocking (to fill it without blocking).
pub fn set_nonblocking(fd: &impl AsRawFd) {
    let fd = fd.as_raw_fd();
    // SAFETY: F_GETFL/F_SETFL on a descriptor we own.
    unsafe {
        let flags = sys::fcntl(fd, sys::F_GETFL);
        assert!(flags >= 0);
        assert_eq!(sys::fcntl(fd, sys::F_SETFL, flags | sys::O_NONBLOCK), 0);
    }
}

/// Clears O_NONBLOCK again.
pub fn set_blocking(fd: &impl AsRawFd) {
    let fd = fd.as_raw_fd();
    // SAFETY: F_GETFL/F_SETFL on a descriptor we own.
    unsafe {
        let flags = sys::fcntl(fd, sys::F_GETFL);
        assert!(flags >= 0);
        assert_eq!(sys::fcntl(fd, sys::F_SETFL, flags & !sys::O_NONBLOCK), 0);
    }
}

// ---------------------------------------------------------------------------
// The kid helper and temp dirs
// ---------------------------------------------------------------------------

/// Path of the compiled kid helper; compiled once per test binary, into
/// CARGO_TARGET_TMPDIR, atomically (temp name, then rename), so parallel
/// test binaries never run a half-written file.
pub fn kid() -> &'static str {
    static KID: OnceLock<String> = OnceLock::new();
    KID.get_or_init(|| compile_helper("kid.c", "kid", &[]))
}

/// Compiles tests/helpers/`source` with `cc -O1 -Wall FLAGS` into a
/// directory named after a hash of the source and the flags (a changed
/// helper gets a new directory), atomically, as `name`; returns its path.
/// Callers cache the result (see `kid`).
pub fn compile_helper(source: &str, name: &str, flags: &[&str]) -> String {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/helpers")
        .join(source);
    let mut text = fs::read(&src).unwrap_or_else(|e| panic!("read {}: {e}", src.display()));
    for f in flags {
        text.push(0);
        text.extend_from_slice(f.as_bytes());
    }
    let hash = fnv1a_u64(&text);
    let stem = source.strip_suffix(".c").unwrap_or(source);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{stem}-{hash:016x}"));
    let bin = dir.join(name);
    if !bin.exists() {
        fs::create_dir_all(&dir).expect("mkdir helper dir");
        static N: AtomicUsize = AtomicUsize::new(0);
        let tmp = dir.join(format!(
            "{name}.tmp.{}.{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let out = Command::new("cc")
            .args(["-O1", "-Wall"])
            .args(flags)
            .arg("-o")
            .arg(&tmp)
            .arg(&src)
            .output()
            .expect("run cc (a C compiler is needed for the tests)");
        assert!(
            out.status.success(),
            "compiling {source} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        fs::rename(&tmp, &bin).expect("rename helper");
    }
    bin.to_str().unwrap().to_owned()
}

fn fnv1a_u64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// A fresh, empty directory of our own under CARGO_TARGET_TMPDIR, removed
/// when dropped unless the test is failing (kept for a look).
pub fn tmpdir(name: &str) -> TempDir {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "t-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

pub struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// `[kid, args...]` as strings, for building command lines.
pub fn kid_args(args: &[&str]) -> Vec<String> {
    std::iter::once(kid().to_owned())
        .chain(args.iter().map(|s| s.to_string()))
        .collect()
}

// ---------------------------------------------------------------------------
// Waiting
// ---------------------------------------------------------------------------

/// Polls `f` every 5 ms until it returns Some, or panics after `timeout`.
pub fn wait_until<R>(timeout: Duration, what: &str, f: impl FnMut() -> Option<R>) -> R {
    try_wait_until(timeout, f)
        .unwrap_or_else(|| panic!("timed out after {timeout:?} waiting for {what}"))
}

/// As `wait_until`, but None at the timeout instead of a panic (for
/// clean-ups in `Drop`, which must not panic).
pub fn try_wait_until<R>(timeout: Duration, mut f: impl FnMut() -> Option<R>) -> Option<R> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(r) = f() {
            return Some(r);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Lines read from a pipe by a background thread.
pub struct Lines {
    state: Mutex<(Vec<String>, bool)>,
    cv: Condvar,
}

impl Lines {
    /// Starts a thread that reads `r` line by line until EOF.
    pub fn read_from(r: impl Read + Send + 'static) -> Arc<Lines> {
        let lines = Arc::new(Lines {
            state: Mutex::new((Vec::new(), false)),
            cv: Condvar::new(),
        });
        let l = lines.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::new(r);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let s = String::from_utf8_lossy(&buf);
                        let s = s.trim_end_matches(['\n', '\r']).to_owned();
                        l.state.lock().unwrap().0.push(s);
                        l.cv.notify_all();
                    }
                }
            }
            l.state.lock().unwrap().1 = true;
            l.cv.notify_all();
        });
        lines
    }

    pub fn snapshot(&self) -> Vec<String> {
        self.state.lock().unwrap().0.clone()
    }

    /// Waits until `f` finds something in the lines read so far.
    pub fn wait_for<R>(
        &self,
        timeout: Duration,
        what: &str,
        mut f: impl FnMut(&[String]) -> Option<R>,
    ) -> R {
        let deadline = Instant::now() + timeout;
        let mut st = self.state.lock().unwrap();
        loop {
            if let Some(r) = f(&st.0) {
                return r;
            }
            let now = Instant::now();
            if now >= deadline || st.1 {
                panic!(
                    "{} waiting for {what}; lines so far:\n{}",
                    if st.1 { "EOF" } else { "timed out" },
                    st.0.join("\n")
                );
            }
            st = self.cv.wait_timeout(st, deadline - now).unwrap().0;
        }
    }

    /// Waits for the first line containing `needle` and returns it.
    pub fn wait_line(&self, needle: &str) -> String {
        self.wait_for(T, &format!("a line containing {needle:?}"), |ls| {
            ls.iter().find(|l| l.contains(needle)).cloned()
        })
    }

    /// Waits for EOF; false if it did not come within `timeout`.
    pub fn wait_eof(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.state.lock().unwrap();
        while !st.1 {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            st = self.cv.wait_timeout(st, deadline - now).unwrap().0;
        }
        true
    }
}

/// The value of `key=` in a line like `ready main pid=12 ppid=1 pgid=12`.
pub fn field(line: &str, key: &str) -> i32 {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
        .parse()
        .unwrap()
}

/// The `key=value` lines printed by `kid report`, as (key, value) lookup.
pub fn report_value(lines: &[String], key: &str) -> String {
    let prefix = format!("{key}=");
    lines
        .iter()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {key}= in report:\n{}", lines.join("\n")))
        .to_owned()
}

/// Signal numbers a `kid trap -o FILE` has recorded so far.
pub fn sigs_in(file: &Path) -> Vec<i32> {
    fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("sig "))
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect()
}

/// Waits until `file` records signal `sig`.
pub fn wait_sig(file: &Path, sig: i32) {
    wait_until(T, &format!("signal {sig} in {}", file.display()), || {
        sigs_in(file).contains(&sig).then_some(())
    })
}

// ---------------------------------------------------------------------------
// /proc
// ---------------------------------------------------------------------------

/// Children of `pid` (all threads), from /proc/PID/task/*/children.
pub fn children(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    if let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            if let Ok(s) = fs::read_to_string(t.path().join("children")) {
                out.extend(s.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
            }
        }
    }
    out
}

/// `pid` and all its descendants, parents before children.
pub fn tree(pid: i32) -> Vec<i32> {
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let c = children(out[i]);
        out.extend(c);
        i += 1;
    }
    out
}

pub fn comm(pid: i32) -> Option<String> {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim_end().to_owned())
}

/// Fields of /proc/PID/stat after the command name: index 0 is the state.
pub fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// Process state letter (R, S, T, Z, ...), None when the pid is gone.
pub fn state(pid: i32) -> Option<char> {
    stat_fields(pid).and_then(|f| f[0].chars().next())
}

pub fn ppid(pid: i32) -> Option<i32> {
    stat_fields(pid).and_then(|f| f[1].parse().ok())
}

pub fn pgid(pid: i32) -> Option<i32> {
    stat_fields(pid).and_then(|f| f[2].parse().ok())
}

/// A `Key:` line of /proc/PID/status.
pub fn status_field(pid: i32, key: &str) -> Option<String> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(|v| v.trim().to_owned())
}

/// Every live or zombie process whose process group is `pgid`.
pub fn members_of_group(pgid_: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let pid = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok());
        if let Some(pid) = pid.filter(|&p| pgid(p) == Some(pgid_)) {
            out.push(pid);
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Running the shim
// ---------------------------------------------------------------------------

/// Every environment variable the shim reads; cleared so the environment
/// the tests run in cannot change the shim's behaviour.
pub const SHIM_VARS: &[&str] = &[
    "SHIM_GRACE",
    "SHIM_REWRITE",
    "SHIM_SINGLE_CHILD",
    "SHIM_EVENTS",
    "SHIM_TERMINATION_LOG",
    "SHIM_NO_SUBREAPER",
    "SHIM_PARENT_DEATH",
    "SHIM_SUCCESS_EXIT",
    "SHIM_LOG",
    "TINI_SUBREAPER",
    "TINI_VERBOSITY",
    "TINI_KILL_PROCESS_GROUP",
    "DUMB_INIT_SETSID",
    "DUMB_INIT_DEBUG",
];

/// Builder for one run of the shim.
pub struct ShimCmd {
    program: PathBuf,
    args: Vec<OsString>,
    prefix: Vec<OsString>,
    pid1: bool,
    env: Vec<(OsString, OsString)>,
    cwd: Option<PathBuf>,
    nohup: bool,
    umask: u32,
    extra_fd: Option<(OwnedFd, i32)>,
    stdin: Option<Stdio>,
    stdout: Option<Stdio>,
    stderr: Option<Stdio>,
}

/// `shim ARGS...`, run plainly (not PID 1: the shim is a subreaper).
pub fn shim<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> ShimCmd {
    ShimCmd {
        program: PathBuf::from(shim_bin()),
        args: args.into_iter().map(|a| a.as_ref().to_owned()).collect(),
        prefix: Vec::new(),
        pid1: false,
        env: Vec::new(),
        cwd: None,
        nohup: false,
        umask: 0o022,
        extra_fd: None,
        stdin: None,
        stdout: None,
        stderr: None,
    }
}

/// How a test runs the shim: plainly (a subreaper) or as PID 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Subreaper,
    Pid1,
}

pub const MODES: [Mode; 2] = [Mode::Subreaper, Mode::Pid1];

impl ShimCmd {
    /// Runs the shim as PID 1 of a new PID namespace.
    pub fn pid1(mut self) -> Self {
        self.pid1 = true;
        self
    }
    pub fn mode(self, mode: Mode) -> Self {
        match mode {
            Mode::Pid1 => self.pid1(),
            Mode::Subreaper => self,
        }
    }
    /// Runs the shim through a symlink called `name` (`tini`, `dumb-init`)
    /// to the binary under test (`shim_bin`).
    pub fn invoked_as(mut self, name: &str) -> Self {
        // Shared by every test: made once, atomically (link, then rename),
        // in a directory of the binary's own, so runs against different
        // binaries (the debug and the static build) never swap each other's
        // links.
        let bin = shim_bin();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("invoked-as-{:016x}", fnv1a_u64(bin.as_bytes())));
        fs::create_dir_all(&dir).unwrap();
        let link = dir.join(name);
        if fs::read_link(&link).ok().as_deref() != Some(Path::new(bin)) {
            // Unique per call: tests run in parallel threads of one process.
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::SeqCst);
            let tmp = dir.join(format!(".{name}.{}.{n}", std::process::id()));
            let _ = fs::remove_file(&tmp);
            std::os::unix::fs::symlink(bin, &tmp).unwrap();
            fs::rename(&tmp, &link).unwrap();
        }
        self.program = link;
        self
    }
    /// Runs `PREFIX... shim ARGS...` (for a wrapper between test and shim).
    pub fn prefix<S: AsRef<OsStr>>(mut self, p: impl IntoIterator<Item = S>) -> Self {
        self.prefix = p.into_iter().map(|a| a.as_ref().to_owned()).collect();
        self
    }
    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Self {
        self.env
            .push((k.as_ref().to_owned(), v.as_ref().to_owned()));
        self
    }
    pub fn cwd(mut self, dir: impl AsRef<Path>) -> Self {
        self.cwd = Some(dir.as_ref().to_owned());
        self
    }
    /// Starts the shim with SIGHUP ignored, as `nohup` does.
    pub fn nohup(mut self) -> Self {
        self.nohup = true;
        self
    }
    pub fn umask(mut self, mask: u32) -> Self {
        self.umask = mask;
        self
    }
    /// Gives the shim `fd` as descriptor number `target`.
    pub fn fd(mut self, fd: impl Into<OwnedFd>, target: i32) -> Self {
        self.extra_fd = Some((fd.into(), target));
        self
    }
    pub fn stdin(mut self, s: impl Into<Stdio>) -> Self {
        self.stdin = Some(s.into());
        self
    }
    pub fn stdout(mut self, s: impl Into<Stdio>) -> Self {
        self.stdout = Some(s.into());
        self
    }
    pub fn stderr(mut self, s: impl Into<Stdio>) -> Self {
        self.stderr = Some(s.into());
        self
    }

    pub fn spawn(self) -> Shim {
        let mut argv: Vec<OsString> = Vec::new();
        if self.pid1 {
            argv.extend(["unshare", "--pid", "--fork", "--mount-proc"].map(OsString::from));
        }
        argv.extend(self.prefix.iter().cloned());
        argv.push(self.program.clone().into());
        argv.extend(self.args.iter().cloned());

        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]);
        for v in SHIM_VARS {
            cmd.env_remove(v);
        }
        // The harness's own variable is no business of the shim or the app.
        cmd.env_remove("SHIM_BIN");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if let Some(d) = &self.cwd {
            cmd.current_dir(d);
        }
        let piped_out = self.stdout.is_none();
        let piped_err = self.stderr.is_none();
        cmd.stdin(self.stdin.unwrap_or_else(Stdio::null));
        // Our own pipes, made roomy: a reader thread starved for a moment
        // on a loaded machine must not fill a 64 KiB pipe, or the shim
        // (rightly) drops events that a test then misses.
        let (out_r, out_w) = roomy_pipe();
        let (err_r, err_w) = roomy_pipe();
        cmd.stdout(self.stdout.unwrap_or_else(|| out_w.into()));
        cmd.stderr(self.stderr.unwrap_or_else(|| err_w.into()));

        let nohup = self.nohup;
        let mask = self.umask;
        let extra = self.extra_fd.as_ref().map(|(fd, n)| (fd.as_raw_fd(), *n));
        let hook = move || -> std::io::Result<()> {
            // SAFETY: only async-signal-safe calls (signal, umask, dup2,
            // fcntl, close) between fork and exec.
            unsafe {
                // Start from a known state: every disposition default, then
                // the one ignore a `nohup` would set.
                reset_signals(nohup);
                sys::umask(mask);
                if let Some((src, target)) = extra {
                    // dup2 onto itself would keep FD_CLOEXEC: clear it.
                    let r = if src == target {
                        sys::fcntl(src, sys::F_SETFD, 0)
                    } else {
                        sys::dup2(src, target)
                    };
                    if r < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                // Close whatever the test process leaked without CLOEXEC
                // (a jobserver pipe, say), so the shim gets only what the
                // test means to give it.
                for fd in 3..1024 {
                    if Some(fd) == extra.map(|e| e.1) {
                        continue;
                    }
                    let flags = sys::fcntl(fd, sys::F_GETFD);
                    if flags >= 0 && flags & sys::FD_CLOEXEC == 0 {
                        sys::close(fd);
                    }
                }
            }
            Ok(())
        };
        // SAFETY: the hook only makes async-signal-safe calls.
        unsafe {
            cmd.pre_exec(hook);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {argv:?}: {e}"));
        // The write ends live in `cmd`: only the child may hold them now,
        // or the readers never see EOF.
        drop(cmd);
        drop(self.extra_fd);
        let empty = || Lines::read_from(std::io::empty());
        let out = if piped_out {
            Lines::read_from(out_r)
        } else {
            empty()
        };
        let err = if piped_err {
            Lines::read_from(err_r)
        } else {
            empty()
        };
        Shim {
            root: child.id() as i32,
            child,
            out,
            err,
            pid: OnceLock::new(),
            argv,
        }
    }

    /// Spawns and waits for the exit (20 s at most).
    pub fn run(self) -> Done {
        self.spawn().wait()
    }
}

/// A running shim.
pub struct Shim {
    child: Child,
    /// Host pid of the process the test spawned (unshare, a wrapper, or
    /// the shim itself).
    pub root: i32,
    pub out: Arc<Lines>,
    pub err: Arc<Lines>,
    pid: OnceLock<i32>,
    argv: Vec<OsString>,
}

impl Shim {
    /// Host pid of the shim process (under unshare or a wrapper, found among
    /// the descendants of what the test spawned, once it has exec'd).
    pub fn pid(&self) -> i32 {
        *self.pid.get_or_init(|| {
            let want = fs::canonicalize(shim_bin()).unwrap();
            wait_until(T, "the shim process to appear", || {
                // By its binary, not its name: invoked as `tini` its comm
                // is `tini`.
                tree(self.root)
                    .into_iter()
                    .find(|&p| fs::read_link(format!("/proc/{p}/exe")).ok().as_ref() == Some(&want))
            })
        })
    }

    /// Sends `sig` to the shim.
    pub fn signal(&self, sig: i32) {
        assert!(kill(self.pid(), sig), "kill({}, {sig}) failed", self.pid());
    }

    /// Waits for a stdout line containing `needle`.
    pub fn wait_stdout(&self, needle: &str) -> String {
        self.out.wait_line(needle)
    }

    /// Waits for the `ready TAG` line of a kid and returns it.
    pub fn ready(&self, tag: &str) -> String {
        self.out.wait_line(&format!("ready {tag} "))
    }

    /// Waits (20 s at most) for the exit.
    pub fn wait(self) -> Done {
        self.wait_timeout(T)
    }

    /// Waits for the process the test spawned to exit; on timeout, kills
    /// everything it started and panics.
    pub fn wait_timeout(mut self, timeout: Duration) -> Done {
        let start = Instant::now();
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            if start.elapsed() >= timeout {
                self.kill_all();
                panic!(
                    "{:?} did not exit within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                    self.argv,
                    self.out.snapshot().join("\n"),
                    self.err.snapshot().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let elapsed = start.elapsed();
        // Everything holding the pipes should be gone; do not hang if not.
        self.out.wait_eof(Duration::from_secs(5));
        self.err.wait_eof(Duration::from_secs(5));
        Done {
            status,
            elapsed,
            stdout: self.out.snapshot(),
            stderr: self.err.snapshot(),
        }
    }

    fn kill_all(&mut self) {
        let all = tree(self.root);
        for p in all.iter().rev() {
            kill(*p, SIGKILL);
        }
        let _ = self.child.wait();
    }
}

impl Drop for Shim {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill_all();
        }
    }
}

/// A finished run.
#[derive(Debug)]
pub struct Done {
    pub status: ExitStatus,
    /// From the start of the wait to the exit.
    pub elapsed: Duration,
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
}

impl Done {
    /// The exit code; fails the test if a signal ended the process (the shim
    /// never kills itself to pass a signal on).
    pub fn code(&self) -> i32 {
        match self.status.code() {
            Some(c) => c,
            None => panic!(
                "ended by signal {:?}, not an exit code\nstderr:\n{}",
                self.status.signal(),
                self.stderr.join("\n")
            ),
        }
    }
    /// Events on stderr (the default destination).
    pub fn events(&self) -> Vec<Value> {
        parse_events(&self.stderr)
    }
    /// Stderr lines that are not events: the shim's own diagnostics.
    pub fn diagnostics(&self) -> Vec<String> {
        self.stderr
            .iter()
            .filter(|l| !l.trim_start().starts_with('{'))
            .cloned()
            .collect()
    }
    pub fn stderr_text(&self) -> String {
        self.stderr.join("\n")
    }
}

// ---------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------

/// The JSON event lines among `lines`. A line that starts like JSON but
/// does not parse as an object with an `event` field fails the test: event
/// lines are written whole and never mixed with diagnostics.
pub fn parse_events(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .filter(|l| l.trim_start().starts_with('{'))
        .map(|l| {
            let v: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("garbled event line ({e}): {l:?}"));
            assert!(v["event"].is_string(), "event line without `event`: {l}");
            v
        })
        .collect()
}

/// Event lines in a file (an `--events PATH` destination).
pub fn file_events(path: &Path) -> Vec<Value> {
    let text = fs::read_to_string(path).unwrap_or_default();
    parse_events(&text.lines().map(str::to_owned).collect::<Vec<_>>())
}

pub fn exits(events: &[Value]) -> Vec<&Value> {
    events.iter().filter(|e| e["event"] == "exit").collect()
}

pub fn orphan_exits(events: &[Value]) -> Vec<&Value> {
    exits(events)
        .into_iter()
        .filter(|e| e["role"] == "orphan")
        .collect()
}

/// The one `exit` event of the main child.
pub fn main_exit(events: &[Value]) -> &Value {
    let mains: Vec<_> = exits(events)
        .into_iter()
        .filter(|e| e["role"] == "main")
        .collect();
    assert_eq!(
        mains.len(),
        1,
        "expected one main exit event in {events:#?}"
    );
    mains[0]
}

/// The contract for a spawn that failed with the shim's exit code `code`:
/// the events check out, one `spawn_failed` event with that code and an
/// error, no exit line, `reaped` 0. Returns the event's `error`.
pub fn spawn_failed_error(done: &Done, code: i32) -> String {
    assert_eq!(done.code(), code, "{}", done.stderr_text());
    let ev = done.events();
    check_events(&ev, code);
    let failed: Vec<_> = ev.iter().filter(|e| e["event"] == "spawn_failed").collect();
    assert_eq!(failed.len(), 1, "one spawn_failed event: {ev:#?}");
    assert_eq!(failed[0]["code"], code, "{}", failed[0]);
    let error = failed[0]["error"].as_str().unwrap().to_owned();
    assert!(!error.is_empty());
    assert!(
        exits(&ev).is_empty(),
        "a failed spawn writes no exit line: {ev:#?}"
    );
    assert_eq!(shim_exit(&ev)["reaped"], 0);
    error
}

/// The `shim_exit` event, which must be the last one.
pub fn shim_exit(events: &[Value]) -> &Value {
    let last = events.last().expect("no events at all");
    assert_eq!(
        last["event"], "shim_exit",
        "last event is not shim_exit: {events:#?}"
    );
    assert_eq!(
        events.iter().filter(|e| e["event"] == "shim_exit").count(),
        1,
        "more than one shim_exit"
    );
    last
}

const EXIT_FIELDS: &[&str] = &[
    "ts",
    "event",
    "pid",
    "role",
    "comm",
    "outcome",
    "intentional",
    "code",
    "signal",
    "signo",
    "core_dumped",
    "runtime_ms",
    "stop_reason",
    "max_rss_kib",
    "cpu_user_ms",
    "cpu_sys_ms",
    "oom_killed",
];

fn check_ts(e: &Value) {
    let ts = e["ts"]
        .as_str()
        .unwrap_or_else(|| panic!("ts not a string: {e}"));
    let b = ts.as_bytes();
    assert!(
        ts.len() >= 20
            && b[..4].iter().all(u8::is_ascii_digit)
            && b[4] == b'-'
            && b[10] == b'T'
            && ts.ends_with('Z'),
        "ts is not an RFC 3339 UTC time: {ts}"
    );
}

/// Checks one `exit` event against the contract's schema and rules.
pub fn check_exit_event(e: &Value) {
    for f in EXIT_FIELDS {
        assert!(e.get(f).is_some(), "exit event lacks `{f}`: {e}");
    }
    check_ts(e);
    assert!(e["pid"].as_i64().is_some_and(|p| p > 0), "pid: {e}");
    let role = e["role"].as_str().unwrap();
    assert!(role == "main" || role == "orphan", "role: {e}");
    assert!(e["comm"].is_string() || e["comm"].is_null(), "comm: {e}");
    let outcome = e["outcome"].as_str().unwrap_or_default();
    assert!(
        ["exited", "failed", "crashed", "stopped", "killed", "hung"].contains(&outcome),
        "outcome: {e}"
    );
    assert_eq!(
        e["intentional"].as_bool(),
        Some(outcome == "stopped" || outcome == "killed"),
        "intentional must be true exactly for stopped/killed: {e}"
    );
    if e["code"].is_null() {
        let signo = e["signo"].as_i64().unwrap_or_else(|| panic!("signo: {e}"));
        assert!((1..=64).contains(&signo), "signo: {e}");
        let name = e["signal"]
            .as_str()
            .unwrap_or_else(|| panic!("signal: {e}"));
        assert!(
            sig_name_matches(name, signo as i32),
            "signal name vs signo: {e}"
        );
        assert!(e["core_dumped"].is_boolean(), "core_dumped: {e}");
        assert!(
            outcome != "exited" && outcome != "failed",
            "signal death but {outcome}: {e}"
        );
    } else {
        let code = e["code"].as_i64().unwrap_or_else(|| panic!("code: {e}"));
        assert!((0..=255).contains(&code), "code: {e}");
        assert!(
            e["signal"].is_null() && e["signo"].is_null() && e["core_dumped"].is_null(),
            "exited, so signal/signo/core_dumped must be null: {e}"
        );
        assert!(
            outcome != "crashed" && outcome != "killed",
            "exit but {outcome}: {e}"
        );
        if outcome == "exited" {
            assert_eq!(code, 0, "exited means code 0: {e}");
        }
        if outcome == "failed" {
            assert_ne!(code, 0, "failed means a non-zero code: {e}");
        }
    }
    if outcome == "killed" {
        assert_eq!(e["signo"], 9, "killed means SIGKILL: {e}");
    }
    if role == "main" {
        assert!(
            e["runtime_ms"].as_u64().is_some(),
            "runtime_ms for main: {e}"
        );
    } else {
        assert!(
            e["runtime_ms"].is_null(),
            "runtime_ms null for orphans: {e}"
        );
    }
    match &e["stop_reason"] {
        Value::Null => assert!(outcome != "stopped" && outcome != "killed", "{e}"),
        Value::String(s) => assert!(
            s == "parent-death"
                || s == "main-exited"
                || s == "watchdog"
                || s.starts_with("signal:SIG")
                || s.starts_with("external:SIG"),
            "stop_reason: {e}"
        ),
        _ => panic!("stop_reason: {e}"),
    }
}

/// Checks a whole event stream: every exit line is well formed, at most one
/// main exit, `shim_exit` is last with `reaped` counting the exit lines, and
/// `shim_exit.code` is the code the process exited with.
pub fn check_events(events: &[Value], exit_code: i32) {
    for e in events {
        match e["event"].as_str().unwrap() {
            "exit" => check_exit_event(e),
            "spawn_failed" => {
                check_ts(e);
                assert!(e["error"].is_string(), "spawn_failed.error: {e}");
                assert!(e["code"].is_i64(), "spawn_failed.code: {e}");
            }
            "shim_exit" => check_ts(e),
            "oom_kill" => {
                check_ts(e);
                assert!(e["count"].as_u64().is_some_and(|n| n > 0), "count: {e}");
                assert!(e["total"].as_u64().is_some_and(|n| n > 0), "total: {e}");
            }
            "ready" | "reloading" | "stopping" | "status" | "watchdog" => check_ts(e),
            other => panic!("unknown event {other}: {e}"),
        }
    }
    let last = shim_exit(events);
    assert_eq!(last["code"], exit_code, "shim_exit.code: {last}");
    assert_eq!(
        last["reaped"].as_u64(),
        Some(exits(events).len() as u64),
        "shim_exit.reaped counts the exit lines: {last}"
    );
}

/// Canonical name of a signal number, as the events spell it.
pub fn sig_name(sig: i32) -> String {
    const NAMES: [&str; 32] = [
        "", "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV",
        "USR2", "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU",
        "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
    ];
    match sig {
        1..=31 => format!("SIG{}", NAMES[sig as usize]),
        SIGRTMIN => "SIGRTMIN".into(),
        SIGRTMAX => "SIGRTMAX".into(),
        35..=49 => format!("SIGRTMIN+{}", sig - SIGRTMIN),
        50..=63 => format!("SIGRTMAX-{}", SIGRTMAX - sig),
        _ => format!("SIG{sig}"),
    }
}

/// Whether `name` names signal `sig` in the events' canonical style; a
/// realtime signal may be spelled from either end (SIGRTMIN+N, SIGRTMAX-N).
pub fn sig_name_matches(name: &str, sig: i32) -> bool {
    if !(SIGRTMIN..=SIGRTMAX).contains(&sig) {
        return name == sig_name(sig);
    }
    let from_min = if sig == SIGRTMIN {
        "SIGRTMIN".to_owned()
    } else {
        format!("SIGRTMIN+{}", sig - SIGRTMIN)
    };
    let from_max = if sig == SIGRTMAX {
        "SIGRTMAX".to_owned()
    } else {
        format!("SIGRTMAX-{}", SIGRTMAX - sig)
    };
    name == from_min || name == from_max
}

/// Set of exit-event pids, for cross-checks.
pub fn pids(events: &[&Value]) -> HashSet<i64> {
    events.iter().map(|e| e["pid"].as_i64().unwrap()).collect()
}

// ---------------------------------------------------------------------------
// Hardening suite (tests/hardening_*.rs): sizes, figures, queued signals
// ---------------------------------------------------------------------------

mod sys_hardening {
    unsafe extern "C" {
        pub fn sigqueue(pid: i32, sig: i32, value: usize) -> i32;
    }
}

/// A size for a storm test: the environment variable `var` if set (the
/// full run of `scripts/test-reliability --full` sets them), else `default`.
pub fn size_from_env(var: &str, default: usize) -> usize {
    match std::env::var(var) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{var}={v:?} is not a number")),
        Err(_) => default,
    }
}

/// Prints one figure line on stdout for `scripts/test-reliability` to
/// collect: `FIGURE NAME key=value ...`.
pub fn figure(name: &str, fields: &[(&str, String)]) {
    let mut line = format!("FIGURE {name}");
    for (k, v) in fields {
        line.push_str(&format!(" {k}={v}"));
    }
    // One write, so parallel tests never interleave inside a line.
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(format!("{line}\n").as_bytes());
    let _ = out.flush();
}

/// Queues `sig` at `pid` with sigqueue(3): for a realtime signal this fails
/// with EAGAIN instead of silently coalescing when the queue is full.
/// Returns Ok(()) when queued, Err(errno) otherwise.
pub fn sigqueue(pid: i32, sig: i32) -> Result<(), i32> {
    assert!(pid > 0, "refusing to signal pid {pid}");
    // SAFETY: sigqueue has no memory-safety preconditions; the union
    // sigval is passed as one machine word.
    if unsafe { sys_hardening::sigqueue(pid, sig, 0) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}

/// `SigQ` of /proc/PID/status: (signals queued for PID's real uid, that
/// uid's RLIMIT_SIGPENDING as PID sees it).
pub fn sigq(pid: i32) -> Option<(u64, u64)> {
    let v = status_field(pid, "SigQ")?;
    let (a, b) = v.split_once('/')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// A `kB` field of /proc/PID/status (VmHWM, VmRSS), in KiB.
pub fn status_kib(pid: i32, key: &str) -> Option<u64> {
    status_field(pid, key)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// FNV-1a 64 of `bytes`, as `kid hexargs` / `kid hexenv` print it.
pub fn fnv1a(bytes: &[u8]) -> String {
    let h = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{h:016x}")
}

/// The number of zombie children of `pid` right now.
pub fn zombie_children(pid: i32) -> usize {
    children(pid)
        .into_iter()
        .filter(|&c| state(c) == Some('Z'))
        .count()
}

/// Serialises the heaviest hardening tests (storms, pid-space games) so
/// that, within one test binary, they do not run at the same time and
/// measure each other.
pub fn heavy_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// For a `pre_exec` hook: closes every descriptor from 3 up that is not
/// close-on-exec (what the test process leaked), as `ShimCmd::spawn` does
/// for the shim, so a run without the shim starts from the same table.
/// Async-signal-safe.
pub fn close_inherited_fds() {
    for fd in 3..1024 {
        // SAFETY: fcntl and close on plain integers; no memory involved.
        unsafe {
            let flags = sys::fcntl(fd, sys::F_GETFD);
            if flags >= 0 && flags & sys::FD_CLOEXEC == 0 {
                sys::close(fd);
            }
        }
    }
}

/// `kid trap -n TAG -o LOG REST...`: a child that writes each signal it
/// takes to LOG (REST: its `-x`/`-e`/`-k` options and the signals).
pub fn trap_into(tag: &str, log: &Path, rest: &[&str]) -> Vec<String> {
    let mut v = kid_args(&["trap", "-n", tag, "-o", log.to_str().unwrap()]);
    v.extend(rest.iter().map(|s| s.to_string()));
    v
}

/// Shim args `OPTS... -- kid fork <grandchild trap> ::: <main trap>`: the
/// main child and a grandchild in its process group, each recording the
/// signals it gets (USR1, USR2, QUIT, HUP, WINCH, RTMIN+3 and SIGTERM;
/// SIGTERM ends them).
pub fn family(opts: &[&str], main_log: &Path, gc_log: &Path) -> Vec<String> {
    let signals = [
        "-x", "TERM", "USR1", "USR2", "QUIT", "HUP", "WINCH", "INT", "37",
    ];
    let trap = |tag: &str, log: &Path| trap_into(tag, log, &signals);
    let mut args: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
    args.push("--".into());
    args.extend(kid_args(&["fork"]));
    args.extend(trap("gc", gc_log));
    args.push(":::".into());
    args.extend(trap("main", main_log));
    args
}

// ---------------------------------------------------------------------------
// Trust suite (tests/trust.rs): the stray helper, pidfds, terminals, sockets
// ---------------------------------------------------------------------------

mod sys_trust {
    unsafe extern "C" {
        pub fn posix_openpt(flags: i32) -> i32;
        pub fn grantpt(fd: i32) -> i32;
        pub fn unlockpt(fd: i32) -> i32;
        pub fn ptsname_r(fd: i32, buf: *mut u8, len: usize) -> i32;
        pub fn socketpair(domain: i32, kind: i32, protocol: i32, fds: *mut i32) -> i32;
        pub fn poll(fds: *mut PollFd, n: u64, timeout_ms: i32) -> i32;
        pub fn setsockopt(fd: i32, level: i32, name: i32, val: *const i32, len: u32) -> i32;
    }
    #[repr(C)]
    pub struct PollFd {
        pub fd: i32,
        pub events: i16,
        pub revents: i16,
    }
    pub const POLLIN: i16 = 1;
    pub const O_RDWR: i32 = 2;
    pub const O_NOCTTY: i32 = 0o400;
    pub const AF_UNIX: i32 = 1;
    pub const SOCK_STREAM: i32 = 1;
    pub const SOL_SOCKET: i32 = 1;
    pub const SO_SNDBUF: i32 = 7;
    // The same on every architecture (the unified syscall table from 403 on).
    pub const SYS_PIDFD_SEND_SIGNAL: i64 = 424;
    pub const SYS_PIDFD_OPEN: i64 = 434;
}

/// Path of the stray helper (tests/helpers/stray.c): processes that treat
/// an init badly (a zombie thread-group leader, a process that keeps moving
/// to a new pid, a churn of short-lived children, a bystander that records
/// stray signals), with raw system calls for signals so 32-34 behave the
/// same whatever the C library.
pub fn stray() -> &'static str {
    static STRAY: OnceLock<String> = OnceLock::new();
    STRAY.get_or_init(|| compile_helper("stray.c", "stray", &["-pthread"]))
}

/// `[stray, args...]` as strings.
pub fn stray_args(args: &[&str]) -> Vec<String> {
    std::iter::once(stray().to_owned())
        .chain(args.iter().map(|s| s.to_string()))
        .collect()
}

/// An executable ELF file whose program interpreter (dynamic loader) does
/// not exist: stray.c linked with `--dynamic-linker=NO_SUCH_LOADER`.
pub const NO_SUCH_LOADER: &str = "/nonexistent/trust-test/ld.so";

pub fn elf_with_missing_loader() -> &'static str {
    static ELF: OnceLock<String> = OnceLock::new();
    ELF.get_or_init(|| {
        let flag = format!("-Wl,--dynamic-linker={NO_SUCH_LOADER}");
        compile_helper("stray.c", "no-loader", &["-pthread", &flag])
    })
}

/// A process handle that cannot hit another process once the pid is reused.
pub struct Pidfd(OwnedFd);

impl Pidfd {
    /// A pidfd for `pid`, None if it is gone (or the kernel has no pidfds).
    pub fn open(pid: i32) -> Option<Pidfd> {
        // SAFETY: pidfd_open takes two integers and returns a new fd or -1.
        let fd = unsafe { sys::syscall(sys_trust::SYS_PIDFD_OPEN, pid as i64, 0i64) };
        // SAFETY: a fresh descriptor owned by nobody else.
        (fd >= 0).then(|| Pidfd(unsafe { OwnedFd::from_raw_fd(fd as i32) }))
    }

    /// Sends `sig`; false when the process has exited (or is a zombie).
    pub fn signal(&self, sig: i32) -> bool {
        // SAFETY: a pidfd we own, a null siginfo, no flags.
        unsafe {
            sys::syscall(
                sys_trust::SYS_PIDFD_SEND_SIGNAL,
                self.0.as_raw_fd() as i64,
                sig as i64,
                0usize,
                0i64,
            ) == 0
        }
    }

    /// True once the whole process has exited (a pidfd polls readable then).
    pub fn exited(&self) -> bool {
        let mut p = sys_trust::PollFd {
            fd: self.0.as_raw_fd(),
            events: sys_trust::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, zero timeout.
        unsafe { sys_trust::poll(&mut p, 1, 0) == 1 }
    }
}

/// A process the test started outside the shim, SIGKILLed (through a pidfd,
/// so never a stranger) when dropped.
pub struct Guard(pub Vec<Pidfd>);

impl Drop for Guard {
    fn drop(&mut self) {
        for p in &self.0 {
            p.signal(SIGKILL);
        }
    }
}

/// A new pseudo-terminal: (master, slave), both close-on-exec, the slave
/// not made anyone's controlling terminal.
pub fn pty() -> (fs::File, fs::File) {
    // SAFETY: plain calls on the descriptor posix_openpt returns; ptsname_r
    // writes a NUL-terminated name into the buffer we pass.
    unsafe {
        let m = sys_trust::posix_openpt(sys_trust::O_RDWR | sys_trust::O_NOCTTY | sys::O_CLOEXEC);
        assert!(m >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
        let master = fs::File::from(OwnedFd::from_raw_fd(m));
        assert_eq!(sys_trust::grantpt(m), 0, "grantpt");
        assert_eq!(sys_trust::unlockpt(m), 0, "unlockpt");
        let mut buf = [0u8; 128];
        assert_eq!(sys_trust::ptsname_r(m, buf.as_mut_ptr(), buf.len()), 0);
        let name = std::ffi::CStr::from_bytes_until_nul(&buf).unwrap();
        let slave = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(sys_trust::O_NOCTTY | sys::O_CLOEXEC)
            .open(name.to_str().unwrap())
            .expect("open the pty slave");
        (master, slave)
    }
}

/// A connected pair of Unix stream sockets, both close-on-exec.
pub fn socketpair() -> (fs::File, fs::File) {
    let mut fds = [0i32; 2];
    // SAFETY: socketpair writes two descriptors into the array we pass.
    let r = unsafe {
        sys_trust::socketpair(
            sys_trust::AF_UNIX,
            sys_trust::SOCK_STREAM | sys::O_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    assert_eq!(r, 0, "socketpair: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors are fresh and owned by nobody else.
    unsafe {
        (
            fs::File::from(OwnedFd::from_raw_fd(fds[0])),
            fs::File::from(OwnedFd::from_raw_fd(fds[1])),
        )
    }
}

/// Sets a socket's send buffer (the kernel doubles it, and keeps a floor).
pub fn set_sndbuf(fd: &impl AsRawFd, bytes: i32) {
    // SAFETY: setsockopt reads one int from the pointer we pass.
    let r = unsafe {
        sys_trust::setsockopt(
            fd.as_raw_fd(),
            sys_trust::SOL_SOCKET,
            sys_trust::SO_SNDBUF,
            &bytes,
            4,
        )
    };
    assert_eq!(r, 0, "SO_SNDBUF: {}", std::io::Error::last_os_error());
}

/// The host pid, among the processes under what the test spawned, of the
/// process in the shim's PID namespace whose pid there is `inner`: a pid
/// from a `ready` line, in either mode.
pub fn host_pid(s: &Shim, inner: i32) -> i32 {
    let ns = |p: i32| fs::read_link(format!("/proc/{p}/ns/pid")).ok();
    let shim_ns = ns(s.pid());
    wait_until(T, &format!("the host pid of {inner}"), || {
        tree(s.root).into_iter().find(|&p| {
            status_field(p, "NSpid").and_then(|v| v.split_whitespace().last()?.parse::<i32>().ok())
                == Some(inner)
                && ns(p) == shim_ns
        })
    })
}
