//! Readiness and watchdog (the contract's section of that name): real apps
//! speaking systemd's sd_notify protocol to the shim's `--notify` socket,
//! the ready file's whole life, `shim probe`, the watchdog and its kill,
//! the relay to a NOTIFY_SOCKET the test owns, idle wake-ups and bad input.
//!
//! The apps are Python 3 (`python3 -S -c APP STEP...`, the socket module is
//! all they need), driven by the steps listed at the top of `APP`. Every
//! wait, in the test and in the app, has a timeout, and waits on a
//! condition (a line, a file), never on a sleep.
mod common;
use common::*;
use serde_json::Value;
use std::fs;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The app. Each argument is one step, `OP:ARG`:
///
/// - `send:TEXT` one datagram to NOTIFY_SOCKET (`\n` in TEXT: a newline)
/// - `hex:HEX` one datagram of raw bytes
/// - `sized:N:TEXT` TEXT, then `\nX_PAD=xxx...` to exactly N bytes
/// - `fds:N:COUNT:SIZE` N datagrams of SIZE bytes, each passing COUNT
///   descriptors (SCM_RIGHTS)
/// - `barrier` sd_notify_barrier(): BARRIER=1 with a pipe's write end, then
///   wait (20 s at most) for the shim to close it
/// - `flood:N:TEXT` N datagrams (`{i}` in TEXT: the count)
/// - `forever:TEXT` datagrams without end; says `flooding` after 1000
/// - `cycle:N:FILE` N times: READY=1, wait for FILE, RELOADING=1, wait
///   until FILE is gone
/// - `ping:EVERY:TOTAL` WATCHDOG=1 every EVERY seconds for TOTAL seconds
/// - `say:TEXT` a line on stdout
/// - `env` its pid, NOTIFY_SOCKET and WATCHDOG_USEC (`-` when unset)
/// - `look:FILE` `look FILE True|False`
/// - `exists:FILE` / `gone:FILE` wait (20 s at most) for FILE to exist /
///   to be gone
/// - `sleep:SECS`, `exit:CODE`
/// - `fork STEPS... :::` the STEPS in a child (the shim's grandchild); the
///   app waits for it, then goes on after `:::`
/// - `onterm STEPS... ;;;` on SIGTERM: say `draining`, run STEPS, exit 0
///
/// A wait that times out says `timeout waiting for ...` and exits 99.
const APP: &str = r#"
import array, os, select, signal, socket, sys, time

SOCK = None

def target():
    a = os.environ["NOTIFY_SOCKET"]
    return "\0" + a[1:] if a.startswith("@") else a

def send(data, fds=()):
    global SOCK
    if SOCK is None:
        SOCK = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if isinstance(data, str):
        data = data.encode()
    if fds:
        rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
        SOCK.sendmsg([data], rights, 0, target())
    else:
        SOCK.sendto(data, target())

def sized(n, text):
    data = (text + "\nX_PAD=").encode()
    return data + b"x" * (n - len(data))

def say(text):
    sys.stdout.write(text + "\n")
    sys.stdout.flush()

def wait_for(cond, what):
    end = time.monotonic() + 20
    while not cond():
        if time.monotonic() > end:
            say("timeout waiting for " + what)
            os._exit(99)
        time.sleep(0.002)

def run(steps):
    i = 0
    while i < len(steps):
        op, _, arg = steps[i].partition(":")
        i += 1
        if op == "send":
            send(arg.replace("\\n", "\n"))
        elif op == "hex":
            send(bytes.fromhex(arg))
        elif op == "sized":
            n, _, text = arg.partition(":")
            send(sized(int(n), text))
        elif op == "fds":
            n, count, size = [int(x) for x in arg.split(":")]
            fds = [os.open("/dev/null", os.O_RDONLY) for _ in range(count)]
            for _ in range(n):
                send(sized(size, "X_FDS=1"), fds)
            for fd in fds:
                os.close(fd)
        elif op == "barrier":
            r, w = os.pipe()
            send("BARRIER=1", [w])
            os.close(w)
            p = select.poll()
            p.register(r, select.POLLIN)
            if not p.poll(20000) or os.read(r, 1) != b"":
                say("timeout waiting for the barrier")
                os._exit(99)
            os.close(r)
        elif op == "flood":
            n, _, text = arg.partition(":")
            for k in range(int(n)):
                send(text.replace("{i}", str(k)))
        elif op == "forever":
            k = 0
            while True:
                send(arg)
                k += 1
                if k == 1000:
                    say("flooding")
        elif op == "cycle":
            n, _, path = arg.partition(":")
            for _ in range(int(n)):
                send("READY=1")
                wait_for(lambda: os.path.exists(path), path)
                send("RELOADING=1")
                wait_for(lambda: not os.path.exists(path), "no " + path)
        elif op == "ping":
            every, _, total = arg.partition(":")
            end = time.monotonic() + float(total)
            while time.monotonic() < end:
                send("WATCHDOG=1")
                time.sleep(float(every))
        elif op == "say":
            say(arg)
        elif op == "env":
            say("pid=%d" % os.getpid())
            for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC"):
                say("%s=%s" % (k, os.environ.get(k, "-")))
        elif op == "look":
            say("look %s %s" % (arg, os.path.exists(arg)))
        elif op == "exists":
            wait_for(lambda: os.path.exists(arg), arg)
        elif op == "gone":
            wait_for(lambda: not os.path.exists(arg), "no " + arg)
        elif op == "sleep":
            time.sleep(float(arg))
        elif op == "exit":
            sys.stdout.flush()
            os._exit(int(arg))
        elif op == "fork":
            j = steps.index(":::", i)
            pid = os.fork()
            if pid == 0:
                run(steps[i:j])
                sys.stdout.flush()
                os._exit(0)
            os.waitpid(pid, 0)
            i = j + 1
        elif op == "onterm":
            j = steps.index(";;;", i)
            handler = steps[i:j]
            def on_term(sig, frame, handler=handler):
                say("draining")
                run(handler)
                sys.stdout.flush()
                os._exit(0)
            signal.signal(signal.SIGTERM, on_term)
            i = j + 1
        else:
            say("bad step " + steps[i - 1])
            os._exit(98)

run(sys.argv[1:])
"#;

/// `python3 -S -c APP STEPS...`
fn app(steps: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ["python3", "-S", "-c", APP].map(String::from).into();
    v.extend(steps.iter().map(|s| s.to_string()));
    v
}

/// What the shim or the app would take from the environment the tests run
/// in; removed (by an `env -u` prefix) so only what a test sets counts.
const READINESS_VARS: &[&str] = &[
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "SHIM_NOTIFY",
    "SHIM_NOTIFY_ACCESS",
    "SHIM_READY_FILE",
    "SHIM_WATCHDOG",
    "SHIM_WATCHDOG_SIGNAL",
];

