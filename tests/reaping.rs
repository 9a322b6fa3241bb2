//! Reaping: every child the shim is handed, as PID 1 and as a subreaper,
//! and not as a subreaper with `--no-subreaper`.
mod common;
use common::*;
use std::fs;
use std::time::Duration;

fn orphan_storm(mode: Mode) {
    const N: usize = 10_000;
    let dir = tmpdir("storm");
    let events = dir.join("events.jsonl");
    let mut args = vec![
        "--events".to_owned(),
        events.to_str().unwrap().into(),
        "--".into(),
    ];
    args.extend(kid_args(&["orphans", &N.to_string()]));
    let s = shim(args).mode(mode).spawn();
    let done = s.wait_timeout(Duration::from_secs(180));
    assert_eq!(done.code(), 0, "{}", done.stderr_text());
    assert!(
        done.stdout
            .iter()
            .any(|l| l == &format!("orphans {N} done"))
    );

    let ev = file_events(&events);
    check_events(&ev, 0);
    let orphans = orphan_exits(&ev);
    assert_eq!(
        orphans.len(),
        N,
        "{mode:?}: every orphan reaped, one line each"
    );
    // (Pids are not checked for distinctness: with pid_max at 32768 and
    // other storms running, a reaped orphan's pid may be reused.)
    assert!(
        orphans
            .iter()
            .all(|e| e["code"] == 0 || e["outcome"] == "stopped")
    );
    assert_eq!(shim_exit(&ev)["reaped"], N as u64 + 1);

    if mode == Mode::Subreaper {
        // Nothing of the child's process group is left, not even a zombie.
        let pgid = main_exit(&ev)["pid"].as_i64().unwrap() as i32;
        assert_eq!(
            members_of_group(pgid),
            Vec::<i32>::new(),
            "left in group {pgid}"
        );
    }
}

#[test]
fn a_storm_of_10000_orphans_is_all_reaped_as_subreaper() {
    orphan_storm(Mode::Subreaper);
}

#[test]
fn a_storm_of_10000_orphans_is_all_reaped_as_pid1() {
    orphan_storm(Mode::Pid1);
}

/// The orphan event of the grandchild a SIGKILLed intermediate left behind.
fn intermediate_orphan(mode: Mode) {
    let s = shim(
        ["--".to_owned()]
            .into_iter()
            .chain(kid_args(&["intermediate", "-n", "x"])),
    )
    .mode(mode)
    .spawn();
    let gc = field(&s.wait_stdout("grandchild x"), "pid");
    let adopted = s.wait_stdout("adopted x");
    let inter = s.wait_stdout("intermediate x");
    assert_eq!(field(&inter, "sig"), SIGKILL);
    let new_parent = field(&adopted, "ppid");
    match mode {
        Mode::Pid1 => assert_eq!(new_parent, 1, "adopted by the shim as PID 1"),
        Mode::Subreaper => assert_eq!(new_parent, s.pid(), "adopted by the shim"),
    }
    // The orphan exits 7 on its own while the main child still runs.
    s.err.wait_for(T, "the orphan's exit event", |ls| {
        parse_events(ls)
            .iter()
            .any(|e| e["event"] == "exit" && e["pid"] == gc)
            .then_some(())
    });
    s.signal(SIGTERM);
    let done = s.wait();
    assert_eq!(done.code(), 0, "{}", done.stderr_text());
    let ev = done.events();
    check_events(&ev, 0);
    let orphans = orphan_exits(&ev);
    assert_eq!(orphans.len(), 1, "{ev:#?}");
    let o = orphans[0];
    assert_eq!(o["pid"], gc);
    assert_eq!(o["role"], "orphan");
    assert_eq!(o["comm"], "kid", "comm read before the reap: {o}");
    assert_eq!(o["outcome"], "failed", "{o}");
    assert_eq!(o["code"], 7);
    assert_eq!(o["intentional"], false);
    assert_eq!(o["stop_reason"], serde_json::Value::Null);
    assert_eq!(o["runtime_ms"], serde_json::Value::Null);
}

