//! Options and their environment variables: `--grace` forms, the default
//! grace, SHIM_GRACE, and the option winning over the variable. (The other
//! variables are tested beside their options: SHIM_REWRITE and
//! SHIM_SINGLE_CHILD in signals.rs, SHIM_EVENTS, SHIM_TERMINATION_LOG,
//! SHIM_SUCCESS_EXIT and SHIM_LOG in events.rs, SHIM_NO_SUBREAPER in
//! reaping.rs, SHIM_PARENT_DEATH in parent_death.rs.)
mod common;
use common::*;
use std::time::{Duration, Instant};

/// How long after SIGTERM a child that ignores it is SIGKILLed.
fn time_to_kill(opts: &[&str], env: Option<&str>) -> Duration {
    let mut args: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
    args.push("--".into());
    args.extend(kid_args(&["ignore", "-n", "main", "TERM"]));
    let mut cmd = shim(args);
    if let Some(v) = env {
        cmd = cmd.env("SHIM_GRACE", v);
    }
    let s = cmd.spawn();
    s.ready("main");
    let t0 = Instant::now();
    s.signal(SIGTERM);
    let done = s.wait_timeout(Duration::from_secs(30));
    let took = t0.elapsed();
    assert_eq!(done.code(), 137, "{}", done.stderr_text());
    assert_eq!(main_exit(&done.events())["outcome"], "killed");
    took
}

fn assert_between(d: Duration, lo_ms: u64, hi_ms: u64) {
    assert!(
        d >= Duration::from_millis(lo_ms) && d < Duration::from_millis(hi_ms),
        "{d:?} not in [{lo_ms} ms, {hi_ms} ms)"
    );
}

#[test]
fn grace_takes_milliseconds() {
    assert_between(time_to_kill(&["--grace", "500ms"], None), 450, 3000);
}

#[test]
fn grace_takes_bare_seconds_and_the_short_option() {
    assert_between(time_to_kill(&["-g", "1"], None), 950, 4000);
}

#[test]
fn grace_takes_minutes() {
    // Accepted (not a usage error); no need to wait two minutes.
    let mut args = vec!["--grace".to_owned(), "2m".into(), "--".into()];
    args.extend(kid_args(&["exit", "0"]));
    assert_eq!(shim(args).run().code(), 0);
}

#[test]
fn shim_grace_sets_the_grace() {
    assert_between(time_to_kill(&[], Some("1s")), 950, 4000);
}

#[test]
fn the_grace_option_wins_over_shim_grace() {
    assert_between(time_to_kill(&["--grace", "1s"], Some("60s")), 950, 4000);
}

#[test]
fn the_default_grace_is_8_seconds() {
    assert_between(time_to_kill(&[], None), 7900, 12_000);
}

#[test]
fn boolean_variables_take_1() {
    // SHIM_SINGLE_CHILD=1 and SHIM_NO_SUBREAPER=1 are accepted (their
    // effects are tested in signals.rs and reaping.rs).
    let mut args = vec!["--".to_owned()];
    args.extend(kid_args(&["exit", "0"]));
    let done = shim(args)
        .env("SHIM_SINGLE_CHILD", "1")
        .env("SHIM_NO_SUBREAPER", "1")
        .run();
    assert_eq!(done.code(), 0, "{}", done.stderr_text());
}