/// `shim OPTS... -- app STEPS...` as `mode`, in an environment without
/// READINESS_VARS but with `env`.
fn start(mode: Mode, env: &[(&str, &str)], opts: &[&str], steps: &[&str]) -> Shim {
    let mut prefix = vec!["env".to_string()];
    for v in READINESS_VARS {
        prefix.push("-u".into());
        prefix.push(v.to_string());
    }
    prefix.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
    let mut args: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
    args.push("--".into());
    args.extend(app(steps));
    shim(args).prefix(prefix).mode(mode).spawn()
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The events of `kind`.
fn of_kind<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

/// The texts of the `status` lines, in order.
fn status_texts(events: &[Value]) -> Vec<String> {
    of_kind(events, "status")
        .iter()
        .map(|e| e["text"].as_str().unwrap().to_owned())
        .collect()
}

/// Index of the first event matching `f`.
fn index_of(events: &[Value], what: &str, f: impl Fn(&Value) -> bool) -> usize {
    events
        .iter()
        .position(f)
        .unwrap_or_else(|| panic!("no {what} in {events:#?}"))
}

/// Waits for an event line (on the shim's stderr) matching `f`.
fn wait_event(s: &Shim, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    s.err.wait_for(T, what, |lines| {
        parse_events(lines).into_iter().find(|e| f(e))
    })
}

/// The events written so far.
fn events_now(s: &Shim) -> Vec<Value> {
    parse_events(&s.err.snapshot())
}

fn is_status(e: &Value, text: &str) -> bool {
    e["event"] == "status" && e["text"] == text
}

/// The value printed by the app's `env` step for `key`.
fn env_value(s: &Shim, key: &str) -> String {
    let prefix = format!("{key}=");
    let line = s.wait_stdout(&prefix);
    line.strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{line:?}"))
        .to_owned()
}

/// Asserts the run ended with `code` and a well-formed event stream, and
/// returns the events.
fn finished(d: &Done, code: i32) -> Vec<Value> {
    assert_eq!(
        d.code(),
        code,
        "exit code\nstdout:\n{}\nstderr:\n{}",
        d.stdout.join("\n"),
        d.stderr_text()
    );
    let ev = d.events();
    check_events(&ev, code);
    for e in &ev {
        let kind = e["event"].as_str().unwrap();
        if ["ready", "reloading", "stopping", "status", "watchdog"].contains(&kind) {
            assert!(e["pid"].as_i64().is_some_and(|p| p > 0), "pid: {e}");
        }
    }
    ev
}

// ---------------------------------------------------------------------------
// Every message
// ---------------------------------------------------------------------------

#[test]
fn ready_once_then_again_only_after_reloading() {
    for mode in MODES {
        let dir = tmpdir("ready-reload");
        let f = dir.join("ready");
        let f = path_str(&f);
        let go = dir.join("go");
        let go = path_str(&go);
        let s = start(
            mode,
            &[],
            &["--ready-file", f],
            &[
                "env",
                "send:READY=1",
                &format!("exists:{f}"),
                "send:READY=1",
                "send:READY=1",
                "send:RELOADING=1",
                "send:READY=1",
                "send:STATUS=end",
                &format!("exists:{go}"),
                "exit:0",
            ],
        );
        // Held until its notifications are read: one sent just before the
        // exit is another test's subject.
        wait_event(&s, "the status line", |e| is_status(e, "end"));
        fs::write(go, "").unwrap();
        let d = s.wait();
        let ev = finished(&d, 0);
        let main = main_exit(&ev);
        assert_eq!(main["outcome"], "exited", "{mode:?}: {main}");
        let ready = of_kind(&ev, "ready");
        assert_eq!(
            ready.len(),
            2,
            "{mode:?}: one ready, one after RELOADING: {ev:#?}"
        );
        assert_eq!(of_kind(&ev, "reloading").len(), 1, "{mode:?}: {ev:#?}");
        let kinds: Vec<&str> = ev
            .iter()
            .filter_map(|e| e["event"].as_str())
            .filter(|k| ["ready", "reloading"].contains(k))
            .collect();
        assert_eq!(kinds, ["ready", "reloading", "ready"], "{mode:?}");
        for e in ready.iter().chain(of_kind(&ev, "reloading").iter()) {
            assert_eq!(
                e["pid"], main["pid"],
                "{mode:?}: the sender is the main child: {e}"
            );
        }
        let a0 = ready[0]["after_ms"].as_u64().expect("after_ms");
        let a1 = ready[1]["after_ms"].as_u64().expect("after_ms");
        assert!(
            a0 <= a1 && a1 <= main["runtime_ms"].as_u64().unwrap(),
            "{mode:?}: after_ms counts from the spawn: {ready:?} {main}"
        );
        assert!(!Path::new(f).exists(), "{mode:?}: ready file left at exit");
    }
}

#[test]
fn reloading_removes_the_ready_file_until_the_next_ready() {
    for mode in MODES {
        let dir = tmpdir("reload-file");
        let f = dir.join("ready");
        let f = path_str(&f);
        let go = dir.join("go");
        let go = path_str(&go);
        let s = start(
            mode,
            &[],
            &["--ready-file", f],
            &[
                "send:READY=1",
                &format!("exists:{f}"),
                "send:RELOADING=1",
                "send:STATUS=reloading",
                &format!("exists:{go}"),
                "send:READY=1",
                &format!("exists:{f}"),
                "exit:0",
            ],
        );
        wait_event(&s, "the ready line", |e| e["event"] == "ready");
        wait_event(&s, "the status line", |e| is_status(e, "reloading"));
        // The RELOADING came before that STATUS on the same socket.
        assert!(
            !Path::new(f).exists(),
            "{mode:?}: ready file kept after RELOADING=1"
        );
        fs::write(go, "").unwrap();
        let d = s.wait();
        let ev = finished(&d, 0);
        assert_eq!(of_kind(&ev, "ready").len(), 2, "{mode:?}: {ev:#?}");
        assert_eq!(of_kind(&ev, "reloading").len(), 1, "{mode:?}: {ev:#?}");
        assert!(!Path::new(f).exists(), "{mode:?}");
    }
}

#[test]
fn stopping_line_and_the_ready_file_gone_for_good() {
    for mode in MODES {
        let dir = tmpdir("stopping");
        let f = dir.join("ready");
        let f = path_str(&f);
        let go = dir.join("go");
        let go = path_str(&go);
        let s = start(
            mode,
            &[],
            &["--ready-file", f],
            &[
                "send:READY=1",
                &format!("exists:{f}"),
                "send:STOPPING=1",
                &format!("gone:{f}"),
                "send:READY=1",
                "send:RELOADING=1",
                "send:READY=1",
                "send:STATUS=after",
                &format!("exists:{go}"),
                "exit:0",
            ],
        );
        wait_event(&s, "the status line", |e| is_status(e, "after"));
        assert!(
            !Path::new(f).exists(),
            "{mode:?}: a READY=1 after STOPPING=1 made the ready file again"
        );
        let now = events_now(&s);
        assert_eq!(of_kind(&now, "stopping").len(), 1, "{mode:?}: {now:#?}");
        fs::write(go, "").unwrap();
        let d = s.wait();
        let ev = finished(&d, 0);
        let main = main_exit(&ev);
        let stopping = of_kind(&ev, "stopping");
        assert_eq!(stopping.len(), 1, "{mode:?}: {ev:#?}");
        assert_eq!(stopping[0]["pid"], main["pid"], "{mode:?}");
        let i_ready = index_of(&ev, "ready", |e| e["event"] == "ready");
        let i_stop = index_of(&ev, "stopping", |e| e["event"] == "stopping");
        assert!(i_ready < i_stop, "{mode:?}: {ev:#?}");
        assert!(!Path::new(f).exists(), "{mode:?}");
    }
}

#[test]
fn status_is_paced_and_the_latest_text_follows_about_a_second_later() {
    let s = start(
        Mode::Subreaper,
        &[],
        &["--notify"],
        &[
            "send:STATUS=s1",
            "send:STATUS=s2",
            "send:STATUS=s3",
            "send:STATUS=s4",
            "send:STATUS=s5",
            "say:sent",
            "sleep:5",
            "exit:0",
        ],
    );
    s.wait_stdout("sent");
    let sent = Instant::now();
    let first = wait_event(&s, "the first status line", |e| e["event"] == "status");
    let t1 = Instant::now();
    assert_eq!(first["text"], "s1", "the first text is written at once");
    assert!(
        t1 - sent < Duration::from_millis(800),
        "the first status line came {:?} after the app sent it",
        t1 - sent
    );
    // The app keeps running (5 s): the waiting text is due a second after
    // the first line, not at the exit.
    let second = s.err.wait_for(T, "a second status line", |lines| {
        of_kind(&parse_events(lines), "status")
            .get(1)
            .map(|e| (*e).clone())
    });
    let t2 = Instant::now();
    assert_eq!(second["text"], "s5", "the latest text wins");
    assert!(
        t2 - t1 < Duration::from_millis(2500),
        "the waiting status line came {:?} after the first, not about a second",
        t2 - t1
    );
    let d = s.wait();
    let ev = finished(&d, 0);
    assert_eq!(status_texts(&ev), ["s1", "s5"]);
    let st = of_kind(&ev, "status");
    let gap = ts_ms(st[1]) - ts_ms(st[0]);
    assert!(gap >= 990, "two status lines {gap} ms apart: {st:?}");
}

#[test]
fn status_waiting_at_the_exit_is_written() {
    for mode in MODES {
        let dir = tmpdir("status-exit");
        let go = dir.join("go");
        let go = path_str(&go);
        let s = start(
            mode,
            &[],
            &["--notify"],
            &[
                "send:STATUS=a1",
                "send:STATUS=a2",
                "send:STATUS=a3",
                "send:STATUS=a4",
                "send:STATUS=a5",
                &format!("exists:{go}"),
                "exit:3",
            ],
        );
        // The exit comes well within the second: a5 is still waiting.
        wait_event(&s, "the first status line", |e| is_status(e, "a1"));
        fs::write(go, "").unwrap();
        let d = s.wait();
        let ev = finished(&d, 3);
        assert_eq!(status_texts(&ev), ["a1", "a5"], "{mode:?}: {ev:#?}");
        let i = index_of(&ev, "a5", |e| is_status(e, "a5"));
        assert!(i < ev.len() - 1, "{mode:?}: before shim_exit");
    }
}

#[test]
fn status_never_more_than_one_a_second() {
    // 60 texts over 3 s: about four lines, each a second after the last
    // (the text still waiting at the exit excepted), the last text last.
    let mut steps = vec!["send:STATUS=t-start".to_owned()];
    for i in 0..60 {
        steps.push(format!("send:STATUS=t{i}"));
        steps.push("sleep:0.05".to_owned());
    }
    steps.push("exit:0".to_owned());
    let steps: Vec<&str> = steps.iter().map(String::as_str).collect();
    let s = start(Mode::Subreaper, &[], &["--notify"], &steps);
    let d = s.wait();
    let ev = finished(&d, 0);
    let st = of_kind(&ev, "status");
    let texts = status_texts(&ev);
    assert_eq!(texts[0], "t-start", "{texts:?}");
    assert_eq!(
        texts.last().unwrap(),
        "t59",
        "the latest text wins: {texts:?}"
    );
    assert!(
        (3..=6).contains(&st.len()),
        "about one status line a second over 3 s: {texts:?}"
    );
    for w in st[..st.len() - 1].windows(2) {
        let gap = ts_ms(w[1]) - ts_ms(w[0]);
        assert!(gap >= 990, "status lines {gap} ms apart: {texts:?}");
    }
}

#[test]
fn unknown_assignments_are_ignored() {
    let dir = tmpdir("unknown");
    let f = dir.join("ready");
    let f = path_str(&f);
    let s = start(
        Mode::Subreaper,
        &[],
        &["--ready-file", f, "--watchdog", "1h"],
        &[
            "send:MAINPID=1\\nFOO=bar\\nREADY=0\\nready=1\\n READY=1\\nREADY\\nERRNO=5",
            "send:BUSERROR=0x1\\nEXTEND_TIMEOUT_USEC=1\\nFDSTORE=1\\nWATCHDOG=0\\nRELOADING=0",
            "send:STOPPING=0\\nWATCHDOG=now\\nWATCHDOG_USEC=x\\nWATCHDOG_USEC=0\\nX_CUSTOM=READY=1",
            "send:STATUS=marker",
            &format!("look:{f}"),
            // Unknown assignments do not spoil a datagram's known ones.
            "send:X_CUSTOM=1\\nNOTAKEY\\nREADY=1\\nMONOTONIC_USEC=5",
            &format!("exists:{f}"),
            "exit:0",
        ],
    );
    assert_eq!(
        s.wait_stdout("look "),
        format!("look {f} False"),
        "no ready file before READY=1"
    );
    let d = s.wait();
    let ev = finished(&d, 0);
    let kinds: Vec<&str> = ev
        .iter()
        .filter_map(|e| e["event"].as_str())
        .filter(|k| !["exit", "shim_exit"].contains(k))
        .collect();
    assert_eq!(kinds, ["status", "ready"], "{ev:#?}");
    assert_eq!(status_texts(&ev), ["marker"]);
    assert_eq!(main_exit(&ev)["outcome"], "exited");
}

#[test]
fn notifications_sent_just_before_the_exit_are_not_lost() {
    // sd_notify("STOPPING=1") and exit at once is what apps do. The
    // datagrams are queued before the exit, so before the SIGCHLD: the
    // main child sent them, and they count.
    let mut lost = Vec::new();
    for mode in MODES {
        for round in 0..10 {
            let s = start(
                mode,
                &[],
                &["--notify"],
                &[
                    "send:READY=1",
                    "send:STATUS=last words",
                    "send:STOPPING=1",
                    "exit:0",
                ],
            );
            let d = s.wait();
            let ev = finished(&d, 0);
            let got = (
                of_kind(&ev, "ready").len(),
                status_texts(&ev),
                of_kind(&ev, "stopping").len(),
            );
            if got != (1, vec!["last words".to_owned()], 1) {
                lost.push(format!("{mode:?} round {round}: {got:?}"));
            }
        }
    }
    assert!(
        lost.is_empty(),
        "notifications lost in {} of 20 runs:\n{}",
        lost.len(),
        lost.join("\n")
    );
}

#[test]
fn a_barrier_before_the_exit_makes_every_notification_count() {
    // sd_notify_barrier(): the shim closes the descriptor it is passed, so
    // the app knows its datagrams have been read before it exits.
    for mode in MODES {
        for round in 0..5 {
            let s = start(
                mode,
                &[],
                &["--notify"],
                &[
                    "send:READY=1",
                    "send:STATUS=last words",
                    "send:STOPPING=1",
                    "barrier",
                    "exit:0",
                ],
            );
            let d = s.wait();
            let ev = finished(&d, 0);
            assert_eq!(of_kind(&ev, "ready").len(), 1, "{mode:?} {round}: {ev:#?}");
            assert_eq!(status_texts(&ev), ["last words"], "{mode:?} {round}");
            assert_eq!(of_kind(&ev, "stopping").len(), 1, "{mode:?} {round}");
        }
    }
}

// ---------------------------------------------------------------------------
// The watchdog
// ---------------------------------------------------------------------------

/// Milliseconds of an event's `ts` (since the start of its day is enough to
/// compare two lines of one short test, unless it runs across midnight).
fn ts_ms(e: &Value) -> i64 {
    let ts = e["ts"].as_str().unwrap();
    // 2026-11-21T22:50:01.123Z
    let t = &ts[11..ts.len() - 1];
    let mut parts = t.split(':');
    let h: i64 = parts.next().unwrap().parse().unwrap();
    let m: i64 = parts.next().unwrap().parse().unwrap();
    let sec: f64 = parts.next().unwrap().parse().unwrap();
    (h * 3600 + m * 60) * 1000 + (sec * 1000.0).round() as i64
}

/// Checks the `watchdog` line and the main child's `hung` exit.
fn check_hung(ev: &[Value], timeout_ms: u64, sig: i32) {
    let main = main_exit(ev);
    let wd = of_kind(ev, "watchdog");
    assert_eq!(wd.len(), 1, "one watchdog line: {ev:#?}");
    let wd = wd[0];
    assert_eq!(wd["pid"], main["pid"], "{wd}");
    assert_eq!(wd["timeout_ms"], timeout_ms, "{wd}");
    assert_eq!(wd["signal"], sig_name(sig), "{wd}");
    assert_eq!(main["outcome"], "hung", "{main}");
    assert_eq!(main["intentional"], false, "{main}");
    assert_eq!(main["stop_reason"], "watchdog", "{main}");
    assert_eq!(main["signo"], sig, "{main}");
    assert_eq!(main["signal"], sig_name(sig), "{main}");
    let iw = index_of(ev, "watchdog", |e| e["event"] == "watchdog");
    let ie = index_of(ev, "main exit", |e| {
        e["event"] == "exit" && e["role"] == "main"
    });
    assert!(iw < ie, "the watchdog line comes before the exit: {ev:#?}");
}

#[test]
fn watchdog_keepalives_keep_the_app_alive_past_several_periods() {
    let s = start(
        Mode::Subreaper,
        &[],
        &["--watchdog", "1s"],
        &["send:READY=1", "ping:0.1:4", "say:alive", "exit:0"],
    );
    let d = s.wait();
    let ev = finished(&d, 0);
    assert!(d.stdout.iter().any(|l| l == "alive"), "{:?}", d.stdout);
    assert!(of_kind(&ev, "watchdog").is_empty(), "{ev:#?}");
    let main = main_exit(&ev);
    assert_eq!(main["outcome"], "exited", "{main}");
    assert!(main["runtime_ms"].as_u64().unwrap() >= 4000, "{main}");
}

#[test]
fn watchdog_trigger_runs_it_out_at_once() {
    for mode in MODES {
        let s = start(
            mode,
            &[],
            &["--watchdog", "1h"],
            &[
                "send:READY=1",
                "send:WATCHDOG=trigger",
                "sleep:20",
                "exit:0",
            ],
        );
        let d = s.wait();
        let ev = finished(&d, 128 + SIGABRT);
        check_hung(&ev, 3_600_000, SIGABRT);
        assert!(
            d.elapsed < Duration::from_secs(10),
            "{mode:?}: {:?}",
            d.elapsed
        );
    }
}

#[test]
fn watchdog_usec_shortens_the_period() {
    let s = start(
        Mode::Subreaper,
        &[],
        &["--watchdog", "1h"],
        &[
            "send:READY=1\\nWATCHDOG_USEC=300000",
            "say:sent",
            "sleep:20",
            "exit:0",
        ],
    );
    let d = s.wait();
    let ev = finished(&d, 128 + SIGABRT);
    check_hung(&ev, 300, SIGABRT);
    let main = main_exit(&ev);
    assert!(main["runtime_ms"].as_u64().unwrap() >= 300, "{main}");
    assert!(d.elapsed < Duration::from_secs(10), "{:?}", d.elapsed);
}

#[test]
fn watchdog_usec_lengthens_the_period() {
    let s = start(
        Mode::Subreaper,
        &[],
        &["--watchdog", "2s"],
        &["send:WATCHDOG_USEC=60000000", "sleep:3.5", "exit:0"],
    );
    let d = s.wait();
    let ev = finished(&d, 0);
    assert!(of_kind(&ev, "watchdog").is_empty(), "{ev:#?}");
    assert_eq!(main_exit(&ev)["outcome"], "exited");
}

#[test]
fn watchdog_runs_out_with_sigabrt_by_default() {
    for mode in MODES {
        let s = start(
            mode,
            &[],
            &["--watchdog", "300ms"],
            &["send:READY=1", "sleep:20", "exit:0"],
        );
        let d = s.wait();
        let ev = finished(&d, 134);
        check_hung(&ev, 300, SIGABRT);
        let main = main_exit(&ev);
        let rt = main["runtime_ms"].as_u64().unwrap();
        assert!(
            (300..10_000).contains(&rt),
            "{mode:?}: the period starts at the spawn: {main}"
        );
    }
}

#[test]
fn watchdog_signal_option_and_env() {
    // --watchdog-signal TERM (the option wins over the variable).
    let s = start(
        Mode::Subreaper,
        &[("SHIM_WATCHDOG_SIGNAL", "USR1")],
        &["--watchdog", "300ms", "--watchdog-signal", "TERM"],
        &["sleep:20", "exit:0"],
    );
    let d = s.wait();
    let ev = finished(&d, 128 + SIGTERM);
    check_hung(&ev, 300, SIGTERM);

    // SHIM_WATCHDOG and SHIM_WATCHDOG_SIGNAL alone (WATCHDOG_USEC from
    // SHIM_WATCHDOG: see the environment test).
    let s = start(
        Mode::Subreaper,
        &[
            ("SHIM_WATCHDOG", "400ms"),
            ("SHIM_WATCHDOG_SIGNAL", "SIGUSR1"),
        ],
        &[],
        &["sleep:20", "exit:0"],
    );
    let d = s.wait();
    let ev = finished(&d, 128 + SIGUSR1);
    check_hung(&ev, 400, SIGUSR1);

    // The option wins over SHIM_WATCHDOG.
    let s = start(
        Mode::Subreaper,
        &[("SHIM_WATCHDOG", "1h")],
        &["--watchdog", "300ms"],
        &["sleep:20", "exit:0"],
    );
    let d = s.wait();
    let ev = finished(&d, 134);
    check_hung(&ev, 300, SIGABRT);
}

#[test]
fn notify_socket_and_watchdog_usec_in_the_apps_environment() {
    let dir = tmpdir("env");
    let f = dir.join("ready");
    let f = path_str(&f);
    /// (environment, options, whether the app gets a socket, WATCHDOG_USEC)
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str], bool, &'a str);
    let cases: &[Case] = &[
        (&[], &[], false, "-"),
        (&[], &["--notify"], true, "-"),
        (&[("SHIM_NOTIFY", "1")], &[], true, "-"),
        (&[], &["--ready-file", f], true, "-"),
        (&[("SHIM_READY_FILE", f)], &[], true, "-"),
        (&[], &["--watchdog", "1500ms"], true, "1500000"),
        (&[], &["--watchdog", "2m"], true, "120000000"),
        (&[], &["--notify", "--watchdog", "20s"], true, "20000000"),
        (&[("SHIM_WATCHDOG", "90s")], &[], true, "90000000"),
        (
            &[("SHIM_WATCHDOG", "1h")],
            &["--watchdog", "45s"],
            true,
            "45000000",
        ),
    ];
    let mut names = Vec::new();
    for (env, opts, socket, usec) in cases {
        let s = start(Mode::Subreaper, env, opts, &["env", "exit:0"]);
        let sock = env_value(&s, "NOTIFY_SOCKET");
        let got_usec = env_value(&s, "WATCHDOG_USEC");
        let d = s.wait();
        finished(&d, 0);
        if *socket {
            assert!(
                sock.starts_with('@') && sock.len() > 1,
                "{env:?} {opts:?}: an abstract NOTIFY_SOCKET, not {sock:?}"
            );
            names.push(sock);
        } else {
            assert_eq!(
                sock, "-",
                "{env:?} {opts:?}: no NOTIFY_SOCKET without --notify"
            );
        }
        assert_eq!(got_usec, *usec, "{env:?} {opts:?}: WATCHDOG_USEC");
    }
    let n = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), n, "every shim names its own socket: {names:?}");
}

