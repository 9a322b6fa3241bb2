//! Hardening under load: signal storms and zombie storms, as PID 1
//! and as a subreaper. Each test prints a `FIGURE` line on stdout for
//! `scripts/test-reliability`; sizes come from the environment:
//!
//! - `SHIM_STORM_SIGNALS` (default 20000, full 100000): signals per storm;
//! - `SHIM_STORM_ORPHANS` (default 20000, full 100000): orphans per storm,
//!   run once at a tenth of that size and once at full size to show the
//!   shim's peak memory stays flat as the count grows.
mod common;
use common::*;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Standard signals in the storm: none of them a stop request, a job-control
/// signal or SIGCHLD, so the storm exercises forwarding alone.
const STD_MIX: [i32; 11] = [1, 10, 12, 14, 18, 23, 26, 27, 28, 29, 30];
/// Realtime signals in the storm; SIGRTMAX (64) is kept as the end marker.
const RT_MIX: std::ops::RangeInclusive<i32> = SIGRTMIN..=(SIGRTMAX - 1);

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Pid1 => "pid1",
        Mode::Subreaper => "subreaper",
    }
}

/// Every signal `kid trap -o FILE` recorded, in order.
fn trap_log(file: &std::path::Path) -> Vec<i32> {
    sigs_in(file)
}

