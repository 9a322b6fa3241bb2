//! Trust: PID 1 is trusted with every process in the container. It must
//! never signal a process that is not its own, never die of (or lose) a
//! signal, never block on an output or tear a line, and spawn the same way
//! in every build. Run against the static binary too (`SHIM_BIN`, as
//! scripts/test does): the C library behind the build is where 32-34 and
//! spawning differ.
//!
//! Not covered here: a wall clock before 1970 or past 9999 (the clock cannot
//! be set for one process without changing it for the whole machine, and
//! CLOCK_REALTIME has no namespace), and errors of the one wait itself
//! (they cannot be caused from outside).
mod common;
use common::*;
use serde_json::Value;
use std::fs;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

/// For what should happen at once: a failing run then fails in seconds.
const SOON: Duration = Duration::from_secs(5);

fn args(opts: &[&str], command: Vec<String>) -> Vec<String> {
    let mut v: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
    v.push("--".into());
    v.extend(command);
    v
}

/// `kid fork <first> ::: <then>`: `first` in the child (in the app's group,
/// or its own session with `setsid`), `then` in the main child.
fn fork_then(setsid: bool, first: Vec<String>, then: Vec<String>) -> Vec<String> {
    let mut v = kid_args(&["fork"]);
    if setsid {
        v.push("--setsid".into());
    }
    v.extend(first);
    v.push(":::".into());
    v.extend(then);
    v
}

/// A main child that exits 0 when it gets SIGUSR1 (sent to it directly by
/// the test, so nothing else in its group gets anything).
fn main_until_usr1() -> Vec<String> {
    kid_args(&["trap", "-n", "main", "-x", "USR1"])
}

/// Waits for the `ready TAG` line; returns that process's pid in the shim's
/// namespace (as events name it) and its host pid (to signal or watch it).
fn ready_pid(s: &Shim, tag: &str) -> (i32, i32) {
    let inner = field(&s.ready(tag), "pid");
    (inner, host_pid(s, inner))
}

/// Sends the main child (host pid `main`) its SIGUSR1 and waits, at most
/// `timeout`, for the shim to end; returns the run and the time from the
/// signal to the end.
fn end_main(s: Shim, main: i32, timeout: Duration) -> (Done, Duration) {
    let t0 = Instant::now();
    assert!(kill(main, SIGUSR1));
    let done = s.wait_timeout(timeout);
    (done, t0.elapsed())
}

fn pidfd(pid: i32) -> Pidfd {
    Pidfd::open(pid).unwrap_or_else(|| panic!("pidfd_open({pid}) failed"))
}

/// The one exit event of process `inner_pid`.
fn exit_of(events: &[Value], inner_pid: i32) -> Value {
    let found: Vec<_> = exits(events)
        .into_iter()
        .filter(|e| e["pid"] == inner_pid)
        .collect();
    assert_eq!(found.len(), 1, "one exit of {inner_pid} in {events:#?}");
    found[0].clone()
}

// ---------------------------------------------------------------------------
// Signals 32, 33 and 34
// ---------------------------------------------------------------------------

/// Waits until `log` records `sig`, failing at once if the shim died first.
fn wait_sig_unless_dead(shim: &Pidfd, log: &Path, sig: i32) {
    wait_until(SOON, &format!("signal {sig} at the app"), || {
        assert!(
            !shim.exited(),
            "the shim died on signal {sig} instead of forwarding it"
        );
        sigs_in(log).contains(&sig).then_some(())
    })
}

#[test]
fn signals_32_33_and_34_are_forwarded_to_the_app_and_never_kill_the_shim() {
    for mode in MODES {
        let dir = tmpdir("sig32");
        let log = dir.join("main");
        let app = stray_args(&[
            "record",
            "-n",
            "main",
            "-o",
            log.to_str().unwrap(),
            "-x",
            "TERM",
        ]);
        let s = shim(args(&[], app)).mode(mode).spawn();
        s.ready("main");
        let me = pidfd(s.pid());
        for sig in [32, 33, SIGRTMIN] {
            s.signal(sig);
            // Not taken, it kills the shim, or, sent to a namespace's PID 1,
            // is dropped by the kernel: the app never sees it.
            wait_sig_unless_dead(&me, &log, sig);
        }
        s.signal(SIGTERM);
        let done = s.wait();
        assert_eq!(done.code(), 0, "{mode:?}: {}", done.stderr_text());
        assert_eq!(sigs_in(&log), [32, 33, SIGRTMIN, SIGTERM], "{mode:?}");
        let ev = done.events();
        check_events(&ev, 0);
        let m = main_exit(&ev);
        assert_eq!(m["outcome"], "stopped", "{m}");
        assert_eq!(m["stop_reason"], "signal:SIGTERM", "{m}");
    }
}

