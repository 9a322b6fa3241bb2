//! Spawning the child, the shim's exit code, and what the child starts with.
mod common;
use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;

fn with_kid(args: &[&str]) -> Vec<String> {
    let mut v = vec!["--".to_owned()];
    v.extend(kid_args(args));
    v
}

// ---- exit codes -------------------------------------------------------------

#[test]
fn exit_code_is_zero_when_the_child_exits_zero() {
    for mode in MODES {
        let done = shim(with_kid(&["exit", "0"])).mode(mode).run();
        assert_eq!(done.code(), 0, "{mode:?}: {}", done.stderr_text());
        check_events(&done.events(), 0);
    }
}

#[test]
fn exit_code_is_the_childs_exit_code() {
    for mode in MODES {
        let done = shim(with_kid(&["exit", "42"])).mode(mode).run();
        assert_eq!(done.code(), 42, "{mode:?}: {}", done.stderr_text());
        check_events(&done.events(), 42);
    }
}

#[test]
fn exit_code_is_128_plus_n_when_a_signal_kills_the_child_and_the_shim_does_not_kill_itself() {
    for mode in MODES {
        let done = shim(with_kid(&["kill-self", "USR1"])).mode(mode).run();
        // code() also asserts the shim exited rather than died of a signal.
        assert_eq!(
            done.code(),
            128 + SIGUSR1,
            "{mode:?}: {}",
            done.stderr_text()
        );
        check_events(&done.events(), 128 + SIGUSR1);

        let done = shim(with_kid(&["kill-self", "KILL"])).mode(mode).run();
        assert_eq!(done.code(), 137, "{mode:?}");
    }
}

#[test]
fn exit_code_is_127_when_the_command_is_not_found() {
    for mode in MODES {
        let done = shim(["--", "/nonexistent/no-such-program"])
            .mode(mode)
            .run();
        spawn_failed_error(&done, 127);
    }
    // Looked up on PATH, and not found there.
    let done = shim(["--", "no-such-program-for-shim-tests"]).run();
    spawn_failed_error(&done, 127);
    // ENOTDIR: a path through a regular file.
    let done = shim(["--", "/etc/passwd/x"]).run();
    spawn_failed_error(&done, 127);
}

#[test]
fn exit_code_is_126_when_the_command_exists_but_cannot_be_executed() {
    let dir = tmpdir("noexec");
    let file = dir.join("not-executable");
    fs::write(&file, "#!/bin/sh\nexit 0\n").unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    for mode in MODES {
        let done = shim([std::ffi::OsStr::new("--"), file.as_os_str()])
            .mode(mode)
            .run();
        spawn_failed_error(&done, 126);
    }
    // A directory is not executable either.
    let done = shim([std::ffi::OsStr::new("--"), dir.as_os_str()]).run();
    spawn_failed_error(&done, 126);
}

#[test]
fn double_dash_install_runs_a_program_named_install_not_the_subcommand() {
    // `shim -- install` runs a program called install (coreutils' here).
    let done = shim(["--", "install", "--version"]).run();
    assert_eq!(done.code(), 0, "{}", done.stderr_text());
    assert!(
        done.stdout.iter().any(|l| l.contains("install")),
        "{:?}",
        done.stdout
    );
}

// ---- usage errors -----------------------------------------------------------

fn assert_usage_error(done: &Done, mentions: &[&str]) {
    assert_eq!(
        done.code(),
        2,
        "usage error exits 2; stderr: {}",
        done.stderr_text()
    );
    let first = done
        .stderr
        .first()
        .cloned()
        .unwrap_or_default()
        .to_lowercase();
    assert!(
        mentions.iter().any(|m| first.contains(&m.to_lowercase())),
        "first stderr line should name the problem (one of {mentions:?}): {first:?}"
    );
    assert!(
        parse_events(&done.stderr).is_empty() && parse_events(&done.stdout).is_empty(),
        "a usage error writes no event"
    );
}

#[test]
fn usage_error_exits_2_when_command_is_missing() {
    assert_usage_error(&shim(Vec::<String>::new()).run(), &["command", "usage"]);
    assert_usage_error(&shim(["--grace", "1s"]).run(), &["command", "usage"]);
    assert_usage_error(&shim(["--"]).run(), &["command", "usage"]);
}

#[test]
fn usage_error_exits_2_on_a_bad_grace() {
    let done = shim(["--grace", "x", "--", "true"]).run();
    assert_usage_error(&done, &["grace", "'x'", "\"x\"", "duration"]);
    let done = shim(["--grace", "10parsecs", "--", "true"]).run();
    assert_usage_error(&done, &["grace", "10parsecs", "duration"]);
}

