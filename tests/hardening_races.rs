//! Races: the child exits before the shim reaches its loop;
//! signals arrive between fork and exec; the main child and an orphan die
//! in the same instant; a PID reused after reaping; a stop request during
//! the grace period of another; SIGCONT to a stopped group; and the
//! parent-death thread trap with a multi-threaded parent.
//!
//! Sizes: `SHIM_RACE_RUNS` (default 100, full 500) repetitions per race.
mod common;
use common::*;
use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn runs() -> usize {
    size_from_env("SHIM_RACE_RUNS", 100)
}

fn mode_name(mode: Mode) -> String {
    format!("{mode:?}").to_lowercase()
}

#[test]
fn a_child_that_exits_before_the_loop_starts_is_reaped_and_reported_every_time() {
    let n = runs();
    for mode in MODES {
        let start = Instant::now();
        for i in 0..n {
            let code = (i % 7 + 1) as i32;
            // `kid exit N` is gone before std's spawn even returns.
            let done = shim(kid_args(&["exit", &code.to_string()]))
                .mode(mode)
                .run();
            assert_eq!(
                done.code(),
                code,
                "{mode:?} run {i}: {}",
                done.stderr_text()
            );
            let ev = done.events();
            check_events(&ev, code);
            assert_eq!(main_exit(&ev)["outcome"], "failed");
        }
        figure(
            "race",
            &[
                ("race", "exit_before_loop".into()),
                ("mode", mode_name(mode)),
                ("runs", n.to_string()),
                ("all_reported", "true".into()),
                ("seconds", format!("{:.2}", start.elapsed().as_secs_f64())),
            ],
        );
    }
}

#[test]
fn signals_hammering_the_shim_from_its_first_instant_leave_the_child_clean() {
    // A sender thread signals the shim from the moment its process exists
    // (before and while it forks and execs the app) with signals whose
    // default action is to ignore them, so a forwarded one cannot kill the
    // app. The app reports its mask and dispositions as it starts: nothing
    // of the shim's pending set or blocked mask may leak into it.
    // (As a subreaper only: the test signals the process it spawned, which
    // is the shim from its exec on. As PID 1 the shim is found too late.)
    let n = runs();
    let mut sent_total = 0usize;
    let mode = Mode::Subreaper;
    {
        for i in 0..n {
            let s = shim(kid_args(&["report"])).mode(mode).spawn();
            let target = s.root;
            let stop = Arc::new(AtomicBool::new(false));
            let sent = Arc::new(AtomicUsize::new(0));
            let sender = {
                let (stop, sent) = (stop.clone(), sent.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        for sig in [SIGWINCH, 23 /* SIGURG */, SIGCONT] {
                            if kill(target, sig) {
                                sent.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    }
                })
            };
            let done = s.wait();
            stop.store(true, Ordering::SeqCst);
            sender.join().unwrap();
            sent_total += sent.load(Ordering::SeqCst);
            assert_eq!(done.code(), 0, "{mode:?} run {i}: {}", done.stderr_text());
            assert_eq!(report_value(&done.stdout, "sigblk"), "0000000000000000");
            assert_eq!(report_value(&done.stdout, "sigign"), "0000000000000000");
            assert_eq!(report_value(&done.stdout, "sigcgt"), "0000000000000000");
            check_events(&done.events(), 0);
        }
    }
    figure(
        "race",
        &[
            ("race", "signals_between_fork_and_exec".into()),
            ("runs", n.to_string()),
            ("signals_sent", sent_total.to_string()),
            ("child_mask_clean", "true".into()),
        ],
    );
}

