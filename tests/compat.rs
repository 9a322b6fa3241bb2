//! Drop-in modes: invoked as `tini` or `dumb-init` (a symlink or a copy),
//! the shim takes that tool's flags and defaults; its own options and the
//! exit events keep working.
mod common;
use common::*;
use std::path::Path;

/// Sends USR1, then TERM, and returns what (main, grandchild) recorded.
fn usr1_then_term(cmd: ShimCmd, m: &Path, g: &Path) -> (Done, Vec<i32>, Vec<i32>) {
    let s = cmd.spawn();
    s.ready("main");
    s.ready("gc");
    s.signal(SIGUSR1);
    wait_sig(m, SIGUSR1);
    s.signal(SIGTERM);
    let done = s.wait();
    (done, sigs_in(m), sigs_in(g))
}

#[test]
fn as_tini_signals_go_to_the_child_alone_unless_g_or_tini_kill_process_group() {
    for mode in MODES {
        let dir = tmpdir("tini-single");
        let (m, g) = (dir.join("main"), dir.join("gc"));
        let cmd = shim(family(&[], &m, &g)).invoked_as("tini").mode(mode);
        let (done, main, gc) = usr1_then_term(cmd, &m, &g);
        assert_eq!(done.code(), 0, "{}", done.stderr_text());
        assert_eq!(main, [SIGUSR1, SIGTERM], "{mode:?}");
        // Only the leftover SIGTERM after main exited reached the grandchild.
        assert_eq!(gc, [SIGTERM], "{mode:?}");

        for (opts, env) in [(&["-g"][..], None), (&[], Some("1"))] {
            let dir = tmpdir("tini-group");
            let (m, g) = (dir.join("main"), dir.join("gc"));
            let mut cmd = shim(family(opts, &m, &g)).invoked_as("tini").mode(mode);
            if let Some(v) = env {
                cmd = cmd.env("TINI_KILL_PROCESS_GROUP", v);
            }
            let (done, main, gc) = usr1_then_term(cmd, &m, &g);
            assert_eq!(done.code(), 0, "{}", done.stderr_text());
            assert_eq!(main, [SIGUSR1, SIGTERM], "{mode:?} {opts:?}");
            assert_eq!(gc, [SIGUSR1, SIGTERM], "{mode:?} {opts:?}");
        }
    }
}

#[test]
fn as_tini_e_remaps_an_exit_code_and_events_still_report_it() {
    let mut args = vec!["-e".to_owned(), "3".into(), "--".into()];
    args.extend(kid_args(&["exit", "3"]));
    let done = shim(args).invoked_as("tini").run();
    assert_eq!(done.code(), 0, "{}", done.stderr_text());
    let ev = done.events();
    check_events(&ev, 0);
    assert_eq!(main_exit(&ev)["code"], 3);
    assert_eq!(main_exit(&ev)["outcome"], "failed");
}

#[test]
fn as_tini_w_warns_for_every_orphan_reaped() {
    let mut args = vec!["-w".to_owned(), "--".into()];
    args.extend(kid_args(&["orphans", "3", "-b", "3"]));
    let done = shim(args).invoked_as("tini").run();
    assert_eq!(done.code(), 0, "{}", done.stderr_text());
    let warnings = done
        .diagnostics()
        .into_iter()
        .filter(|l| l.contains("Reaped zombie process with pid="))
        .count();
    assert_eq!(warnings, 3, "{}", done.stderr_text());
}

#[test]
fn as_tini_l_and_version_print_and_exit_0_and_the_shims_long_options_still_work() {
    let done = shim(["-l"]).invoked_as("tini").run();
    assert_eq!(done.code(), 0);
    assert!(
        done.stdout.join("\n").contains("license"),
        "{:?}",
        done.stdout
    );
    let done = shim(["--version"]).invoked_as("tini").run();
    assert_eq!(done.code(), 0);
    assert!(
        done.stdout[0].starts_with("tini version"),
        "{:?}",
        done.stdout
    );

    let mut args = vec![
        "--grace".to_owned(),
        "300ms".into(),
        "-s".into(),
        "--".into(),
    ];
    args.extend(kid_args(&["ignore", "-n", "main", "TERM"]));
    let s = shim(args).invoked_as("tini").spawn();
    s.ready("main");
    s.signal(SIGTERM);
    let done = s.wait();
    assert_eq!(done.code(), 137, "{}", done.stderr_text());
    assert_eq!(main_exit(&done.events())["outcome"], "killed");
}