// ---------------------------------------------------------------------------
// Credentials
// ---------------------------------------------------------------------------

#[test]
fn a_grandchilds_notifications_are_ignored_by_default() {
    for mode in MODES {
        for access in [None, Some("main")] {
            let dir = tmpdir("gc-main");
            let f = dir.join("ready");
            let f = path_str(&f);
            let go = dir.join("go");
            let go = path_str(&go);
            let mut opts = vec!["--ready-file", f];
            if let Some(a) = access {
                opts.extend(["--notify-access", a]);
            }
            let s = start(
                mode,
                &[],
                &opts,
                &[
                    "fork",
                    "send:READY=1",
                    "send:STATUS=grandchild",
                    "send:WATCHDOG=trigger",
                    "send:STOPPING=1",
                    ":::",
                    "send:STATUS=main",
                    &format!("exists:{go}"),
                    "exit:0",
                ],
            );
            wait_event(&s, "the main child's status", |e| is_status(e, "main"));
            // The grandchild's datagrams were queued before it exited, and
            // the main child's after: all of them have been read.
            assert!(
                !Path::new(f).exists(),
                "{mode:?} {access:?}: ready file made"
            );
            fs::write(go, "").unwrap();
            let d = s.wait();
            let ev = finished(&d, 0);
            only_the_main_child_counted(&ev, &format!("{mode:?} {access:?}: a grandchild's"));
        }
    }
}

