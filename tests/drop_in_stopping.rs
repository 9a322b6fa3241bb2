//! The tini and dumb-init modes stop as their peers do: no grace period
//! unless one is given (the stop request is forwarded and the runtime's own
//! timeout decides), and leftovers after the main child get SIGKILL at most
//! a second after their SIGTERM.
mod common;
use common::*;
use std::time::{Duration, Instant};

const PEERS: [&str; 2] = ["tini", "dumb-init"];

#[test]
fn an_app_that_drains_longer_than_the_shims_own_grace_finishes_under_a_drop_in_name() {
    let _heavy = heavy_lock();
    for name in PEERS {
        // Drains for 9 s after SIGTERM: past the shim's own 8 s default.
        let mut args = vec!["--".to_owned()];
        args.extend(kid_args(&[
            "trap", "-n", "main", "-x", "TERM", "-D", "9000", "TERM",
        ]));
        let s = shim(args).invoked_as(name).spawn();
        s.ready("main");
        let t0 = Instant::now();
        s.signal(SIGTERM);
        let done = s.wait_timeout(Duration::from_secs(30));
        let secs = t0.elapsed().as_secs_f64();
        assert_eq!(done.code(), 0, "{name}: {}", done.stderr_text());
        let ev = done.events();
        check_events(&ev, 0);
        assert_eq!(main_exit(&ev)["outcome"], "stopped", "{name}");
        assert!(
            secs >= 8.5,
            "{name}: not cut short at the shim's grace: {secs}"
        );
    }
}

#[test]
fn leftovers_after_the_main_child_are_killed_a_second_after_their_sigterm() {
    for name in PEERS {
        // The main child exits at once; its child ignores SIGTERM.
        let mut args = vec!["--".to_owned()];
        args.extend(kid_args(&["fork"]));
        args.extend(kid_args(&["ignore", "-n", "left", "TERM", "USR1"]));
        args.push(":::".into());
        args.extend(kid_args(&["trap", "-n", "main", "-x", "USR1", "USR1"]));
        // tini signals its child alone unless -g; the leftover is stopped
        // as a leftover either way.
        let s = shim(args).invoked_as(name).spawn();
        s.ready("left");
        s.ready("main");
        let t0 = Instant::now();
        s.signal(SIGUSR1);
        let done = s.wait_timeout(Duration::from_secs(20));
        let secs = t0.elapsed().as_secs_f64();
        assert_eq!(done.code(), 0, "{name}: {}", done.stderr_text());
        let ev = done.events();
        check_events(&ev, 0);
        let left = orphan_exits(&ev);
        assert_eq!(left.len(), 1, "{name}: {ev:#?}");
        assert_eq!(left[0]["outcome"], "killed", "{name}");
        assert!(
            secs < 4.0,
            "{name}: leftovers killed about 1 s later: {secs}"
        );
    }
}

#[test]
fn a_grace_given_to_a_drop_in_mode_applies_to_stops_and_leftovers() {
    for name in PEERS {
        let mut args = vec!["--".to_owned()];
        args.extend(kid_args(&["ignore", "-n", "main", "TERM"]));
        let s = shim(args)
            .invoked_as(name)
            .env("SHIM_GRACE", "500ms")
            .spawn();
        s.ready("main");
        s.signal(SIGTERM);
        let done = s.wait_timeout(Duration::from_secs(20));
        assert_eq!(done.code(), 128 + SIGKILL, "{name}: {}", done.stderr_text());
        let ev = done.events();
        assert_eq!(main_exit(&ev)["outcome"], "killed", "{name}");
    }
}
