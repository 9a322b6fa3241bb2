//! The termination log (Kubernetes' terminationMessagePath): the shim's
//! one JSON object, with the app's own message kept as `message` when the
//! app wrote one there, the whole within Kubernetes' 4096 bytes.
mod common;
use common::*;
use serde_json::Value;
use std::fs;

fn run_writing(tlog: &std::path::Path, script: &str) -> (Done, Value) {
    let args = [
        "--events",
        "off",
        "--termination-log",
        tlog.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        script,
    ];
    let done = shim(args).run();
    let text = fs::read_to_string(tlog).unwrap();
    assert!(text.len() <= 4096, "{} bytes", text.len());
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text:?}"));
    (done, v)
}

#[test]
fn the_apps_own_message_survives_as_message() {
    let dir = tmpdir("tmsg");
    let tlog = dir.join("termination-log");
    let script = format!(
        "echo 'app: database unreachable' > {}; exit 3",
        tlog.display()
    );
    let (done, v) = run_writing(&tlog, &script);
    assert_eq!(done.code(), 3);
    assert_eq!(v["event"], "exit");
    assert_eq!(v["outcome"], "failed");
    assert_eq!(v["message"], "app: database unreachable\n");
}

#[test]
fn a_long_message_is_cut_at_a_character_boundary_to_fit_4096_bytes() {
    let dir = tmpdir("tmsg-long");
    let tlog = dir.join("termination-log");
    // 3000 two-byte characters: 6000 bytes of UTF-8.
    let script = format!(
        "i=0; while [ $i -lt 3000 ]; do printf 'é'; i=$((i+1)); done > {}; exit 1",
        tlog.display()
    );
    let (_, v) = run_writing(&tlog, &script);
    let msg = v["message"].as_str().expect("a message");
    let body = msg.trim_end_matches('…');
    assert!(
        !body.is_empty() && body.chars().all(|c| c == 'é'),
        "{msg:?}"
    );
    assert!(msg.len() < 6000, "cut");
}

#[test]
fn content_from_before_the_start_is_overwritten_not_kept() {
    let dir = tmpdir("tmsg-old");
    let tlog = dir.join("termination-log");
    fs::write(&tlog, "left over from an earlier run\n").unwrap();
    let (_, v) = run_writing(&tlog, "exit 0");
    assert!(v.get("message").is_none(), "{v}");
    assert_eq!(v["outcome"], "exited");
}
