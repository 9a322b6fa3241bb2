//! Exit events: each outcome, the schema, every destination, the
//! termination log, and destinations that cannot take a line.
mod common;
use common::*;
use serde_json::Value;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

fn args(opts: &[&str], kid: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
    v.push("--".into());
    v.extend(kid_args(kid));
    v
}

// ---- outcomes -------------------------------------------------------------------

#[test]
fn outcome_exited_for_code_zero_without_a_stop() {
    for mode in MODES {
        let done = shim(args(&[], &["exit", "0"])).mode(mode).run();
        let ev = done.events();
        check_events(&ev, 0);
        let m = main_exit(&ev);
        assert_eq!(m["outcome"], "exited", "{m}");
        assert_eq!(m["intentional"], false);
        assert_eq!(m["code"], 0);
        assert_eq!(m["comm"], "kid");
        assert_eq!(m["role"], "main");
        assert_eq!(m["stop_reason"], Value::Null);
        assert!(m["runtime_ms"].as_u64().unwrap() < 10_000);
        assert_eq!(exits(&ev).len(), 1);
    }
}

#[test]
fn outcome_failed_for_a_nonzero_code_without_a_stop() {
    let done = shim(args(&[], &["exit", "3"])).run();
    assert_eq!(done.code(), 3);
    let ev = done.events();
    check_events(&ev, 3);
    let m = main_exit(&ev);
    assert_eq!(m["outcome"], "failed", "{m}");
    assert_eq!(m["intentional"], false);
    assert_eq!(m["code"], 3);
    assert_eq!(m["signal"], Value::Null);
    assert_eq!(m["stop_reason"], Value::Null);
}

#[test]
fn outcome_crashed_for_a_signal_the_shim_did_not_send_with_core_dumped_false_under_ulimit_c_0() {
    for mode in MODES {
        let dir = tmpdir("crash");
        let done = shim(args(&[], &["-C", "0", "kill-self", "SEGV"]))
            .mode(mode)
            .cwd(&dir)
            .run();
        assert_eq!(done.code(), 139);
        let ev = done.events();
        check_events(&ev, 139);
        let m = main_exit(&ev);
        assert_eq!(m["outcome"], "crashed", "{m}");
        assert_eq!(m["intentional"], false);
        assert_eq!(m["code"], Value::Null);
        assert_eq!(m["signal"], "SIGSEGV");
        assert_eq!(m["signo"], 11);
        assert_eq!(m["core_dumped"], false);
        assert_eq!(m["stop_reason"], Value::Null);
    }
}

