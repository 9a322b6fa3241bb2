//! Broken outputs: stderr closed, stdout a closed pipe, the events
//! destination a full pipe nobody reads, a file on a full filesystem, a path
//! whose directory vanishes or is missing. The app runs and exits as it
//! would without the shim, the exit code is right, and the shim never
//! blocks on an event write.
mod common;
use common::*;
use std::fs;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn no_panic(done: &Done) {
    let err = done.stderr_text();
    assert!(!err.contains("panicked"), "a panic:\n{err}");
}

/// Runs `kid ARGS` directly (no shim) under the same prefix, for the "as it
/// would without the shim" comparison: (exit code or 128+signal, stdout).
fn without_shim(prefix: &[&str], args: &[&str], stdout: Option<Stdio>) -> (i32, Vec<String>) {
    let mut cmd = std::process::Command::new(prefix.first().copied().unwrap_or(kid()));
    let mut rest: Vec<&str> = prefix.iter().skip(1).copied().collect();
    if !prefix.is_empty() {
        rest.push(kid());
    }
    rest.extend(args);
    cmd.args(&rest).stdin(Stdio::null()).stderr(Stdio::null());
    // SAFETY: the hook only makes async-signal-safe calls.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            reset_signals(false);
            close_inherited_fds();
            Ok(())
        });
    }
    cmd.stdout(stdout.unwrap_or_else(Stdio::piped));
    let out = cmd.output().unwrap();
    let code = out
        .status
        .code()
        .unwrap_or_else(|| 128 + out.status.signal().unwrap());
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    (code, lines)
}

fn stderr_closed_prefix() -> Vec<String> {
    let mut p = kid_args(&["exec-with", "-c", "2", "--"]);
    p.truncate(5);
    p
}

#[test]
fn with_stderr_closed_the_exit_code_is_the_apps_and_nothing_blocks() {
    for mode in MODES {
        let p = stderr_closed_prefix();
        for (args, want) in [(&["exit", "7"][..], 7), (&["kill-self", "SEGV"][..], 139)] {
            let done = shim(kid_args(args)).mode(mode).prefix(&p).run();
            no_panic(&done);
            assert_eq!(done.code(), want, "{mode:?} {args:?}");
        }
        // A stream of orphans whose events have nowhere to go.
        let done = shim(kid_args(&["orphans", "500"]))
            .mode(mode)
            .prefix(&p)
            .run();
        assert_eq!(done.code(), 0);
        assert!(done.stdout.iter().any(|l| l == "orphans 500 done"));
    }
}

#[test]
fn with_stderr_closed_the_app_sees_it_closed_as_without_the_shim() {
    for mode in MODES {
        let p = stderr_closed_prefix();
        let done = shim(["--", kid(), "report"]).mode(mode).prefix(&p).run();
        no_panic(&done);
        assert_eq!(done.code(), 0);
        let (code, direct) =
            without_shim(&[kid(), "exec-with", "-c", "2", "--"], &["report"], None);
        assert_eq!(code, 0);
        assert_eq!(report_value(&direct, "fds"), "0,1");
        assert_eq!(
            report_value(&done.stdout, "fds"),
            report_value(&direct, "fds"),
            "{mode:?}: stderr stays closed for the app"
        );
    }
}

#[test]
fn with_stdout_a_closed_pipe_the_app_dies_of_sigpipe_as_without_the_shim() {
    for mode in MODES {
        // The app writes to a pipe with no reader: SIGPIPE, as without the
        // shim; the shim reports 128+13 and is not killed itself.
        let (r, w) = pipe();
        drop(r);
        let (direct, _) = without_shim(&[], &["report"], Some(Stdio::from(w.try_clone().unwrap())));
        assert_eq!(direct, 128 + SIGPIPE);
        let done = shim(["--", kid(), "report"]).mode(mode).stdout(w).run();
        no_panic(&done);
        assert_eq!(done.code(), direct, "{mode:?}: {}", done.stderr_text());
        let m = main_exit(&done.events()).clone();
        assert_eq!(m["signal"], "SIGPIPE", "{m}");
        assert_eq!(m["outcome"], "crashed", "{m}");

        // Events to that closed pipe: the shim's own writes fail (EPIPE),
        // never kill it, and the exit code is the app's.
        let (r, w) = pipe();
        drop(r);
        let done = shim(["--events", "stdout", "--", kid(), "exit", "3"])
            .mode(mode)
            .stdout(w)
            .run();
        no_panic(&done);
        assert_eq!(done.code(), 3, "{mode:?}: {}", done.stderr_text());
        assert!(
            done.stderr_text().contains("dropped"),
            "says events were dropped: {}",
            done.stderr_text()
        );
    }
}