#[test]
fn an_app_killed_by_a_forwarded_32_33_or_34_is_reported_under_the_kernels_name() {
    for mode in MODES {
        for (sig, name) in [(32, "SIG32"), (33, "SIG33"), (SIGRTMIN, "SIGRTMIN")] {
            // Every disposition default: the forwarded signal kills the app.
            let s = shim(args(&[], stray_args(&["dfl", "-n", "main"])))
                .mode(mode)
                .spawn();
            s.ready("main");
            s.signal(sig);
            let done = s.wait_timeout(SOON);
            assert_eq!(
                done.code(),
                128 + sig,
                "{mode:?} {name}: {}",
                done.stderr_text()
            );
            let ev = done.events();
            check_events(&ev, 128 + sig);
            let m = main_exit(&ev);
            assert_eq!(m["signal"], name, "{mode:?}: {m}");
            assert_eq!(m["signo"], sig, "{m}");
            assert_eq!(m["outcome"], "stopped", "{m}");
            assert_eq!(m["stop_reason"], format!("signal:{name}"), "{m}");
        }
    }
}

// ---------------------------------------------------------------------------
// A /proc that is not the shim's own PID namespace's
// ---------------------------------------------------------------------------

/// `kid fork kid pause ::: kid pause` on the host, outside any shim: a
/// parent H and its child C. Returns (guard, H, C).
fn host_pair() -> (Guard, i32, i32) {
    let mut cmd = std::process::Command::new(kid());
    cmd.args(["-T", "60", "fork", kid(), "-T", "60", "pause", ":::"])
        .args([kid(), "-T", "60", "pause"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let h = child.id() as i32;
    let c = wait_until(T, "the host pair's child", || {
        children(h)
            .into_iter()
            .find(|&c| comm(c).as_deref() == Some("kid"))
    });
    let guard = Guard(vec![pidfd(h), pidfd(c)]);
    // Reap it in the background once it dies, so it does not linger.
    std::thread::spawn(move || child.wait());
    (guard, h, c)
}

#[test]
fn without_its_own_proc_the_shim_signals_no_bystander_that_has_the_pid_of_a_host_process() {
    // The shim runs (not as PID 1) in a new PID namespace that still sees
    // the host's /proc. A host process H has a child C. Inside, the shim is
    // given the pid number H and a bystander (a child of the namespace's
    // init, not the shim's) the number C: a shim that took the host's /proc
    // for its own would take C for its descendant and signal the bystander.
    let (host, h, c) = host_pair();
    let script = format!(
        "pin() {{ echo \"$1\" > /proc/sys/kernel/ns_last_pid || exit 90; }}
         pin {c1}; sleep 60 & b=$!
         [ \"$b\" -eq {c} ] || {{ echo \"bystander got pid $b, not {c}\"; exit 91; }}
         pin {h1}; \"$@\" & s=$!
         [ \"$s\" -eq {h} ] || {{ echo \"shim got pid $s, not {h}\"; exit 92; }}
         wait \"$s\"; rc=$?
         if kill -0 \"$b\" 2>/dev/null; then echo bystander alive; else echo bystander gone; fi
         kill \"$b\" 2>/dev/null; exit \"$rc\"",
        c1 = c - 1,
        h1 = h - 1,
    );
    let app = fork_then(
        false,
        kid_args(&["-T", "30", "ignore", "-n", "left", "TERM"]),
        main_until_usr1(),
    );
    let s = shim(args(&["--grace", "1s"], app))
        .prefix(["unshare", "--pid", "--fork", "sh", "-c", &script, "sh"])
        .spawn();
    s.ready("left");
    let (_, main) = ready_pid(&s, "main");
    let bystander = wait_until(T, "the bystander", || {
        tree(s.root).into_iter().find(|&p| {
            comm(p).as_deref() == Some("sleep")
                && status_field(p, "NSpid").is_some_and(|v| v.ends_with(&format!("\t{c}")))
        })
    });
    let bystander = pidfd(bystander);
    let me = pidfd(s.pid());
    let t0 = Instant::now();
    assert!(kill(main, SIGUSR1));
    // Watched from outside as well, so a shim that never ends cannot hide
    // that it signalled the bystander (which the script ends only after the
    // shim has exited).
    wait_until(Duration::from_secs(10), "the shim to end", || {
        assert!(
            !bystander.exited() || me.exited(),
            "the bystander with a host descendant's pid number was signalled"
        );
        me.exited().then_some(())
    });
    let done = s.wait_timeout(Duration::from_secs(5));
    let took = t0.elapsed();
    assert_eq!(
        done.code(),
        0,
        "{}\n{}",
        done.stdout.join("\n"),
        done.stderr_text()
    );
    assert!(
        done.stdout.iter().any(|l| l == "bystander alive"),
        "the bystander with a host descendant's pid number was signalled: {:?}",
        done.stdout
    );
    assert!(took < SOON, "the leftover outlived the 1 s grace: {took:?}");
    let ev = done.events();
    check_events(&ev, 0);
    for e in exits(&ev) {
        assert!(
            e["comm"].is_null(),
            "a name read from another namespace: {e}"
        );
    }
    let left: Vec<_> = orphan_exits(&ev);
    assert_eq!(left.len(), 1, "{ev:#?}");
    assert_eq!(left[0]["outcome"], "killed", "{}", left[0]);
    assert!(host.0.iter().all(|p| !p.exited()), "a host process was hit");
}

#[test]
fn as_pid1_without_its_own_proc_a_leftover_that_ignores_term_is_killed_at_the_deadline() {
    let (host, _, _) = host_pair();
    let app = fork_then(
        false,
        kid_args(&["-T", "30", "ignore", "-n", "left", "TERM"]),
        main_until_usr1(),
    );
    let s = shim(args(&["--grace", "1s"], app))
        .prefix(["unshare", "--pid", "--fork"])
        .spawn();
    s.ready("left");
    let (_, main) = ready_pid(&s, "main");
    let (done, took) = end_main(s, main, Duration::from_secs(10));
    assert_eq!(done.code(), 0, "{}", done.stderr_text());
    assert!(
        took < SOON && took >= Duration::from_millis(900),
        "killed at the 1 s deadline: {took:?}"
    );
    let ev = done.events();
    check_events(&ev, 0);
    for e in exits(&ev) {
        assert!(
            e["comm"].is_null(),
            "a name read from another namespace: {e}"
        );
    }
    let left = orphan_exits(&ev);
    assert_eq!(left.len(), 1, "{ev:#?}");
    assert_eq!(left[0]["outcome"], "killed", "{}", left[0]);
    assert!(host.0.iter().all(|p| !p.exited()), "a host process was hit");
}

// ---------------------------------------------------------------------------
// Pid reuse
// ---------------------------------------------------------------------------

#[test]
fn a_bystander_reusing_freed_pids_gets_no_signal_from_the_sweeps_under_churn() {
    // In a PID namespace of their own (the shim is not its PID 1): the app
    // leaves three processes that churn through children living 0.5 ms and
    // ignore SIGTERM and SIGUSR1. Beside the shim, a bystander (not its
    // descendant, same uid) watches for one of those children to go and
    // takes its pid at once (through ns_last_pid) for a child of its own.
    // The shim sweeps the churn once per SIGUSR1 the test sends (forwarded
    // after the main child is gone), with SIGTERM when the main child exits
    // and SIGKILL after the grace period: a sweep that signals by pid from
    // an older look at /proc hits the bystander. No bystander may ever get
    // a signal. (The race cannot be forced; this gives it every chance, for
    // 2 s.)
    let _heavy = heavy_lock();
    let dir = tmpdir("reuse");
    let by = dir.join("bystanders");
    let script = format!(
        "\"{stray}\" -T 4 reuse -o '{log}' -p & r=$!
         \"$@\"; rc=$?
         wait \"$r\"; exit \"$rc\"",
        stray = stray(),
        log = by.display()
    );
    let churn = stray_args(&["-T", "20", "churn", "3", "-i", "TERM", "-i", "USR1"]);
    let app = fork_then(false, churn, main_until_usr1());
    let s = shim(args(&["--grace", "2s"], app))
        .prefix([
            "unshare",
            "--pid",
            "--fork",
            "--mount-proc",
            "sh",
            "-c",
            &script,
            "sh",
        ])
        .spawn();
    s.ready("churn");
    let (_, main) = ready_pid(&s, "main");
    let me = pidfd(s.pid());
    assert!(kill(main, SIGUSR1));
    let t0 = Instant::now();
    let mut sent = 0;
    while !me.exited() && t0.elapsed() < Duration::from_secs(6) {
        if me.signal(SIGUSR1) {
            sent += 1;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let done = s.wait_timeout(Duration::from_secs(10));
    assert_eq!(done.code(), 0, "{}", done.stderr_text());
    check_events(&done.events(), 0);
    let text = fs::read_to_string(&by).unwrap_or_default();
    let hits: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("sig ") || l.starts_with("killed "))
        .collect();
    assert!(
        hits.is_empty(),
        "bystanders were signalled ({sent} sweeps): {hits:?}"
    );
    let summary = text
        .lines()
        .find(|l| l.starts_with("bystanders "))
        .unwrap_or_else(|| panic!("no bystander summary: {text}"));
    assert!(
        summary.ends_with("pinned=1"),
        "ns_last_pid could not be set: {summary}"
    );
    let reused = field(summary, "reused");
    assert!(reused > 20, "few pids were taken over: {summary}");
    figure(
        "trust",
        &[
            ("case", "pid_reuse_churn".into()),
            ("sweeps", sent.to_string()),
            ("pids_taken_over", reused.to_string()),
        ],
    );
}

// ---------------------------------------------------------------------------
// Leftovers that are hard to see or to catch
// ---------------------------------------------------------------------------

#[test]
fn a_leftover_whose_main_thread_exited_is_killed_at_the_deadline() {
    for mode in MODES {
        for setsid in [true, false] {
            let zl = stray_args(&["-T", "30", "zombie-leader", "-n", "zl", "-i", "TERM"]);
            let s = shim(args(
                &["--grace", "1s"],
                fork_then(setsid, zl, main_until_usr1()),
            ))
            .mode(mode)
            .spawn();
            let (zl_inner, zl_host) = ready_pid(&s, "zl");
            assert_eq!(state(zl_host), Some('Z'), "the leader shows as a zombie");
            let (_, main) = ready_pid(&s, "main");
            let (done, took) = end_main(s, main, Duration::from_secs(10));
            assert_eq!(done.code(), 0, "{mode:?}: {}", done.stderr_text());
            assert!(took < SOON, "{mode:?} setsid={setsid}: {took:?}");
            let ev = done.events();
            check_events(&ev, 0);
            let e = exit_of(&ev, zl_inner);
            assert_eq!(e["outcome"], "killed", "{mode:?} setsid={setsid}: {e}");
            assert_eq!(e["stop_reason"], "main-exited", "{e}");
        }
    }
}

#[test]
fn a_group_member_that_keeps_forking_and_exiting_is_stopped_at_the_deadline() {
    let _heavy = heavy_lock();
    for mode in MODES {
        // It ignores SIGTERM and moves to a new pid every millisecond or so;
        // after the main child exits, only a signal to its group is sure to
        // catch it (the group's id stays pinned by its members, zombies
        // included).
        let walker = stray_args(&["-T", "8", "walk", "-n", "walk", "-i", "TERM", "-u", "1000"]);
        let s = shim(args(
            &["--grace", "1s", "--events", "off"],
            fork_then(false, walker, main_until_usr1()),
        ))
        .mode(mode)
        .spawn();
        s.ready("walk");
        let (_, main) = ready_pid(&s, "main");
        let (done, took) = end_main(s, main, Duration::from_secs(7));
        assert_eq!(done.code(), 0, "{mode:?}: {}", done.stderr_text());
        assert!(
            took < Duration::from_secs(4),
            "{mode:?}: the walker escaped the sweeps for {took:?} (grace 1 s)\n{}",
            done.stderr_text()
        );
    }
}

#[test]
fn with_no_subreaper_a_leftover_in_the_apps_group_still_gets_sigterm() {
    // The leftover is not the shim's child: when the main child exits it is
    // re-parented past the shim, which then has no child at all, but the
    // app's group still has a member.
    let dir = tmpdir("nosub");
    let log = dir.join("left");
    let left = trap_into("left", &log, &["-x", "TERM"]);
    let mut left_t = vec![left[0].clone(), "-T".into(), "30".into()];
    left_t.extend(left[1..].iter().cloned());
    let s = shim(args(
        &["--no-subreaper"],
        fork_then(false, left_t, main_until_usr1()),
    ))
    .spawn();
    let (_, left_pid) = ready_pid(&s, "left");
    let guard = Guard(vec![pidfd(left_pid)]);
    let (_, main) = ready_pid(&s, "main");
    assert!(kill(main, SIGUSR1));
    wait_until(SOON, "the leftover to get SIGTERM", || {
        sigs_in(&log).contains(&SIGTERM).then_some(())
    });
    wait_until(SOON, "the leftover to end", || {
        guard.0[0].exited().then_some(())
    });
    let done = s.wait();
    assert_eq!(done.code(), 0, "{}", done.stderr_text());
    check_events(&done.events(), 0);
    assert_eq!(sigs_in(&log), [SIGTERM]);
}

// ---------------------------------------------------------------------------
// Output: never block, never tear
// ---------------------------------------------------------------------------

/// Reads `r` in `chunk`-byte reads with `pause` between them until EOF (or
/// EIO: a pty master once every slave is closed), in a thread.
fn slow_reader(
    mut r: fs::File,
    chunk: usize,
    pause: Duration,
) -> std::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut buf = vec![0u8; chunk];
        loop {
            match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
            std::thread::sleep(pause);
        }
        let _ = tx.send(out);
    });
    rx
}

/// Checks text read back from a destination the events shared with the
/// shim's diagnostics: every line is an event that parses whole or a
/// diagnostic holding no part of one. `whole_tail`: the text must also end
/// with a line break (no line left half-written). Returns the events.
fn check_lines(bytes: &[u8], whole_tail: bool, what: &str) -> Vec<Value> {
    let text = String::from_utf8_lossy(bytes);
    let (body, tail) = match text.rfind('\n') {
        Some(i) => (&text[..=i], &text[i + 1..]),
        None => ("", &text[..]),
    };
    if whole_tail {
        assert!(tail.is_empty(), "{what}: a torn last line: {tail:?}");
    }
    let mut events = Vec::new();
    for line in body.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        if line.starts_with('{') {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{what}: a torn or glued line ({e}): {line:?}"));
            assert!(v["event"].is_string(), "{what}: {line}");
            events.push(v);
        } else {
            assert!(
                !line.contains("{\"ts\""),
                "{what}: an event glued to a diagnostic: {line:?}"
            );
        }
    }
    events
}

#[test]
fn a_terminal_the_shim_cannot_reopen_that_nobody_reads_never_blocks_it() {
    for mode in MODES {
        // As with `docker run -t --user N`: the shim runs as uid 65534 and
        // its stderr is a root-owned pty it cannot open again non-blocking.
        let (master, slave) = pty();
        {
            use std::os::unix::fs::MetadataExt;
            let meta = slave.metadata().unwrap();
            assert!(
                meta.uid() == 0 && meta.mode() & 0o006 == 0,
                "the pty is root's alone"
            );
        }
        let s = shim(args(&[], kid_args(&["orphans", "2000"])))
            .mode(mode)
            .prefix([
                "setpriv",
                "--reuid",
                "65534",
                "--regid",
                "65534",
                "--clear-groups",
            ])
            .stderr(slave)
            .spawn();
        let done = s.wait_timeout(Duration::from_secs(15));
        assert_eq!(done.code(), 0, "{mode:?}");
        assert!(done.stdout.iter().any(|l| l == "orphans 2000 done"));
        // What did reach the terminal is whole lines (a last one may still
        // be waiting for room that never came).
        set_nonblocking(&master);
        let mut got = Vec::new();
        let mut m = master;
        let mut buf = [0u8; 65536];
        while let Ok(n) = m.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        check_lines(&got, false, &format!("{mode:?} pty"));
    }
}

#[test]
fn a_line_longer_than_pipe_buf_goes_to_a_pipe_as_one_shortened_line() {
    // A 70 kB COMMAND that does not exist: its spawn_failed line would be
    // longer than PIPE_BUF, which a pipe takes atomically only up to there.
    const PIPE_BUF: usize = 4096;
    let long = format!("/nonexistent/{}", "abc/".repeat(17_500));
    for mode in MODES {
        // To a pipe of its own (fd:3) ...
        let (r, w) = pipe();
        let done = shim(["--events", "fd:3", "--", long.as_str()])
            .mode(mode)
            .fd(w, 3)
            .run();
        let code = done.code();
        assert!(code == 126 || code == 127, "{mode:?}: {code}");
        let mut bytes = Vec::new();
        let mut r = r;
        r.read_to_end(&mut bytes).unwrap();
        let ev = check_lines(&bytes, true, &format!("{mode:?} fd:3"));
        assert_eq!(ev.len(), 2, "spawn_failed and shim_exit: {ev:#?}");
        check_events(&ev, code);
        let text = String::from_utf8_lossy(&bytes);
        for line in text.lines() {
            assert!(line.len() < PIPE_BUF, "{} bytes in one line", line.len());
        }
        let err = ev[0]["error"].as_str().unwrap();
        assert_eq!(ev[0]["event"], "spawn_failed");
        assert!(
            err.contains('…') || err.contains("..."),
            "shortened with an ellipsis: {}",
            &err[..err.len().min(200)]
        );
        assert!(
            err.contains("/nonexistent/abc/abc/"),
            "{}",
            &err[..err.len().min(200)]
        );

        // ... and to stderr, shared with the diagnostic that names it too:
        // the diagnostic is shortened as well, so it cannot fill the pipe
        // ahead of the events (which would then be dropped).
        let done = shim(["--", long.as_str()]).mode(mode).run();
        let mut joined = done.stderr.join("\n").into_bytes();
        joined.push(b'\n');
        let ev = check_lines(&joined, true, &format!("{mode:?} stderr"));
        check_events(&ev, done.code());
        for line in &done.stderr {
            assert!(line.len() < PIPE_BUF, "{} bytes in one line", line.len());
        }
        let diag = done.stderr.iter().find(|l| l.starts_with("shim: error: "));
        assert!(
            diag.is_some_and(|l| l.ends_with('…')),
            "a shortened diagnostic: {:?}",
            diag.map(|l| &l[..l.len().min(200)])
        );
    }
}

/// Sends SIGWINCH (forwarded, and ignored by the app) to the shim every
/// 2 ms until it exits: a -vv shim writes a diagnostic for each.
fn winch_until_exit(shim: Pidfd) -> std::thread::JoinHandle<u32> {
    std::thread::spawn(move || {
        let t0 = Instant::now();
        let mut n = 0;
        while !shim.exited() && t0.elapsed() < Duration::from_secs(30) {
            if shim.signal(SIGWINCH) {
                n += 1;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        n
    })
}

#[test]
fn events_and_diagnostics_on_a_slowly_read_terminal_arrive_as_whole_separate_lines() {
    for mode in MODES {
        let (master, slave) = pty();
        let s = shim(args(&["-vv"], kid_args(&["orphans", "1000"])))
            .mode(mode)
            .stderr(slave)
            .spawn();
        let reader = slow_reader(master, 512, Duration::from_millis(2));
        let winch = winch_until_exit(pidfd(s.pid()));
        let done = s.wait_timeout(Duration::from_secs(30));
        assert_eq!(done.code(), 0, "{mode:?}");
        winch.join().unwrap();
        let bytes = reader
            .recv_timeout(Duration::from_secs(30))
            .expect("the terminal to be read to its end");
        let ev = check_lines(&bytes, true, &format!("{mode:?} pty"));
        assert!(!ev.is_empty(), "{mode:?}: no event came through");
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            text.lines()
                .any(|l| !l.trim().is_empty() && !l.starts_with('{')),
            "{mode:?}: no diagnostic came through"
        );
    }
}

#[test]
fn events_to_a_slowly_read_socket_arrive_as_whole_lines() {
    for mode in MODES {
        let (ours, theirs) = socketpair();
        // As small as the kernel allows: a batch of lines then takes more
        // than one buffer of the socket, and a send can stop midway.
        set_sndbuf(&theirs, 1);
        let s = shim(["--events", "fd:3", "--", kid(), "orphans", "1000"])
            .mode(mode)
            .fd(theirs, 3)
            .spawn();
        let reader = slow_reader(ours, 512, Duration::from_millis(2));
        let done = s.wait_timeout(Duration::from_secs(30));
        assert_eq!(done.code(), 0, "{mode:?}: {}", done.stderr_text());
        let bytes = reader
            .recv_timeout(Duration::from_secs(30))
            .expect("the socket to be read to its end");
        let ev = check_lines(&bytes, true, &format!("{mode:?} socket"));
        assert!(!ev.is_empty(), "{mode:?}: no event came through");
    }
}

#[test]
fn an_events_file_moved_or_deleted_after_the_start_is_opened_again_at_its_path() {
    for mode in MODES {
        for moved in [true, false] {
            let dir = tmpdir("rotate");
            let path = dir.join("events.jsonl");
            let rotated = dir.join("events.jsonl.1");
            // The main child first makes an orphan (a double fork).
            let mut app = kid_args(&["fork", "--daemon"]);
            app.extend(kid_args(&["exit", "0"]));
            app.push(":::".into());
            app.extend(kid_args(&["trap", "-n", "main", "-x", "TERM"]));
            let s = shim(args(&["--events", path.to_str().unwrap()], app))
                .mode(mode)
                .spawn();
            s.ready("main");
            // The orphan's line, in the first file.
            wait_until(T, "the orphan's event", || {
                (!exits(&file_events(&path)).is_empty()).then_some(())
            });
            if moved {
                fs::rename(&path, &rotated).unwrap();
            } else {
                fs::remove_file(&path).unwrap();
            }
            s.signal(SIGTERM);
            let done = s.wait();
            assert_eq!(done.code(), 0, "{mode:?}: {}", done.stderr_text());
            let ev = file_events(&path);
            assert!(
                !ev.is_empty(),
                "{mode:?} moved={moved}: nothing at the path after rotation"
            );
            assert_eq!(main_exit(&ev)["outcome"], "stopped");
            assert_eq!(shim_exit(&ev)["reaped"], 2, "{ev:#?}");
            if moved {
                let old = file_events(&rotated);
                assert!(
                    old.iter().all(|e| e["role"] == "orphan"),
                    "later events went to the moved file: {old:#?}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Stopped processes get SIGCONT after the stop signal
// ---------------------------------------------------------------------------

fn stop_and_wait(pid: i32) {
    assert!(kill(pid, 19 /* SIGSTOP */));
    wait_until(T, "the process to stop", || {
        (state(pid) == Some('T')).then_some(())
    });
}

#[test]
fn a_stopped_app_gets_sigcont_after_the_forwarded_sigterm_and_ends_at_once() {
    for mode in MODES {
        // SIGTERM has its default action here.
        let app = kid_args(&["-T", "40", "trap", "-n", "main", "USR1"]);
        let s = shim(args(&["--grace", "30s"], app)).mode(mode).spawn();
        let (_, main) = ready_pid(&s, "main");
        stop_and_wait(main);
        let t0 = Instant::now();
        s.signal(SIGTERM);
        let done = s.wait_timeout(Duration::from_secs(10));
        let took = t0.elapsed();
        assert!(took < SOON, "{mode:?}: {took:?}, with a 30 s grace");
        assert_eq!(done.code(), 128 + SIGTERM, "{mode:?}");
        let ev = done.events();
        check_events(&ev, 128 + SIGTERM);
        let m = main_exit(&ev);
        assert_eq!(m["signal"], "SIGTERM", "{m}");
        assert_eq!(m["outcome"], "stopped", "{m}");
        assert_eq!(m["stop_reason"], "signal:SIGTERM", "{m}");
    }
}

#[test]
fn a_stopped_leftover_gets_sigcont_after_its_sigterm_and_ends_at_once() {
    for mode in MODES {
        for setsid in [false, true] {
            let left = kid_args(&["-T", "40", "trap", "-n", "left", "USR1"]);
            let s = shim(args(
                &["--grace", "30s"],
                fork_then(setsid, left, main_until_usr1()),
            ))
            .mode(mode)
            .spawn();
            let (left_inner, left) = ready_pid(&s, "left");
            let (_, main) = ready_pid(&s, "main");
            stop_and_wait(left);
            let (done, took) = end_main(s, main, Duration::from_secs(10));
            assert!(
                took < SOON,
                "{mode:?} setsid={setsid}: {took:?}, with a 30 s grace"
            );
            assert_eq!(done.code(), 0, "{mode:?}");
            let ev = done.events();
            check_events(&ev, 0);
            let e = exit_of(&ev, left_inner);
            assert_eq!(e["signal"], "SIGTERM", "{e}");
            assert_eq!(e["outcome"], "stopped", "{e}");
            assert_eq!(e["stop_reason"], "main-exited", "{e}");
        }
    }
}

// ---------------------------------------------------------------------------
// Spawning, the same in every build
// ---------------------------------------------------------------------------

fn executable(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

fn assert_cannot_execute(done: &Done, names: &str) {
    let err = spawn_failed_error(done, 126);
    assert!(err.contains(names), "the error names {names}: {err}");
}

#[test]
fn a_script_whose_interpreter_is_missing_exits_126_naming_the_interpreter() {
    let dir = tmpdir("no-interp");
    let script = dir.join("needs-interp");
    let interp = "/nonexistent/trust-test/interp";
    executable(&script, &format!("#!{interp}\nexit 0\n"));
    for mode in MODES {
        let done = shim([std::ffi::OsStr::new("--"), script.as_os_str()])
            .mode(mode)
            .run();
        assert_cannot_execute(&done, interp);
    }
}

#[test]
fn an_elf_whose_loader_is_missing_exits_126_naming_the_loader() {
    let elf = elf_with_missing_loader();
    for mode in MODES {
        let done = shim(["--", elf, "true"]).mode(mode).run();
        assert_cannot_execute(&done, NO_SUCH_LOADER);
    }
}

#[test]
fn an_executable_script_without_a_shebang_runs_with_bin_sh_and_its_code_propagates() {
    let dir = tmpdir("no-shebang");
    let script = dir.join("plain-script");
    executable(&script, "printf 'args:%s\\n' \"$*\"\nexit 7\n");
    let path = format!("{}:/usr/bin:/bin", dir.display());
    for mode in MODES {
        for by_path in [false, true] {
            let command = if by_path {
                "plain-script".to_owned()
            } else {
                script.to_str().unwrap().to_owned()
            };
            let done = shim(["--", &command, "a", "b"])
                .mode(mode)
                .env("PATH", &path)
                .run();
            assert_eq!(
                done.code(),
                7,
                "{mode:?} by_path={by_path}: {}",
                done.stderr_text()
            );
            assert!(
                done.stdout.iter().any(|l| l == "args:a b"),
                "{:?}",
                done.stdout
            );
            let ev = done.events();
            check_events(&ev, 7);
            assert_eq!(main_exit(&ev)["outcome"], "failed");
        }
    }
}

// ---------------------------------------------------------------------------
// Errors that repeat are reported once
// ---------------------------------------------------------------------------

fn is_eperm_warning(line: &str) -> bool {
    let l = line.to_lowercase();
    !line.starts_with('{') && (l.contains("not permitted") || l.contains("eperm"))
}

#[test]
fn a_leftover_the_shim_may_not_signal_is_warned_about_once_not_at_every_resweep() {
    // The shim runs as uid 65534 and may change uids (ambient CAP_SETUID,
    // passed to the app); the leftover becomes uid 4242 and ignores SIGTERM,
    // so every signal the shim sends it fails with EPERM until the test
    // kills it. The shim sweeps again every second after the deadline.
    let drop_to_nobody = [
        "setpriv",
        "--reuid",
        "65534",
        "--regid",
        "65534",
        "--clear-groups",
        "--inh-caps",
        "+setuid,+setgid",
        "--ambient-caps",
        "+setuid,+setgid",
    ];
    let mut left: Vec<String> = [
        "setpriv",
        "--reuid",
        "4242",
        "--regid",
        "4242",
        "--clear-groups",
    ]
    .map(String::from)
    .to_vec();
    left.extend(kid_args(&["-T", "30", "ignore", "-n", "left", "TERM"]));
    let s = shim(args(
        &["--grace", "1s"],
        fork_then(false, left, main_until_usr1()),
    ))
    .prefix(drop_to_nobody)
    .spawn();
    let (_, left) = ready_pid(&s, "left");
    let guard = Guard(vec![pidfd(left)]);
    assert_eq!(
        status_field(left, "Uid").unwrap().split_whitespace().next(),
        Some("4242")
    );
    let (_, main) = ready_pid(&s, "main");
    let t0 = Instant::now();
    assert!(kill(main, SIGUSR1));
    let count = || {
        s.err
            .snapshot()
            .iter()
            .filter(|l| is_eperm_warning(l))
            .count()
    };
    // After the deadline's SIGKILL (1 s), and after two more sweeps. Only
    // time can show that something does not happen again.
    let at = |secs: f64| {
        let until = t0 + Duration::from_secs_f64(secs);
        std::thread::sleep(until.saturating_duration_since(Instant::now()));
    };
    at(1.6);
    let first = count();
    at(3.8);
    let later = count();
    assert!(
        (1..=2).contains(&first),
        "the failed kill is reported: {:?}",
        s.err.snapshot()
    );
    assert_eq!(
        later,
        first,
        "warned again at the re-sweeps: {:?}",
        s.err.snapshot()
    );
    assert!(guard.0[0].signal(SIGKILL));
    let done = s.wait();
    assert_eq!(done.code(), 0, "{}", done.stderr_text());
    check_events(&done.events(), 0);
}
