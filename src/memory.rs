//! The OOM killer, seen from the shim's memory cgroup: its OOM-kill count,
//! watched where the kernel can tell the shim at once, and each rise
//! attributed to at most one SIGKILL death.
//!
//! The kernel raises the count before it sends the OOM killer's SIGKILL
//! (mm/oom_kill.c), so a SIGKILL death that the shim did not send, reaped
//! within a second of a rise not yet attributed, was the OOM killer's.

use std::collections::VecDeque;
use std::ffi::CString;
use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::diag;
use crate::procfs::Proc;

/// How long before its reap an OOM kill may have happened to be the one
/// that ended a process.
const ATTRIBUTION_WINDOW: Duration = Duration::from_secs(1);

/// After a v1 OOM event, how often and how many times the count is looked
/// at again (about a second in all).
const RECHECK_EVERY: Duration = Duration::from_millis(10);
const RECHECKS: u8 = 100;

/// Which cgroup interface the memory controller is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// A rise of the count, for the `oom_kill` line.
#[derive(Debug, Clone, Copy)]
pub struct Rise {
    pub count: u64,
    pub total: u64,
    pub memory_max_kib: Option<u64>,
    pub memory_peak_kib: Option<u64>,
}

pub struct Memory {
    version: Version,
    dir: PathBuf,
    /// The count's file, held open and read again from its start.
    count: OwnedFd,
    /// What wakes the loop when the count may have risen: an inotify
    /// descriptor on memory.events (v2), or an eventfd registered through
    /// cgroup.event_control (v1) for the count's own file.
    watch: Option<OwnedFd>,
    start: u64,
    seen: u64,
    /// v1 signals the eventfd when the cgroup enters OOM, before the kill
    /// raises the count: the count is looked at again shortly after, a
    /// bounded number of times, until it rises.
    recheck: Option<(Instant, u8)>,
    /// Rises not yet attributed to an exit: when seen, how many kills.
    unclaimed: VecDeque<(Instant, u64)>,
}

impl Memory {
    /// The shim's memory cgroup, if it has one whose OOM-kill count it can
    /// read (through its own /proc: self/cgroup, and self/mountinfo where
    /// the cgroup is not at its usual place).
    pub fn open(proc: Option<&Proc>) -> Option<Memory> {
        let proc = proc?;
        let cgroups = proc.read_self(c"self/cgroup")?;
        let cgroups = String::from_utf8_lossy(&cgroups);
        let (version, dir) = usual_place(&cgroups).or_else(|| {
            let mounts = proc.read_self(c"self/mountinfo")?;
            locate(&cgroups, &String::from_utf8_lossy(&mounts))
        })?;
        let count = fs::File::open(count_file(version, &dir)).ok()?.into();
        let mut m = Memory {
            version,
            dir,
            count,
            watch: None,
            start: 0,
            seen: 0,
            recheck: None,
            unclaimed: VecDeque::new(),
        };
        m.start = m.read_count()?;
        m.seen = m.start;
        Some(m)
    }

    /// Asks the kernel to say when the count changes, where it can; after
    /// the spawn, so the descriptors it takes never cost the app its start.
    /// A rise in between is found by the look that follows.
    pub fn watch(&mut self) -> Option<Rise> {
        self.watch = self.arm();
        if self.watch.is_none() {
            diag::debug!("OOM kills are looked for at each reap (no notification here)");
        }
        self.check()
    }

    /// The count, read with one pread from the start of the open file (a
    /// cgroup file is made anew at each read from offset 0).
    fn read_count(&self) -> Option<u64> {
        let mut buf = [0u8; 512];
        // SAFETY: `buf` is valid for writes of its length.
        let n = unsafe {
            libc::pread(
                self.count.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                0,
            )
        };
        let text = std::str::from_utf8(&buf[..usize::try_from(n).ok()?]).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .and_then(|n| n.trim().parse().ok())
    }

    /// A notification of changes to the count, where the kernel offers one.
    fn arm(&self) -> Option<OwnedFd> {
        let file = CString::new(count_file(self.version, &self.dir).as_os_str().as_bytes()).ok()?;
        match self.version {
            Version::V2 => {
                // SAFETY: no pointers; the result is checked and owned.
                let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
                if fd < 0 {
                    return None;
                }
                // SAFETY: a fresh descriptor owned by nothing else.
                let fd = unsafe { OwnedFd::from_raw_fd(fd) };
                // SAFETY: a valid inotify fd and NUL-terminated path.
                let wd = unsafe {
                    libc::inotify_add_watch(fd.as_raw_fd(), file.as_ptr(), libc::IN_MODIFY)
                };
                (wd >= 0).then_some(fd)
            }
            Version::V1 => {
                // SAFETY: no pointers; the result is checked and owned.
                let efd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
                if efd < 0 {
                    return None;
                }
                // SAFETY: a fresh descriptor owned by nothing else.
                let efd = unsafe { OwnedFd::from_raw_fd(efd) };
                // The kernel looks the file up only while it registers the
                // event, which lasts as long as the eventfd: the count's
                // descriptor, held anyway, does.
                let line = format!("{} {}", efd.as_raw_fd(), self.count.as_raw_fd());
                // Writable only with a writable cgroup mount (not Docker's).
                fs::write(self.dir.join("cgroup.event_control"), line).ok()?;
                Some(efd)
            }
        }
    }

