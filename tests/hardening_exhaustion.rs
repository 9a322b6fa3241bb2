//! Resource exhaustion: fork fails (RLIMIT_NPROC as a non-root
//! user, a pids cgroup), file descriptors run out (RLIMIT_NOFILE), memory
//! runs out (RLIMIT_AS on the shim, a memory cgroup around shim and app).
//! The shim says why on one line, writes a `spawn_failed` event, exits 126
//! (the documented code for "COMMAND exists but could not be run"), and
//! never panics.
mod common;
use common::*;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// An unprivileged uid with no processes of its own: RLIMIT_NPROC counts
/// processes per real uid and does not apply to root.
const NOBODY: &str = "54321";

fn no_panic(done: &Done) {
    let err = done.stderr_text();
    assert!(!err.contains("panicked"), "a panic:\n{err}");
    assert!(
        !err.contains("memory allocation of"),
        "an allocation abort:\n{err}"
    );
}

/// The contract for a spawn that failed with `errno_text`: exit 126, one
/// error line naming COMMAND and the cause, a `spawn_failed` event with
/// code 126, no exit event, `shim_exit` with code 126 and reaped 0. Where
/// the C libraries word an error differently, `errno_text` is the
/// alternatives separated by `|` (the binary under test may be either).
fn assert_clean_spawn_failure(done: &Done, errno_text: &str) {
    let says_why = |text: &str| errno_text.split('|').any(|t| text.contains(t));
    no_panic(done);
    let error = spawn_failed_error(done, 126);
    assert!(error.contains(kid()), "names COMMAND: {error}");
    assert!(says_why(&error), "says why: {error}");
    let diag = done.diagnostics();
    assert_eq!(diag.len(), 1, "one diagnostic line: {diag:?}");
    assert!(
        diag[0].contains("cannot run") && says_why(&diag[0]),
        "{diag:?}"
    );
}

#[test]
fn fork_failing_under_rlimit_nproc_is_a_clean_126_with_a_spawn_failed_event() {
    for mode in MODES {
        // setpriv drops to an unprivileged uid, prlimit allows it one
        // process (the shim itself), so the shim's fork fails with EAGAIN.
        let mut prefix: Vec<String> = Vec::new();
        if mode == Mode::Pid1 {
            // unshare (as root) first, then drop privileges inside.
            prefix.extend(["unshare", "--pid", "--fork", "--mount-proc"].map(String::from));
        }
        prefix.extend(
            [
                "setpriv",
                &format!("--reuid={NOBODY}"),
                &format!("--regid={NOBODY}"),
                "--clear-groups",
                "prlimit",
                "--nproc=1",
                "--",
            ]
            .map(String::from),
        );
        let done = shim(["--", kid(), "exit", "3"]).prefix(prefix).run();
        assert_clean_spawn_failure(&done, "Resource temporarily unavailable");
        figure(
            "exhaustion",
            &[
                ("fault", "rlimit_nproc".into()),
                ("mode", format!("{mode:?}").to_lowercase()),
                ("exit", done.code().to_string()),
                ("event", "spawn_failed".into()),
            ],
        );
    }
}

/// The pids controller: cgroup v2 where mounted so, else v1's `pids`
/// hierarchy. None when neither is writable here.
fn pids_cgroup_root() -> Option<PathBuf> {
    let v2 = Path::new("/sys/fs/cgroup");
    if fs::read_to_string(v2.join("cgroup.controllers")).is_ok_and(|c| c.contains("pids")) {
        return Some(v2.to_owned());
    }
    let v1 = v2.join("pids");
    v1.join("cgroup.procs").exists().then_some(v1)
}

/// A fresh child cgroup with `file` set to `value`, removed on drop (once
/// its processes are gone).
struct Cgroup(PathBuf);