#[test]
fn outcome_crashed_with_core_dumped_true_when_a_core_is_written() {
    // core_pattern is assumed to be a plain file name (here: `core`), so
    // the core lands in the child's cwd, a temp dir of our own.
    let pattern = fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
    if pattern.starts_with('|') {
        eprintln!("core_pattern pipes to {pattern:?}: skipping");
        return;
    }
    let dir = tmpdir("core");
    let done = shim(args(&[], &["-C", "unlimited", "kill-self", "ABRT"]))
        .cwd(&dir)
        .run();
    assert_eq!(done.code(), 128 + SIGABRT);
    let ev = done.events();
    check_events(&ev, 134);
    let m = main_exit(&ev);
    assert_eq!(m["outcome"], "crashed", "{m}");
    assert_eq!(m["signal"], "SIGABRT");
    assert_eq!(m["core_dumped"], true, "{m}");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn outcome_crashed_for_a_sigkill_the_shim_did_not_send() {
    let done = shim(args(&[], &["kill-self", "KILL"])).run();
    assert_eq!(done.code(), 137);
    let m = main_exit(&done.events()).clone();
    assert_eq!(m["outcome"], "crashed", "like the OOM killer's: {m}");
    assert_eq!(m["signal"], "SIGKILL");
}

#[test]
fn outcome_stopped_when_a_forwarded_sigterm_ends_the_child() {
    for mode in MODES {
        let s = shim(args(&[], &["ignore", "-n", "main"]))
            .mode(mode)
            .spawn();
        s.ready("main");
        s.signal(SIGTERM);
        let done = s.wait();
        assert_eq!(done.code(), 143);
        let ev = done.events();
        check_events(&ev, 143);
        let m = main_exit(&ev);
        assert_eq!(m["outcome"], "stopped", "{m}");
        assert_eq!(m["intentional"], true);
        assert_eq!(m["signal"], "SIGTERM");
        assert_eq!(m["signo"], 15);
        assert_eq!(m["core_dumped"], false);
        assert_eq!(m["stop_reason"], "signal:SIGTERM");
    }
}

#[test]
fn outcome_stopped_when_a_forwarded_sighup_the_app_does_not_handle_ends_it() {
    let s = shim(args(&[], &["ignore", "-n", "main"])).spawn();
    s.ready("main");
    s.signal(SIGHUP);
    let done = s.wait();
    assert_eq!(done.code(), 129);
    let m = main_exit(&done.events()).clone();
    assert_eq!(m["outcome"], "stopped", "{m}");
    assert_eq!(m["stop_reason"], "signal:SIGHUP", "{m}");
}

#[test]
fn outcome_stopped_when_the_child_exits_with_any_code_during_a_stop() {
    let s = shim(args(&[], &["trap", "-n", "main", "-x", "TERM", "-e", "5"])).spawn();
    s.ready("main");
    s.signal(SIGTERM);
    let done = s.wait();
    assert_eq!(done.code(), 5);
    let ev = done.events();
    check_events(&ev, 5);
    let m = main_exit(&ev);
    assert_eq!(m["outcome"], "stopped", "{m}");
    assert_eq!(m["intentional"], true);
    assert_eq!(m["code"], 5);
    assert_eq!(m["stop_reason"], "signal:SIGTERM");
}

// killed: see stopping.rs (a child ignoring SIGTERM, --grace 1s).

// ---- --success-exit -------------------------------------------------------------

#[test]
fn success_exit_143_maps_a_sigterm_death_to_zero_while_the_event_says_sigterm() {
    let s = shim(args(&["-e", "143"], &["ignore", "-n", "main"])).spawn();
    s.ready("main");
    s.signal(SIGTERM);
    let done = s.wait();
    assert_eq!(done.code(), 0);
    let ev = done.events();
    check_events(&ev, 0);
    let m = main_exit(&ev);
    assert_eq!(
        m["signal"], "SIGTERM",
        "the event keeps the real status: {m}"
    );
    assert_eq!(m["code"], Value::Null);
}

#[test]
fn success_exit_is_repeatable_and_reads_a_comma_list_from_the_environment() {
    let code = |opts: &[&str], env: Option<&str>, exit: &str| {
        let mut c = shim(args(opts, &["exit", exit]));
        if let Some(v) = env {
            c = c.env("SHIM_SUCCESS_EXIT", v);
        }
        c.run().code()
    };
    assert_eq!(code(&["-e", "3", "--success-exit", "4"], None, "4"), 0);
    assert_eq!(code(&["-e", "3", "--success-exit", "4"], None, "3"), 0);
    assert_eq!(code(&["-e", "3", "--success-exit", "4"], None, "5"), 5);
    assert_eq!(code(&[], Some("3,4"), "4"), 0);
    assert_eq!(code(&[], Some("3,4"), "5"), 5);
    // The option wins over the variable.
    assert_eq!(code(&["-e", "4"], Some("3"), "3"), 3);
    assert_eq!(code(&["-e", "4"], Some("3"), "4"), 0);
}

/// A process's name is whatever bytes its program file was called (the
/// first 15): quotes, backslashes, a line break and bytes that are not UTF-8
/// still make one whole JSON line, the name escaped, a bad byte as U+FFFD.
#[test]
fn an_odd_process_name_is_escaped_in_its_single_event_line() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tmpdir("odd-comm");
    let name = std::ffi::OsStr::from_bytes(b"q\"b\\s\xffn\nx");
    let prog = dir.join(name);
    fs::copy(kid(), &prog).unwrap();
    let mut argv = vec![std::ffi::OsString::from("--"), prog.into_os_string()];
    argv.extend(["exit", "0"].map(std::ffi::OsString::from));
    let done = shim(argv).run();
    let ev = done.events();
    check_events(&ev, 0);
    assert_eq!(main_exit(&ev)["comm"], "q\"b\\s\u{fffd}n\nx");
}

// ---- destinations -----------------------------------------------------------------

#[test]
fn events_go_to_stderr_by_default() {
    let done = shim(args(&[], &["exit", "0"])).run();
    check_events(&done.events(), 0);
    assert!(parse_events(&done.stdout).is_empty());
}

#[test]
fn events_stdout_puts_them_on_stdout_only() {
    let done = shim(args(&["--events", "stdout"], &["exit", "4"])).run();
    assert_eq!(done.code(), 4);
    check_events(&parse_events(&done.stdout), 4);
    assert!(
        done.events().is_empty(),
        "none on stderr: {:?}",
        done.stderr
    );

    let done = shim(args(&[], &["exit", "4"]))
        .env("SHIM_EVENTS", "stdout")
        .run();
    check_events(&parse_events(&done.stdout), 4);
    assert!(done.events().is_empty());

    // The option wins over SHIM_EVENTS.
    let done = shim(args(&["--events", "stderr"], &["exit", "4"]))
        .env("SHIM_EVENTS", "stdout")
        .run();
    check_events(&done.events(), 4);
    assert!(parse_events(&done.stdout).is_empty());
}