    /// The descriptor the loop waits on, if the kernel notifies.
    pub fn watch_fd(&self) -> Option<RawFd> {
        self.watch.as_ref().map(|fd| fd.as_raw_fd())
    }

    /// Whether a reap should look at the count first: where the kernel
    /// does not notify, and while an OOM event's rise is awaited (so the
    /// `oom_kill` line comes before the exits it caused).
    pub fn needs_looking(&self) -> bool {
        self.watch.is_none() || self.recheck.is_some()
    }

    /// The watch fired: empty it, then look at the count.
    pub fn on_watch(&mut self) -> Option<Rise> {
        if let Some(fd) = &self.watch {
            let mut buf = [0u8; 512];
            // Drain what is pending; its content does not matter.
            // SAFETY: `buf` is valid for writes of its length.
            while unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
        }
        self.recheck = None;
        self.check_or_recheck(RECHECKS)
    }

    /// When the count is to be looked at again after an OOM event.
    pub fn recheck_due(&self) -> Option<Instant> {
        self.recheck.map(|(at, _)| at)
    }

    /// The recheck's time has come.
    pub fn on_recheck(&mut self) -> Option<Rise> {
        let (at, left) = self.recheck?;
        if Instant::now() < at {
            return None;
        }
        self.recheck = None;
        self.check_or_recheck(left)
    }

    fn check_or_recheck(&mut self, left: u8) -> Option<Rise> {
        let rise = self.check();
        if rise.is_none() && self.version == Version::V1 && left > 0 {
            self.recheck = Some((Instant::now() + RECHECK_EVERY, left - 1));
        }
        rise
    }

    /// Reads the count; a rise since the last look is remembered for
    /// attribution and returned for its `oom_kill` line.
    pub fn check(&mut self) -> Option<Rise> {
        let now = self.read_count()?;
        if now <= self.seen {
            return None;
        }
        let count = now - self.seen;
        self.seen = now;
        // The rise an OOM event announced has come.
        self.recheck = None;
        self.unclaimed.push_back((Instant::now(), count));
        let kib = |name: &str| -> Option<u64> {
            let text = fs::read_to_string(self.dir.join(name)).ok()?;
            let bytes: u64 = text.trim().parse().ok()?;
            // v1 writes "no limit" as a huge number (PAGE_COUNTER_MAX pages).
            (bytes < 1 << 60).then_some(bytes / 1024)
        };
        let (max, peak) = match self.version {
            Version::V2 => ("memory.max", "memory.peak"),
            Version::V1 => ("memory.limit_in_bytes", "memory.max_usage_in_bytes"),
        };
        Some(Rise {
            count,
            total: self.total(),
            memory_max_kib: kib(max),
            memory_peak_kib: kib(peak),
        })
    }

    /// Kills seen since the shim started.
    pub fn total(&self) -> u64 {
        self.seen - self.start
    }

    /// For a SIGKILL death the shim did not send: was it an OOM kill? Takes
    /// one kill from a rise seen within the window before now.
    pub fn claim(&mut self) -> bool {
        let now = Instant::now();
        while let Some(&(at, _)) = self.unclaimed.front() {
            if now.duration_since(at) <= ATTRIBUTION_WINDOW {
                break;
            }
            self.unclaimed.pop_front();
        }
        match self.unclaimed.front_mut() {
            Some((_, n)) => {
                *n -= 1;
                if *n == 0 {
                    self.unclaimed.pop_front();
                }
                true
            }
            None => false,
        }
    }
}

/// The file that holds the OOM-kill count.
fn count_file(version: Version, dir: &Path) -> PathBuf {
    dir.join(match version {
        Version::V2 => "memory.events",
        Version::V1 => "memory.oom_control",
    })
}

/// The memory cgroup's path in /proc/self/cgroup: in the v1 memory
/// hierarchy where there is one (also beside a v2 hierarchy), else in v2.
fn cgroup_path(cgroups: &str) -> Option<(Version, &str)> {
    let v1 = cgroups.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, controllers, path) = (f.next()?, f.next()?, f.next()?);
        controllers
            .split(',')
            .any(|c| c == "memory")
            .then_some(path)
    });
    let v2 = || cgroups.lines().find_map(|l| l.strip_prefix("0::"));
    v1.map(|p| (Version::V1, p))
        .or_else(|| v2().map(|p| (Version::V2, p)))
}

