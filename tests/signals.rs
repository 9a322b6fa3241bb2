//! Signal forwarding: to the group or the child, `--rewrite`, SIGCHLD,
//! realtime signals, job control, and no wake-ups while idle.
mod common;
use common::*;
use std::path::Path;
use std::time::Duration;

#[test]
fn signals_are_forwarded_to_the_childs_whole_process_group() {
    for mode in MODES {
        let dir = tmpdir("group");
        let (m, g) = (dir.join("main"), dir.join("gc"));
        let s = shim(family(&[], &m, &g)).mode(mode).spawn();
        s.ready("main");
        s.ready("gc");
        s.signal(SIGUSR1);
        wait_sig(&m, SIGUSR1);
        wait_sig(&g, SIGUSR1);
        s.signal(SIGTERM);
        let done = s.wait();
        assert_eq!(done.code(), 0, "{}", done.stderr_text());
        assert_eq!(sigs_in(&m), [SIGUSR1, SIGTERM], "{mode:?}");
        assert_eq!(sigs_in(&g), [SIGUSR1, SIGTERM], "{mode:?}");
    }
}

#[test]
fn single_child_forwards_to_the_child_only_not_its_group() {
    for (opt, env) in [(Some("--single-child"), None), (None, Some("1"))] {
        for mode in MODES {
            let dir = tmpdir("single");
            let (m, g) = (dir.join("main"), dir.join("gc"));
            let mut cmd = shim(family(opt.as_slice(), &m, &g)).mode(mode);
            if let Some(v) = env {
                cmd = cmd.env("SHIM_SINGLE_CHILD", v);
            }
            let s = cmd.spawn();
            s.ready("main");
            s.ready("gc");
            s.signal(SIGUSR1);
            wait_sig(&m, SIGUSR1);
            s.signal(SIGTERM);
            let done = s.wait();
            assert_eq!(done.code(), 0, "{}", done.stderr_text());
            assert_eq!(sigs_in(&m), [SIGUSR1, SIGTERM], "{mode:?}");
            // The grandchild gets SIGTERM only as a leftover once main has
            // exited. Had USR1 gone to the group, it would be recorded, and
            // first: pending standard signals are taken lowest number first.
            assert_eq!(sigs_in(&g), [SIGTERM], "{mode:?} {opt:?} {env:?}");
            let ev = done.events();
            let gc = orphan_exits(&ev);
            assert_eq!(gc.len(), 1, "{ev:#?}");
            // A stop (the SIGTERM) was in progress when it ended, so that
            // is its reason, not main-exited.
            assert_eq!(gc[0]["stop_reason"], "signal:SIGTERM", "{}", gc[0]);
        }
    }
}

#[test]
fn every_catchable_signal_is_forwarded() {
    let dir = tmpdir("all");
    let (m, g) = (dir.join("main"), dir.join("gc"));
    let s = shim(family(&[], &m, &g)).spawn();
    s.ready("main");
    s.ready("gc");
    for sig in [SIGUSR2, SIGHUP, SIGWINCH, SIGRTMIN + 3] {
        s.signal(sig);
        wait_sig(&m, sig);
        wait_sig(&g, sig);
    }
    s.signal(SIGTERM);
    assert_eq!(s.wait().code(), 0);
}

#[test]
fn realtime_signals_are_forwarded_once_per_signal_received() {
    let dir = tmpdir("rt");
    let log = dir.join("main");
    let mut args = vec!["--single-child".to_owned(), "--".into()];
    args.extend(trap_into("main", &log, &["-x", "TERM", "37", "USR1"]));
    let s = shim(args).spawn();
    s.ready("main");
    for _ in 0..3 {
        s.signal(SIGRTMIN + 3);
    }
    wait_until(T, "three SIGRTMIN+3", || {
        (sigs_in(&log).iter().filter(|&&x| x == SIGRTMIN + 3).count() == 3).then_some(())
    });
    s.signal(SIGTERM);
    assert_eq!(s.wait().code(), 0);
}