#[test]
fn events_fd_n_writes_to_that_descriptor() {
    for mode in MODES {
        let (r, w) = pipe();
        let lines = Lines::read_from(r);
        let done = shim(args(&["--events", "fd:9"], &["exit", "6"]))
            .mode(mode)
            .fd(w, 9)
            .run();
        assert_eq!(done.code(), 6, "{}", done.stderr_text());
        assert!(lines.wait_eof(T));
        check_events(&parse_events(&lines.snapshot()), 6);
        assert!(done.events().is_empty());
        assert!(parse_events(&done.stdout).is_empty());
    }
}

#[test]
fn events_to_a_file_path_are_appended_and_the_file_is_created_0644() {
    let dir = tmpdir("evfile");
    let path = dir.join("events.jsonl");
    let p = path.to_str().unwrap();
    let done = shim(args(&["--events", p], &["exit", "1"]))
        .umask(0o022)
        .run();
    assert_eq!(done.code(), 1);
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o644
    );
    check_events(&file_events(&path), 1);
    assert!(done.events().is_empty());

    let done = shim(args(&[], &["exit", "2"])).env("SHIM_EVENTS", p).run();
    assert_eq!(done.code(), 2);
    let all = file_events(&path);
    let ends: Vec<_> = all.iter().filter(|e| e["event"] == "shim_exit").collect();
    assert_eq!(ends.len(), 2, "appended, not overwritten: {all:#?}");
    assert_eq!(ends[0]["code"], 1);
    assert_eq!(ends[1]["code"], 2);
}

#[test]
fn events_off_writes_no_event_anywhere() {
    for cmd in [
        shim(args(&["--events", "off"], &["exit", "3"])),
        shim(args(&[], &["exit", "3"])).env("SHIM_EVENTS", "off"),
    ] {
        let done = cmd.run();
        assert_eq!(done.code(), 3);
        assert!(done.events().is_empty(), "{:?}", done.stderr);
        assert!(parse_events(&done.stdout).is_empty(), "{:?}", done.stdout);
    }
}

/// A pipe whose reader is kept open but never read, filled to the brim.
fn full_pipe() -> (fs::File, fs::File) {
    let (r, mut w) = pipe();
    set_nonblocking(&w);
    let chunk = [b'x'; 4096];
    loop {
        match w.write(&chunk) {
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
    }
    // Blocking again: the shim gets a descriptor a write would block on.
    set_blocking(&w);
    (r, w)
}

#[test]
fn a_full_events_pipe_nobody_reads_does_not_stall_the_shim() {
    // Events on fd 5, a full pipe; 200 orphans make sure there are lines.
    let (_r, w) = full_pipe();
    let t0 = Instant::now();
    let done = shim(args(&["--events", "fd:5"], &["orphans", "200", "-b", "50"]))
        .fd(w, 5)
        .run();
    assert_eq!(done.code(), 0, "{}", done.stderr_text());
    assert!(t0.elapsed() < Duration::from_secs(10));

    // Events and diagnostics on stderr, itself a full pipe; the child's
    // own exit code still comes out.
    let (_r, w) = full_pipe();
    let done = shim(args(&["-vvv"], &["exit", "9"])).stderr(w).run();
    assert_eq!(done.code(), 9);
}

#[test]
fn a_closed_events_pipe_does_not_change_the_exit_code() {
    let (r, w) = pipe();
    drop(r);
    let done = shim(args(&["--events", "fd:5"], &["orphans", "20", "-b", "20"]))
        .fd(w, 5)
        .run();
    assert_eq!(done.code(), 0, "{}", done.stderr_text());
    let (r, w) = pipe();
    drop(r);
    let done = shim(args(&[], &["exit", "7"])).stderr(w).run();
    assert_eq!(done.code(), 7);
}

#[test]
fn an_events_file_that_cannot_be_opened_at_start_is_a_usage_error() {
    let done = shim(args(
        &["--events", "/nonexistent-dir-for-shim-tests/events.jsonl"],
        &["exit", "5"],
    ))
    .run();
    assert_eq!(done.code(), 2, "{}", done.stderr_text());
    let err = done.stderr_text();
    let first = err.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("shim: error:") && first.contains("/nonexistent-dir-for-shim-tests"),
        "{err}"
    );
    assert!(
        !err.contains("\"event\""),
        "nothing spawned, no event: {err}"
    );
}

// ---- the termination log ----------------------------------------------------------