#[test]
fn a_sigpipe_the_shim_raises_on_its_own_event_write_is_not_forwarded() {
    for mode in MODES {
        let dir = tmpdir("epipe");
        let log = dir.join("main");
        let (r, w) = pipe();
        drop(r);
        // An orphan is reaped at once: its event goes to the closed pipe,
        // which raises SIGPIPE at the shim (sender: the shim itself).
        let mut args = vec!["--events".to_owned(), "fd:3".into(), "--".into()];
        args.extend(kid_args(&["fork", "--daemon"]));
        args.extend(kid_args(&["exit", "0"]));
        args.push(":::".into());
        args.extend(trap_into(
            "main",
            &log,
            &["-x", "TERM", "PIPE", "HUP", "64"],
        ));
        let s = shim(args).mode(mode).fd(w, 3).spawn();
        s.ready("main");
        let shim_pid = s.pid();
        wait_until(T, "the orphan to be reaped", || {
            let c = children(shim_pid);
            (c.len() == 1).then_some(())
        });
        s.signal(SIGRTMAX);
        wait_sig(&log, SIGRTMAX);
        s.signal(SIGTERM);
        let done = s.wait();
        no_panic(&done);
        assert_eq!(done.code(), 0);
        assert_eq!(
            sigs_in(&log),
            [SIGRTMAX, SIGTERM],
            "{mode:?}: no SIGPIPE forwarded"
        );
    }
}

/// A pipe whose buffer is full and whose reader never reads.
fn full_pipe() -> (fs::File, fs::File) {
    let (r, mut w) = pipe();
    set_nonblocking(&w);
    let chunk = [b'x'; 4096];
    while w.write(&chunk).is_ok() {}
    // One byte at a time to the last one.
    while w.write(b"x").is_ok() {}
    set_blocking(&w);
    (r, w)
}

#[test]
fn events_to_a_full_pipe_nobody_reads_never_block_the_shim() {
    for mode in MODES {
        const N: usize = 2000;
        let (_reader, w) = full_pipe();
        let mut args = vec!["--events".to_owned(), "fd:3".into(), "--".into()];
        args.extend(kid_args(&["orphans", &N.to_string()]));
        let start = Instant::now();
        let done = shim(args).mode(mode).fd(w, 3).run();
        let secs = start.elapsed().as_secs_f64();
        no_panic(&done);
        assert_eq!(done.code(), 0, "{}", done.stderr_text());
        assert!(
            done.stdout
                .iter()
                .any(|l| l == &format!("orphans {N} done"))
        );
        let warn = done
            .diagnostics()
            .into_iter()
            .find(|l| l.contains("were dropped"))
            .unwrap_or_else(|| panic!("no dropped count: {:?}", done.diagnostics()));
        assert!(
            warn.contains(&format!("{} event line", N + 2)),
            "every line dropped, none retried: {warn}"
        );
        figure(
            "broken_output",
            &[
                ("fault", "events_full_pipe".into()),
                ("mode", format!("{mode:?}").to_lowercase()),
                ("orphans", N.to_string()),
                ("dropped", (N + 2).to_string()),
                ("seconds", format!("{secs:.2}")),
                ("exit", done.code().to_string()),
            ],
        );
    }
}

#[test]
fn a_full_pipe_as_stderr_shared_with_the_app_never_blocks_the_shim() {
    for mode in MODES {
        let (_reader, w) = full_pipe();
        let done = shim(kid_args(&["orphans", "300"]))
            .mode(mode)
            .stderr(w)
            .run();
        assert_eq!(done.code(), 0, "{mode:?}");
        assert!(done.stdout.iter().any(|l| l == "orphans 300 done"));
        assert!(done.elapsed < Duration::from_secs(15), "{:?}", done.elapsed);
    }
}