#[test]
fn sigchld_is_not_forwarded() {
    let dir = tmpdir("chld");
    let log = dir.join("main");
    let mut args = vec!["--".to_owned()];
    args.extend(trap_into("main", &log, &["-x", "TERM", "CHLD", "WINCH"]));
    let s = shim(args).spawn();
    s.ready("main");
    s.signal(SIGCHLD);
    // WINCH (28) after CHLD (17): both pass through the shim in order, and
    // the child takes pending signals lowest first, so a forwarded CHLD
    // would be recorded before WINCH.
    s.signal(SIGWINCH);
    wait_sig(&log, SIGWINCH);
    s.signal(SIGTERM);
    let done = s.wait();
    assert_eq!(done.code(), 0);
    assert_eq!(sigs_in(&log), [SIGWINCH, SIGTERM]);
}

// ---- --rewrite ----------------------------------------------------------------

/// Runs a trapping child under `opts`, sends `send` to the shim, waits for
/// `expect` at the child, then stops it with SIGINT; returns the events and
/// the signals the child recorded.
fn rewrite_case(cmd: ShimCmd, log: &Path, send: i32, expect: i32) -> (Done, Vec<i32>) {
    let s = cmd.spawn();
    s.ready("main");
    s.signal(send);
    wait_sig(log, expect);
    s.signal(SIGINT);
    let done = s.wait();
    let sigs = sigs_in(log);
    (done, sigs)
}

fn trap_args(opts: &[&str], log: &Path) -> Vec<String> {
    let mut v: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
    v.push("--".into());
    v.extend(trap_into(
        "main",
        log,
        &[
            "-x", "INT", "TERM", "QUIT", "USR1", "USR2", "HUP", "37", "50",
        ],
    ));
    v
}

#[test]
fn rewrite_by_name_delivers_the_new_signal_and_stops_on_the_received_one() {
    for (i, spec) in ["TERM:QUIT", "SIGTERM:SIGQUIT", "term:sigquit"]
        .into_iter()
        .enumerate()
    {
        let dir = tmpdir("rw-name");
        let log = dir.join("main");
        let args = if i == 0 {
            ["-r", spec]
        } else {
            ["--rewrite", spec]
        };
        let s = shim(trap_args(&args, &log)).spawn();
        s.ready("main");
        s.signal(SIGTERM);
        wait_sig(&log, SIGQUIT);
        // The trap exits on INT only, so main is still there; it was asked
        // to stop by the SIGTERM as received.
        s.signal(SIGINT);
        let done = s.wait();
        assert_eq!(sigs_in(&log), [SIGQUIT, SIGINT], "{spec}");
        let ev = done.events();
        let m = main_exit(&ev);
        assert_eq!(m["outcome"], "stopped", "{m}");
        assert_eq!(m["stop_reason"], "signal:SIGTERM", "{spec}: {m}");
    }
}

#[test]
fn rewrite_by_number() {
    let dir = tmpdir("rw-num");
    let log = dir.join("main");
    let (done, sigs) = rewrite_case(
        shim(trap_args(&["--rewrite", "10:12"], &log)),
        &log,
        SIGUSR1,
        SIGUSR2,
    );
    assert_eq!(sigs, [SIGUSR2, SIGINT]);
    assert_eq!(done.code(), 0);
}

#[test]
fn rewrite_to_and_from_realtime_signals() {
    let dir = tmpdir("rw-rt");
    let log = dir.join("main");
    let (_, sigs) = rewrite_case(
        shim(trap_args(
            &["--rewrite", "USR1:RTMIN+3", "--rewrite", "RTMAX-14:HUP"],
            &log,
        )),
        &log,
        SIGUSR1,
        SIGRTMIN + 3,
    );
    assert_eq!(sigs, [SIGRTMIN + 3, SIGINT]);

    let dir = tmpdir("rw-rt");
    let log = dir.join("main");
    let (_, sigs) = rewrite_case(
        shim(trap_args(
            &["--rewrite", "USR1:RTMIN+3", "--rewrite", "RTMAX-14:HUP"],
            &log,
        )),
        &log,
        SIGRTMAX - 14,
        SIGHUP,
    );
    assert_eq!(sigs, [SIGHUP, SIGINT]);
}