fn read_json_object(path: &std::path::Path) -> Value {
    let text = fs::read_to_string(path).unwrap();
    let mut de = serde_json::Deserializer::from_str(&text).into_iter::<Value>();
    let v = de.next().expect("a JSON object").expect("valid JSON");
    assert!(de.next().is_none(), "exactly one JSON object: {text:?}");
    assert!(v.is_object());
    v
}

#[test]
fn termination_log_holds_exactly_the_main_childs_exit_event_overwritten() {
    for mode in MODES {
        let dir = tmpdir("tlog");
        let path = dir.join("termination-log");
        fs::write(&path, "old content that must go\n{\"x\":1}\n").unwrap();
        let done = shim(args(
            &["--termination-log", path.to_str().unwrap()],
            &["exit", "3"],
        ))
        .mode(mode)
        .run();
        assert_eq!(done.code(), 3);
        let logged = read_json_object(&path);
        let ev = done.events();
        assert_eq!(&logged, main_exit(&ev), "{mode:?}");
        check_exit_event(&logged);
    }
}

#[test]
fn termination_log_is_written_even_with_events_off_and_from_the_environment() {
    let dir = tmpdir("tlog-off");
    let path = dir.join("log");
    let done = shim(args(&["--events", "off"], &["kill-self", "USR2"]))
        .env("SHIM_TERMINATION_LOG", &path)
        .run();
    assert_eq!(done.code(), 128 + SIGUSR2);
    let logged = read_json_object(&path);
    check_exit_event(&logged);
    assert_eq!(logged["event"], "exit");
    assert_eq!(logged["role"], "main");
    assert_eq!(logged["signal"], "SIGUSR2");

    // The option wins over the variable.
    let other = dir.join("other");
    let done = shim(args(
        &["--termination-log", other.to_str().unwrap()],
        &["exit", "0"],
    ))
    .env("SHIM_TERMINATION_LOG", &path)
    .run();
    assert_eq!(done.code(), 0);
    assert_eq!(read_json_object(&other)["code"], 0);
    assert_eq!(read_json_object(&path)["signal"], "SIGUSR2", "untouched");
}

#[test]
fn termination_log_holds_the_spawn_failed_event_when_the_spawn_fails() {
    let dir = tmpdir("tlog-spawn");
    let path = dir.join("log");
    let done = shim([
        "--termination-log",
        path.to_str().unwrap(),
        "--",
        "/nonexistent/program",
    ])
    .run();
    assert_eq!(done.code(), 127);
    let logged = read_json_object(&path);
    assert_eq!(logged["event"], "spawn_failed");
    assert_eq!(logged["code"], 127);
}

#[test]
fn an_unwritable_termination_log_is_only_a_warning() {
    let bad = "/nonexistent-dir-for-shim-tests/log";
    let done = shim(args(&["--termination-log", bad], &["exit", "3"])).run();
    assert_eq!(done.code(), 3, "{}", done.stderr_text());
    check_events(&done.events(), 3);
    assert!(!done.diagnostics().is_empty(), "a warning on stderr");

    // -q: errors only, and SHIM_LOG=off: nothing; the code is the same.
    for cmd in [
        shim(args(&["-q", "--termination-log", bad], &["exit", "3"])),
        shim(args(&["--termination-log", bad], &["exit", "3"])).env("SHIM_LOG", "off"),
    ] {
        let done = cmd.run();
        assert_eq!(done.code(), 3);
        assert!(done.diagnostics().is_empty(), "{:?}", done.diagnostics());
        check_events(&done.events(), 3);
    }
}

// ---- schema and diagnostics -----------------------------------------------------

#[test]
fn every_event_line_is_whole_json_and_diagnostics_never_mix_in_even_at_trace() {
    for opts in [&["-vvv"][..], &["-vv"], &["-v"]] {
        let done = shim(args(opts, &["orphans", "100", "-b", "25"])).run();
        assert_eq!(done.code(), 0);
        // parse_events fails on any line that starts like JSON but is not.
        let ev = done.events();
        check_events(&ev, 0);
        assert_eq!(orphan_exits(&ev).len(), 100);
        for l in &done.stderr {
            if l.contains("\"event\"") {
                assert!(l.starts_with('{') && l.ends_with('}'), "mixed line: {l:?}");
            }
        }
    }
    let done = shim(args(&[], &["orphans", "100"]))
        .env("SHIM_LOG", "trace")
        .run();
    check_events(&done.events(), 0);
}

#[test]
fn shim_exit_is_the_last_line_and_reaped_counts_the_exit_lines() {
    let done = shim(args(&[], &["orphans", "7", "-b", "7"])).run();
    let ev = done.events();
    check_events(&ev, 0);
    assert_eq!(shim_exit(&ev)["reaped"], 8);
    assert_eq!(ev.len(), 9);
}