/// `sh -c` script that mounts a `size`-sized tmpfs on `mnt` in a private
/// mount namespace, leaves `free` bytes or less, runs the shim, copies the
/// events file out to `out` and exits with the shim's code.
fn tmpfs_prefix(mnt: &Path, size: &str, fill: &str, out: &Path) -> Vec<String> {
    let m = mnt.display();
    vec![
        "unshare".into(),
        "-m".into(),
        "--propagation".into(),
        "private".into(),
        "sh".into(),
        "-c".into(),
        format!(
            "mount -t tmpfs -o size={size} tmpfs '{m}' || exit 90; \
             head -c {fill} /dev/zero > '{m}/fill' 2>/dev/null; \
             \"$@\"; rc=$?; cp '{m}/events.jsonl' '{}' 2>/dev/null; exit $rc",
            out.display()
        ),
        "sh".into(),
    ]
}

/// Whole lines of an events file that may end in a torn line: (parsed
/// events, bytes of an unterminated tail).
fn lines_of(path: &Path) -> (Vec<serde_json::Value>, usize) {
    let bytes = fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let (whole, tail) = match text.rfind('\n') {
        Some(i) => (&text[..=i], &text[i + 1..]),
        None => ("", &text[..]),
    };
    let lines: Vec<String> = whole.lines().map(str::to_owned).collect();
    (parse_events(&lines), tail.len())
}

#[test]
fn events_to_a_filesystem_that_fills_up_are_dropped_and_the_app_is_unaffected() {
    for mode in MODES {
        const N: usize = 2000;
        let dir = tmpdir("fullfs");
        let mnt = dir.join("mnt");
        fs::create_dir(&mnt).unwrap();
        let out = dir.join("events.jsonl");
        let mut args = vec![
            "--events".to_owned(),
            mnt.join("events.jsonl").to_str().unwrap().into(),
            "--".into(),
        ];
        args.extend(kid_args(&["orphans", &N.to_string()]));
        let done = shim(args)
            .mode(mode)
            .prefix(tmpfs_prefix(&mnt, "64k", "32k", &out))
            .run();
        no_panic(&done);
        assert_eq!(done.code(), 0, "{mode:?}: {}", done.stderr_text());
        assert!(
            done.stdout
                .iter()
                .any(|l| l == &format!("orphans {N} done"))
        );
        let (ev, torn) = lines_of(&out);
        assert!(
            !ev.is_empty() && ev.len() < N,
            "some lines fit, not all: {}",
            ev.len()
        );
        for e in exits(&ev) {
            check_exit_event(e);
        }
        // (A torn tail is the bug the ignored test below pins down.)
        let warn = done
            .diagnostics()
            .into_iter()
            .find(|l| l.contains("were dropped"))
            .unwrap_or_else(|| panic!("no dropped count: {:?}", done.diagnostics()));
        figure(
            "broken_output",
            &[
                ("fault", "events_full_tmpfs".into()),
                ("mode", format!("{mode:?}").to_lowercase()),
                ("orphans", N.to_string()),
                ("lines_written", ev.len().to_string()),
                ("torn_bytes", torn.to_string()),
                ("exit", done.code().to_string()),
                ("warning", format!("{:?}", warn.trim())),
            ],
        );
    }
}

#[test]
fn events_to_a_filesystem_that_fills_up_leave_only_whole_lines() {
    let dir = tmpdir("fullfs-torn");
    let mnt = dir.join("mnt");
    fs::create_dir(&mnt).unwrap();
    let out = dir.join("events.jsonl");
    let mut args = vec![
        "--events".to_owned(),
        mnt.join("events.jsonl").to_str().unwrap().into(),
        "--".into(),
    ];
    args.extend(kid_args(&["orphans", "2000"]));
    let done = shim(args)
        .prefix(tmpfs_prefix(&mnt, "64k", "32k", &out))
        .run();
    assert_eq!(done.code(), 0);
    let (ev, torn) = lines_of(&out);
    assert!(!ev.is_empty());
    assert_eq!(
        torn, 0,
        "a torn line of {torn} bytes at the end of the full file: the line \
         was written in part (a short write on ENOSPC) instead of dropped"
    );
}