/// Of the notifications behind `ev`, only the main child's `STATUS=main`
/// counted, and the main child exited cleanly; `what` names the run and
/// the sender that must not have counted.
fn only_the_main_child_counted(ev: &[Value], what: &str) {
    for kind in ["ready", "stopping", "watchdog"] {
        assert!(
            of_kind(ev, kind).is_empty(),
            "{what} notification counted: {ev:#?}"
        );
    }
    assert_eq!(status_texts(ev), ["main"], "{what}");
    assert_eq!(main_exit(ev)["outcome"], "exited");
}

#[test]
fn a_grandchilds_notifications_count_with_access_all() {
    for mode in MODES {
        for (env, opts) in [
            (&[][..], &["--notify-access", "all"][..]),
            (&[("SHIM_NOTIFY_ACCESS", "all")][..], &[][..]),
        ] {
            let dir = tmpdir("gc-all");
            let f = dir.join("ready");
            let f = path_str(&f);
            let go = dir.join("go");
            let go = path_str(&go);
            let mut opts = opts.to_vec();
            opts.extend(["--ready-file", f]);
            let s = start(
                mode,
                env,
                &opts,
                &[
                    "fork",
                    "env",
                    "send:READY=1",
                    // Alive until the test has seen the line: a sender gone
                    // before the shim reads its datagram cannot be traced
                    // to the shim in /proc.
                    &format!("exists:{go}"),
                    ":::",
                    "exit:0",
                ],
            );
            let gc: i64 = env_value(&s, "pid").parse().unwrap();
            let ready = wait_event(&s, &format!("the ready line ({mode:?})"), |e| {
                e["event"] == "ready"
            });
            assert_eq!(ready["pid"], gc, "{mode:?}: the sender: {ready}");
            assert!(Path::new(f).exists(), "{mode:?}: no ready file");
            assert_eq!(fs::read_to_string(f).unwrap(), "ready\n");
            fs::write(go, "").unwrap();
            let d = s.wait();
            let ev = finished(&d, 0);
            assert_eq!(of_kind(&ev, "ready").len(), 1, "{mode:?}");
            assert!(!Path::new(f).exists(), "{mode:?}: ready file left at exit");
        }
    }
}

