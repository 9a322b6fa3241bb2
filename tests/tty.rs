//! Terminal: where stdin is a terminal, the child's process group becomes
//! the terminal's foreground group.
mod common;
use common::*;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// Runs `line` under `script`, which gives it a pseudo-terminal as its
/// controlling terminal and stdin; returns the lines it printed.
fn under_pty(line: &str) -> (i32, Vec<String>) {
    let mut cmd = Command::new("script");
    // SAFETY: reset_signals only makes async-signal-safe calls.
    unsafe {
        cmd.pre_exec(|| {
            reset_signals(false);
            Ok(())
        });
    }
    let mut child = cmd
        .args(["-qec", line, "/dev/null"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script(1) from util-linux is needed");
    let out = Lines::read_from(child.stdout.take().unwrap());
    let err = Lines::read_from(child.stderr.take().unwrap());
    let status = wait_until(T, "script to exit", || child.try_wait().unwrap());
    if status.code().is_none() {
        let _ = child.kill();
    }
    out.wait_eof(T);
    err.wait_eof(T);
    let mut lines = out.snapshot();
    lines.extend(err.snapshot());
    (status.code().unwrap_or(-1), lines)
}

#[test]
fn under_a_terminal_the_childs_group_becomes_the_foreground_group() {
    let (code, lines) = under_pty(&format!("{} -- {} report", shim_bin(), kid()));
    assert_eq!(code, 0, "{lines:#?}");
    let pid = report_value(&lines, "pid");
    assert_eq!(report_value(&lines, "pgid"), pid, "own group: {lines:#?}");
    assert_eq!(
        report_value(&lines, "tpgid"),
        pid,
        "foreground group: {lines:#?}"
    );
    // The child still starts with an empty mask and nothing ignored, even
    // though the shim had to handle SIGTTOU to hand over the terminal.
    assert_eq!(
        u64::from_str_radix(&report_value(&lines, "sigblk"), 16).unwrap(),
        0
    );
    assert_eq!(
        u64::from_str_radix(&report_value(&lines, "sigign"), 16).unwrap(),
        0
    );
}

#[test]
fn under_a_terminal_the_childs_group_becomes_the_foreground_group_as_pid1() {
    let (code, lines) = under_pty(&format!(
        "unshare --pid --fork --mount-proc {} -- {} report",
        shim_bin(),
        kid()
    ));
    assert_eq!(code, 0, "{lines:#?}");
    let pid = report_value(&lines, "pid");
    assert_eq!(report_value(&lines, "ppid"), "1", "{lines:#?}");
    assert_eq!(report_value(&lines, "pgid"), pid, "own group: {lines:#?}");
    assert_eq!(
        report_value(&lines, "tpgid"),
        pid,
        "foreground group: {lines:#?}"
    );
}

#[test]
fn under_a_terminal_the_exit_code_and_events_are_unchanged() {
    let (code, lines) = under_pty(&format!("{} -- {} exit 4", shim_bin(), kid()));
    assert_eq!(code, 4, "{lines:#?}");
    let ev = parse_events(&lines);
    check_events(&ev, 4);
    assert_eq!(main_exit(&ev)["outcome"], "failed");
}

#[test]
fn without_a_terminal_nothing_is_made_foreground() {
    // stdin is /dev/null here: no terminal, no tcsetpgrp, no error.
    let done = shim(["--".to_owned()].into_iter().chain(kid_args(&["report"]))).run();
    assert_eq!(done.code(), 0, "{}", done.stderr_text());
    assert!(done.diagnostics().is_empty(), "{:?}", done.diagnostics());
}
