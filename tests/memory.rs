//! Memory: real OOM kills in a memory cgroup of the test's own (cgroup v1
//! here), the exit events' resource fields, and the `oom_kill` lines.
mod common;
use common::*;
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A child memory cgroup with a 64 MiB limit (swap included), removed on
/// drop; None where this machine has no writable cgroup v1 memory hierarchy.
struct Cgroup(PathBuf);

impl Cgroup {
    fn new(name: &str) -> Option<Cgroup> {
        let own = fs::read_to_string("/proc/self/cgroup").ok()?;
        let path = own.lines().find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, c, p) = (f.next()?, f.next()?, f.next()?);
            c.split(',').any(|c| c == "memory").then(|| p.to_string())
        })?;
        let base = Path::new("/sys/fs/cgroup/memory").join(path.trim_start_matches('/'));
        let dir = base.join(format!("shim-test-{name}-{}", std::process::id()));
        fs::create_dir(&dir).ok()?;
        let limit = (64u64 << 20).to_string();
        fs::write(dir.join("memory.limit_in_bytes"), &limit).ok()?;
        // Where swap is accounted, it is limited too, or the hog swaps
        // instead of being killed.
        let _ = fs::write(dir.join("memory.memsw.limit_in_bytes"), &limit);
        Some(Cgroup(dir))
    }

    /// A prefix that moves the shim into this cgroup before it starts.
    fn prefix(&self) -> Vec<String> {
        let procs = self.0.join("cgroup.procs");
        vec![
            "sh".into(),
            "-c".into(),
            format!("echo $$ > {} && exec \"$@\"", procs.display()),
            "sh".into(),
        ]
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // Emptied once the shim and its children are gone.
        let _ = try_wait_until(Duration::from_secs(10), || fs::remove_dir(&self.0).ok());
    }
}

macro_rules! cgroup_or_skip {
    ($name:expr) => {
        match Cgroup::new($name) {
            Some(cg) => cg,
            None => {
                eprintln!("skipped: no writable cgroup v1 memory hierarchy here");
                return;
            }
        }
    };
}

fn oom_lines(ev: &[Value]) -> Vec<&Value> {
    ev.iter().filter(|e| e["event"] == "oom_kill").collect()
}

fn run_in(cg: &Cgroup, mode: Mode, cmd: &[String]) -> Done {
    let mut args = vec!["--".to_owned()];
    args.extend(cmd.iter().cloned());
    shim(args).mode(mode).prefix(cg.prefix()).run()
}

/// The events of a run whose main child was SIGKILLed (by the OOM killer),
/// checked, after the shim's exit code says so.
fn killed_main_events(done: &Done, mode: Mode) -> Vec<Value> {
    assert_eq!(
        done.code(),
        128 + SIGKILL,
        "{mode:?}: {}",
        done.stderr_text()
    );
    let ev = done.events();
    check_events(&ev, 128 + SIGKILL);
    ev
}

fn hog(mb: u32) -> Vec<String> {
    kid_args(&["hog", &mb.to_string()])
}

#[test]
fn an_oom_killed_main_child_is_reported_as_such() {
    for mode in MODES {
        let cg = cgroup_or_skip!("main");
        let done = run_in(&cg, mode, &hog(200));
        let ev = killed_main_events(&done, mode);
        let main = main_exit(&ev);
        assert_eq!(main["outcome"], "crashed", "{main}");
        assert_eq!(main["oom_killed"], true, "{main}");
        let oom = oom_lines(&ev);
        assert_eq!(oom.len(), 1, "{ev:#?}");
        assert_eq!(oom[0]["count"], 1);
        assert_eq!(oom[0]["total"], 1);
        assert_eq!(oom[0]["memory_max_kib"], 65536);
        assert!(oom[0]["memory_peak_kib"].as_u64().is_some(), "{}", oom[0]);
        assert_eq!(shim_exit(&ev)["oom_kills"], 1);
    }
}

#[test]
fn an_oom_killed_orphan_is_reported_as_such() {
    for mode in MODES {
        let cg = cgroup_or_skip!("orphan");
        // The hog is a daemon's child: an orphan the shim reaps. The main
        // child waits for the hog's line, then a little more.
        let mut cmd = kid_args(&["fork", "--daemon"]);
        cmd.extend(hog(200));
        cmd.push(":::".into());
        cmd.extend(kid_args(&["sleep", "3"]));
        let done = run_in(&cg, mode, &cmd);
        assert_eq!(done.code(), 0, "{mode:?}: {}", done.stderr_text());
        let ev = done.events();
        check_events(&ev, 0);
        let orphans = orphan_exits(&ev);
        let hogs: Vec<_> = orphans
            .iter()
            .filter(|e| e["signal"] == "SIGKILL")
            .collect();
        assert_eq!(hogs.len(), 1, "{ev:#?}");
        assert_eq!(hogs[0]["oom_killed"], true, "{}", hogs[0]);
        assert_eq!(main_exit(&ev)["oom_killed"], false);
        assert_eq!(oom_lines(&ev).len(), 1, "{ev:#?}");
        assert_eq!(shim_exit(&ev)["oom_kills"], 1);
    }
}

#[test]
fn an_oom_kill_of_a_process_the_app_reaps_itself_still_gets_a_line() {
    for mode in MODES {
        let cg = cgroup_or_skip!("grandchild");
        let script = format!("{} hog 200; echo after=$?", kid());
        let done = run_in(&cg, mode, &["sh".into(), "-c".into(), script]);
        assert_eq!(done.code(), 0, "{mode:?}: {}", done.stderr_text());
        assert!(
            done.stdout.iter().any(|l| l == "after=137"),
            "{:?}",
            done.stdout
        );
        let ev = done.events();
        check_events(&ev, 0);
        assert_eq!(main_exit(&ev)["outcome"], "exited");
        assert_eq!(main_exit(&ev)["oom_killed"], false);
        let oom = oom_lines(&ev);
        assert_eq!(oom.len(), 1, "{ev:#?}");
        assert_eq!(shim_exit(&ev)["oom_kills"], 1);
    }
}

