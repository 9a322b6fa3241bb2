//! Stopping: stop requests, the grace period, SIGKILL of what is left, and
//! the leftovers once the main child has exited.
mod common;
use common::*;
use serde_json::Value;
use std::time::{Duration, Instant};

fn args(opts: &[&str], kid: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
    v.push("--".into());
    v.extend(kid_args(kid));
    v
}

fn killed_after_grace(mode: Mode) {
    let s = shim(args(&["--grace", "1s"], &["ignore", "-n", "main", "TERM"]))
        .mode(mode)
        .spawn();
    let ready = s.ready("main");
    let t0 = Instant::now();
    s.signal(SIGTERM);
    if mode == Mode::Subreaper {
        // Not before: half-way through the grace the child still runs.
        let pid = field(&ready, "pid");
        std::thread::sleep(Duration::from_millis(500));
        let st = state(pid);
        assert!(
            st.is_some() && st != Some('Z'),
            "child must be alive 0.5 s into a 1 s grace: {st:?}"
        );
    }
    let done = s.wait();
    let took = t0.elapsed();
    assert_eq!(done.code(), 137, "{}", done.stderr_text());
    assert!(
        took >= Duration::from_millis(950),
        "{mode:?}: killed too early: {took:?}"
    );
    assert!(
        took < Duration::from_secs(6),
        "{mode:?}: killed too late: {took:?}"
    );
    let ev = done.events();
    check_events(&ev, 137);
    let m = main_exit(&ev);
    assert_eq!(m["outcome"], "killed", "{m}");
    assert_eq!(m["intentional"], true);
    assert_eq!(m["signal"], "SIGKILL");
    assert_eq!(m["signo"], 9);
    assert_eq!(m["stop_reason"], "signal:SIGTERM");
    let runtime = m["runtime_ms"].as_u64().unwrap();
    assert!(runtime >= 950, "runtime_ms covers the grace: {runtime}");
}

#[test]
fn a_child_ignoring_sigterm_is_killed_when_the_grace_runs_out_not_before() {
    killed_after_grace(Mode::Subreaper);
}

#[test]
fn a_child_ignoring_sigterm_is_killed_when_the_grace_runs_out_as_pid1() {
    killed_after_grace(Mode::Pid1);
}

#[test]
fn the_grace_period_ends_early_once_nothing_is_left() {
    for mode in MODES {
        let s = shim(args(
            &["--grace", "30s"],
            &["trap", "-n", "main", "-x", "TERM", "TERM"],
        ))
        .mode(mode)
        .spawn();
        s.ready("main");
        let t0 = Instant::now();
        s.signal(SIGTERM);
        let done = s.wait();
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
        assert_eq!(done.code(), 0);
        let m = main_exit(&done.events()).clone();
        assert_eq!(
            m["outcome"], "stopped",
            "exited while a stop was in progress: {m}"
        );
        assert_eq!(m["stop_reason"], "signal:SIGTERM");
    }
}

#[test]
fn sigint_and_sigquit_are_stop_requests_too() {
    for (sig, name) in [(SIGINT, "SIGINT"), (SIGQUIT, "SIGQUIT")] {
        let s = shim(args(
            &["--grace", "1s"],
            &["ignore", "-n", "main", "INT", "QUIT"],
        ))
        .spawn();
        s.ready("main");
        s.signal(sig);
        let done = s.wait();
        assert_eq!(done.code(), 137, "{name}");
        let m = main_exit(&done.events()).clone();
        assert_eq!(m["outcome"], "killed", "{m}");
        assert_eq!(m["stop_reason"], format!("signal:{name}"));
    }
}

#[test]
fn a_later_stop_request_does_not_restart_the_grace_period() {
    let s = shim(args(
        &["--grace", "2s"],
        &["ignore", "-n", "main", "TERM", "INT"],
    ))
    .spawn();
    s.ready("main");
    let t0 = Instant::now();
    s.signal(SIGTERM);
    std::thread::sleep(Duration::from_millis(1500));
    s.signal(SIGINT);
    let done = s.wait();
    let took = t0.elapsed();
    assert!(
        took < Duration::from_millis(3200),
        "grace restarted? {took:?}"
    );
    assert!(took >= Duration::from_millis(1950), "{took:?}");
    let m = main_exit(&done.events()).clone();
    assert_eq!(m["outcome"], "killed");
    assert_eq!(
        m["stop_reason"], "signal:SIGTERM",
        "the first request names the stop"
    );
}