#[test]
fn events_to_a_filesystem_full_from_the_start_cost_nothing_but_the_events() {
    let dir = tmpdir("fullfs0");
    let mnt = dir.join("mnt");
    fs::create_dir(&mnt).unwrap();
    let out = dir.join("events.jsonl");
    for code in [0, 5] {
        let args = [
            "--events".to_owned(),
            mnt.join("events.jsonl").to_str().unwrap().into(),
            "--".into(),
            kid().into(),
            "exit".into(),
            code.to_string(),
        ];
        let done = shim(args)
            .prefix(tmpfs_prefix(&mnt, "64k", "1M", &out))
            .run();
        no_panic(&done);
        assert_eq!(done.code(), code, "{}", done.stderr_text());
        let (ev, _) = lines_of(&out);
        assert!(ev.is_empty(), "nothing fits: {ev:?}");
    }
}

#[test]
fn events_to_a_path_whose_directory_vanishes_keep_going_to_the_open_file() {
    for mode in MODES {
        let dir = tmpdir("vanish");
        let sub = dir.join("sub");
        fs::create_dir(&sub).unwrap();
        let events = sub.join("events.jsonl");
        let log = dir.join("main");
        let mut args = vec![
            "--events".to_owned(),
            events.to_str().unwrap().into(),
            "--".into(),
        ];
        args.extend(trap_into("main", &log, &["-x", "TERM"]));
        let s = shim(args).mode(mode).spawn();
        s.ready("main");
        fs::remove_dir_all(&sub).unwrap();
        s.signal(SIGTERM);
        let done = s.wait();
        no_panic(&done);
        assert_eq!(done.code(), 0, "{mode:?}");
        assert!(done.diagnostics().is_empty(), "{:?}", done.diagnostics());
        assert!(!sub.exists(), "the shim did not recreate the directory");
    }
}

#[test]
fn an_events_destination_that_cannot_be_opened_at_start_is_a_usage_error_and_nothing_runs() {
    for mode in MODES {
        let dir = tmpdir("unopenable");
        let marker = dir.join("ran");
        for dest in [
            dir.join("missing").join("events.jsonl"),
            dir.to_path_buf(), // a directory
        ] {
            let mut args = vec![
                "--events".to_owned(),
                dest.to_str().unwrap().into(),
                "--".into(),
            ];
            args.extend([
                "sh".into(),
                "-c".into(),
                format!("touch {}", marker.display()),
            ]);
            let done = shim(args).mode(mode).run();
            assert_eq!(done.code(), 2, "{mode:?} {dest:?}: {}", done.stderr_text());
            let diag = done.diagnostics();
            assert!(diag.len() <= 2, "the problem and a hint: {diag:?}");
            assert!(diag[0].starts_with("shim: error:"), "{diag:?}");
            assert!(!marker.exists(), "nothing was spawned");
        }
    }
}

#[test]
fn a_reader_that_falls_behind_gets_every_event_late_rather_than_lost() {
    const N: usize = 150;
    for mode in MODES {
        // A pipe of one page, nobody reading it yet: the events of N
        // orphans (about 50 kB) must wait in the shim, not be dropped.
        let (r, w) = pipe();
        let size = set_pipe_size(&r, 4096);
        assert!(size > 0 && size < 16384, "pipe size {size}");
        let (stdin_r, stdin_w) = pipe();
        let script = format!("'{}' orphans {N} -b {N} && {{ read line; true; }}", kid());
        let s = shim(["--events", "fd:3", "--", "sh", "-c", script.as_str()])
            .mode(mode)
            .fd(w, 3)
            .stdin(stdin_r)
            .spawn();
        s.wait_stdout(&format!("orphans {N} done"));
        // Every orphan reaped: the shell is the shim's only child left.
        let shim_pid = s.pid();
        wait_until(T, "the orphans to be reaped", || {
            (children(shim_pid).len() == 1 && zombie_children(shim_pid) == 0).then_some(())
        });
        let events = Lines::read_from(r);
        drop(stdin_w);
        let done = s.wait();
        assert_eq!(done.code(), 0, "{mode:?}: {}", done.stderr_text());
        events.wait_eof(Duration::from_secs(5));
        let ev = parse_events(&events.snapshot());
        check_events(&ev, 0);
        assert_eq!(orphan_exits(&ev).len(), N, "{mode:?}: every orphan's line");
        assert!(
            !done.stderr_text().contains("dropped"),
            "{mode:?}: {}",
            done.stderr_text()
        );
    }
}