#[test]
fn usage_error_exits_2_on_a_bad_rewrite() {
    for bad in [
        "FOO:BAR",
        "TERM",
        "TERM:",
        "TERM:SIGNOPE",
        "999:TERM",
        "KILL:TERM",
    ] {
        let done = shim(["--rewrite", bad, "--", "true"]).run();
        if bad == "KILL:TERM" {
            // SIGKILL can never be received, so rewriting it is either an
            // error or harmless; only a usage error may exit 2.
            assert!(
                done.code() == 2 || done.code() == 0,
                "{bad}: {}",
                done.stderr_text()
            );
            continue;
        }
        assert_usage_error(&done, &["rewrite", bad, "signal"]);
    }
}

#[test]
fn usage_error_exits_2_when_events_fd_is_not_open() {
    let done = shim(["--events", "fd:57", "--", "true"]).run();
    assert_usage_error(&done, &["events", "57", "fd"]);
}

#[test]
fn usage_error_exits_2_on_an_unknown_option() {
    let done = shim(["--no-such-option", "--", "true"]).run();
    assert_usage_error(&done, &["no-such-option", "unexpected", "unknown"]);
}

#[test]
fn usage_error_exits_2_on_a_bad_environment_variable() {
    let done = shim(["--", "true"]).env("SHIM_GRACE", "soon").run();
    assert_usage_error(&done, &["SHIM_GRACE", "grace", "soon"]);
    let done = shim(["--", "true"]).env("SHIM_REWRITE", "FOO:BAR").run();
    assert_usage_error(&done, &["SHIM_REWRITE", "rewrite", "FOO"]);
    let done = shim(["--", "true"]).env("SHIM_SUCCESS_EXIT", "x").run();
    assert_usage_error(&done, &["SHIM_SUCCESS_EXIT", "success", "x"]);
}

#[test]
fn help_and_version_exit_zero() {
    let done = shim(["--help"]).run();
    assert_eq!(done.code(), 0);
    assert!(done.stdout.join("\n").to_lowercase().contains("usage"));
    let done = shim(["--version"]).run();
    assert_eq!(done.code(), 0);
    assert!(done.stdout.join("\n").contains(env!("CARGO_PKG_VERSION")));
}

// ---- what the child starts with ---------------------------------------------

fn report(cmd: ShimCmd) -> (Done, Vec<String>) {
    let done = cmd.run();
    assert_eq!(done.code(), 0, "{}", done.stderr_text());
    let lines = done.stdout.clone();
    (done, lines)
}

#[test]
fn child_runs_in_its_own_new_process_group() {
    for mode in MODES {
        let (done, r) = report(shim(with_kid(&["report"])).mode(mode));
        let pid = report_value(&r, "pid");
        assert_eq!(
            report_value(&r, "pgid"),
            pid,
            "{mode:?}: child leads a new group"
        );
        assert_eq!(main_exit(&done.events())["pid"].to_string(), pid);
        if mode == Mode::Pid1 {
            assert_eq!(report_value(&r, "ppid"), "1", "the shim is PID 1");
        }
    }
}

#[test]
fn child_signal_mask_is_empty() {
    for mode in MODES {
        let (_, r) = report(shim(with_kid(&["report"])).mode(mode));
        assert_eq!(
            u64::from_str_radix(&report_value(&r, "sigblk"), 16).unwrap(),
            0
        );
    }
}

fn bit(sig: i32) -> u64 {
    1 << (sig - 1)
}

#[test]
fn child_ignores_nothing_when_the_shims_parent_ignored_nothing() {
    for mode in MODES {
        let (_, r) = report(shim(with_kid(&["report"])).mode(mode));
        let ign = u64::from_str_radix(&report_value(&r, "sigign"), 16).unwrap();
        assert_eq!(
            ign, 0,
            "{mode:?}: SigIgn {ign:#x}; SIGPIPE is default in the child"
        );
        let cgt = u64::from_str_radix(&report_value(&r, "sigcgt"), 16).unwrap();
        assert_eq!(
            cgt, 0,
            "{mode:?}: no handler survives exec anyway: {cgt:#x}"
        );
    }
}