/// `kid fork --daemon --setsid <orphan> ::: fork <member> ::: <main>`: an
/// adopted orphan outside the group, a group member, and the main child.
fn leftovers_args(opts: &[&str], orphan: &[&str], member: &[&str], main: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
    v.push("--".into());
    v.extend(kid_args(&["fork", "--daemon", "--setsid"]));
    v.extend(kid_args(orphan));
    v.push(":::".into());
    v.extend(kid_args(&["fork"]));
    v.extend(kid_args(member));
    v.push(":::".into());
    v.extend(kid_args(main));
    v
}

fn leftovers_stopped(mode: Mode) {
    let dir = tmpdir("leftovers");
    let (o, m) = (dir.join("orphan"), dir.join("member"));
    let (o, m) = (o.to_str().unwrap(), m.to_str().unwrap());
    // Each leftover takes 300 ms to exit after SIGTERM: the shim must wait.
    let s = shim(leftovers_args(
        &["--grace", "10s"],
        &[
            "trap", "-n", "orphan", "-o", o, "-x", "TERM", "-D", "300", "USR1",
        ],
        &[
            "trap", "-n", "member", "-o", m, "-x", "TERM", "-D", "300", "USR1",
        ],
        &["trap", "-n", "main", "-x", "USR1", "-e", "3"],
    ))
    .mode(mode)
    .spawn();
    let orphan = field(&s.ready("orphan"), "pid");
    let member = field(&s.ready("member"), "pid");
    s.ready("main");
    // USR1 to the group: main exits 3; the member just records it.
    s.signal(SIGUSR1);
    let done = s.wait();
    assert_eq!(
        done.code(),
        3,
        "the main child's code: {}",
        done.stderr_text()
    );
    assert_eq!(sigs_in(dir.join("member").as_path()), [SIGUSR1, SIGTERM]);
    assert_eq!(sigs_in(dir.join("orphan").as_path()), [SIGTERM]);

    let ev = done.events();
    check_events(&ev, 3);
    let main = main_exit(&ev);
    assert_eq!(main["outcome"], "failed", "{main}");
    assert_eq!(main["stop_reason"], Value::Null);
    let left = orphan_exits(&ev);
    assert_eq!(
        pids(&left),
        [orphan as i64, member as i64].into(),
        "{ev:#?}"
    );
    for e in left {
        assert_eq!(e["outcome"], "stopped", "{e}");
        assert_eq!(e["intentional"], true, "{e}");
        assert_eq!(e["code"], 0, "{e}");
        assert_eq!(e["stop_reason"], "main-exited", "{e}");
    }
    assert_eq!(shim_exit(&ev)["reaped"], 3);
    if mode == Mode::Subreaper {
        // Reaped by the shim before it exited, not left to someone else.
        assert_eq!(state(orphan), None);
        assert_eq!(state(member), None);
    }
}

#[test]
fn leftovers_are_sent_sigterm_after_the_main_child_exits_and_reaped_before_the_shim_exits() {
    leftovers_stopped(Mode::Subreaper);
}

#[test]
fn leftovers_are_sent_sigterm_after_the_main_child_exits_as_pid1() {
    leftovers_stopped(Mode::Pid1);
}

#[test]
fn leftovers_ignoring_sigterm_are_killed_after_the_grace_period() {
    for mode in MODES {
        let s = shim(leftovers_args(
            &["--grace", "1s"],
            &["ignore", "-n", "orphan", "TERM", "USR1"],
            &["ignore", "-n", "member", "TERM", "USR1"],
            &["trap", "-n", "main", "-x", "USR1"],
        ))
        .mode(mode)
        .spawn();
        s.ready("orphan");
        s.ready("member");
        s.ready("main");
        s.signal(SIGUSR1);
        let t0 = Instant::now();
        let done = s.wait();
        assert!(
            t0.elapsed() >= Duration::from_millis(900),
            "{:?}",
            t0.elapsed()
        );
        assert_eq!(done.code(), 0, "the main child's code, not the leftovers'");
        let ev = done.events();
        check_events(&ev, 0);
        assert_eq!(main_exit(&ev)["outcome"], "exited");
        let left = orphan_exits(&ev);
        assert_eq!(left.len(), 2, "{ev:#?}");
        for e in left {
            assert_eq!(e["outcome"], "killed", "{e}");
            assert_eq!(e["stop_reason"], "main-exited", "{e}");
        }
    }
}

