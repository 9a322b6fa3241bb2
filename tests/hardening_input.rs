//! Hostile input: property tests of every parser through the
//! binary (options and environment variables: random values give exit 2
//! with a first stderr line naming the option or variable, or a normal
//! run; never a panic), odd bytes in the app's arguments and environment
//! (passed untouched), and `shim install` onto hostile destinations.
//!
//! `SHIM_PROPTEST_CASES` (default 48, full 256) cases per property.
mod common;
use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// Command-line arguments and environment variables for one run.
type ArgsEnv = (Vec<OsString>, Vec<(&'static str, OsString)>);

fn cases() -> u32 {
    size_from_env("SHIM_PROPTEST_CASES", 48) as u32
}

/// Runs the shim with `args` and `env` (every SHIM_* variable cleared
/// first), in `cwd`, the app being `kid exit 0`; returns (status, stderr).
fn run_shim(
    args: &[OsString],
    env: &[(&str, OsString)],
    cwd: &Path,
) -> (std::process::ExitStatus, String) {
    let mut cmd = Command::new(shim_bin());
    for v in SHIM_VARS {
        cmd.env_remove(v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .args(args)
        .arg("--")
        .arg(kid())
        .args(["exit", "0"])
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The property every parser must hold: a clean run (0) or a usage error
/// (2) whose first stderr line names `what` and, for a printable value, the
/// value itself; never a signal, never a panic.
fn check_outcome(
    status: std::process::ExitStatus,
    stderr: &str,
    what: &str,
    value: &[u8],
) -> Result<(), TestCaseError> {
    prop_assert!(
        !stderr.contains("panicked"),
        "panic for {what}={value:?}:\n{stderr}"
    );
    prop_assert!(
        status.signal().is_none(),
        "killed by {:?} for {what}={value:?}",
        status.signal()
    );
    let code = status.code().unwrap();
    prop_assert!(
        code == 0 || code == 2,
        "exit {code} for {what}={value:?}:\n{stderr}"
    );
    if code == 2 {
        let first = stderr.lines().next().unwrap_or_default();
        prop_assert!(
            first.contains(what),
            "first line does not name {what}: {first:?}"
        );
        if let Ok(v) = std::str::from_utf8(value) {
            if !v.is_empty() && v.chars().all(|c| !c.is_control()) {
                // A comma list names the item that is bad.
                let named = first.contains(v.trim())
                    || first.contains(v)
                    || v.split(',')
                        .any(|item| !item.trim().is_empty() && first.contains(item));
                prop_assert!(named, "first line does not name {v:?}: {first:?}");
            }
        }
    }
    if code == 2 {
        prop_assert!(!stderr.contains("{\"ts\""), "a usage error writes no event");
    }
    Ok(())
}

/// Strings that look like values of the option: pieces of valid syntax,
/// numbers at the edges of their types, unicode, control characters.
fn value_strategy(pieces: &'static [&'static str]) -> impl Strategy<Value = String> {
    let piece = proptest::sample::select(pieces).prop_map(str::to_owned);
    let number = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| n.to_string()),
        (0u32..400).prop_map(|n| format!("1e{n}")),
    ];
    let junk = "\\PC{0,12}";
    prop_oneof![
        3 => (piece.clone(), number.clone()).prop_map(|(p, n)| format!("{p}{n}")),
        2 => (number.clone(), piece.clone()).prop_map(|(n, p)| format!("{n}{p}")),
        2 => (piece.clone(), junk, piece).prop_map(|(a, j, b)| format!("{a}{j}{b}")),
        1 => number,
        1 => junk.prop_map(|s| s),
        1 => "[ -~\\t\\n]{0,20}",
    ]
}

const DURATION_PIECES: &[&str] = &[
    "",
    "ms",
    "s",
    "m",
    "h",
    "d",
    "w",
    "y",
    "us",
    "ns",
    " ",
    "1",
    "0.5",
    "-",
    "+",
    ".",
    "e",
    "inf",
    "NaN",
    "500ms",
    "10s",
    "2m",
    "1h 30m",
    "9223372036",
];
const SIGNAL_PIECES: &[&str] = &[
    "", "SIG", "sig", "TERM", "term", "KILL", "STOP", "RTMIN", "RTMAX", "RTMIN+", "RTMAX-", "+",
    "-", ":", "0", "HUP", "USR1", "CHLD", "IOT", "64", "65", "32", " ",
];
const CODE_PIECES: &[&str] = &["", "0", "255", "256", "-1", "+", ",", " ", "1,2", "x"];
const EVENTS_PIECES: &[&str] = &[
    "", "fd:", "fd:-", "fd:1", "fd:2", "stderr", "stdout", "off", "OFF", "fd:99999", "x", " ",
];
const LOG_PIECES: &[&str] = &[
    "off", "error", "warn", "info", "debug", "trace", "WARN", " ", "",
];
const BOOL_PIECES: &[&str] = &["0", "1", "false", "no", "off", "n", "f", "yes", "", " "];

fn property(
    name: &str,
    what: &'static str,
    pieces: &'static [&'static str],
    how: fn(&str) -> ArgsEnv,
) {
    let dir = tmpdir(name);
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&value_strategy(pieces), |value| {
        // Never a path outside our directory (an events file is created).
        prop_assume!(!value.contains('/') && !value.starts_with(".."));
        let (args, env) = how(&value);
        let (status, stderr) = run_shim(&args, &env, &dir);
        check_outcome(status, &stderr, what, value.as_bytes())
    });
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

fn opt(o: &'static str) -> impl Fn(&str) -> ArgsEnv {
    move |v| (vec![o.into(), v.into()], vec![])
}

#[test]
fn grace_values_on_the_command_line_and_in_the_environment_never_panic() {
    property("p-grace", "--grace", DURATION_PIECES, |v| opt("--grace")(v));
    property("p-grace-env", "SHIM_GRACE", DURATION_PIECES, |v| {
        (vec![], vec![("SHIM_GRACE", v.into())])
    });
}

#[test]
fn rewrite_rules_never_panic() {
    property("p-rw", "--rewrite", SIGNAL_PIECES, |v| opt("--rewrite")(v));
    property("p-rw-env", "SHIM_REWRITE", SIGNAL_PIECES, |v| {
        (vec![], vec![("SHIM_REWRITE", v.into())])
    });
}

#[test]
fn parent_death_signals_never_panic() {
    property("p-pd", "--parent-death", SIGNAL_PIECES, |v| {
        opt("--parent-death")(v)
    });
    property("p-pd-env", "SHIM_PARENT_DEATH", SIGNAL_PIECES, |v| {
        (vec![], vec![("SHIM_PARENT_DEATH", v.into())])
    });
}

#[test]
fn exit_code_lists_never_panic() {
    property("p-se", "--success-exit", CODE_PIECES, |v| {
        opt("--success-exit")(v)
    });
    property("p-se-env", "SHIM_SUCCESS_EXIT", CODE_PIECES, |v| {
        (vec![], vec![("SHIM_SUCCESS_EXIT", v.into())])
    });
}

#[test]
fn events_destinations_never_panic() {
    property("p-ev", "--events", EVENTS_PIECES, |v| opt("--events")(v));
    property("p-ev-env", "SHIM_EVENTS", EVENTS_PIECES, |v| {
        (vec![], vec![("SHIM_EVENTS", v.into())])
    });
}

#[test]
fn log_levels_and_boolean_variables_never_panic() {
    property("p-log", "SHIM_LOG", LOG_PIECES, |v| {
        (vec![], vec![("SHIM_LOG", v.into())])
    });
    for var in ["SHIM_SINGLE_CHILD", "SHIM_NO_SUBREAPER"] {
        let dir = tmpdir("p-bool");
        let mut runner = TestRunner::new(Config {
            cases: cases(),
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&value_strategy(BOOL_PIECES), |v| {
                let (status, stderr) = run_shim(&[], &[(var, v.clone().into())], &dir);
                check_outcome(status, &stderr, var, v.as_bytes())?;
                prop_assert_eq!(
                    status.code(),
                    Some(0),
                    "a boolean is never an error: {:?}",
                    v
                );
                Ok(())
            })
            .unwrap();
    }
}

#[test]
fn non_utf8_option_values_and_variables_are_usage_errors_naming_them() {
    let dir = tmpdir("p-nonutf8");
    let bad = OsString::from_vec(vec![b'1', 0xff, b's']);
    for o in ["--grace", "--rewrite", "--parent-death", "--success-exit"] {
        let (st, err) = run_shim(&[o.into(), bad.clone()], &[], &dir);
        assert_eq!(st.code(), Some(2), "{o}: {err}");
        assert!(err.lines().next().unwrap().contains(o), "{err}");
    }
    for v in [
        "SHIM_GRACE",
        "SHIM_REWRITE",
        "SHIM_PARENT_DEATH",
        "SHIM_SUCCESS_EXIT",
        "SHIM_LOG",
        "SHIM_SINGLE_CHILD",
        "SHIM_NO_SUBREAPER",
    ] {
        let (st, err) = run_shim(&[], &[(v, bad.clone())], &dir);
        assert_eq!(st.code(), Some(2), "{v}: {err}");
        assert!(err.lines().next().unwrap().contains(v), "{err}");
    }
    // A non-UTF-8 events path is a valid file name (a path says so with a
    // '/'; without one it is a mistyped keyword, refused).
    let (st, err) = run_shim(&["--events".into(), bad.clone()], &[], &dir);
    assert_eq!(st.code(), Some(2), "{err}");
    let mut path = std::ffi::OsString::from("./");
    path.push(&bad);
    let (st, err) = run_shim(&["--events".into(), path], &[], &dir);
    assert_eq!(st.code(), Some(0), "{err}");
    assert!(
        dir.join(Path::new(std::ffi::OsStr::from_bytes(&[b'1', 0xff, b's'])))
            .exists()
    );
}

#[test]
fn a_huge_grace_period_is_rejected_or_capped_never_a_panic_at_stop_time() {
    let dir = tmpdir("p-huge-grace");
    for grace in ["1e19", "500000000000y", "18446744073709551615"] {
        // Either a usage error up front...
        let (st, err) = run_shim(&["--grace".into(), grace.into()], &[], &dir);
        assert!(!err.contains("panicked"), "{grace}: {err}");
        if st.code() == Some(2) {
            continue;
        }
        // ...or accepted, and then a stop request must not overflow the clock.
        let s = shim([
            "--grace",
            grace,
            "--",
            kid(),
            "trap",
            "-n",
            "main",
            "-x",
            "TERM",
        ])
        .spawn();
        s.ready("main");
        s.signal(SIGTERM);
        let done = s.wait();
        assert!(
            !done.stderr_text().contains("panicked"),
            "{grace}: {}",
            done.stderr_text()
        );
        assert_eq!(done.status.code(), Some(0), "{grace}: {:?}", done.status);
    }
}

#[test]
fn realtime_offsets_that_overflow_are_usage_errors_never_a_panic() {
    let dir = tmpdir("p-rt-overflow");
    for v in [
        "RTMIN+2147483647:HUP",
        "HUP:RTMAX--2147483648",
        "RTMAX-2147483647:0",
    ] {
        let (st, err) = run_shim(&["--rewrite".into(), v.into()], &[], &dir);
        assert!(!err.contains("panicked"), "{v}: {err}");
        assert_eq!(st.code(), Some(2), "{v}: {err}");
    }
}

#[test]
fn odd_arguments_and_environment_reach_the_app_byte_for_byte() {
    let long = vec![b'a'; 100_000];
    let mut args: Vec<Vec<u8>> = vec![
        vec![],
        vec![0xff, 0xfe, b'x'],
        "ünïcödé ✓".as_bytes().to_vec(),
        b" spaces  and\ttabs\nnewline".to_vec(),
        b"--grace".to_vec(),
        b"--".to_vec(),
        b"-e".to_vec(),
        long.clone(),
    ];
    // Many arguments as well: the shim passes the whole vector on.
    args.extend((0..2000).map(|i| format!("arg{i}").into_bytes()));
    let env: Vec<(&str, Vec<u8>)> = vec![
        ("HARD_EMPTY", vec![]),
        ("HARD_BYTES", vec![0xc3, 0x28, 0xff]),
        ("HARD_LONG", long.clone()),
        ("HARD_EQ", b"a=b=c".to_vec()),
    ];
    for mode in MODES {
        let mut cmd = shim(
            ["--".into(), kid().into(), "hexargs".into()]
                .into_iter()
                .chain(args.iter().map(|a| OsString::from_vec(a.clone())))
                .collect::<Vec<OsString>>(),
        )
        .mode(mode);
        for (k, v) in &env {
            cmd = cmd.env(k, OsString::from_vec(v.clone()));
        }
        let done = cmd.run();
        assert_eq!(done.code(), 0, "{}", done.stderr_text());
        assert_eq!(done.stdout[0], format!("argc={}", args.len()));
        for (i, a) in args.iter().enumerate() {
            assert_eq!(
                done.stdout[i + 1],
                format!("arg {i} len={} fnv={}", a.len(), fnv1a(a)),
                "{mode:?}: argument {i}"
            );
        }
        let mut cmd = shim(
            ["--", kid(), "hexenv"]
                .into_iter()
                .map(String::from)
                .chain(env.iter().map(|(k, _)| k.to_string())),
        )
        .mode(mode);
        for (k, v) in &env {
            cmd = cmd.env(k, OsString::from_vec(v.clone()));
        }
        let done = cmd.run();
        assert_eq!(done.code(), 0);
        for (i, (k, v)) in env.iter().enumerate() {
            assert_eq!(
                done.stdout[i],
                format!("env {k} len={} fnv={}", v.len(), fnv1a(v)),
                "{mode:?}"
            );
        }
    }
    figure(
        "hostile_input",
        &[
            ("case", "odd_args_env".into()),
            ("args", args.len().to_string()),
            ("longest_bytes", long.len().to_string()),
            ("byte_exact", "true".into()),
        ],
    );
}

#[test]
fn an_empty_or_missing_command_is_rejected_clearly() {
    // No COMMAND: usage error 2, no event.
    let done = shim(Vec::<String>::new()).run();
    assert_eq!(done.code(), 2);
    assert!(
        done.stderr[0].contains("missing COMMAND"),
        "{:?}",
        done.stderr
    );
    assert!(done.events().is_empty());
    // An empty COMMAND: not found, 127, a spawn_failed event.
    let done = shim(["--", ""]).run();
    assert_eq!(done.code(), 127, "{}", done.stderr_text());
    let ev = done.events();
    check_events(&ev, 127);
    assert_eq!(ev[0]["event"], "spawn_failed");
}

#[test]
fn a_value_with_a_line_break_still_gets_a_first_line_naming_the_option() {
    let dir = tmpdir("p-newline");
    for (o, v) in [
        ("--grace", "\n"),
        ("--success-exit", "1\n2"),
        // (Surrounding white space is trimmed, so the break is inside.)
        ("--parent-death", "TE\rRM"),
    ] {
        let (st, err) = run_shim(&[o.into(), v.into()], &[], &dir);
        assert_eq!(st.code(), Some(2));
        let first = err.lines().next().unwrap_or_default();
        assert!(first.contains(o), "{o} {v:?}: first line {first:?}");
    }
}

// --- shim install ---------------------------------------------------------

fn install(dest: &Path) -> Done {
    shim([OsString::from("install"), dest.as_os_str().to_owned()]).run()
}

fn shim_bytes() -> Vec<u8> {
    fs::read(shim_bin()).unwrap()
}

fn no_temp_left(dir: &Path) {
    let left: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".shim.install"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

#[test]
fn install_over_an_existing_file_replaces_it_atomically_leaving_the_old_inode_intact() {
    let dir = tmpdir("inst-existing");
    let dest = dir.join("shim");
    fs::write(&dest, b"old contents").unwrap();
    // A hard link to the old file shows whether it was written in place.
    fs::hard_link(&dest, dir.join("old-link")).unwrap();
    let old_ino = fs::metadata(&dest).unwrap().ino();
    let done = install(&dest);
    assert_eq!(done.code(), 0, "{}", done.stderr_text());
    assert_eq!(fs::read(&dest).unwrap(), shim_bytes());
    assert_ne!(
        fs::metadata(&dest).unwrap().ino(),
        old_ino,
        "a new file, renamed over"
    );
    assert_eq!(fs::read(dir.join("old-link")).unwrap(), b"old contents");
    assert_eq!(
        fs::metadata(&dest).unwrap().permissions().mode() & 0o7777,
        0o755
    );
    no_temp_left(&dir);
}

#[test]
fn install_onto_a_symlink_replaces_the_link_and_never_writes_through_it() {
    let dir = tmpdir("inst-symlink");
    let victim = dir.join("victim");
    fs::write(&victim, b"do not touch").unwrap();
    let victim_dir = dir.join("victim-dir");
    fs::create_dir(&victim_dir).unwrap();
    for (name, target) in [
        ("to-file", &victim),
        ("to-dir", &victim_dir),
        ("dangling", &dir.join("nowhere")),
    ] {
        let dest = dir.join(name);
        std::os::unix::fs::symlink(target, &dest).unwrap();
        let done = install(&dest);
        assert_eq!(done.code(), 0, "{name}: {}", done.stderr_text());
        let meta = fs::symlink_metadata(&dest).unwrap();
        assert!(
            meta.file_type().is_file(),
            "{name}: the link itself was replaced"
        );
        assert_eq!(fs::read(&dest).unwrap(), shim_bytes());
    }
    assert_eq!(fs::read(&victim).unwrap(), b"do not touch");
    assert_eq!(
        fs::read_dir(&victim_dir).unwrap().count(),
        0,
        "nothing written into the dir"
    );
    assert!(
        !dir.join("nowhere").exists(),
        "the dangling target was not created"
    );
    no_temp_left(&dir);
}

#[test]
fn install_with_a_planted_symlink_at_the_temporary_name_does_not_follow_it() {
    // The temporary name is predictable (.shim.install.PID): a symlink
    // planted there must not be written through.
    let dir = tmpdir("inst-planted");
    let victim = dir.join("victim");
    fs::write(&victim, b"do not touch").unwrap();
    let dest = dir.join("shim");
    let script = format!(
        "ln -s '{}' '{}/.shim.install.'$$ && exec '{}' install '{}'",
        victim.display(),
        dir.display(),
        shim_bin(),
        dest.display()
    );
    let st = Command::new("sh").args(["-c", &script]).status().unwrap();
    assert_eq!(st.code(), Some(0));
    assert_eq!(fs::read(&victim).unwrap(), b"do not touch");
    assert_eq!(fs::read(&dest).unwrap(), shim_bytes());
    no_temp_left(&dir);
}

/// Runs `script` (with $SHIM set) in a private mount namespace.
fn in_mount_ns(script: &str) -> std::process::Output {
    Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", script])
        .env("SHIM", shim_bin())
        .output()
        .unwrap()
}

#[test]
fn install_into_a_read_only_or_full_filesystem_fails_cleanly_and_leaves_the_old_file_whole() {
    let dir = tmpdir("inst-ro");
    let mnt = dir.join("mnt");
    fs::create_dir(&mnt).unwrap();
    let m = mnt.display();
    // Read-only: a tmpfs with an old file, remounted read-only.
    let out = in_mount_ns(&format!(
        "mount -t tmpfs tmpfs '{m}' && echo old > '{m}/shim' && mount -o remount,ro '{m}' && \
         \"$SHIM\" install '{m}/shim'; echo rc=$?; cat '{m}/shim'; ls -a '{m}'"
    ));
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("rc=1"), "{text}{err}");
    assert!(text.contains("\nold\n"), "old file intact: {text}");
    assert!(!text.contains(".shim.install"), "{text}");
    assert_eq!(err.lines().count(), 1, "one line says why: {err}");
    assert!(err.contains("Read-only file system"), "{err}");
    // Full: a tmpfs too small for the binary; the copy fails half-way.
    let out = in_mount_ns(&format!(
        "mount -t tmpfs -o size=64k tmpfs '{m}' && echo old > '{m}/shim' && \
         \"$SHIM\" install '{m}/shim'; echo rc=$?; cat '{m}/shim'; ls -a '{m}'"
    ));
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("rc=1"), "{text}{err}");
    assert!(
        text.contains("\nold\n"),
        "old file intact, no half binary: {text}"
    );
    assert!(
        !text.contains(".shim.install"),
        "the partial temp file is removed: {text}"
    );
    assert!(err.contains("No space left on device"), "{err}");
    // A read-only bind mount of a directory.
    let ro = dir.join("ro");
    fs::create_dir(&ro).unwrap();
    fs::write(ro.join("shim"), b"old\n").unwrap();
    let r = ro.display();
    let out = in_mount_ns(&format!(
        "mount --bind '{r}' '{r}' && mount -o remount,bind,ro '{r}' && \"$SHIM\" install '{r}/'; echo rc=$?"
    ));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("rc=1"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fs::read(ro.join("shim")).unwrap(), b"old\n");
    no_temp_left(&ro);
}

#[test]
fn install_into_a_missing_directory_fails_with_one_line_and_creates_nothing() {
    let dir = tmpdir("inst-missing");
    for dest in [dir.join("no/such/dir/shim"), dir.join("nodir/")] {
        let done = install(&dest);
        assert_eq!(done.code(), 1, "{}", done.stderr_text());
        assert_eq!(done.stderr.len(), 1, "{:?}", done.stderr);
        assert!(
            done.stderr[0].starts_with("shim: error: install"),
            "{:?}",
            done.stderr
        );
    }
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
}

#[test]
fn concurrent_installs_never_expose_a_partial_binary() {
    let dir = tmpdir("inst-race");
    let dest = dir.join("shim");
    fs::write(&dest, b"old").unwrap();
    let want = shim_bytes();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (dest, stop, want) = (dest.clone(), stop.clone(), want.clone());
        std::thread::spawn(move || {
            let mut reads = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let got = fs::read(&dest).unwrap();
                assert!(
                    got == b"old" || got == want,
                    "a partial file of {} bytes",
                    got.len()
                );
                reads += 1;
            }
            reads
        })
    };
    let children: Vec<_> = (0..8)
        .map(|_| {
            Command::new(shim_bin())
                .arg("install")
                .arg(&dest)
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let reads = reader.join().unwrap();
    assert_eq!(fs::read(&dest).unwrap(), want);
    no_temp_left(&dir);
    figure(
        "hostile_input",
        &[
            ("case", "concurrent_install".into()),
            ("installers", "8".into()),
            ("reads_during", reads.to_string()),
            ("partial_seen", "0".into()),
        ],
    );
}