#[test]
fn an_unrelated_process_is_ignored() {
    for mode in MODES {
        for access in ["main", "all"] {
            let dir = tmpdir("outsider");
            let f = dir.join("ready");
            let f = path_str(&f);
            let go = dir.join("go");
            let go = path_str(&go);
            let go2 = dir.join("go2");
            let go2 = path_str(&go2);
            let s = start(
                mode,
                &[],
                &[
                    "--ready-file",
                    f,
                    "--watchdog",
                    "1h",
                    "--notify-access",
                    access,
                ],
                &[
                    "env",
                    &format!("exists:{go}"),
                    "send:STATUS=main",
                    &format!("exists:{go2}"),
                    "exit:0",
                ],
            );
            let name = env_value(&s, "NOTIFY_SOCKET");
            // Not under the shim: the test's own child.
            let out = Command::new("python3")
                .args(
                    &app(&[
                        "send:READY=1",
                        "send:STATUS=outsider",
                        "send:STOPPING=1",
                        "send:WATCHDOG=trigger",
                    ])[1..],
                )
                .env("NOTIFY_SOCKET", &name)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "the outsider could not send: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            fs::write(go, "").unwrap();
            wait_event(&s, "the main child's status", |e| is_status(e, "main"));
            assert!(!Path::new(f).exists(), "{mode:?} {access}: ready file made");
            fs::write(go2, "").unwrap();
            let d = s.wait();
            let ev = finished(&d, 0);
            only_the_main_child_counted(&ev, &format!("{mode:?} {access}: an outsider's"));
        }
    }
}