impl Cgroup {
    fn new(root: &Path, name: &str, file: &str, value: &str) -> Option<Cgroup> {
        let dir = root.join(format!("shim-hardening-{name}-{}", std::process::id()));
        let _ = fs::remove_dir(&dir);
        fs::create_dir(&dir).ok()?;
        let cg = Cgroup(dir);
        fs::write(cg.0.join(file), value).ok()?;
        Some(cg)
    }
    /// A prefix that moves the shim into this cgroup, then execs it.
    fn prefix(&self) -> Vec<String> {
        vec![
            "sh".into(),
            "-c".into(),
            format!(
                "echo $$ > '{}/cgroup.procs' && exec \"$@\"",
                self.0.display()
            ),
            "sh".into(),
        ]
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        for _ in 0..200 {
            if fs::remove_dir(&self.0).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

#[test]
fn fork_failing_in_a_pids_cgroup_is_a_clean_126_even_as_root() {
    let Some(root) = pids_cgroup_root() else {
        figure(
            "exhaustion",
            &[
                ("fault", "pids_cgroup".into()),
                ("skipped", "no_pids_controller".into()),
            ],
        );
        return;
    };
    let Some(cg) = Cgroup::new(&root, "pids", "pids.max", "1") else {
        figure(
            "exhaustion",
            &[
                ("fault", "pids_cgroup".into()),
                ("skipped", "not_writable".into()),
            ],
        );
        return;
    };
    let done = shim(["--", kid(), "exit", "3"]).prefix(cg.prefix()).run();
    assert_clean_spawn_failure(&done, "Resource temporarily unavailable");
    figure(
        "exhaustion",
        &[
            ("fault", "pids_cgroup".into()),
            ("pids_max", "1".into()),
            ("exit", done.code().to_string()),
            ("event", "spawn_failed".into()),
        ],
    );
}

#[test]
fn descriptors_exhausted_by_rlimit_nofile_give_a_clean_126_or_a_normal_run() {
    // 3: only 0-2 fit, and the dynamic loader cannot even open libc, so the
    // shim's main never runs (the loader exits 127; nothing of the shim's
    // to test). From 4 up the shim runs: it needs a few descriptors of its
    // own (a non-blocking stderr, std's exec-error pipe) and, without them,
    // fails the spawn cleanly; with them the app runs as it would anyway.
    let mut failed_at = Vec::new();
    let mut ran_at = Vec::new();
    for n in 4..=10 {
        let done = shim(["--", kid(), "report"])
            .prefix(["prlimit", &format!("--nofile={n}"), "--"])
            .run();
        no_panic(&done);
        if done.code() == 126 {
            // glibc's words, then musl's.
            assert_clean_spawn_failure(&done, "Too many open files|No file descriptors available");
            assert!(
                ran_at.is_empty(),
                "fails at {n} after running at {ran_at:?}"
            );
            failed_at.push(n);
        } else {
            assert_eq!(done.code(), 0, "nofile={n}: {}", done.stderr_text());
            check_events(&done.events(), 0);
            assert_eq!(report_value(&done.stdout, "fds"), "0,1,2", "nofile={n}");
            ran_at.push(n);
        }
    }
    assert!(
        !ran_at.is_empty(),
        "the shim runs the app with 10 descriptors"
    );
    figure(
        "exhaustion",
        &[
            ("fault", "rlimit_nofile".into()),
            (
                "spawn_failed_126_at",
                failed_at
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            ("first_ok", ran_at[0].to_string()),
        ],
    );
}

#[test]
fn descriptors_exhausted_with_an_events_file_still_reap_everything_or_fail_cleanly() {
    // With an events file the shim holds one more descriptor; at each
    // limit it either fails the spawn cleanly, or runs the app, reaps all
    // its orphans and writes every event line.
    let mut first_ok = None;
    for n in 4..=10 {
        let dir = tmpdir("nofile-events");
        let events = dir.join("events.jsonl");
        let mut args = vec![
            "--events".to_owned(),
            events.to_str().unwrap().into(),
            "--".into(),
        ];
        args.extend(kid_args(&["orphans", "50"]));
        let done = shim(args)
            .prefix(["prlimit", &format!("--nofile={n}"), "--"])
            .run();
        no_panic(&done);
        let ev = file_events(&events);
        if done.code() == 126 {
            assert!(
                first_ok.is_none(),
                "fails at {n} after running at {first_ok:?}"
            );
            check_events(&ev, 126);
            assert_eq!(ev[0]["event"], "spawn_failed", "{ev:?}");
        } else {
            assert_eq!(done.code(), 0, "nofile={n}: {}", done.stderr_text());
            assert!(done.stdout.iter().any(|l| l == "orphans 50 done"));
            check_events(&ev, 0);
            assert_eq!(orphan_exits(&ev).len(), 50, "nofile={n}");
            first_ok.get_or_insert(n);
        }
    }
    figure(
        "exhaustion",
        &[
            ("fault", "rlimit_nofile_events_file".into()),
            ("first_ok", format!("{first_ok:?}")),
            ("orphans_reaped", "50".into()),
        ],
    );
    assert!(first_ok.is_some());
}

/// The kinds of end a run under RLIMIT_AS can have.
#[derive(Debug, Default)]
struct AsSweep {
    never_started: Vec<u64>,
    ran: Vec<u64>,
    spawn_failed: Vec<u64>,
    startup_abort: Vec<u64>,
    app_could_not_load: Vec<u64>,
}

#[test]
fn an_address_space_limit_never_costs_an_app_that_was_started() {
    // Sweep RLIMIT_AS (KiB) over the range where the shim goes from "cannot
    // be loaded" to "runs". In a band of a few hundred KiB the Rust runtime
    // or allocator aborts in the shim's first allocations, before anything
    // is spawned (an allocation failure in Rust is an abort, not an
    // error); that band is reported, not failed. What must hold: whenever
    // the app was started, the shim ran it to the end, reported it and
    // exited with its code; and the shim's own code never panics.
    let mut sweep = AsSweep::default();
    let dir = tmpdir("rlimit-as");
    for kib in (1024..=12288).step_by(128) {
        let marker = dir.join(format!("ran-{kib}"));
        let done = shim([
            "--",
            "sh",
            "-c",
            &format!(": > '{}'; exit 3", marker.display()),
        ])
        .prefix(["prlimit", &format!("--as={}", kib * 1024), "--"])
        .run();
        let err = done.stderr_text();
        let app_ran = marker.exists();
        match done.status.code() {
            Some(3) => {
                assert!(app_ran);
                check_events(&done.events(), 3);
                sweep.ran.push(kib);
            }
            Some(126) => {
                assert!(!app_ran);
                assert!(err.contains("spawn_failed"), "{err}");
                sweep.spawn_failed.push(kib);
            }
            // The dynamic loader could not map the shim or its libraries.
            Some(127) if err.contains("error while loading shared libraries") => {
                sweep.never_started.push(kib)
            }
            // The shim ran and started the app, whose own (dynamic) loader
            // then faulted under the limit: a static shim needs less room
            // than the app. Reported like any other death.
            Some(c)
                if !app_ran
                    && c == 128 + SIGSEGV
                    && parse_events(&done.stderr)
                        .iter()
                        .any(|e| e["role"] == "main" && e["signo"] == SIGSEGV) =>
            {
                check_events(&done.events(), c);
                sweep.app_could_not_load.push(kib)
            }
            None if done.status.signal() == Some(11) && err.is_empty() => {
                // The loader itself faulted: the shim's code never ran.
                sweep.never_started.push(kib)
            }
            _ if !app_ran
                && (err.contains("memory allocation of")
                    || err.contains("failed to allocate an alternative stack")) =>
            {
                sweep.startup_abort.push(kib)
            }
            other => panic!("RLIMIT_AS={kib} KiB: status {other:?}, app ran: {app_ran}\n{err}"),
        }
        if !app_ran {
            assert!(
                !err.contains("panicked at src/"),
                "a panic in the shim's own code at {kib} KiB:\n{err}"
            );
        }
    }
    assert!(
        !sweep.ran.is_empty(),
        "the shim runs with 12 MiB of address space"
    );
    // Above the first limit that runs, every larger one runs too.
    let first_ok = sweep.ran[0];
    for v in [
        &sweep.never_started,
        &sweep.spawn_failed,
        &sweep.startup_abort,
        &sweep.app_could_not_load,
    ] {
        assert!(v.iter().all(|&k| k < first_ok), "{sweep:?}");
    }
    let band = |v: &[u64]| match (v.first(), v.last()) {
        (Some(a), Some(b)) => format!("{a}-{b}"),
        _ => "none".into(),
    };
    figure(
        "exhaustion",
        &[
            ("fault", "rlimit_as".into()),
            ("never_started_kib", band(&sweep.never_started)),
            ("startup_abort_kib", band(&sweep.startup_abort)),
            ("spawn_failed_kib", band(&sweep.spawn_failed)),
            ("first_ok_kib", first_ok.to_string()),
        ],
    );
}

/// The memory controller: v2 where mounted so, else v1's `memory`
/// hierarchy at the cgroup this test runs in.
fn memory_cgroup_root() -> Option<PathBuf> {
    let v2 = Path::new("/sys/fs/cgroup");
    if fs::read_to_string(v2.join("cgroup.controllers")).is_ok_and(|c| c.contains("memory")) {
        return Some(v2.to_owned());
    }
    let own = fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = own.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, ctrl, path) = (parts.next()?, parts.next()?, parts.next()?);
        ctrl.split(',')
            .any(|c| c == "memory")
            .then(|| path.to_owned())
    })?;
    let dir = v2.join("memory").join(rel.trim_start_matches('/'));
    dir.join("cgroup.procs").exists().then_some(dir)
}

#[test]
fn an_app_killed_by_the_oom_killer_is_reported_and_the_shim_survives() {
    let Some(root) = memory_cgroup_root() else {
        figure(
            "exhaustion",
            &[
                ("fault", "memory_cgroup_oom".into()),
                ("skipped", "no_memory_controller".into()),
            ],
        );
        return;
    };
    let limit_file = if root.join("memory.max").exists() || root == Path::new("/sys/fs/cgroup") {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    let Some(cg) = Cgroup::new(&root, "oom", limit_file, &(64u64 << 20).to_string()) else {
        figure(
            "exhaustion",
            &[
                ("fault", "memory_cgroup_oom".into()),
                ("skipped", "not_writable".into()),
            ],
        );
        return;
    };
    for mode in MODES {
        let s = shim(["--", kid(), "hog", "1024"])
            .mode(mode)
            .prefix(cg.prefix())
            .spawn();
        let done = s.wait_timeout(Duration::from_secs(60));
        no_panic(&done);
        assert_eq!(done.code(), 137, "{mode:?}: {}", done.stderr_text());
        let ev = done.events();
        check_events(&ev, 137);
        let m = main_exit(&ev);
        assert_eq!(m["signal"], "SIGKILL", "{m}");
        assert_eq!(m["outcome"], "crashed", "the shim did not send it: {m}");
        let hogged = done
            .stdout
            .iter()
            .filter_map(|l| l.strip_prefix("hog "))
            .filter_map(|v| v.parse::<u64>().ok())
            .max()
            .unwrap_or(0);
        figure(
            "exhaustion",
            &[
                ("fault", "memory_cgroup_oom".into()),
                ("mode", format!("{mode:?}").to_lowercase()),
                ("limit_mib", "64".into()),
                ("app_reached_mib", hogged.to_string()),
                ("exit", done.code().to_string()),
                ("outcome", m["outcome"].as_str().unwrap().into()),
            ],
        );
    }
}