#[test]
fn the_oom_kill_line_comes_as_it_happens_not_at_the_next_reap() {
    let cg = cgroup_or_skip!("prompt");
    // The app's own child is OOM-killed; the app then lives 3 s more.
    let script = format!("{} hog 200; sleep 3", kid());
    let mut args = vec!["--".to_owned(), "sh".into(), "-c".into(), script];
    args.insert(0, "-v".into());
    let done = shim(args).prefix(cg.prefix()).run();
    let ev = done.events();
    let oom = oom_lines(&ev);
    assert_eq!(oom.len(), 1, "{ev:#?}");
    let t = |e: &Value| {
        let ts = e["ts"].as_str().unwrap();
        // HH:MM:SS.mmm of an RFC 3339 UTC timestamp, in ms.
        let hms = &ts[11..23];
        let p: Vec<f64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
        ((p[0] * 3600.0 + p[1] * 60.0 + p[2]) * 1000.0) as i64
    };
    let gap = t(main_exit(&ev)) - t(oom[0]);
    assert!(gap >= 2000, "the line came {gap} ms before the app's exit");
}

#[test]
fn a_plain_kill_9_is_never_an_oom_kill_even_after_one() {
    for mode in MODES {
        let cg = cgroup_or_skip!("kill9");
        // The app's child is OOM-killed; 2 s later the app is killed from
        // outside with SIGKILL.
        let script = format!("{} hog 200; echo ready main pid=$$; sleep 30", kid());
        let mut args = vec!["--".to_owned(), "sh".into(), "-c".into(), script];
        args.insert(0, "--grace".into());
        args.insert(1, "5s".into());
        let s = shim(args).mode(mode).prefix(cg.prefix()).spawn();
        s.ready("main");
        std::thread::sleep(Duration::from_millis(2000));
        let sh = wait_until(T, "the app", || children(s.pid()).first().copied());
        assert!(kill(sh, SIGKILL));
        let done = s.wait();
        let ev = done.events();
        check_events(&ev, 128 + SIGKILL);
        let main = main_exit(&ev);
        assert_eq!(main["outcome"], "crashed");
        assert_eq!(main["oom_killed"], false, "{main}");
        assert_eq!(shim_exit(&ev)["oom_kills"], 1);
    }
}

#[test]
fn resource_fields_measure_memory_and_cpu() {
    for mode in MODES {
        let mut args = vec!["--".to_owned()];
        args.extend(kid_args(&["hog", "48"]));
        let done = shim(args).mode(mode).run();
        let ev = done.events();
        check_events(&ev, 0);
        let main = main_exit(&ev);
        let rss = main["max_rss_kib"].as_u64().unwrap();
        assert!((48 * 1024..200 * 1024).contains(&rss), "{main}");

        let spin = "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done";
        let done = shim(["--", "sh", "-c", spin]).mode(mode).run();
        let ev = done.events();
        let main = main_exit(&ev);
        let user = main["cpu_user_ms"].as_u64().unwrap();
        let sys = main["cpu_sys_ms"].as_u64().unwrap();
        let wall = main["runtime_ms"].as_u64().unwrap();
        assert!(user >= 50, "{main}");
        assert!(user + sys <= wall + 50, "CPU within the wall time: {main}");
    }
}

#[test]
fn with_the_cgroup_hierarchy_hidden_the_memory_fields_are_null() {
    // A mount namespace with an empty tmpfs over /sys/fs/cgroup.
    let script = "mount -t tmpfs none /sys/fs/cgroup && exec \"$@\"";
    let mut args = vec!["--".to_owned()];
    args.extend(kid_args(&["hog", "16"]));
    let done = shim(args)
        .prefix([
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .run();
    let ev = done.events();
    check_events(&ev, 0);
    let main = main_exit(&ev);
    assert!(main["oom_killed"].is_null(), "{main}");
    assert!(
        main["max_rss_kib"].as_u64().is_some(),
        "usage needs no cgroup"
    );
    assert!(shim_exit(&ev)["oom_kills"].is_null());
}

#[test]
fn a_memory_cgroup_mounted_as_its_own_subtree_is_found_through_mountinfo() {
    // As Docker does on cgroup v1: /sys/fs/cgroup/memory shows the
    // container's cgroup as its top, while /proc/self/cgroup names the
    // host's path to it, so the path is not found under the mount.
    for mode in MODES {
        let cg = cgroup_or_skip!("subtree");
        let script = format!(
            "mount --bind {} /sys/fs/cgroup/memory && exec \"$@\"",
            cg.0.display()
        );
        let mut prefix = cg.prefix();
        prefix.extend(
            ["unshare", "-m", "--propagation", "private", "sh", "-c"]
                .iter()
                .map(|s| s.to_string()),
        );
        prefix.extend([script, "sh".into()]);
        let mut args = vec!["--".to_owned()];
        args.extend(hog(200));
        let done = shim(args).mode(mode).prefix(prefix).run();
        let ev = killed_main_events(&done, mode);
        assert_eq!(main_exit(&ev)["oom_killed"], true, "{mode:?}: {ev:#?}");
        assert_eq!(shim_exit(&ev)["oom_kills"], 1, "{mode:?}");
    }
}