#[test]
fn as_dumb_init_signals_go_to_the_group_unless_c_or_dumb_init_setsid_0() {
    for mode in MODES {
        let dir = tmpdir("dumb-group");
        let (m, g) = (dir.join("main"), dir.join("gc"));
        let cmd = shim(family(&[], &m, &g)).invoked_as("dumb-init").mode(mode);
        let (done, main, gc) = usr1_then_term(cmd, &m, &g);
        assert_eq!(done.code(), 0, "{}", done.stderr_text());
        assert_eq!(main, [SIGUSR1, SIGTERM], "{mode:?}");
        assert_eq!(gc, [SIGUSR1, SIGTERM], "{mode:?}");

        for (opts, env) in [
            (&["-c"][..], None),
            (&["--single-child"], None),
            (&[], Some("0")),
        ] {
            let dir = tmpdir("dumb-single");
            let (m, g) = (dir.join("main"), dir.join("gc"));
            let mut cmd = shim(family(opts, &m, &g))
                .invoked_as("dumb-init")
                .mode(mode);
            if let Some(v) = env {
                cmd = cmd.env("DUMB_INIT_SETSID", v);
            }
            let (done, main, gc) = usr1_then_term(cmd, &m, &g);
            assert_eq!(done.code(), 0, "{}", done.stderr_text());
            assert_eq!(main, [SIGUSR1, SIGTERM], "{mode:?} {opts:?}");
            assert_eq!(gc, [SIGTERM], "{mode:?} {opts:?}");
        }
    }
}

#[test]
fn as_dumb_init_rewrite_takes_numbers_and_names() {
    for rule in ["10:12", "USR1:SIGUSR2"] {
        let dir = tmpdir("dumb-rewrite");
        let (m, g) = (dir.join("main"), dir.join("gc"));
        let s = shim(family(&["-r", rule], &m, &g))
            .invoked_as("dumb-init")
            .spawn();
        s.ready("main");
        s.signal(SIGUSR1);
        wait_sig(&m, SIGUSR2);
        s.signal(SIGTERM);
        let done = s.wait();
        assert_eq!(done.code(), 0, "{}", done.stderr_text());
        assert_eq!(sigs_in(&m), [SIGUSR2, SIGTERM], "{rule}");
    }
}

#[test]
fn as_dumb_init_verbose_and_dumb_init_debug_turn_diagnostics_on() {
    let mut quiet = vec!["--".to_owned()];
    quiet.extend(kid_args(&["exit", "0"]));
    let done = shim(quiet.clone()).invoked_as("dumb-init").run();
    assert!(done.diagnostics().is_empty(), "{}", done.stderr_text());

    let mut verbose = vec!["-v".to_owned()];
    verbose.extend(quiet.clone());
    for cmd in [
        shim(verbose).invoked_as("dumb-init"),
        shim(quiet)
            .invoked_as("dumb-init")
            .env("DUMB_INIT_DEBUG", "1"),
    ] {
        let done = cmd.run();
        assert_eq!(done.code(), 0);
        assert!(
            done.diagnostics().iter().any(|l| l.contains("started")),
            "{}",
            done.stderr_text()
        );
        check_events(&done.events(), 0);
    }
}

#[test]
fn in_every_mode_a_usage_error_exits_2_and_names_the_problem() {
    for name in ["shim", "tini", "dumb-init"] {
        let done = shim(["--no-such-option", "true"]).invoked_as(name).run();
        assert_eq!(done.code(), 2, "{name}");
        assert!(
            done.stderr[0].contains("--no-such-option"),
            "{name}: {:?}",
            done.stderr
        );
        assert!(done.events().is_empty());
    }
    // A tini flag means nothing to dumb-init, and the other way round.
    assert_eq!(shim(["-w", "true"]).invoked_as("dumb-init").run().code(), 2);
    assert_eq!(shim(["-c", "true"]).invoked_as("tini").run().code(), 2);
}