// ---------------------------------------------------------------------------
// The ready file
// ---------------------------------------------------------------------------

#[test]
fn ready_file_stale_removed_absent_before_ready_created_on_ready_removed_at_exit() {
    for mode in MODES {
        let dir = tmpdir("ready-life");
        let f = dir.join("ready");
        fs::write(&f, "stale from an earlier run\n").unwrap();
        let f = path_str(&f);
        let go = dir.join("go");
        let go = path_str(&go);
        let go2 = dir.join("go2");
        let go2 = path_str(&go2);
        let s = start(
            mode,
            &[],
            &["--ready-file", f],
            &[
                &format!("look:{f}"),
                &format!("exists:{go}"),
                "send:READY=1",
                &format!("exists:{go2}"),
                "exit:0",
            ],
        );
        assert_eq!(
            s.wait_stdout("look "),
            format!("look {f} False"),
            "{mode:?}: the stale ready file is removed before the app starts"
        );
        assert!(
            !Path::new(f).exists(),
            "{mode:?}: ready file before READY=1"
        );
        fs::write(go, "").unwrap();
        wait_until(T, "the ready file", || Path::new(f).exists().then_some(()));
        assert_eq!(fs::read_to_string(f).unwrap(), "ready\n", "{mode:?}");
        wait_event(&s, "the ready line", |e| e["event"] == "ready");
        fs::write(go2, "").unwrap();
        let d = s.wait();
        finished(&d, 0);
        assert!(!Path::new(f).exists(), "{mode:?}: ready file left at exit");
        let left: Vec<_> = fs::read_dir(&*dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .filter(|n| n != "go" && n != "go2")
            .collect();
        assert!(left.is_empty(), "{mode:?}: files left beside it: {left:?}");
    }
}

#[test]
fn ready_file_is_created_atomically() {
    let dir = tmpdir("atomic");
    let f = dir.join("ready");
    let fp = path_str(&f).to_owned();
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let (stop, seen, f) = (stop.clone(), seen.clone(), f.clone());
        std::thread::spawn(move || {
            let mut bad = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                match fs::read(&f) {
                    Ok(c) if c == b"ready\n" => {
                        seen.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(c) => bad.push(c),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => panic!("reading the ready file: {e}"),
                }
            }
            bad
        })
    };
    let s = start(
        Mode::Subreaper,
        &[],
        &["--ready-file", &fp],
        &[&format!("cycle:150:{fp}"), "exit:0"],
    );
    let d = s.wait();
    stop.store(true, Ordering::SeqCst);
    let bad = watcher.join().unwrap();
    let ev = finished(&d, 0);
    assert_eq!(of_kind(&ev, "ready").len(), 150);
    assert_eq!(of_kind(&ev, "reloading").len(), 150);
    assert!(
        bad.is_empty(),
        "a watcher saw a partial ready file {} times: {:?}",
        bad.len(),
        bad.iter().take(3).collect::<Vec<_>>()
    );
    assert!(
        seen.load(Ordering::SeqCst) > 0,
        "the watcher never saw the file"
    );
    let left: Vec<_> = fs::read_dir(&*dir).unwrap().flatten().collect();
    assert!(left.is_empty(), "left in the directory: {left:?}");
}

#[test]
fn ready_file_removed_when_a_stop_begins_and_not_made_again_while_draining() {
    for mode in MODES {
        let dir = tmpdir("drain");
        let f = dir.join("ready");
        let f = path_str(&f);
        let go = dir.join("go");
        let go = path_str(&go);
        let s = start(
            mode,
            &[],
            &["--ready-file", f, "--grace", "30s"],
            &[
                "onterm",
                "send:RELOADING=1",
                "send:READY=1",
                "send:STATUS=draining",
                &format!("exists:{go}"),
                ";;;",
                "send:READY=1",
                &format!("exists:{f}"),
                "say:up",
                "sleep:30",
                "exit:0",
            ],
        );
        s.wait_stdout("up");
        assert!(Path::new(f).exists());
        s.signal(SIGTERM);
        s.wait_stdout("draining");
        // The app drains until `go`: the file must go before it exits.
        wait_until(T, "the ready file to go while the app drains", || {
            (!Path::new(f).exists()).then_some(())
        });
        // READY=1 after RELOADING=1 during the stop does not bring it back
        // (the datagrams came before the status line).
        wait_event(&s, "the draining status", |e| is_status(e, "draining"));
        assert!(
            !Path::new(f).exists(),
            "{mode:?}: ready file made while draining"
        );
        fs::write(go, "").unwrap();
        let d = s.wait();
        let ev = finished(&d, 0);
        let main = main_exit(&ev);
        assert_eq!(main["outcome"], "stopped", "{mode:?}: {main}");
        assert_eq!(main["stop_reason"], "signal:SIGTERM", "{mode:?}: {main}");
        assert!(!Path::new(f).exists(), "{mode:?}");
    }
}

#[test]
fn the_ready_file_is_gone_before_the_app_hears_of_the_stop() {
    // The stop's signal is what tells the app to drain: by then a readiness
    // probe must already fail. Repeated, since the window is short.
    let mut seen = Vec::new();
    for mode in MODES {
        for how in ["SIGTERM", "watchdog"] {
            for round in 0..6 {
                let dir = tmpdir("before-signal");
                let f = dir.join("ready");
                let f = path_str(&f);
                let trigger = if how == "watchdog" {
                    "send:WATCHDOG=trigger"
                } else {
                    "say:waiting"
                };
                let s = start(
                    mode,
                    &[],
                    &[
                        "--ready-file",
                        f,
                        "--watchdog",
                        "1h",
                        "--watchdog-signal",
                        "TERM",
                    ],
                    &[
                        "onterm",
                        &format!("look:{f}"),
                        ";;;",
                        "send:READY=1",
                        &format!("exists:{f}"),
                        "say:up",
                        trigger,
                        "sleep:30",
                        "exit:0",
                    ],
                );
                s.wait_stdout("up");
                if how == "SIGTERM" {
                    s.signal(SIGTERM);
                }
                let look = s.wait_stdout("look ");
                let d = s.wait();
                finished(&d, 0);
                if look != format!("look {f} False") {
                    seen.push(format!("{mode:?} {how} round {round}"));
                }
            }
        }
    }
    assert!(
        seen.is_empty(),
        "the app's SIGTERM handler still saw the ready file in {} of 24 runs:\n{}",
        seen.len(),
        seen.join("\n")
    );
}

// ---------------------------------------------------------------------------
// shim probe
// ---------------------------------------------------------------------------