#[test]
fn the_grace_sigkill_reaches_adopted_orphans_outside_the_group() {
    for mode in MODES {
        let s = shim(leftovers_args(
            &["--grace", "1s"],
            &["ignore", "-n", "orphan", "TERM"],
            &["ignore", "-n", "member", "TERM"],
            &["ignore", "-n", "main", "TERM"],
        ))
        .mode(mode)
        .spawn();
        s.ready("orphan");
        s.ready("member");
        s.ready("main");
        s.signal(SIGTERM);
        let done = s.wait();
        assert_eq!(done.code(), 137);
        let ev = done.events();
        check_events(&ev, 137);
        assert_eq!(exits(&ev).len(), 3, "{ev:#?}");
        for e in exits(&ev) {
            assert_eq!(e["outcome"], "killed", "{mode:?}: {e}");
            assert_eq!(e["stop_reason"], "signal:SIGTERM", "{e}");
        }
    }
}

#[test]
fn a_crash_during_a_stop_is_still_a_crash() {
    let s = shim(args(
        &["--grace", "5s"],
        &["-C", "0", "trap", "-n", "main", "-x", "TERM", "-k", "SEGV"],
    ))
    .spawn();
    s.ready("main");
    s.signal(SIGTERM);
    let done = s.wait();
    assert_eq!(done.code(), 128 + SIGSEGV);
    let ev = done.events();
    check_events(&ev, 139);
    let m = main_exit(&ev);
    assert_eq!(m["outcome"], "crashed", "{m}");
    assert_eq!(m["intentional"], false);
    assert_eq!(m["signal"], "SIGSEGV");
    assert_eq!(
        m["stop_reason"], "signal:SIGTERM",
        "the stop's reason, whatever the outcome"
    );
}

#[test]
fn the_grace_sigkill_reaches_descendants_of_adopted_orphans_too() {
    // main (ignores TERM) + an adopted orphan in its own session that has a
    // child of its own; all ignore SIGTERM. When the grace runs out every
    // one of them is SIGKILLed and reaped, the orphan's child included
    // (adopted by the shim once its parent is killed).
    for mode in MODES {
        let mut args = vec!["--grace".to_owned(), "1s".into(), "--".into()];
        args.extend(kid_args(&["fork", "--daemon", "--setsid", "--sep", "@@"]));
        args.extend(kid_args(&["fork"]));
        args.extend(kid_args(&["ignore", "-n", "deep", "TERM"]));
        args.push(":::".into());
        args.extend(kid_args(&["ignore", "-n", "orphan", "TERM"]));
        args.push("@@".into());
        args.extend(kid_args(&["ignore", "-n", "main", "TERM"]));
        let s = shim(args).mode(mode).spawn();
        let deep = field(&s.ready("deep"), "pid");
        let orphan = field(&s.ready("orphan"), "pid");
        s.ready("main");
        s.signal(SIGTERM);
        let done = s.wait();
        assert_eq!(done.code(), 137, "{}", done.stderr_text());
        let ev = done.events();
        check_events(&ev, 137);
        let left = orphan_exits(&ev);
        assert_eq!(
            pids(&left),
            [deep as i64, orphan as i64].into(),
            "{mode:?}: {ev:#?}"
        );
        for e in exits(&ev) {
            assert_eq!(e["outcome"], "killed", "{mode:?}: {e}");
            assert_eq!(e["stop_reason"], "signal:SIGTERM", "{e}");
        }
        if mode == Mode::Subreaper {
            assert_eq!(state(deep), None, "reaped, not left behind");
        }
    }
}