#[test]
fn rewrite_to_zero_drops_the_signal_it_is_neither_forwarded_nor_a_stop_request() {
    let dir = tmpdir("rw-zero");
    let log = dir.join("main");
    let s = shim(trap_args(&["--rewrite", "TERM:0", "--grace", "1s"], &log)).spawn();
    s.ready("main");
    s.signal(SIGTERM);
    // SIGRTMIN+3 after TERM: the shim takes them in that order and the
    // child takes pending signals lowest first, so a forwarded TERM would
    // be recorded before the realtime one.
    s.signal(SIGRTMIN + 3);
    wait_sig(&log, SIGRTMIN + 3);
    s.signal(SIGINT);
    let done = s.wait();
    assert_eq!(
        sigs_in(&log),
        [SIGRTMIN + 3, SIGINT],
        "TERM never reached the child"
    );
    let ev = done.events();
    let m = main_exit(&ev);
    assert_eq!(m["outcome"], "stopped", "{m}");
    // Had the dropped TERM started a stop, it would be the stop's reason
    // (and the 1 s grace could have SIGKILLed the child).
    assert_eq!(
        m["stop_reason"], "signal:SIGINT",
        "the dropped TERM started no stop: {m}"
    );
    assert_eq!(done.code(), 0);
}

#[test]
fn rewrite_applies_as_pid1_too() {
    let dir = tmpdir("rw-pid1");
    let log = dir.join("main");
    let (done, sigs) = rewrite_case(
        shim(trap_args(&["--rewrite", "TERM:USR2"], &log)).pid1(),
        &log,
        SIGTERM,
        SIGUSR2,
    );
    assert_eq!(sigs, [SIGUSR2, SIGINT]);
    assert_eq!(main_exit(&done.events())["stop_reason"], "signal:SIGTERM");
}

#[test]
fn rewrite_from_the_environment_is_a_comma_list_and_the_option_wins() {
    let dir = tmpdir("rw-env");
    let log = dir.join("main");
    let cmd = shim(trap_args(&[], &log)).env("SHIM_REWRITE", "TERM:QUIT,USR1:USR2");
    let s = cmd.spawn();
    s.ready("main");
    s.signal(SIGTERM);
    wait_sig(&log, SIGQUIT);
    s.signal(SIGUSR1);
    wait_sig(&log, SIGUSR2);
    s.signal(SIGINT);
    s.wait();
    assert_eq!(sigs_in(&log), [SIGQUIT, SIGUSR2, SIGINT]);

    // With --rewrite given, SHIM_REWRITE is not used.
    let dir = tmpdir("rw-env");
    let log = dir.join("main");
    let (_, sigs) = rewrite_case(
        shim(trap_args(&["--rewrite", "USR1:HUP"], &log)).env("SHIM_REWRITE", "USR1:USR2"),
        &log,
        SIGUSR1,
        SIGHUP,
    );
    assert_eq!(sigs, [SIGHUP, SIGINT]);
}

// ---- job control ----------------------------------------------------------------

fn wait_state(pid: i32, want: impl Fn(char) -> bool, what: &str) {
    wait_until(T, what, || state(pid).filter(|c| want(*c)).map(|_| ()));
}

#[test]
fn tstp_is_forwarded_then_the_shim_stops_itself_and_cont_resumes_both() {
    let dir = tmpdir("tstp");
    let log = dir.join("main");
    let mut args = vec!["--".to_owned()];
    args.extend(trap_into("main", &log, &["-x", "TERM", "TSTP", "CONT"]));
    let s = shim(args).spawn();
    s.ready("main");
    s.signal(SIGTSTP);
    wait_sig(&log, SIGTSTP);
    wait_state(s.pid(), |c| c == 'T', "the shim to stop itself");
    s.signal(SIGCONT);
    wait_state(s.pid(), |c| c != 'T', "the shim to resume");
    wait_sig(&log, SIGCONT);
    s.signal(SIGTERM);
    assert_eq!(s.wait().code(), 0);
}

