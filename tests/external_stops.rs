//! Stops that do not come through the shim: Ctrl-C at a terminal (whose
//! foreground group is the app's), a `kill` of the app itself. A death by
//! SIGHUP, SIGINT, SIGQUIT or SIGTERM from elsewhere is `stopped` with
//! `stop_reason` `external:SIG...`; any other signal stays `crashed`.
mod common;
use common::*;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

#[test]
fn ctrl_c_at_a_terminal_is_an_external_stop_not_a_crash() {
    // script(1) gives the shim a pseudo-terminal and copies our stdin to it:
    // a ^C there is the terminal's INTR, SIGINT to its foreground group,
    // which is the app's, not the shim's.
    let mut cmd = Command::new("script");
    // SAFETY: reset_signals only makes async-signal-safe calls.
    unsafe {
        cmd.pre_exec(|| {
            reset_signals(false);
            Ok(())
        });
    }
    let line = format!("{} -- {} pause", shim_bin(), kid());
    let mut child = cmd
        .args(["-qec", &line, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script(1) from util-linux is needed");
    let out = Lines::read_from(child.stdout.take().unwrap());
    let _err = Lines::read_from(child.stderr.take().unwrap());
    // `kid pause` prints nothing: wait until the app runs under the shim
    // and its group is the terminal's foreground (field 8 of its stat,
    // tpgid), so the ^C reaches the app and not the shim.
    wait_until(T, "the app to hold the terminal", || {
        let shim = tree(child.id() as i32)
            .into_iter()
            .find(|&p| comm(p).as_deref() == Some("shim"))?;
        let app = *children(shim).first()?;
        let f = stat_fields(app)?;
        (comm(app).as_deref() == Some("kid") && f.get(5)?.parse::<i32>().ok()? == app).then_some(())
    });
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"\x03").unwrap();
    stdin.flush().unwrap();
    let status = wait_until(T, "script to exit", || child.try_wait().unwrap());
    out.wait_eof(T);
    let lines = out.snapshot();
    // The terminal echoes ^C without a line break: pick the events out.
    let events: Vec<String> = lines
        .iter()
        .filter_map(|l| l.find("{\"ts\"").map(|i| l[i..].trim_end().to_string()))
        .collect();
    let ev = parse_events(&events);
    check_events(&ev, 128 + SIGINT);
    let main = main_exit(&ev);
    assert_eq!(main["outcome"], "stopped", "{lines:#?}");
    assert_eq!(main["intentional"], true);
    assert_eq!(main["signal"], "SIGINT");
    assert_eq!(main["stop_reason"], "external:SIGINT");
    assert_eq!(status.code(), Some(128 + SIGINT), "{lines:#?}");
}

#[test]
fn a_termination_signal_sent_to_the_app_itself_is_an_external_stop() {
    for mode in MODES {
        for (sig, name) in [
            (SIGTERM, "SIGTERM"),
            (SIGHUP, "SIGHUP"),
            (SIGQUIT, "SIGQUIT"),
        ] {
            let main = killed_from_outside(mode, sig);
            assert_eq!(main["outcome"], "stopped", "{mode:?} {name}: {main}");
            assert_eq!(main["stop_reason"], format!("external:{name}"));
        }
    }
}

#[test]
fn other_signals_from_elsewhere_stay_crashes() {
    for mode in MODES {
        for sig in [SIGSEGV, SIGABRT, SIGKILL] {
            let main = killed_from_outside(mode, sig);
            assert_eq!(main["outcome"], "crashed", "{mode:?} {sig}: {main}");
            assert!(main["stop_reason"].is_null(), "{main}");
        }
    }
}

/// Runs an app that takes only USR1 (every other signal has its default
/// action), kills it with `sig` from outside the shim, and returns its exit
/// event, the whole stream checked.
fn killed_from_outside(mode: Mode, sig: i32) -> serde_json::Value {
    let s = shim(with_kid(&["trap", "-n", "main", "-x", "USR1", "USR1"]))
        .mode(mode)
        .spawn();
    let pid = host_pid_of_main(&s);
    assert!(kill(pid, sig));
    let ev = s.wait().events();
    check_events(&ev, 128 + sig);
    main_exit(&ev).clone()
}

fn with_kid(args: &[&str]) -> Vec<String> {
    let mut v = vec!["--".to_owned()];
    v.extend(kid_args(args));
    v
}

/// The app's pid as this test sees it (in PID-1 mode the event's pid is
/// the namespace's): the shim's only child.
fn host_pid_of_main(s: &Shim) -> i32 {
    s.ready("main");
    wait_until(T, "the app as the shim's child", || {
        children(s.pid()).first().copied()
    })
}
