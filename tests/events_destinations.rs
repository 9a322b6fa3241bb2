//! Where events go, decided before anything runs: a mistyped keyword, an
//! unknown scheme, a path that cannot be opened, a descriptor that is not
//! open are usage errors (exit 2, nothing spawned); a file path says it is
//! one with a '/'.
mod common;
use common::*;

fn marker_cmd(marker: &std::path::Path) -> Vec<String> {
    vec![
        "--".into(),
        "sh".into(),
        "-c".into(),
        format!("touch {}", marker.display()),
    ]
}

#[test]
fn a_destination_that_is_not_one_is_a_usage_error_and_nothing_runs() {
    let dir = tmpdir("dest-bad");
    let marker = dir.join("ran");
    type Case = (Vec<String>, Vec<(&'static str, String)>);
    let cases: Vec<Case> = vec![
        (vec!["--events".into(), "stdrr".into()], vec![]),
        (vec![], vec![("SHIM_EVENTS", "bogus:1".into())]),
        (vec!["--events".into(), "fd:9".into()], vec![]),
        (vec!["--events".into(), "/nonexistent/dir/x".into()], vec![]),
        (
            vec!["--events".into(), dir.to_str().unwrap().into()],
            vec![],
        ),
    ];
    for (opts, env) in cases {
        let mut args = opts.clone();
        args.extend(marker_cmd(&marker));
        let mut cmd = shim(args).cwd(&dir);
        for (k, v) in &env {
            cmd = cmd.env(k, v);
        }
        let done = cmd.run();
        assert_eq!(done.code(), 2, "{opts:?} {env:?}: {}", done.stderr_text());
        let err = done.stderr_text();
        assert!(err.starts_with("shim: error: "), "{err}");
        assert!(err.lines().count() <= 2, "{err}");
        assert!(!marker.exists(), "{opts:?} {env:?}: nothing is spawned");
        assert!(!dir.join("stdrr").exists(), "no file named after a typo");
    }
}

#[test]
fn a_relative_file_path_with_a_slash_is_a_file() {
    let dir = tmpdir("dest-rel");
    let marker = dir.join("ran");
    let mut args = vec!["--events".to_owned(), "./events.jsonl".into()];
    args.extend(marker_cmd(&marker));
    let done = shim(args).cwd(&dir).run();
    assert_eq!(done.code(), 0, "{}", done.stderr_text());
    assert!(marker.exists());
    let ev = file_events(&dir.join("events.jsonl"));
    check_events(&ev, 0);
}
