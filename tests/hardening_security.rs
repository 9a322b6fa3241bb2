//! Security: the child gets nothing the shim holds (descriptors
//! left open on purpose before the shim starts, close-on-exec or not, give
//! the app exactly what it gets without the shim; no blocked mask, no
//! changed dispositions), and the shim never signals a process outside
//! what it started or adopted.
mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

/// `kid report` run directly under `prefix`, from the same clean start the
/// harness gives the shim (default dispositions, no leaked descriptors).
fn direct_report(prefix: &[String]) -> Vec<String> {
    let mut cmd = Command::new(&prefix[0]);
    cmd.args(&prefix[1..]).arg(kid()).arg("report");
    cmd.stdin(Stdio::null()).stderr(Stdio::null());
    // SAFETY: the hook only makes async-signal-safe calls.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            reset_signals(false);
            close_inherited_fds();
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_app_gets_exactly_the_descriptors_and_signal_state_it_would_get_without_the_shim() {
    let dir = tmpdir("sec-fds");
    let file = dir.join("held");
    std::fs::write(&file, b"x").unwrap();
    let f = file.to_str().unwrap();
    // What the launcher sets up before the shim starts: an inheritable fd,
    // a close-on-exec fd, a closed stdin, ignored signals (a nohup, an
    // ignored SIGPIPE, an ignored realtime signal). A blocked signal is
    // not passed on: the contract gives the app an empty mask.
    let setups: Vec<Vec<&str>> = vec![
        vec!["-f", &format!("7:{f}")[..], "-F", &format!("8:{f}")[..]]
            .into_iter()
            .map(|s| Box::leak(s.to_owned().into_boxed_str()) as &str)
            .collect(),
        vec!["-i", "HUP", "-i", "PIPE", "-i", "RTMIN+3"],
        vec!["-f", "9:/dev/null"],
        vec!["-i", "CHLD", "-b", "USR1", "-b", "TERM"],
    ];
    for mode in MODES {
        for setup in &setups {
            let mut prefix = kid_args(&["exec-with"]);
            prefix.extend(setup.iter().map(|s| s.to_string()));
            prefix.push("--".into());
            let direct = direct_report(&prefix);
            // Events to a file and a termination log: descriptors of the
            // shim's own that the app must not see either.
            let done = shim([
                "--events",
                dir.join("ev").to_str().unwrap(),
                "--termination-log",
                dir.join("tl").to_str().unwrap(),
                "--",
                kid(),
                "report",
            ])
            .mode(mode)
            .prefix(&prefix)
            .run();
            assert_eq!(done.code(), 0, "{setup:?}: {}", done.stderr_text());
            // SIGPIPE is always default in the app (the contract: Rust's own
            // ignore hides the parent's), so its bit is left out.
            let ign = |l: &[String]| {
                u64::from_str_radix(&report_value(l, "sigign"), 16).unwrap() & !(1 << (SIGPIPE - 1))
            };
            assert_eq!(
                ign(&done.stdout),
                ign(&direct),
                "{mode:?} {setup:?}: sigign"
            );
            for key in ["fds", "sigcgt"] {
                assert_eq!(
                    report_value(&done.stdout, key),
                    report_value(&direct, key),
                    "{mode:?} {setup:?}: {key}"
                );
            }
            assert_eq!(report_value(&done.stdout, "sigblk"), "0000000000000000");
        }
    }
    figure(
        "security",
        &[
            ("case", "inherited_state".into()),
            ("setups", setups.len().to_string()),
            ("identical_to_direct", "true".into()),
        ],
    );
}

#[test]
fn a_closed_standard_descriptor_stays_closed_for_the_app() {
    for fd in ["0", "2"] {
        let prefix: Vec<String> = kid_args(&["exec-with", "-c", fd, "--"]);
        let direct = direct_report(&prefix);
        let done = shim(["--events", "off", "--", kid(), "report"])
            .prefix(&prefix)
            .run();
        if fd != "1" {
            assert_eq!(
                report_value(&done.stdout, "fds"),
                report_value(&direct, "fds"),
                "fd {fd} closed before the shim"
            );
        }
    }
}

#[test]
fn an_events_fd_is_the_shims_alone() {
    let (r, w) = pipe();
    let done = shim(["--events", "fd:5", "--", kid(), "report"])
        .fd(w, 5)
        .run();
    drop(r);
    assert_eq!(done.code(), 0);
    assert_eq!(report_value(&done.stdout, "fds"), "0,1,2");
}

#[test]
fn unrelated_processes_are_never_signalled_through_a_whole_life_with_storms_and_a_grace_kill() {
    // Bystanders: a sibling of the shim (same session, own group), and,
    // with --no-subreaper, a daemon the app left behind that the shim did
    // not adopt. Through forwarded signals, the app's exit, the leftovers'
    // SIGTERM, the grace period's SIGKILL sweeps, none gets a signal.
    let _heavy = heavy_lock();
    let dir = tmpdir("sec-bystander");
    let sib_log = dir.join("sibling");
    let mut sibling = Command::new(kid())
        .args([
            "-T",
            "60",
            "trap",
            "-n",
            "sib",
            "-o",
            sib_log.to_str().unwrap(),
            "all",
        ])
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let sib = Lines::read_from(sibling.stdout.take().unwrap());
    sib.wait_line("ready sib");
    for (mode, extra) in [
        (Mode::Subreaper, None),
        (Mode::Subreaper, Some("--no-subreaper")),
        (Mode::Pid1, None),
    ] {
        let daemon_log = dir.join(format!("daemon-{mode:?}-{}", extra.is_some()));
        let left_log = dir.join(format!("left-{mode:?}-{}", extra.is_some()));
        let mut args: Vec<String> = vec!["--grace".into(), "1s".into()];
        args.extend(extra.map(String::from));
        args.push("--".into());
        args.extend(kid_args(&["fork", "--daemon", "--setsid"]));
        args.extend(kid_args(&[
            "-T",
            "30",
            "trap",
            "-n",
            "daemon",
            "-o",
            daemon_log.to_str().unwrap(),
            "all",
        ]));
        args.push(":::".into());
        args.extend(kid_args(&["fork"]));
        args.extend(trap_into("left", &left_log, &["all"]));
        args.push(":::".into());
        args.extend(kid_args(&[
            "trap", "-n", "main", "-x", "USR1", "HUP", "WINCH",
        ]));
        let s = shim(args).mode(mode).spawn();
        let daemon = field(&s.ready("daemon"), "pid");
        let left = field(&s.ready("left"), "pid");
        s.ready("main");
        for _ in 0..200 {
            s.signal(SIGHUP);
            s.signal(SIGWINCH);
        }
        s.signal(SIGUSR1);
        let done = s.wait_timeout(Duration::from_secs(30));
        assert_eq!(done.code(), 0, "{mode:?} {extra:?}: {}", done.stderr_text());
        assert_eq!(
            sigs_in(&sib_log),
            Vec::<i32>::new(),
            "the sibling got nothing"
        );
        if extra.is_some() {
            // Not adopted: never signalled, still running.
            assert_eq!(
                sigs_in(&daemon_log),
                Vec::<i32>::new(),
                "the unadopted daemon got nothing"
            );
            assert!(state(daemon).is_some_and(|c| c != 'Z'), "the daemon lives");
            kill(daemon, SIGKILL);
        } else {
            // Adopted: stopped with the rest (SIGTERM, then SIGKILL).
            assert!(sigs_in(&daemon_log).contains(&SIGTERM), "{mode:?}");
        }
        // In the app's group: stopped with it, adopted or not.
        assert!(sigs_in(&left_log).contains(&SIGTERM), "{mode:?} {extra:?}");
        let _ = left;
    }
    assert!(sibling.try_wait().unwrap().is_none(), "the sibling lives");
    kill(sibling.id() as i32, SIGKILL);
    let _ = sibling.wait();
    figure(
        "security",
        &[
            ("case", "bystanders".into()),
            ("signals_to_bystanders", "0".into()),
            ("modes", "subreaper,no-subreaper,pid1".into()),
        ],
    );
}

use std::os::unix::process::CommandExt;