/// The cgroup's directory where it usually is: the path under
/// /sys/fs/cgroup (v2) or /sys/fs/cgroup/memory (v1), as a cgroup namespace
/// or a host's own mount shows it. Taken only when that directory lists
/// the shim among its processes (a process is in one cgroup of a
/// hierarchy), which saves reading /proc/self/mountinfo (tens of µs at
/// every start); a mount of part of the tree (Docker on v1) fails the test
/// and is found through mountinfo instead.
fn usual_place(cgroups: &str) -> Option<(Version, PathBuf)> {
    let (version, path) = cgroup_path(cgroups)?;
    let top = match version {
        Version::V1 => "/sys/fs/cgroup/memory",
        Version::V2 => "/sys/fs/cgroup",
    };
    let dir = Path::new(top).join(path.trim_start_matches('/'));
    let procs = fs::read_to_string(dir.join("cgroup.procs")).ok()?;
    let me = std::process::id().to_string();
    procs.lines().any(|p| p == me).then_some((version, dir))
}

/// The memory controller's version and the shim's cgroup directory, from
/// /proc/self/cgroup and /proc/self/mountinfo.
fn locate(cgroups: &str, mounts: &str) -> Option<(Version, PathBuf)> {
    let (version, path) = cgroup_path(cgroups)?;
    let mut dir = None;
    for line in mounts.lines() {
        // id parent dev root mountpoint opts [optional...] - fstype source superopts
        // (fields taken in place, without allocating)
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mut left = left.split(' ').skip(3);
        let (Some(root), Some(point)) = (left.next(), left.next()) else {
            continue;
        };
        let mut right = right.split(' ');
        let fstype = right.next().unwrap_or_default();
        let superopts = right.nth(1).unwrap_or_default();
        let found = match (fstype, version) {
            ("cgroup", Version::V1) => superopts.split(',').any(|o| o == "memory"),
            ("cgroup2", Version::V2) => true,
            _ => false,
        };
        // Without a cgroup namespace the path is the host's, and the mount
        // shows the part of the tree from `root` on; one that shows another
        // part does not hold the shim's cgroup.
        if let (true, Some(inner)) = (found, below(path, root)) {
            // A later mount on the same point hides the earlier one: the
            // last that fits is the one the path resolves through.
            dir = Some(Path::new(point).join(inner.trim_start_matches('/')));
        }
    }
    dir.map(|dir| (version, dir))
}

/// `path` relative to `root`, when it is `root` or below it.
fn below<'a>(path: &'a str, root: &str) -> Option<&'a str> {
    if root == "/" {
        return Some(path);
    }
    let rest = path.strip_prefix(root)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTS_V1: &str = "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
        36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices\n";

    #[test]
    fn the_v1_memory_hierarchy_is_found_under_its_mount() {
        let cg = "8:pids:/\n4:memory:/a/b\n0::/\n";
        let (v, dir) = locate(cg, MOUNTS_V1).unwrap();
        assert_eq!(v, Version::V1);
        assert_eq!(dir, PathBuf::from("/sys/fs/cgroup/memory/a/b"));
    }

    #[test]
    fn v2_alone_and_a_mount_rooted_below_the_top_are_resolved() {
        let mounts = "30 23 0:26 /docker/x /sys/fs/cgroup ro,nosuid - cgroup2 cgroup2 rw\n";
        let (v, dir) = locate("0::/docker/x\n", mounts).unwrap();
        assert_eq!(v, Version::V2);
        assert_eq!(dir, PathBuf::from("/sys/fs/cgroup"));
        let ns = "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let (_, dir) = locate("0::/\n", ns).unwrap();
        assert_eq!(dir, PathBuf::from("/sys/fs/cgroup"));
    }

    #[test]
    fn a_mount_over_another_wins_and_one_showing_another_part_does_not_count() {
        let cg = "4:memory:/a/b\n";
        let stacked = format!(
            "{MOUNTS_V1}65 35 0:32 /a/b /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
        );
        let (_, dir) = locate(cg, &stacked).unwrap();
        assert_eq!(dir, PathBuf::from("/sys/fs/cgroup/memory"));
        let elsewhere = "35 31 0:32 /a/bc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        assert!(locate(cg, elsewhere).is_none());
    }

    #[test]
    fn no_cgroup_mount_means_no_memory_cgroup() {
        assert!(locate("0::/\n", "1 0 0:1 / / rw - tmpfs tmpfs rw\n").is_none());
    }
}