#[test]
fn a_stop_request_in_the_first_instant_is_never_lost() {
    // SIGTERM sent as soon as the shim process exists: taken before the
    // fork (still pending when the loop starts) or after; either way the
    // app is stopped, never left running, never reported as a crash.
    let n = runs() / 2;
    for mode in MODES {
        let mut early_kills = 0;
        for i in 0..n {
            let s = shim([
                "--grace",
                "5s",
                "--",
                kid(),
                "trap",
                "-n",
                "main",
                "-x",
                "TERM",
            ])
            .mode(mode)
            .spawn();
            let target = if mode == Mode::Subreaper {
                s.root
            } else {
                s.pid()
            };
            // Once the shim has blocked its signals, the first thing its
            // main does. (Before that no program can take a signal: SIGTERM
            // would kill the shim, or, sent from outside to a namespace's
            // PID 1 with the default disposition, be dropped by the kernel.)
            // (SigBlk reads 0 while the shim sleeps in sigtimedwait, which
            // unblocks what it waits for; a forked child proves it blocked.)
            wait_until(T, "the shim to block its signals", || {
                (fs::read_link(format!("/proc/{target}/exe")).ok()?
                    == fs::canonicalize(shim_bin()).ok()?
                    && (status_field(target, "SigBlk")? != "0000000000000000"
                        || !children(target).is_empty()))
                .then_some(())
            });
            assert!(kill(target, SIGTERM));
            let done = s.wait();
            let code = done.code();
            assert!(
                code == 0 || code == 128 + SIGTERM,
                "{mode:?} run {i}: {code}"
            );
            if code != 0 {
                early_kills += 1;
            }
            let ev = done.events();
            check_events(&ev, code);
            let m = main_exit(&ev);
            assert_eq!(m["outcome"], "stopped", "{m}");
            assert_eq!(m["stop_reason"], "signal:SIGTERM", "{m}");
            assert!(done.elapsed < Duration::from_secs(4), "not the grace kill");
        }
        figure(
            "race",
            &[
                ("race", "stop_at_first_instant".into()),
                ("mode", mode_name(mode)),
                ("runs", n.to_string()),
                ("app_killed_before_its_trap", early_kills.to_string()),
                ("lost", "0".into()),
            ],
        );
    }
}

#[test]
fn the_main_child_and_an_orphan_dying_in_the_same_instant_are_both_reported() {
    let n = runs() / 2;
    for mode in MODES {
        for i in 0..n {
            // Main and an adopted orphan in one process group; one kill(2)
            // of the group ends both at once (one SIGCHLD, two exits).
            let mut args = vec!["--".to_owned()];
            args.extend(kid_args(&["fork", "--daemon"]));
            args.extend(kid_args(&["pause"]));
            args.push(":::".into());
            args.extend(kid_args(&["ignore", "-n", "main"]));
            let s = shim(args).mode(mode).spawn();
            s.ready("main");
            let shim_pid = s.pid();
            wait_until(T, "the orphan to be adopted", || {
                (children(shim_pid).len() == 2).then_some(())
            });
            let pg = pgid(children(shim_pid)[0]).unwrap();
            assert!(common_kill_group(pg, SIGKILL));
            let done = s.wait();
            assert_eq!(done.code(), 128 + SIGKILL, "{mode:?} run {i}");
            let ev = done.events();
            check_events(&ev, 128 + SIGKILL);
            assert_eq!(main_exit(&ev)["outcome"], "crashed");
            let orphans = orphan_exits(&ev);
            assert_eq!(orphans.len(), 1, "{mode:?} run {i}: {ev:#?}");
            assert_eq!(orphans[0]["signal"], "SIGKILL");
        }
        figure(
            "race",
            &[
                ("race", "main_and_orphan_same_instant".into()),
                ("mode", mode_name(mode)),
                ("runs", n.to_string()),
                ("both_reported", "true".into()),
            ],
        );
    }
}

/// kill(-pgid, sig) from the test.
fn common_kill_group(pgid: i32, sig: i32) -> bool {
    unsafe extern "C" {
        fn kill(pid: i32, sig: i32) -> i32;
    }
    assert!(pgid > 1);
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { kill(-pgid, sig) == 0 }
}