#[test]
fn a_rewritten_tstp_still_suspends_the_shim() {
    let dir = tmpdir("tstp-rw");
    let log = dir.join("main");
    let mut args = vec!["--rewrite".to_owned(), "TSTP:USR1".into(), "--".into()];
    args.extend(trap_into(
        "main",
        &log,
        &["-x", "TERM", "TSTP", "USR1", "CONT"],
    ));
    let s = shim(args).spawn();
    s.ready("main");
    s.signal(SIGTSTP);
    wait_sig(&log, SIGUSR1);
    wait_state(s.pid(), |c| c == 'T', "the shim to stop itself");
    s.signal(SIGCONT);
    wait_state(s.pid(), |c| c != 'T', "the shim to resume");
    s.signal(SIGTERM);
    s.wait();
    assert!(!sigs_in(&log).contains(&SIGTSTP));
}

#[test]
fn a_tstp_rewritten_to_zero_has_no_effect_at_all() {
    let dir = tmpdir("tstp-0");
    let log = dir.join("main");
    let mut args = vec!["--rewrite".to_owned(), "TSTP:0".into(), "--".into()];
    args.extend(trap_into("main", &log, &["-x", "TERM", "TSTP", "37"]));
    let s = shim(args).spawn();
    s.ready("main");
    s.signal(SIGTSTP);
    // A realtime signal sent after: the shim takes TSTP (20) first, so once
    // the child has the realtime one, the shim has dealt with TSTP; had it
    // stopped itself it could not have forwarded this one.
    s.signal(SIGRTMIN + 3);
    wait_sig(&log, SIGRTMIN + 3);
    assert_ne!(state(s.pid()), Some('T'), "the shim must not stop");
    s.signal(SIGTERM);
    s.wait();
    assert_eq!(sigs_in(&log), [SIGRTMIN + 3, SIGTERM]);
}

#[test]
fn as_pid1_tstp_is_forwarded_but_the_shim_does_not_stop_itself() {
    let dir = tmpdir("tstp-pid1");
    let log = dir.join("main");
    let mut args = vec!["--".to_owned()];
    args.extend(trap_into("main", &log, &["-x", "TERM", "TSTP", "37"]));
    let s = shim(args).pid1().spawn();
    s.ready("main");
    s.signal(SIGTSTP);
    wait_sig(&log, SIGTSTP);
    // The realtime signal is taken after TSTP; a stopped shim could not
    // forward it.
    s.signal(SIGRTMIN + 3);
    wait_sig(&log, SIGRTMIN + 3);
    assert_ne!(state(s.pid()), Some('T'));
    s.signal(SIGTERM);
    assert_eq!(s.wait().code(), 0);
}

// ---- idle ---------------------------------------------------------------------

fn switches(pid: i32) -> u64 {
    let v = status_field(pid, "voluntary_ctxt_switches").unwrap();
    let n = status_field(pid, "nonvoluntary_ctxt_switches").unwrap();
    v.parse::<u64>().unwrap() + n.parse::<u64>().unwrap()
}

#[test]
fn an_idle_shim_does_not_wake_up_periodically() {
    let mut args = vec!["--".to_owned()];
    args.extend(kid_args(&["trap", "-n", "main", "-x", "TERM", "USR1"]));
    let s = shim(args).spawn();
    s.ready("main");
    let pid = s.pid();
    // Let the shim settle into its wait, then watch it for 2.5 s: tini
    // wakes every second; the shim must not wake at all.
    std::thread::sleep(Duration::from_millis(300));
    let before = switches(pid);
    std::thread::sleep(Duration::from_millis(2500));
    let after = switches(pid);
    s.signal(SIGTERM);
    s.wait();
    assert!(
        after - before <= 1,
        "the idle shim woke {} times",
        after - before
    );
}