#[test]
fn probe_exit_codes_and_silence() {
    let dir = tmpdir("probe");
    let f = dir.join("ready");
    fs::write(&f, "ready\n").unwrap();
    let missing = dir.join("missing");
    let probe = |args: &[&Path]| {
        let out = Command::new(shim_bin())
            .arg("probe")
            .args(args)
            .output()
            .unwrap();
        (out.status.code(), out.stdout, out.stderr)
    };
    for (args, code) in [
        (vec![f.as_path()], 0),
        (vec![&*dir], 0),
        (vec![missing.as_path()], 1),
    ] {
        let (c, out, err) = probe(&args);
        assert_eq!(c, Some(code), "probe {args:?}");
        assert!(
            out.is_empty() && err.is_empty(),
            "probe {args:?} wrote {out:?} {err:?}"
        );
    }
    fs::remove_file(&f).unwrap();
    let (c, out, err) = probe(&[f.as_path()]);
    assert_eq!(c, Some(1), "a removed file");
    assert!(out.is_empty() && err.is_empty());
    let (c, out, _) = probe(&[]);
    assert_eq!(c, Some(2), "probe without FILE is a usage error");
    assert!(out.is_empty());
    let (c, _, _) = probe(&[f.as_path(), missing.as_path()]);
    assert_eq!(c, Some(2), "probe takes one FILE");
}

// ---------------------------------------------------------------------------
// The relay to a NOTIFY_SOCKET above the shim
// ---------------------------------------------------------------------------