#[test]
fn a_pid_reused_after_reaping_by_an_unrelated_process_is_never_signalled() {
    // In a PID namespace of its own, the shim (not PID 1: a subreaper under
    // `kid subreaper`) runs an app that leaves a TERM-ignoring orphan in a
    // session of its own, so the shim stays in its grace period after the
    // app exits. Then the app's pid, and so its group id (the kernel keeps
    // an id in use while any group member lives: hence the orphan's own
    // session), is handed to an unrelated process (ns_last_pid makes the
    // next pid the freed one) that makes itself leader of a group with that
    // id. Signals the shim forwards "to what is left of the app's group",
    // and the final SIGKILL sweep, must not reach it.
    let _heavy = heavy_lock();
    let dir = tmpdir("pidreuse");
    let (left, intruder, reaped) = (dir.join("left"), dir.join("intruder"), dir.join("reaped"));
    let mut args = vec!["--grace".to_owned(), "3s".into(), "--".into()];
    args.extend(kid_args(&["fork", "--daemon", "--setsid"]));
    args.extend(trap_into("left", &left, &["TERM", "USR1", "USR2", "HUP"]));
    args.push(":::".into());
    args.extend(kid_args(&["trap", "-n", "main", "-x", "USR1"]));
    let mut prefix: Vec<String> = ["unshare", "--pid", "--fork", "--mount-proc"]
        .map(String::from)
        .to_vec();
    prefix.extend(kid_args(&["subreaper", "-o", reaped.to_str().unwrap()]));
    let s = shim(args).prefix(prefix).spawn();
    let main_ns = field(&s.ready("main"), "pid");
    s.ready("left");
    let shim_pid = s.pid();
    let ns_init = ppid(shim_pid).unwrap();
    // The app exits (USR1 forwarded); the orphan keeps the shim stopping.
    s.signal(SIGUSR1);
    wait_sig(&left, SIGTERM);
    // The intruder, entered from outside the shim's tree, gets the app's pid.
    let script = format!(
        "echo {} > /proc/sys/kernel/ns_last_pid || exit 1; setsid {} -T 30 trap -n intruder -o '{}' all &",
        main_ns - 1,
        kid(),
        intruder.display()
    );
    let st = std::process::Command::new("nsenter")
        .args([
            "-t",
            &ns_init.to_string(),
            "-p",
            "-m",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let intruder_host = wait_until(T, "the intruder to start", || {
        fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
            let p: i32 = e.file_name().to_str()?.parse().ok()?;
            let nspid = status_field(p, "NSpid")?;
            let mut it = nspid.split_whitespace();
            let _host = it.next()?;
            let inner: i32 = it.next()?.parse().ok()?;
            (inner == main_ns
                && ppid(p).is_some()
                && fs::read_link(format!("/proc/{p}/ns/pid")).ok()
                    == fs::read_link(format!("/proc/{shim_pid}/ns/pid")).ok()
                && comm(p).as_deref() == Some("kid")
                && p != shim_pid)
                .then_some(p)
        })
    });
    // Wait for it to be set up (its group is its own pid: the app's old id).
    wait_until(T, "the intruder's group", || {
        (pgid(intruder_host) == Some(intruder_host)).then_some(())
    });
    std::thread::sleep(Duration::from_millis(100));
    // Forwarded to what is left of the app's group: nobody now (the
    // orphan has a group of its own; the intruder is no descendant).
    s.signal(SIGUSR2);
    s.signal(SIGHUP);
    std::thread::sleep(Duration::from_millis(300));
    // The grace period ends: SIGKILL to the shim's descendants, only.
    let deadline = Instant::now() + Duration::from_secs(20);
    while state(shim_pid).is_some_and(|c| c != 'Z') && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let alive = state(intruder_host).is_some_and(|c| c != 'Z');
    let got = sigs_in(&intruder);
    kill(intruder_host, SIGKILL);
    let done = s.wait();
    assert!(alive, "the intruder survived the shim's SIGKILL sweep");
    assert_eq!(got, Vec::<i32>::new(), "the intruder got no signal");
    assert_eq!(sigs_in(&left), [SIGTERM], "the orphan: only the stop");
    let ev = done.events();
    let orphan = orphan_exits(&ev);
    assert_eq!(orphan.len(), 1, "{ev:#?}");
    assert_eq!(orphan[0]["outcome"], "killed");
    figure(
        "race",
        &[
            ("race", "pid_reuse".into()),
            ("reused_pid", main_ns.to_string()),
            ("intruder_signals", got.len().to_string()),
            ("intruder_alive_after_sweep", alive.to_string()),
        ],
    );
}

#[test]
fn a_second_stop_request_during_the_grace_period_does_not_move_the_deadline() {
    for mode in MODES {
        let dir = tmpdir("stop2");
        let log = dir.join("main");
        let s = shim([
            "--grace",
            "2s",
            "--",
            kid(),
            "trap",
            "-n",
            "main",
            "-o",
            log.to_str().unwrap(),
            "TERM",
            "INT",
            "QUIT",
        ])
        .mode(mode)
        .spawn();
        s.ready("main");
        let t0 = Instant::now();
        s.signal(SIGTERM);
        wait_sig(&log, SIGTERM);
        std::thread::sleep(Duration::from_millis(1200));
        s.signal(SIGINT);
        wait_sig(&log, SIGINT);
        s.signal(SIGQUIT);
        let done = s.wait();
        let total = t0.elapsed();
        assert_eq!(done.code(), 128 + SIGKILL);
        assert_eq!(sigs_in(&log), [SIGTERM, SIGINT, SIGQUIT]);
        let m = main_exit(&done.events()).clone();
        assert_eq!(m["outcome"], "killed", "{m}");
        assert_eq!(m["stop_reason"], "signal:SIGTERM", "the first one: {m}");
        assert!(
            total < Duration::from_millis(3000),
            "{mode:?}: killed {total:?} after the first request: the deadline moved"
        );
        figure(
            "race",
            &[
                ("race", "stop_during_grace".into()),
                ("mode", mode_name(mode)),
                ("grace_ms", "2000".into()),
                ("killed_after_ms", total.as_millis().to_string()),
            ],
        );
    }
}