#[test]
fn nohup_style_ignored_sighup_stays_ignored_and_sigpipe_does_not() {
    // Like `nohup shim -- app`: the shim's parent ignores SIGHUP.
    for mode in MODES {
        let (_, r) = report(shim(with_kid(&["report"])).mode(mode).nohup());
        let ign = u64::from_str_radix(&report_value(&r, "sigign"), 16).unwrap();
        assert_eq!(
            ign & bit(SIGHUP),
            bit(SIGHUP),
            "{mode:?}: SIGHUP stays ignored: {ign:#x}"
        );
        assert_eq!(
            ign & bit(SIGPIPE),
            0,
            "{mode:?}: SIGPIPE is default in the child: {ign:#x}"
        );
        assert_eq!(
            ign,
            bit(SIGHUP),
            "{mode:?}: exactly the parent's ignores: {ign:#x}"
        );
    }
}

#[test]
fn child_gets_no_descriptor_the_shim_opened_or_uses() {
    let dir = tmpdir("fds");
    let log = dir.join("events.log");
    let tlog = dir.join("termination.log");
    let (r, w) = pipe();
    let _reader = Lines::read_from(r);
    let mut args = vec![
        "--events".to_owned(),
        "fd:7".into(),
        "--termination-log".into(),
        tlog.to_str().unwrap().into(),
    ];
    args.extend(with_kid(&["report"]));
    let (_, rep) = report(shim(args).fd(w, 7));
    assert_eq!(
        report_value(&rep, "fds"),
        "0,1,2",
        "events fd 7 must not leak"
    );

    let mut args = vec!["--events".to_owned(), log.to_str().unwrap().into()];
    args.extend(with_kid(&["report"]));
    let (_, rep) = report(shim(args));
    assert_eq!(
        report_value(&rep, "fds"),
        "0,1,2",
        "events file must not leak"
    );

    let (_, rep) = report(shim(with_kid(&["report"])).pid1());
    assert_eq!(report_value(&rep, "fds"), "0,1,2", "as PID 1 too");
}

#[test]
fn child_runs_in_the_shims_working_directory() {
    let dir = tmpdir("cwd");
    for mode in MODES {
        let (_, r) = report(shim(with_kid(&["report"])).mode(mode).cwd(&dir));
        assert_eq!(
            report_value(&r, "cwd"),
            fs::canonicalize(&dir).unwrap().to_str().unwrap()
        );
    }
}

#[test]
fn the_shim_itself_moves_to_the_root_directory_and_relative_paths_still_work() {
    // So it never holds the directory (or its mount) busy; the app keeps the
    // directory it was given, and relative --events and --termination-log
    // paths still land there.
    let dir = tmpdir("cwd-root");
    let mut args = ["--events", "./ev.log", "--termination-log", "tl.json", "--"]
        .map(String::from)
        .to_vec();
    args.extend(kid_args(&["trap", "-n", "main", "-x", "TERM", "TERM"]));
    let s = shim(args).cwd(&dir).spawn();
    s.ready("main");
    // The shim moves once the app has started: wait for it, bounded.
    wait_until(T, "the shim to move to /", || {
        let cwd = fs::read_link(format!("/proc/{}/cwd", s.pid())).ok()?;
        (cwd == std::path::Path::new("/")).then_some(())
    });
    s.signal(SIGTERM);
    let done = s.wait();
    assert_eq!(done.code(), 0, "{}", done.stderr_text());
    let ev = file_events(&dir.join("ev.log"));
    check_events(&ev, 0);
    let tl = fs::read_to_string(dir.join("tl.json")).unwrap();
    assert!(tl.contains("\"role\":\"main\""), "{tl}");
}

#[test]
fn child_gets_the_shims_environment_unchanged() {
    let done = shim(with_kid(&[
        "getenv",
        "FOO",
        "SHIM_GRACE",
        "SHIM_LOG",
        "PATH",
    ]))
    .env("FOO", "bar baz")
    .env("SHIM_GRACE", "3s")
    .env("SHIM_LOG", "error")
    .run();
    assert_eq!(done.code(), 0, "{}", done.stderr_text());
    assert!(
        done.stdout.contains(&"FOO=bar baz".to_owned()),
        "{:?}",
        done.stdout
    );
    assert!(
        done.stdout.contains(&"SHIM_GRACE=3s".to_owned()),
        "{:?}",
        done.stdout
    );
    assert!(
        done.stdout.contains(&"SHIM_LOG=error".to_owned()),
        "{:?}",
        done.stdout
    );
    let path = std::env::var("PATH").unwrap();
    assert!(
        done.stdout.contains(&format!("PATH={path}")),
        "{:?}",
        done.stdout
    );
}
