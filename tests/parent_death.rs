//! Parent death (not PID 1): when the shim's own parent dies, the shim acts
//! as if it had received the `--parent-death` signal (default SIGTERM).
mod common;
use common::*;
use std::fs;
use std::path::Path;

/// `kid subreaper -o REAPED kid fork SHIM OPTS -- <trap> ::: kid pause`: the
/// shim's parent is the `kid pause` process, which the test kills; the
/// outer subreaper then reaps the shim and writes down its exit code.
fn spawn_under_parent(opts: &[&str], log: &Path, reaped: &Path, env: Option<&str>) -> Shim {
    let mut args: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
    args.push("--".into());
    args.extend(trap_into(
        "main",
        log,
        &["-x", "TERM", "USR1", "USR2", "64"],
    ));
    args.push(":::".into());
    args.extend(kid_args(&["pause"]));
    let mut prefix = kid_args(&["subreaper", "-o", reaped.to_str().unwrap()]);
    prefix.extend(kid_args(&["fork"]));
    let mut cmd = shim(args).prefix(prefix);
    if let Some(v) = env {
        cmd = cmd.env("SHIM_PARENT_DEATH", v);
    }
    cmd.spawn()
}

/// Kills the shim's parent and waits until the outer subreaper reaped it.
fn kill_parent(s: &Shim, reaped: &Path) {
    let parent = ppid(s.pid()).unwrap();
    assert_ne!(parent, s.root, "the parent is the pause process");
    assert!(kill(parent, SIGKILL));
    wait_until(T, "the parent to be reaped", || {
        fs::read_to_string(reaped)
            .unwrap_or_default()
            .contains(&format!("reaped {parent} sig=9"))
            .then_some(())
    });
}

fn shim_code(reaped: &Path, shim_pid: i32) -> i32 {
    let text = fs::read_to_string(reaped).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("reaped {shim_pid} ")))
        .unwrap_or_else(|| panic!("shim not reaped: {text}"));
    field(line, "code")
}

#[test]
fn when_the_shims_parent_dies_the_child_gets_sigterm_and_the_stop_reason_is_parent_death() {
    let dir = tmpdir("pdeath");
    let (log, reaped) = (dir.join("main"), dir.join("reaped"));
    let s = spawn_under_parent(&[], &log, &reaped, None);
    s.ready("main");
    let pid = s.pid();
    kill_parent(&s, &reaped);
    let done = s.wait();
    assert_eq!(sigs_in(&log), [SIGTERM]);
    assert_eq!(shim_code(&reaped, pid), 0);
    let ev = done.events();
    check_events(&ev, 0);
    let m = main_exit(&ev);
    assert_eq!(m["outcome"], "stopped", "{m}");
    assert_eq!(m["stop_reason"], "parent-death", "{m}");
}

#[test]
fn a_parent_death_signal_that_is_not_a_stop_request_is_only_forwarded() {
    for (opts, env) in [
        (&["--parent-death", "USR1"][..], None),
        (&[][..], Some("SIGUSR1")),
    ] {
        let dir = tmpdir("pdeath-usr1");
        let (log, reaped) = (dir.join("main"), dir.join("reaped"));
        let s = spawn_under_parent(opts, &log, &reaped, env);
        s.ready("main");
        kill_parent(&s, &reaped);
        wait_sig(&log, SIGUSR1);
        s.signal(SIGTERM);
        let done = s.wait();
        assert_eq!(sigs_in(&log), [SIGUSR1, SIGTERM]);
        let m = main_exit(&done.events()).clone();
        assert_eq!(
            m["stop_reason"], "signal:SIGTERM",
            "USR1 started no stop: {m}"
        );
    }
}

#[test]
fn parent_death_off_does_nothing_and_the_option_wins_over_the_environment() {
    for (opts, env) in [
        (&["--parent-death", "off"][..], None),
        (&[][..], Some("off")),
        (&["--parent-death", "off"][..], Some("TERM")),
    ] {
        let dir = tmpdir("pdeath-off");
        let (log, reaped) = (dir.join("main"), dir.join("reaped"));
        let s = spawn_under_parent(opts, &log, &reaped, env);
        s.ready("main");
        kill_parent(&s, &reaped);
        // The parent-death signal is pending at the shim by the time the
        // parent is reaped; SIGRTMAX sent after is taken after it, so by the
        // time the child has SIGRTMAX a SIGTERM would have come first.
        s.signal(SIGRTMAX);
        wait_sig(&log, SIGRTMAX);
        s.signal(SIGUSR2);
        wait_sig(&log, SIGUSR2);
        s.signal(SIGTERM);
        let done = s.wait();
        assert_eq!(
            sigs_in(&log),
            [SIGRTMAX, SIGUSR2, SIGTERM],
            "{opts:?} {env:?}"
        );
        let m = main_exit(&done.events()).clone();
        assert_eq!(m["stop_reason"], "signal:SIGTERM", "{m}");
    }
}

#[test]
fn the_parent_death_signal_counts_as_received_so_rewrite_applies_to_it() {
    let dir = tmpdir("pdeath-rw");
    let (log, reaped) = (dir.join("main"), dir.join("reaped"));
    let s = spawn_under_parent(
        &["--rewrite", "TERM:USR2", "--grace", "1s"],
        &log,
        &reaped,
        None,
    );
    s.ready("main");
    kill_parent(&s, &reaped);
    let done = s.wait();
    // USR2 delivered instead of TERM; still a stop (TERM as received), so
    // the child, which does not exit on USR2, is killed after the grace.
    assert_eq!(sigs_in(&log), [SIGUSR2]);
    let m = main_exit(&done.events()).clone();
    assert_eq!(m["outcome"], "killed", "{m}");
    assert_eq!(m["stop_reason"], "parent-death", "{m}");
}

#[test]
fn the_exit_of_the_thread_that_started_the_shim_is_not_the_parents_death() {
    // PR_SET_PDEATHSIG fires when the forking *thread* exits; the parent
    // process (this test) lives on, so the shim must do nothing.
    let dir = tmpdir("pdeath-thread");
    let log = dir.join("main");
    let l = log.clone();
    let (s, tid) = std::thread::spawn(move || {
        let mut args = vec!["--".to_owned()];
        args.extend(trap_into("main", &l, &["-x", "TERM", "64"]));
        let s = shim(args).spawn();
        s.ready("main");
        (s, gettid())
    })
    .join()
    .unwrap();
    // The thread is gone once its /proc entry is (after the kernel sent
    // the parent-death signal, if any).
    let me = std::process::id();
    wait_until(T, "the spawning thread to be gone", || {
        (!std::path::Path::new(&format!("/proc/{me}/task/{tid}")).exists()).then_some(())
    });
    // A parent-death SIGTERM would be pending at the shim by now and taken
    // before SIGRTMAX, and the child would have had it first.
    s.signal(SIGRTMAX);
    wait_sig(&log, SIGRTMAX);
    s.signal(SIGTERM);
    let done = s.wait();
    assert_eq!(sigs_in(&log), [SIGRTMAX, SIGTERM]);
    let m = main_exit(&done.events()).clone();
    assert_eq!(m["stop_reason"], "signal:SIGTERM", "{m}");
}