#[test]
fn orphans_of_a_sigkilled_intermediate_are_reaped_as_subreaper() {
    intermediate_orphan(Mode::Subreaper);
}

#[test]
fn orphans_of_a_sigkilled_intermediate_are_reaped_as_pid1() {
    intermediate_orphan(Mode::Pid1);
}

fn not_a_subreaper(opt: bool) {
    // An outer subreaper (kid subreaper) stands in for "someone else": with
    // --no-subreaper the orphan must land there, not at the shim.
    let dir = tmpdir("nosub");
    let reaped = dir.join("reaped");
    let mut args = Vec::new();
    if opt {
        args.push("--no-subreaper".to_owned());
    }
    args.push("--".into());
    args.extend(kid_args(&["intermediate", "-n", "x"]));
    let mut cmd = shim(args).prefix(kid_args(&["subreaper", "-o", reaped.to_str().unwrap()]));
    if !opt {
        cmd = cmd.env("SHIM_NO_SUBREAPER", "1");
    }
    let s = cmd.spawn();
    let gc = field(&s.wait_stdout("grandchild x"), "pid");
    let adopted = s.wait_stdout("adopted x");
    assert_eq!(
        field(&adopted, "ppid"),
        s.root,
        "adopted by the outer subreaper"
    );
    wait_until(T, "the outer subreaper to reap the orphan", || {
        fs::read_to_string(&reaped)
            .unwrap_or_default()
            .contains(&format!("reaped {gc} code=7"))
            .then_some(())
    });
    s.signal(SIGTERM);
    let done = s.wait();
    assert_eq!(done.code(), 0, "{}", done.stderr_text());
    let ev = done.events();
    check_events(&ev, 0);
    assert_eq!(
        orphan_exits(&ev).len(),
        0,
        "the shim reaped no orphan: {ev:#?}"
    );
    assert_eq!(shim_exit(&ev)["reaped"], 1);
}

#[test]
fn no_subreaper_leaves_orphans_to_whoever_else_adopts_them() {
    not_a_subreaper(true);
}

#[test]
fn shim_no_subreaper_env_does_the_same() {
    not_a_subreaper(false);
}

#[test]
fn a_zombie_handed_over_already_dead_is_reaped_too() {
    // The intermediate's children exit before it does: they are handed to
    // the shim as zombies, with one SIGCHLD for many.
    for mode in MODES {
        let mut args = vec!["--".to_owned()];
        args.extend(kid_args(&["orphans", "50", "-b", "50"]));
        let done = shim(args).mode(mode).run();
        assert_eq!(done.code(), 0);
        let ev = done.events();
        check_events(&ev, 0);
        assert_eq!(orphan_exits(&ev).len(), 50, "{mode:?}");
        for o in orphan_exits(&ev) {
            assert_eq!(o["comm"], "kid", "{o}");
        }
    }
}

#[test]
fn an_orphan_killed_by_a_signal_the_shim_did_not_send_is_crashed() {
    // An adopted orphan in its own session, SIGKILLed by someone else
    // (like the OOM killer) while the main child runs.
    let mut args = vec!["--".to_owned()];
    args.extend(kid_args(&["fork", "--daemon", "--setsid"]));
    args.extend(kid_args(&["ignore", "-n", "orphan"]));
    args.push(":::".into());
    args.extend(kid_args(&["trap", "-n", "main", "-x", "TERM"]));
    let s = shim(args).spawn();
    let orphan = field(&s.ready("orphan"), "pid");
    s.ready("main");
    assert_eq!(ppid(orphan), Some(s.pid()), "adopted by the shim");
    assert!(kill(orphan, SIGKILL));
    s.err.wait_for(T, "the orphan's exit event", |ls| {
        parse_events(ls)
            .iter()
            .any(|e| e["pid"] == orphan)
            .then_some(())
    });
    s.signal(SIGTERM);
    let done = s.wait();
    let ev = done.events();
    check_events(&ev, 0);
    let o = orphan_exits(&ev)[0].clone();
    assert_eq!(o["outcome"], "crashed", "{o}");
    assert_eq!(o["signal"], "SIGKILL");
    assert_eq!(o["stop_reason"], serde_json::Value::Null);
}
