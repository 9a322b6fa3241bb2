//! The drop-in front ends: tini's and dumb-init's command lines and
//! environment variables, translated into the shim's own options, which
//! `cli` then parses like any other command line. Each peer's defaults are
//! options put first, so what the user gives later wins.

use std::ffi::OsString;

use crate::cli::Mode;

/// What a peer's command line asks for.
pub enum Translated {
    /// The shim's own arguments, COMMAND included.
    Run(Vec<OsString>),
    Help,
    Version,
    License,
}

/// The shim's long options that take a value, passed through as they are
/// (`tini --grace 2s -- app`).
const LONG_WITH_VALUE: &[&str] = &[
    "grace",
    "rewrite",
    "events",
    "termination-log",
    "parent-death",
    "success-exit",
    "notify-access",
    "ready-file",
    "watchdog",
    "watchdog-signal",
];
const LONG_FLAGS: &[&str] = &["single-child", "no-subreaper", "notify"];

/// Translates `args` (after argv[0]) of `mode` (tini or dumb-init).
pub fn translate(
    mode: Mode,
    args: Vec<OsString>,
    env: &impl Fn(&str) -> Option<OsString>,
) -> Result<Translated, String> {
    use lexopt::prelude::*;

    let set = |name: &str| env(name).is_some();
    // The peers' stopping: no grace period unless one is given, a second
    // for leftovers (see `cli`).
    let mut out: Vec<OsString> = vec!["--peer-stopping".into()];
    // Neither peer acts on its parent's death unless asked to.
    if !set("SHIM_PARENT_DEATH") {
        out.extend(["--parent-death".into(), "off".into()]);
    }
    let mut single_child = false;
    let mut group = false;
    let mut p = lexopt::Parser::from_args(args);
    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        match (mode, arg) {
            (_, Long(name)) if LONG_WITH_VALUE.contains(&name) => {
                let name = format!("--{name}");
                let value = p.value().map_err(|e| e.to_string())?;
                out.extend([name.into(), value]);
            }
            (_, Long(name)) if LONG_FLAGS.contains(&name) => {
                if name == "single-child" {
                    single_child = true;
                } else {
                    out.push(format!("--{name}").into());
                }
            }
            (_, Long("version")) => return Ok(Translated::Version),
            (Mode::Tini, Short('h')) => return Ok(Translated::Help),
            (Mode::Tini, Short('l')) => return Ok(Translated::License),
            (Mode::Tini, Short('s')) => out.push("--subreaper".into()),
            (Mode::Tini, Short('w')) => out.push("--warn-on-reap".into()),
            (Mode::Tini, Short('g')) => group = true,
            (Mode::Tini, Short('v')) => out.push("-v".into()),
            (Mode::Tini, Short('p')) => out.extend([
                "--parent-death".into(),
                p.value().map_err(|e| e.to_string())?,
            ]),
            (Mode::Tini, Short('e')) => out.extend([
                "--success-exit".into(),
                p.value().map_err(|e| e.to_string())?,
            ]),
            (Mode::DumbInit, Short('h') | Long("help")) => return Ok(Translated::Help),
            (Mode::DumbInit, Short('V')) => return Ok(Translated::Version),
            (Mode::DumbInit, Short('c')) => single_child = true,
            (Mode::DumbInit, Short('v') | Long("verbose")) => out.push("-vv".into()),
            (Mode::DumbInit, Short('r')) => {
                out.extend(["--rewrite".into(), p.value().map_err(|e| e.to_string())?])
            }
            (_, Value(program)) => {
                // Everything from COMMAND on is the app's.
                let rest = p.raw_args().map_err(|e| e.to_string())?;
                let mut tail = vec!["--".into(), program];
                tail.extend(rest);
                finish(mode, &mut out, single_child, group, env)?;
                out.extend(tail);
                return Ok(Translated::Run(out));
            }
            (_, other) => return Err(other.unexpected().to_string()),
        }
    }
    finish(mode, &mut out, single_child, group, env)?;
    Ok(Translated::Run(out))
}

/// The options that depend on the whole command line and the peer's
/// environment variables.
fn finish(
    mode: Mode,
    out: &mut Vec<OsString>,
    mut single_child: bool,
    group: bool,
    env: &impl Fn(&str) -> Option<OsString>,
) -> Result<(), String> {
    let text = |name: &str| env(name).map(|v| v.to_string_lossy().trim().to_string());
    match mode {
        Mode::Tini => {
            // tini signals the child alone unless told to signal its group.
            single_child |= !(group || text("TINI_KILL_PROCESS_GROUP").is_some());
            if text("TINI_SUBREAPER").is_some() {
                out.push("--subreaper".into());
            }
            match text("TINI_VERBOSITY").as_deref() {
                None | Some("1") => {}
                Some("0") => out.push("-q".into()),
                Some("2") => out.push("-v".into()),
                Some("3") => out.push("-vv".into()),
                Some(v) if v.parse::<u32>().is_ok() => out.push("-vvv".into()),
                Some(v) => return Err(format!("invalid TINI_VERBOSITY '{v}': not a number")),
            }
        }
        Mode::DumbInit => {
            // Without setsid, dumb-init signals the child alone.
            single_child |= text("DUMB_INIT_SETSID").as_deref() == Some("0");
            if text("DUMB_INIT_DEBUG").is_some_and(|v| crate::cli::truthy(&v)) {
                out.push("-vv".into());
            }
            if !single_child {
                // dumb-init's default: the terminal's stop signals become
                // SIGSTOP, so Ctrl-Z stops even an app that catches SIGTSTP.
                out.push("--stop-on-job-control".into());
            }
        }
        Mode::Shim => {}
    }
    if single_child {
        out.push("--single-child".into());
    }
    Ok(())
}