#[test]
fn sigcont_to_the_shim_resumes_a_stopped_group_and_a_stop_request_wakes_a_stopped_group() {
    for mode in MODES {
        let dir = tmpdir("cont");
        let log = dir.join("main");
        let mut args = vec!["--grace".to_owned(), "1s".into(), "--".into()];
        args.extend(kid_args(&["fork"]));
        args.extend(kid_args(&["trap", "-n", "member", "CONT"]));
        args.push(":::".into());
        args.extend(trap_into("main", &log, &["-x", "TERM", "CONT"]));
        let s = shim(args).mode(mode).spawn();
        s.ready("main");
        s.ready("member");
        let shim_pid = s.pid();
        let group: Vec<i32> = tree(shim_pid).into_iter().skip(1).collect();
        assert_eq!(group.len(), 2, "main and member");
        let pg = pgid(group[0]).unwrap();
        // Stop the whole group from outside (as a Ctrl-Z at the terminal).
        assert!(common_kill_group(pg, 19 /* SIGSTOP */));
        wait_until(T, "the group to stop", || {
            group.iter().all(|&p| state(p) == Some('T')).then_some(())
        });
        // SIGCONT to the shim is forwarded to the group: all resume.
        s.signal(SIGCONT);
        wait_until(T, "the group to resume", || {
            group
                .iter()
                .all(|&p| state(p).is_some_and(|c| c != 'T'))
                .then_some(())
        });
        wait_sig(&log, SIGCONT);
        // Stopped again, then a stop request: the SIGCONT after the
        // forwarded SIGTERM lets the stopped group act on it.
        assert!(common_kill_group(pg, 19));
        wait_until(T, "the group to stop again", || {
            group.iter().all(|&p| state(p) == Some('T')).then_some(())
        });
        let t0 = Instant::now();
        s.signal(SIGTERM);
        let done = s.wait();
        let ms = t0.elapsed().as_millis();
        assert_eq!(done.code(), 0, "{mode:?}: {}", done.stderr_text());
        let ev = done.events();
        check_events(&ev, 0);
        assert_eq!(main_exit(&ev)["outcome"], "stopped");
        assert!(ms < 5000, "{mode:?}: {ms} ms");
        figure(
            "race",
            &[
                ("race", "sigcont_to_stopped_group".into()),
                ("mode", mode_name(mode)),
                ("resumed", "true".into()),
                ("stopped_group_killed_after_ms", ms.to_string()),
            ],
        );
    }
}

/// `kid subreaper -o REAPED kid threadspawn SHIM ARGS`: the shim is started
/// by a second thread of a `kid` process, which then exits.
fn spawn_from_a_thread(log: &Path, reaped: &Path) -> Shim {
    let mut args: Vec<String> = vec!["--".into()];
    args.extend(trap_into("main", log, &["-x", "TERM", "64"]));
    let mut prefix = kid_args(&["subreaper", "-o", reaped.to_str().unwrap()]);
    prefix.extend(kid_args(&["threadspawn"]));
    shim(args).prefix(prefix).spawn()
}

#[test]
fn a_multithreaded_parent_whose_spawning_thread_exits_is_not_dead_its_real_death_is() {
    let dir = tmpdir("pdeath-mt");
    let (log, reaped) = (dir.join("main"), dir.join("reaped"));
    let s = spawn_from_a_thread(&log, &reaped);
    s.ready("main");
    s.wait_stdout("thread gone");
    let shim_pid = s.pid();
    let parent = ppid(shim_pid).unwrap();
    assert_ne!(parent, s.root);
    assert_eq!(
        comm(parent).as_deref(),
        Some("kid"),
        "the threadspawn process"
    );
    // The spawning thread is gone; a parent-death SIGTERM would be pending
    // at the shim by now and taken before the marker.
    s.signal(SIGRTMAX);
    wait_sig(&log, SIGRTMAX);
    assert_eq!(sigs_in(&log), [SIGRTMAX], "no stop for a thread's exit");
    assert!(state(shim_pid).is_some_and(|c| c != 'Z'));
    // The real death: the whole parent process goes.
    assert!(kill(parent, SIGKILL));
    let done = s.wait();
    assert_eq!(sigs_in(&log), [SIGRTMAX, SIGTERM]);
    let text = fs::read_to_string(&reaped).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("reaped {shim_pid} ")))
        .unwrap_or_else(|| panic!("shim not reaped: {text}"));
    assert_eq!(field(line, "code"), 0);
    let ev = done.events();
    check_events(&ev, 0);
    let m = main_exit(&ev);
    assert_eq!(m["outcome"], "stopped", "{m}");
    assert_eq!(m["stop_reason"], "parent-death", "{m}");
}