fn signal_storm(mode: Mode) {
    let _heavy = heavy_lock();
    let n = size_from_env("SHIM_STORM_SIGNALS", 20_000);
    let dir = tmpdir("sigstorm");
    let log = dir.join("trap.log");
    let mut trap = vec![
        "-T",
        "600",
        "trap",
        "-n",
        "main",
        "-o",
        log.to_str().unwrap(),
        "-x",
        "TERM",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect::<Vec<_>>();
    trap.extend(STD_MIX.iter().map(|s| s.to_string()));
    trap.extend(RT_MIX.map(|s| s.to_string()));
    trap.push(SIGRTMAX.to_string());
    let trap: Vec<&str> = trap.iter().map(String::as_str).collect();
    let mut args = vec!["--grace".to_owned(), "30s".into(), "--".into()];
    args.extend(kid_args(&trap));
    let s = shim(args).mode(mode).spawn();
    s.ready("main");
    let pid = s.pid();
    let me = std::process::id() as i32;
    let (_, limit) = sigq(me).expect("SigQ of the test process");

    // The storm: a fixed interleaving of standard and realtime signals.
    // Realtime ones go with sigqueue, which reports a full queue (EAGAIN)
    // instead of silently dropping the signal's queue entry, and the sender
    // keeps the uid's queued count under a quarter of RLIMIT_SIGPENDING so
    // the shim's own forwarding (kill, which coalesces when over the limit)
    // never hits it either: within the limit the kernel queues every one.
    let mut sent: BTreeMap<i32, usize> = BTreeMap::new();
    let mut eagain = 0usize;
    let mut throttled = 0usize;
    let start = Instant::now();
    let deadline = start + Duration::from_secs(240);
    let mut rt_iter = RT_MIX.cycle();
    let mut std_iter = STD_MIX.iter().copied().cycle();
    for i in 0..n {
        assert!(Instant::now() < deadline, "storm took too long at {i}/{n}");
        if i % 128 == 0 {
            while sigq(me).map_or(0, |q| q.0) > limit / 4 {
                throttled += 1;
                assert!(Instant::now() < deadline, "queue never drained");
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        // Two realtime signals for every standard one.
        if i % 3 == 2 {
            let sig = std_iter.next().unwrap();
            assert!(kill(pid, sig), "the shim vanished during the storm");
            *sent.entry(sig).or_default() += 1;
        } else {
            let sig = rt_iter.next().unwrap();
            loop {
                match sigqueue(pid, sig) {
                    Ok(()) => break,
                    Err(11) => {
                        eagain += 1;
                        std::thread::sleep(Duration::from_micros(200));
                    }
                    Err(e) => panic!("sigqueue({pid}, {sig}): errno {e}"),
                }
                assert!(Instant::now() < deadline, "queue never drained");
            }
            *sent.entry(sig).or_default() += 1;
        }
    }
    let sent_secs = start.elapsed().as_secs_f64();
    assert!(
        state(pid).is_some_and(|c| c != 'Z'),
        "the shim survived the storm"
    );
    // The marker: everything sent before it is taken (lower signals first,
    // realtime ones in order) before it, at the shim and at the app.
    let marker_sent = Instant::now();
    sigqueue(pid, SIGRTMAX).expect("queue the marker");
    wait_until(
        Duration::from_secs(120),
        "the end marker at the app",
        || trap_log(&log).contains(&SIGRTMAX).then_some(()),
    );
    let drain_ms = marker_sent.elapsed().as_millis();
    let hwm = status_kib(pid, "VmHWM").unwrap_or(0);

    let got = trap_log(&log);
    assert_eq!(got.last(), Some(&SIGRTMAX), "the marker is the last signal");
    assert_eq!(got.iter().filter(|&&s| s == SIGRTMAX).count(), 1);
    let mut received: BTreeMap<i32, usize> = BTreeMap::new();
    for s in &got[..got.len() - 1] {
        *received.entry(*s).or_default() += 1;
    }
    for s in received.keys() {
        assert!(sent.contains_key(s), "the app got signal {s}, never sent");
    }
    let (mut rt_sent, mut rt_got, mut std_sent, mut std_got) = (0, 0, 0, 0);
    for (&sig, &k) in &sent {
        let r = received.get(&sig).copied().unwrap_or(0);
        if sig >= SIGRTMIN {
            // Realtime signals queue: every one sent arrives, once.
            assert_eq!(r, k, "realtime signal {sig}: sent {k}, received {r}");
            rt_sent += k;
            rt_got += r;
        } else {
            // Standard ones coalesce: at least one, never more than sent.
            assert!(
                (1..=k).contains(&r),
                "standard signal {sig}: sent {k}, received {r}"
            );
            std_sent += k;
            std_got += r;
        }
    }

    // The stop sequence still works: SIGTERM goes through at once.
    let stop = Instant::now();
    s.signal(SIGTERM);
    let done = s.wait_timeout(Duration::from_secs(60));
    let stop_ms = stop.elapsed().as_millis();
    assert_eq!(done.code(), 0, "{}", done.stderr_text());
    let ev = done.events();
    check_events(&ev, 0);
    let m = main_exit(&ev);
    assert_eq!(m["outcome"], "stopped", "{m}");
    assert_eq!(m["stop_reason"], "signal:SIGTERM", "{m}");
    assert!(stop_ms < 10_000, "stop took {stop_ms} ms with a 30 s grace");
    assert!(
        done.diagnostics().is_empty(),
        "no warnings: {:?}",
        done.diagnostics()
    );

    figure(
        "signal_storm",
        &[
            ("mode", mode_name(mode).into()),
            ("signals", n.to_string()),
            ("rt_sent", rt_sent.to_string()),
            ("rt_received", rt_got.to_string()),
            ("std_sent", std_sent.to_string()),
            ("std_received", std_got.to_string()),
            ("eagain_retries", eagain.to_string()),
            ("throttle_waits", throttled.to_string()),
            ("sigpending_limit", limit.to_string()),
            ("send_seconds", format!("{sent_secs:.2}")),
            (
                "rate_per_s",
                format!("{:.0}", n as f64 / sent_secs.max(1e-9)),
            ),
            ("drain_ms", drain_ms.to_string()),
            ("stop_ms", stop_ms.to_string()),
            ("shim_hwm_kib", hwm.to_string()),
        ],
    );
}

#[test]
fn a_signal_storm_reaches_the_app_and_the_stop_still_works_as_pid1() {
    signal_storm(Mode::Pid1);
}

#[test]
fn a_signal_storm_reaches_the_app_and_the_stop_still_works_as_subreaper() {
    signal_storm(Mode::Subreaper);
}

struct StormResult {
    peak_zombies: usize,
    hwm_kib: u64,
    seconds: f64,
}

/// `kid orphans N`: N orphans as fast as fork allows, in batches of 1000
/// per short-lived intermediate; the shim reaps them all. A sampler thread
/// watches the shim's zombie children and its VmHWM meanwhile.
fn zombie_storm(mode: Mode, n: usize) -> StormResult {
    let dir = tmpdir("zstorm");
    let events = dir.join("events.jsonl");
    let mut args = vec![
        "--events".to_owned(),
        events.to_str().unwrap().into(),
        "--".into(),
    ];
    args.extend(kid_args(&["orphans", &n.to_string(), "-b", "1000"]));
    let start = Instant::now();
    let s = shim(args).mode(mode).spawn();
    let pid = s.pid();
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicUsize::new(0));
    let hwm = Arc::new(Mutex::new(0u64));
    let sampler = {
        let (stop, peak, hwm) = (stop.clone(), peak.clone(), hwm.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let z = zombie_children(pid);
                peak.fetch_max(z, Ordering::SeqCst);
                if let Some(h) = status_kib(pid, "VmHWM") {
                    let mut m = hwm.lock().unwrap();
                    *m = (*m).max(h);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let done = s.wait_timeout(Duration::from_secs(900));
    let seconds = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::SeqCst);
    sampler.join().unwrap();
    assert_eq!(done.code(), 0, "{}", done.stderr_text());
    assert!(
        done.stdout
            .iter()
            .any(|l| l == &format!("orphans {n} done")),
        "{:?}",
        done.stdout
    );
    let ev = file_events(&events);
    check_events(&ev, 0);
    let orphans = orphan_exits(&ev);
    assert_eq!(
        orphans.len(),
        n,
        "{mode:?}: every orphan reaped, one line each"
    );
    assert!(
        orphans
            .iter()
            .all(|e| e["code"] == 0 && e["outcome"] == "exited")
    );
    assert_eq!(shim_exit(&ev)["reaped"], n as u64 + 1);
    assert_eq!(main_exit(&ev)["outcome"], "exited");
    assert!(done.diagnostics().is_empty(), "{:?}", done.diagnostics());
    let hwm_kib = *hwm.lock().unwrap();
    assert!(hwm_kib > 0, "VmHWM was sampled");
    StormResult {
        peak_zombies: peak.load(Ordering::SeqCst),
        hwm_kib,
        seconds,
    }
}

fn zombie_storms(mode: Mode) {
    let _heavy = heavy_lock();
    let n = size_from_env("SHIM_STORM_ORPHANS", 20_000);
    let small_n = (n / 10).max(1000);
    let small = zombie_storm(mode, small_n);
    let large = zombie_storm(mode, n);
    for (k, r) in [(small_n, &small), (n, &large)] {
        figure(
            "zombie_storm",
            &[
                ("mode", mode_name(mode).into()),
                ("orphans", k.to_string()),
                ("peak_zombies", r.peak_zombies.to_string()),
                ("peak_rss_kib", r.hwm_kib.to_string()),
                ("seconds", format!("{:.2}", r.seconds)),
                ("reaped_per_s", format!("{:.0}", k as f64 / r.seconds)),
            ],
        );
    }
    // Flat: ten times the orphans, the same peak memory (a few pages of
    // allocator noise allowed).
    assert!(
        large.hwm_kib <= small.hwm_kib + small.hwm_kib / 10 + 256,
        "{mode:?}: VmHWM grew from {} KiB ({small_n} orphans) to {} KiB ({n} orphans)",
        small.hwm_kib,
        large.hwm_kib
    );
}

#[test]
fn a_zombie_storm_is_reaped_completely_with_flat_memory_as_pid1() {
    zombie_storms(Mode::Pid1);
}

#[test]
fn a_zombie_storm_is_reaped_completely_with_flat_memory_as_subreaper() {
    zombie_storms(Mode::Subreaper);
}