/// A datagram socket of the test's: abstract (`@name`) or a path in `dir`.
fn upstream(dir: &Path, abstract_: bool) -> (UnixDatagram, String) {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    if abstract_ {
        let name = format!("shim-test-upstream-{}-{n}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        (UnixDatagram::bind_addr(&addr).unwrap(), format!("@{name}"))
    } else {
        let path = dir.join(format!("notify-{n}"));
        let sock = UnixDatagram::bind(&path).unwrap();
        (sock, path_str(&path).to_owned())
    }
}

/// Receives datagrams until one matches `f` (20 s at most); returns all.
fn recv_until(sock: &UnixDatagram, what: &str, f: impl Fn(&str) -> bool) -> Vec<String> {
    sock.set_nonblocking(false).unwrap();
    let deadline = Instant::now() + T;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "timed out waiting for {what}; got {got:?}");
        sock.set_read_timeout(Some(left)).unwrap();
        match sock.recv(&mut buf) {
            Ok(n) => {
                let d = String::from_utf8_lossy(&buf[..n]).into_owned();
                let done = f(&d);
                got.push(d);
                if done {
                    return got;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("recv: {e}"),
        }
    }
}

/// Whatever is queued now.
fn drain(sock: &UnixDatagram) -> Vec<String> {
    sock.set_nonblocking(true).unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    while let Ok(n) = sock.recv(&mut buf) {
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    got
}

#[test]
fn relay_passes_ready_status_and_stopping_upstream() {
    for mode in MODES {
        for abstract_ in [true, false] {
            let dir = tmpdir("relay");
            let (up, name) = upstream(&dir, abstract_);
            let go = dir.join("go");
            let go = path_str(&go);
            let go2 = dir.join("go2");
            let go2 = path_str(&go2);
            let s = start(
                mode,
                &[("NOTIFY_SOCKET", &name)],
                &["--notify"],
                &[
                    "env",
                    "send:STATUS=starting\\nMAINPID=1\\nX_APP=1\\nREADY=1",
                    "send:WATCHDOG=1\\nX_OTHER=2",
                    &format!("exists:{go}"),
                    "send:STOPPING=1",
                    &format!("exists:{go2}"),
                    "exit:0",
                ],
            );
            let app_sock = env_value(&s, "NOTIFY_SOCKET");
            assert_ne!(
                app_sock, name,
                "{mode:?}: the app talks to the shim, not upstream"
            );
            let got = recv_until(&up, "READY=1 upstream", |d| d.contains("READY=1"));
            let ready = got.iter().find(|d| d.contains("READY=1")).unwrap();
            assert!(
                ready.starts_with("READY=1"),
                "{mode:?} {name}: READY=1 must come first in its datagram: {ready:?}"
            );
            let mut all = got.clone();
            if !all
                .iter()
                .any(|d| d.lines().any(|l| l == "STATUS=starting"))
            {
                all.extend(recv_until(&up, "STATUS=starting upstream", |d| {
                    d.lines().any(|l| l == "STATUS=starting")
                }));
            }
            fs::write(go, "").unwrap();
            if !all.iter().any(|d| d.lines().any(|l| l == "STOPPING=1")) {
                all.extend(recv_until(&up, "STOPPING=1 upstream", |d| {
                    d.lines().any(|l| l == "STOPPING=1")
                }));
            }
            fs::write(go2, "").unwrap();
            let d = s.wait();
            finished(&d, 0);
            all.extend(drain(&up));
            for line in all.iter().flat_map(|d| d.lines()) {
                assert!(
                    line == "READY=1" || line == "STOPPING=1" || line.starts_with("STATUS="),
                    "{mode:?} {name}: relayed {line:?}: {all:?}"
                );
            }
            let count = |l: &str| {
                all.iter()
                    .flat_map(|d| d.lines())
                    .filter(|x| *x == l)
                    .count()
            };
            assert_eq!(count("READY=1"), 1, "{all:?}");
            assert_eq!(count("STOPPING=1"), 1, "{all:?}");
            assert_eq!(count("STATUS=starting"), 1, "{all:?}");
        }
    }
}

#[test]
fn without_notify_the_app_gets_notify_socket_untouched() {
    for mode in MODES {
        let dir = tmpdir("no-relay");
        let (up, name) = upstream(&dir, true);
        let s = start(
            mode,
            &[("NOTIFY_SOCKET", &name), ("WATCHDOG_USEC", "77")],
            &[],
            &["env", "send:X_FROM_APP=1", "exit:0"],
        );
        assert_eq!(env_value(&s, "NOTIFY_SOCKET"), name, "{mode:?}");
        assert_eq!(env_value(&s, "WATCHDOG_USEC"), "77", "{mode:?}");
        let d = s.wait();
        finished(&d, 0);
        // Anything the shim sent was queued before it exited.
        assert_eq!(
            drain(&up),
            ["X_FROM_APP=1"],
            "{mode:?}: the shim sent something"
        );
    }
}

// ---------------------------------------------------------------------------
// Idle, and bad input
// ---------------------------------------------------------------------------

fn context_switches(pid: i32) -> u64 {
    let get = |k| {
        status_field(pid, k)
            .unwrap_or_else(|| panic!("no {k} for {pid}"))
            .parse::<u64>()
            .unwrap()
    };
    get("voluntary_ctxt_switches") + get("nonvoluntary_ctxt_switches")
}

#[test]
fn idle_with_notify_and_a_watchdog_never_wakes_up() {
    for mode in MODES {
        let dir = tmpdir("idle");
        let f = dir.join("ready");
        let f = path_str(&f);
        let s = start(
            mode,
            &[],
            &["--ready-file", f, "--watchdog", "1h"],
            &[
                "send:READY=1\\nSTATUS=idle",
                "send:WATCHDOG=1",
                &format!("exists:{f}"),
                "say:up",
                "sleep:30",
                "exit:0",
            ],
        );
        s.wait_stdout("up");
        wait_event(&s, "the status line", |e| is_status(e, "idle"));
        let pid = s.pid();
        // Let it settle into its wait, then count over 1.5 s.
        std::thread::sleep(Duration::from_millis(300));
        let before = context_switches(pid);
        std::thread::sleep(Duration::from_millis(1500));
        let after = context_switches(pid);
        assert_eq!(
            after - before,
            0,
            "{mode:?}: an idle shim woke up {} times in 1.5 s",
            after - before
        );
        s.signal(SIGTERM);
        let d = s.wait();
        let ev = finished(&d, 128 + SIGTERM);
        assert_eq!(main_exit(&ev)["outcome"], "stopped");
        assert!(of_kind(&ev, "watchdog").is_empty());
    }
}

#[test]
fn oversized_and_garbage_datagrams_are_ignored() {
    for mode in MODES {
        let dir = tmpdir("garbage");
        let f = dir.join("ready");
        let f = path_str(&f);
        let all_bytes: String = (0..=255u8).map(|b| format!("{b:02x}")).collect();
        let s = start(
            mode,
            &[],
            &["--ready-file", f, "--watchdog", "1h"],
            &[
                // One byte too many, each: ignored whole.
                "sized:4097:READY=1",
                "sized:4097:WATCHDOG=trigger",
                "sized:65000:STOPPING=1",
                &format!("hex:{all_bytes}"),
                "hex:ff fe 00 52 45 41 44 59 3d 31",
                "hex:",
                "hex:0a0a0a",
                "send:READY",
                "send:=1",
                "send:READY=2",
                "send:STATUS",
                "send:STATUS=after-garbage",
                // Exactly 4096 bytes: read whole.
                "sized:4096:READY=1",
                &format!("exists:{f}"),
                "exit:0",
            ],
        );
        let d = s.wait();
        let ev = finished(&d, 0);
        assert_eq!(status_texts(&ev), ["after-garbage"], "{mode:?}: {ev:#?}");
        assert_eq!(of_kind(&ev, "ready").len(), 1, "{mode:?}: {ev:#?}");
        assert!(of_kind(&ev, "watchdog").is_empty(), "{mode:?}: {ev:#?}");
        assert!(of_kind(&ev, "stopping").is_empty(), "{mode:?}: {ev:#?}");
        let i_status = index_of(&ev, "status", |e| e["event"] == "status");
        let i_ready = index_of(&ev, "ready", |e| e["event"] == "ready");
        assert!(
            i_status < i_ready,
            "{mode:?}: an oversized READY=1 counted: {ev:#?}"
        );
        assert_eq!(main_exit(&ev)["outcome"], "exited");
    }
}

fn open_fds(pid: i32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count()
}

#[test]
fn descriptors_passed_with_datagrams_are_not_kept() {
    for mode in MODES {
        let dir = tmpdir("fds");
        let go = dir.join("go");
        let go = path_str(&go);
        let s = start(
            mode,
            &[],
            &["--notify"],
            &[
                "send:STATUS=before",
                &format!("exists:{go}"),
                // Small ones, oversized ones, and more descriptors than
                // the shim has room for in one message.
                "fds:200:3:64",
                "fds:20:3:5000",
                "fds:5:200:64",
                "send:READY=1",
                "say:sent",
                "sleep:30",
                "exit:0",
            ],
        );
        wait_event(&s, "the first status", |e| is_status(e, "before"));
        let pid = s.pid();
        let before = open_fds(pid);
        fs::write(go, "").unwrap();
        wait_event(&s, "the ready line", |e| e["event"] == "ready");
        let after = open_fds(pid);
        assert_eq!(
            after, before,
            "{mode:?}: the shim kept passed descriptors ({before} open before, {after} after)"
        );
        s.signal(SIGTERM);
        finished(&s.wait(), 128 + SIGTERM);
    }
}

#[test]
fn a_flood_of_datagrams_loses_neither_ready_nor_stopping() {
    for mode in MODES {
        let dir = tmpdir("flood");
        let f = dir.join("ready");
        let f = path_str(&f);
        let s = start(
            mode,
            &[],
            &["--ready-file", f],
            &[
                "flood:10000:STATUS=flood {i}",
                "send:READY=1",
                "send:STOPPING=1",
                "say:flooded",
                "sleep:30",
                "exit:0",
            ],
        );
        let t0 = Instant::now();
        wait_event(&s, "the stopping line", |e| e["event"] == "stopping");
        let took = t0.elapsed();
        s.wait_stdout("flooded");
        let now = events_now(&s);
        let i_ready = index_of(&now, "ready", |e| e["event"] == "ready");
        let i_stop = index_of(&now, "stopping", |e| e["event"] == "stopping");
        assert!(i_ready < i_stop, "{mode:?}");
        assert!(!Path::new(f).exists(), "{mode:?}");
        // Signals are still handled at once.
        let t = Instant::now();
        s.signal(SIGTERM);
        let d = s.wait();
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{mode:?}: SIGTERM took {:?}",
            t.elapsed()
        );
        let ev = finished(&d, 128 + SIGTERM);
        assert_eq!(of_kind(&ev, "ready").len(), 1, "{mode:?}");
        assert_eq!(of_kind(&ev, "stopping").len(), 1, "{mode:?}");
        let texts = status_texts(&ev);
        assert_eq!(texts[0], "flood 0", "{mode:?}");
        assert_eq!(
            texts.last().unwrap(),
            "flood 9999",
            "{mode:?}: the latest text wins"
        );
        let secs = (took + t.elapsed()).as_secs() as usize;
        assert!(
            texts.len() <= secs + 3,
            "{mode:?}: {} status lines in about {secs} s",
            texts.len()
        );
        assert_eq!(main_exit(&ev)["outcome"], "stopped");
    }
}

#[test]
fn a_flood_without_end_does_not_starve_signals() {
    for mode in MODES {
        for who in ["main", "grandchild"] {
            let flood = ["forever:X_FLOOD=1\\nSTATUS=flood\\nWATCHDOG=1"];
            let mut steps: Vec<&str> = Vec::new();
            if who == "grandchild" {
                // Ignored under the default access: rejected datagrams are
                // bounded work per wake-up too.
                steps.push("fork");
                steps.extend(flood);
                steps.push(":::");
                steps.push("exit:0");
            } else {
                steps.extend(flood);
            }
            let s = start(mode, &[], &["--notify", "--grace", "5s"], &steps);
            s.wait_stdout("flooding");
            let t = Instant::now();
            s.signal(SIGTERM);
            let d = s.wait();
            assert!(
                t.elapsed() < Duration::from_secs(4),
                "{mode:?} {who}: SIGTERM took {:?} during a flood",
                t.elapsed()
            );
            let ev = finished(&d, 128 + SIGTERM);
            let main = main_exit(&ev);
            assert_eq!(main["outcome"], "stopped", "{mode:?} {who}: {main}");
            assert_eq!(
                main["stop_reason"], "signal:SIGTERM",
                "{mode:?} {who}: {main}"
            );
        }
    }
}
