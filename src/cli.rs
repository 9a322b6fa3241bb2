//! Command line and environment: every value is validated here, so a bad one
//! is a usage error (exit 2, one line naming it) before anything is spawned.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use crate::diag::Level;
use crate::notify::Access;
use crate::signals::Signal;

/// The exit code of a usage error.
pub const USAGE_ERROR: i32 = 2;

/// Default grace period: long enough for an app to shut down cleanly, short
/// enough that the shim escalates and reports before `docker stop` (10 s)
/// and Kubernetes (30 s by default) kill it.
pub const DEFAULT_GRACE: &str = "8s";

/// In the tini and dumb-init modes, from the leftovers' SIGTERM after the
/// main child exited to their SIGKILL, unless a grace is given.
const DROP_IN_LEFTOVER_GRACE: Duration = Duration::from_secs(1);

const HELP: &str = "\
A tiny PID 1: forwards signals, reaps zombies, stops with a grace period,
reports every exit as a JSON line.

Usage: shim [OPTIONS] [--] COMMAND [ARG]...
       shim install DEST      copy this binary to DEST (a directory or a file)
       shim probe FILE        exit 0 when FILE exists, 1 when not (silent)

Options (each also read from the environment variable shown; the option wins):
  -g, --grace <DUR>            time from the first stop request to SIGKILL of
                               everything left: 500ms, 10s, 2m, or bare seconds
                               [env: SHIM_GRACE] [default: 8s]
  -r, --rewrite <FROM:TO>      deliver TO instead of FROM (TERM:QUIT); TO of 0
                               drops FROM; repeatable [env: SHIM_REWRITE, a comma list]
      --single-child           forward signals to the child only, not its group
                               [env: SHIM_SINGLE_CHILD=1]
      --events <DEST>          where exit events go: stderr, stdout, fd:N, a file
                               path (appended), or off [env: SHIM_EVENTS] [default: stderr]
      --termination-log <PATH> also write the main child's final exit event to PATH
                               [env: SHIM_TERMINATION_LOG]
      --no-subreaper           when not PID 1, do not become a child subreaper
                               [env: SHIM_NO_SUBREAPER=1]
      --parent-death <SIG|off> when not PID 1 and the parent dies, act as if SIG
                               was received [env: SHIM_PARENT_DEATH] [default: TERM]
  -e, --success-exit <CODE>    map the exit code CODE to 0; repeatable
                               [env: SHIM_SUCCESS_EXIT, a comma list]
      --notify                 give the app an sd_notify socket (NOTIFY_SOCKET)
                               [env: SHIM_NOTIFY=1]
      --notify-access <WHO>    whose notifications count: main or all
                               [env: SHIM_NOTIFY_ACCESS] [default: main]
      --ready-file <PATH>      exists exactly while the app is ready (READY=1);
                               implies --notify [env: SHIM_READY_FILE]
      --watchdog <DUR>         the app must send WATCHDOG=1 at least every DUR;
                               implies --notify [env: SHIM_WATCHDOG]
      --watchdog-signal <SIG>  sent to the app when the watchdog runs out
                               [env: SHIM_WATCHDOG_SIGNAL] [default: ABRT]
  -v                           more diagnostics (-v info, -vv debug, -vvv trace)
  -q                           errors only [env: SHIM_LOG=off|error|warn|info|debug|trace]
  -h, --help                   print this help
  -V, --version                print the version

Exit code: the app's code, 128+N when signal N killed it, 126 when COMMAND
cannot be run, 127 when it is not found, 2 for a usage error.
";

const TINI_HELP: &str = "\
shim in tini mode (invoked as tini): tini's options, the shim's behaviour.

Usage: tini [OPTIONS] PROGRAM -- [ARGS] | --version
  --version          show the version and exit
  -h                 show this help and exit
  -s                 register as a child subreaper (the shim's default anyway)
  -p SIGNAL          act as if SIGNAL was received when the parent dies
  -v                 more verbose output; repeat up to 3 times
  -w                 print a warning when an orphan is reaped
  -g                 send signals to the child's process group
  -e EXIT_CODE       remap EXIT_CODE (0 to 255) to 0; repeatable
  -l                 show the license and exit
Environment: TINI_SUBREAPER, TINI_VERBOSITY, TINI_KILL_PROCESS_GROUP.
The shim's long options (--grace, --events, ...) work too; see shim --help.
";

const DUMB_INIT_HELP: &str = "\
shim in dumb-init mode (invoked as dumb-init): dumb-init's options, the shim's behaviour.

Usage: dumb-init [option] command [[arg] ...]
  -c, --single-child   signals go to the direct child only, not its group
  -r, --rewrite s:r    rewrite received signal s to r before forwarding;
                       r of 0 drops s; repeatable
  -v, --verbose        print debugging information to stderr
  -h, --help           print this help and exit
  -V, --version        print the version and exit
Environment: DUMB_INIT_SETSID=0 (same as -c), DUMB_INIT_DEBUG=1 (same as -v).
The shim's long options (--grace, --events, ...) work too; see shim --help.
";

/// `0.1.0 (abc1234, x86_64-unknown-linux-musl)`: the version, the commit
/// and the target it was built from (see build.rs).
macro_rules! version {
    () => {
        concat!(
            env!("CARGO_PKG_VERSION"),
            " (",
            env!("SHIM_COMMIT"),
            ", ",
            env!("SHIM_TARGET"),
            ")"
        )
    };
}

/// Whose option syntax and defaults to take, from the name the binary was
/// invoked under: a copy or symlink named `tini` or `dumb-init` is a drop-in
/// for that tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Shim,
    Tini,
    DumbInit,
}

impl Mode {
    pub fn from_argv0(argv0: Option<&std::ffi::OsStr>) -> Mode {
        let name = argv0
            .and_then(|a| std::path::Path::new(a).file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with("tini") {
            Mode::Tini
        } else if name.starts_with("dumb-init") {
            Mode::DumbInit
        } else {
            Mode::Shim
        }
    }
}

const HINT: &str = "Usage: shim [OPTIONS] [--] COMMAND [ARG]... (see 'shim --help')";

/// Where exit events are written.
#[derive(Debug, Clone, PartialEq)]
pub enum EventsDest {
    Off,
    Fd(i32),
    Path(PathBuf),
}

/// Everything the supervisor needs, validated.
#[derive(Debug)]
pub struct Config {
    /// From the first stop request to SIGKILL of everything left; None: no
    /// grace period (the drop-in modes, as the peers: the runtime decides).
    pub grace: Option<Duration>,
    /// From the SIGTERM to the leftovers after the main child exited to
    /// their SIGKILL.
    pub leftover_grace: Duration,
    /// (received, delivered) pairs; a delivered None drops the signal.
    rewrite: Vec<(Signal, Option<Signal>)>,
    pub single_child: bool,
    pub events: EventsDest,
    pub termination_log: Option<PathBuf>,
    pub subreaper: bool,
    pub parent_death: Option<Signal>,
    pub success_exit: Vec<u8>,
    pub log_level: Level,
    /// tini's `-w`: a warning for every orphan reaped.
    pub warn_on_reap: bool,
    /// The notification socket, and whose messages count.
    pub notify: Option<Access>,
    pub ready_file: Option<PathBuf>,
    pub watchdog: Option<Duration>,
    pub watchdog_signal: Signal,
    pub command: Vec<OsString>,
}

impl Config {
    /// The signal to deliver for `sig` as received; None drops it. The last
    /// rule for a signal wins.
    pub fn rewrite(&self, sig: Signal) -> Option<Signal> {
        self.rewrite
            .iter()
            .rev()
            .find(|(from, _)| *from == sig)
            .map_or(Some(sig), |(_, to)| *to)
    }

    /// The shim's exit code for the app's `code`, after `--success-exit`.
    pub fn map_exit(&self, code: i32) -> i32 {
        if self.success_exit.iter().any(|c| i32::from(*c) == code) {
            0
        } else {
            code
        }
    }
}

/// What the command line asks for.
#[derive(Debug)]
enum Parsed {
    Run(Box<Config>),
    Help,
    Version,
    License,
}

/// Parses the arguments after `argv[0]` and the environment. On a usage
/// error, prints it and exits 2; `--help` and `--version` print and exit 0.
pub fn parse(mode: Mode, args: Vec<OsString>) -> Config {
    let text = match parse_from(mode, args, |k| std::env::var_os(k)) {
        Ok(Parsed::Run(config)) => return *config,
        Ok(Parsed::Help) => match mode {
            Mode::Shim => HELP,
            Mode::Tini => TINI_HELP,
            Mode::DumbInit => DUMB_INIT_HELP,
        },
        Ok(Parsed::Version) => match mode {
            Mode::Shim => concat!("shim ", version!(), "\n"),
            Mode::Tini => concat!("tini version 0.19.0 - shim ", version!(), "\n"),
            Mode::DumbInit => concat!("dumb-init v1.2.5 - shim ", version!(), "\n"),
        },
        Ok(Parsed::License) => concat!(
            "shim is distributed under the MIT or the Apache-2.0 license, at your option.",
            "\n"
        ),
        Err(msg) => usage_error(&msg),
    };
    // dumb-init prints its help and version on stderr.
    if mode == Mode::DumbInit {
        eprint!("{text}");
    } else {
        print!("{text}");
    }
    std::process::exit(0);
}

/// Prints `shim: error: MSG` (the first line names the problem) and one
/// line of hint, then exits 2.
pub fn usage_error(msg: &str) -> ! {
    // A value may hold a line break or a terminal escape: show it escaped,
    // so the first line still names the problem, whole.
    let msg: String = msg
        .chars()
        .flat_map(|c| {
            let escaped = c.is_control().then(|| c.escape_default());
            escaped
                .into_iter()
                .flatten()
                .chain((!c.is_control()).then_some(c))
        })
        .collect();
    eprintln!("shim: error: {msg}\n{HINT}");
    std::process::exit(USAGE_ERROR);
}

/// The options as given on the command line; None where not given, so the
/// environment variable can fill them in.
#[derive(Default)]
struct Given {
    grace: Option<Duration>,
    rewrite: Vec<(Signal, Option<Signal>)>,
    single_child: bool,
    events: Option<EventsDest>,
    termination_log: Option<PathBuf>,
    no_subreaper: bool,
    parent_death: Option<Option<Signal>>,
    success_exit: Vec<u8>,
    verbose: u8,
    quiet: bool,
    /// The drop-in modes' stopping (`dropin`): no grace unless given.
    peer_stopping: bool,
    /// tini's `-s`: wins over SHIM_NO_SUBREAPER, as options win over variables.
    subreaper: bool,
    /// tini's `-w`.
    warn_on_reap: bool,
    /// dumb-init's job-control rewrites.
    stop_on_job_control: bool,
    notify: bool,
    notify_access: Option<Access>,
    ready_file: Option<PathBuf>,
    watchdog: Option<Duration>,
    watchdog_signal: Option<Signal>,
}

fn parse_from(
    mode: Mode,
    args: Vec<OsString>,
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<Parsed, String> {
    use lexopt::prelude::*;

    let args = match mode {
        Mode::Shim => args,
        Mode::Tini | Mode::DumbInit => match crate::dropin::translate(mode, args, &env)? {
            crate::dropin::Translated::Run(args) => args,
            crate::dropin::Translated::Help => return Ok(Parsed::Help),
            crate::dropin::Translated::Version => return Ok(Parsed::Version),
            crate::dropin::Translated::License => return Ok(Parsed::License),
        },
    };
    let mut g = Given::default();
    let mut command = Vec::new();
    let mut p = lexopt::Parser::from_args(args);
    // Option names for messages: "--grace" whether given as -g or --grace.
    fn text(p: &mut lexopt::Parser, opt: &str) -> Result<String, String> {
        let v = p.value().map_err(|e| e.to_string())?;
        v.into_string()
            .map_err(|v| format!("invalid value {v:?} for '{opt}': not UTF-8"))
    }
    let bad = |opt: &str, v: &str, why: String| format!("invalid value '{v}' for '{opt}': {why}");
    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        match arg {
            // Set by the drop-in front ends (see `dropin`), not documented.
            Long("peer-stopping") => g.peer_stopping = true,
            Long("subreaper") => g.subreaper = true,
            Long("warn-on-reap") => g.warn_on_reap = true,
            Long("stop-on-job-control") => g.stop_on_job_control = true,
            Short('g') | Long("grace") => {
                let v = text(&mut p, "--grace")?;
                g.grace = Some(parse_duration(&v).map_err(|e| bad("--grace", &v, e))?);
            }
            Short('r') | Long("rewrite") => {
                let v = text(&mut p, "--rewrite")?;
                g.rewrite
                    .push(parse_rewrite(&v).map_err(|e| bad("--rewrite", &v, e))?);
            }
            Long("single-child") => g.single_child = true,
            Long("events") => {
                let v = p.value().map_err(|e| e.to_string())?;
                g.events = Some(parse_events(v).map_err(|(v, e)| bad("--events", &v, e))?);
            }
            Long("termination-log") => {
                let v = p.value().map_err(|e| e.to_string())?;
                if v.is_empty() {
                    return Err("invalid value '' for '--termination-log': empty path".into());
                }
                g.termination_log = Some(PathBuf::from(v));
            }
            Long("no-subreaper") => g.no_subreaper = true,
            Long("notify") => g.notify = true,
            Long("notify-access") => {
                let v = text(&mut p, "--notify-access")?;
                g.notify_access =
                    Some(parse_access(&v).map_err(|e| bad("--notify-access", &v, e))?);
            }
            Long("ready-file") => {
                let v = p.value().map_err(|e| e.to_string())?;
                if v.is_empty() {
                    return Err("invalid value '' for '--ready-file': empty path".into());
                }
                g.ready_file = Some(PathBuf::from(v));
            }
            Long("watchdog") => {
                let v = text(&mut p, "--watchdog")?;
                g.watchdog = Some(parse_period(&v).map_err(|e| bad("--watchdog", &v, e))?);
            }
            Long("watchdog-signal") => {
                let v = text(&mut p, "--watchdog-signal")?;
                g.watchdog_signal =
                    Some(Signal::parse(&v).map_err(|e| bad("--watchdog-signal", &v, e))?);
            }
            Long("parent-death") => {
                let v = text(&mut p, "--parent-death")?;
                g.parent_death =
                    Some(parse_parent_death(&v).map_err(|e| bad("--parent-death", &v, e))?);
            }
            Short('e') | Long("success-exit") => {
                let v = text(&mut p, "--success-exit")?;
                g.success_exit
                    .push(parse_code(&v).map_err(|e| bad("--success-exit", &v, e))?);
            }
            Short('v') => g.verbose = g.verbose.saturating_add(1),
            Short('q') => g.quiet = true,
            Short('h') | Long("help") => return Ok(Parsed::Help),
            Short('V') | Long("version") => return Ok(Parsed::Version),
            Value(program) => {
                // Everything from COMMAND on is the app's, `--` included.
                command.push(program);
                command.extend(p.raw_args().map_err(|e| e.to_string())?);
                break;
            }
            other => return Err(other.unexpected().to_string()),
        }
    }
    if command.is_empty() {
        return Err("missing COMMAND to run (shim [OPTIONS] [--] COMMAND [ARG]...)".into());
    }
    from_env(g, command, &env).map(|c| Parsed::Run(Box::new(c)))
}

/// Fills in what the command line left unset from the environment.
fn from_env(
    g: Given,
    command: Vec<OsString>,
    env: &impl Fn(&str) -> Option<OsString>,
) -> Result<Config, String> {
    // A variable's value as UTF-8, or a usage error naming it.
    let var = |name: &str| -> Result<Option<String>, String> {
        env(name)
            .map(|v| {
                v.into_string()
                    .map_err(|v| format!("invalid {name} {v:?}: not UTF-8"))
            })
            .transpose()
    };
    let bad = |name: &str, v: &str, why: String| format!("invalid {name} '{v}': {why}");
    // A comma list: each item parsed, the first bad one named.
    fn list<T>(name: &str, v: &str, f: fn(&str) -> Result<T, String>) -> Result<Vec<T>, String> {
        v.split(',')
            .filter(|item| !item.trim().is_empty())
            .map(|item| f(item).map_err(|e| format!("invalid {name} '{item}': {e}")))
            .collect()
    }
    let flag = |name: &str| -> Result<bool, String> { Ok(var(name)?.is_some_and(|v| truthy(&v))) };

    let given_grace = match (g.grace, var("SHIM_GRACE")?) {
        (Some(d), _) => Some(d),
        (None, Some(v)) => Some(parse_duration(&v).map_err(|e| bad("SHIM_GRACE", &v, e))?),
        (None, None) => None,
    };
    // The drop-in modes stop as their peers do: a stop request is forwarded
    // and the runtime's own timeout decides; leftovers after the main child
    // get a second, so a container ends about as soon as with the peer.
    let (grace, leftover_grace) = match (given_grace, g.peer_stopping) {
        (Some(g), _) => (Some(g), g),
        (None, false) => {
            let g = parse_duration(DEFAULT_GRACE).expect("the default parses");
            (Some(g), g)
        }
        (None, true) => (None, DROP_IN_LEFTOVER_GRACE),
    };
    let mut rewrite = match (g.rewrite.is_empty(), var("SHIM_REWRITE")?) {
        (true, Some(v)) => list("SHIM_REWRITE", &v, parse_rewrite)?,
        _ => g.rewrite,
    };
    let events = match (g.events, env("SHIM_EVENTS")) {
        (Some(e), _) => e,
        (None, Some(v)) => parse_events(v).map_err(|(v, e)| bad("SHIM_EVENTS", &v, e))?,
        (None, None) => EventsDest::Fd(libc::STDERR_FILENO),
    };
    // Paths are made absolute now: the shim leaves its working directory for
    // / once the app has started, and writes these later.
    let events = match events {
        EventsDest::Path(p) => EventsDest::Path(absolute(p)),
        other => other,
    };
    // The option, else a non-empty variable; made absolute.
    let path = |given: Option<PathBuf>, name: &str| {
        given
            .or_else(|| env(name).filter(|v| !v.is_empty()).map(PathBuf::from))
            .map(absolute)
    };
    let termination_log = path(g.termination_log, "SHIM_TERMINATION_LOG");
    let parent_death = match (g.parent_death, var("SHIM_PARENT_DEATH")?) {
        (Some(p), _) => p,
        (None, Some(v)) => parse_parent_death(&v).map_err(|e| bad("SHIM_PARENT_DEATH", &v, e))?,
        (None, None) => Some(Signal::TERM),
    };
    let success_exit = match (g.success_exit.is_empty(), var("SHIM_SUCCESS_EXIT")?) {
        (true, Some(v)) => list("SHIM_SUCCESS_EXIT", &v, parse_code)?,
        _ => g.success_exit,
    };
    let log_level = match (g.quiet, g.verbose) {
        (true, _) => Level::Error,
        (false, 1) => Level::Info,
        (false, 2) => Level::Debug,
        (false, 3..) => Level::Trace,
        (false, 0) => match var("SHIM_LOG")? {
            Some(v) => Level::parse(&v).ok_or_else(|| {
                bad(
                    "SHIM_LOG",
                    &v,
                    "expected off, error, warn, info, debug or trace".into(),
                )
            })?,
            None => Level::Warn,
        },
    };
    let single_child = g.single_child || flag("SHIM_SINGLE_CHILD")?;
    if g.stop_on_job_control {
        // dumb-init's default; rules given by the user come later and win.
        let stops = [Signal::TSTP, Signal::TTIN, Signal::TTOU];
        rewrite.splice(0..0, stops.map(|s| (s, Some(Signal::STOP))));
    }
    let ready_file = path(g.ready_file, "SHIM_READY_FILE");
    let watchdog = match (g.watchdog, var("SHIM_WATCHDOG")?) {
        (Some(d), _) => Some(d),
        (None, Some(v)) => Some(parse_period(&v).map_err(|e| bad("SHIM_WATCHDOG", &v, e))?),
        (None, None) => None,
    };
    let watchdog_signal = match (g.watchdog_signal, var("SHIM_WATCHDOG_SIGNAL")?) {
        (Some(s), _) => s,
        (None, Some(v)) => Signal::parse(&v).map_err(|e| bad("SHIM_WATCHDOG_SIGNAL", &v, e))?,
        (None, None) => Signal::ABRT,
    };
    let notify_access = match (g.notify_access, var("SHIM_NOTIFY_ACCESS")?) {
        (Some(a), _) => a,
        (None, Some(v)) => parse_access(&v).map_err(|e| bad("SHIM_NOTIFY_ACCESS", &v, e))?,
        (None, None) => Access::Main,
    };
    let notify = (g.notify || flag("SHIM_NOTIFY")? || ready_file.is_some() || watchdog.is_some())
        .then_some(notify_access);
    Ok(Config {
        grace,
        leftover_grace,
        rewrite,
        single_child,
        events,
        termination_log,
        subreaper: match (g.subreaper, g.no_subreaper) {
            (true, _) => true,
            (false, true) => false,
            _ => !flag("SHIM_NO_SUBREAPER")?,
        },
        parent_death,
        success_exit,
        log_level,
        warn_on_reap: g.warn_on_reap,
        notify,
        ready_file,
        watchdog,
        watchdog_signal,
        command,
    })
}

/// `path` made absolute against the working directory (as given, if that
/// cannot be read).
fn absolute(path: PathBuf) -> PathBuf {
    std::path::absolute(&path).unwrap_or(path)
}

/// A boolean variable is true unless empty, 0, false, no, off, n or f.
pub fn truthy(v: &str) -> bool {
    let v = v.trim().to_ascii_lowercase();
    !matches!(v.as_str(), "" | "0" | "false" | "no" | "off" | "n" | "f")
}

fn parse_code(text: &str) -> Result<u8, String> {
    text.trim()
        .parse()
        .map_err(|_| "not an exit code from 0 to 255".to_string())
}

/// `500ms`, `10s`, `2m`, `1h 30m`, or bare seconds `10` / `1.5`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if let Ok(secs) = t.parse::<f64>() {
        return Duration::try_from_secs_f64(secs)
            .map_err(|_| "expected a duration that is not negative or too large".into());
    }
    humantime::parse_duration(t)
        .map_err(|_| "expected a duration like 500ms, 10s, 2m or 1m30s".into())
}

/// `FROM:TO`, each a signal name or number; `TO` of 0 drops `FROM`.
fn parse_rewrite(text: &str) -> Result<(Signal, Option<Signal>), String> {
    let (from, to) = text
        .split_once(':')
        .ok_or_else(|| format!("'{text}' is not FROM:TO"))?;
    let from = Signal::parse(from)?;
    if matches!(from, Signal::KILL | Signal::STOP) {
        return Err(format!(
            "{} cannot be caught, so it cannot be rewritten",
            from.name()
        ));
    }
    let to = if to.trim() == "0" {
        None
    } else {
        Some(Signal::parse(to)?)
    };
    Ok((from, to))
}

/// `stderr`, `stdout`, `fd:N` (an open descriptor), `off`, or a file path,
/// which may be any bytes. Errors carry the value as text for the message.
fn parse_events(value: OsString) -> Result<EventsDest, (String, String)> {
    let text = value.to_string_lossy().into_owned();
    match text.as_str() {
        "off" => Ok(EventsDest::Off),
        "stderr" => Ok(EventsDest::Fd(libc::STDERR_FILENO)),
        "stdout" => Ok(EventsDest::Fd(libc::STDOUT_FILENO)),
        "" => Err((text, "the events destination is empty".into())),
        _ => match text.strip_prefix("fd:") {
            Some(n) => {
                let Some(fd) = n.parse::<i32>().ok().filter(|fd| *fd >= 0) else {
                    let why = format!("'{n}' is not a file descriptor number");
                    return Err((text, why));
                };
                if !crate::output::is_open(fd) {
                    return Err((text, format!("file descriptor {fd} is not open")));
                }
                Ok(EventsDest::Fd(fd))
            }
            // A path must say it is one: a mistyped keyword (`stdrr`) must
            // not quietly become a file in the working directory.
            None if value.as_encoded_bytes().contains(&b'/') => {
                Ok(EventsDest::Path(PathBuf::from(value)))
            }
            None => Err((
                text,
                "expected stderr, stdout, fd:N, off, or a file path with a '/' (./events.jsonl)"
                    .into(),
            )),
        },
    }
}

fn parse_access(text: &str) -> Result<Access, String> {
    match text.trim() {
        "main" => Ok(Access::Main),
        "all" => Ok(Access::All),
        _ => Err("expected main or all".into()),
    }
}

/// A watchdog period: a duration, not zero.
fn parse_period(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d.is_zero() {
        return Err("a watchdog period must be more than zero".into());
    }
    Ok(d)
}

fn parse_parent_death(text: &str) -> Result<Option<Signal>, String> {
    if text.trim().eq_ignore_ascii_case("off") {
        Ok(None)
    } else {
        Signal::parse(text).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The number delivered for signal `n` as received; 0 when dropped.
    fn rw(c: &Config, n: i32) -> i32 {
        c.rewrite(Signal::new(n).unwrap()).map_or(0, Signal::number)
    }

    fn sig(n: i32) -> Option<Signal> {
        Signal::new(n)
    }

    #[test]
    fn durations_take_units_or_bare_seconds() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("NaN").is_err());
    }

    #[test]
    fn rewrites_take_names_numbers_and_zero() {
        assert_eq!(
            parse_rewrite("TERM:QUIT"),
            Ok((Signal::TERM, Some(Signal::QUIT)))
        );
        assert_eq!(parse_rewrite("SIGHUP:10"), Ok((Signal::HUP, sig(10))));
        assert_eq!(parse_rewrite("int:0"), Ok((Signal::INT, None)));
        assert!(parse_rewrite("KILL:TERM").is_err());
        assert!(parse_rewrite("TERM").is_err());
        assert!(parse_rewrite("TERM:BOGUS").is_err());
    }

    #[test]
    fn events_destinations() {
        let ev = |s: &str| parse_events(s.into());
        assert_eq!(ev("off"), Ok(EventsDest::Off));
        assert_eq!(ev("stdout"), Ok(EventsDest::Fd(1)));
        assert_eq!(ev("fd:2"), Ok(EventsDest::Fd(2)));
        assert!(ev("fd:987654").is_err());
        assert!(ev("fd:x").is_err());
        assert!(ev("").is_err());
        assert_eq!(ev("/tmp/e.log"), Ok(EventsDest::Path("/tmp/e.log".into())));
        assert_eq!(ev("./e.log"), Ok(EventsDest::Path("./e.log".into())));
        assert!(ev("stdrr").is_err(), "a mistyped keyword is not a file");
        assert!(ev("bogus:1").is_err());
    }

    fn run(args: &[&str], env: &[(&str, &str)]) -> Result<Config, String> {
        run_as(Mode::Shim, args, env)
    }

    fn run_as(mode: Mode, args: &[&str], env: &[(&str, &str)]) -> Result<Config, String> {
        let args = args.iter().map(OsString::from).collect();
        let lookup = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.into());
        match parse_from(mode, args, lookup)? {
            Parsed::Run(c) => Ok(*c),
            other => Err(format!("{other:?}")),
        }
    }

    #[test]
    fn the_mode_comes_from_the_name_the_binary_was_invoked_under() {
        let m = |s: &str| Mode::from_argv0(Some(std::ffi::OsStr::new(s)));
        assert_eq!(m("/usr/bin/tini"), Mode::Tini);
        assert_eq!(m("tini-static"), Mode::Tini);
        assert_eq!(m("/usr/bin/dumb-init"), Mode::DumbInit);
        assert_eq!(m("/shim"), Mode::Shim);
        assert_eq!(Mode::from_argv0(None), Mode::Shim);
    }

    #[test]
    fn tini_mode_takes_tinis_flags_and_defaults() {
        let c = run_as(Mode::Tini, &["-s", "-w", "-e", "3", "-vv", "--", "a"], &[]).unwrap();
        assert!(c.single_child, "tini signals the child alone without -g");
        assert!(c.warn_on_reap && c.subreaper);
        assert_eq!(c.parent_death, None);
        assert_eq!(c.success_exit, [3]);
        assert_eq!(c.log_level, Level::Debug);
        let c = run_as(
            Mode::Tini,
            &["-g", "-p", "SIGKILL", "--grace", "2s", "a"],
            &[],
        )
        .unwrap();
        assert!(!c.single_child);
        assert_eq!(c.parent_death, Some(Signal::KILL));
        assert_eq!(c.grace, Some(Duration::from_secs(2)));
        let env = [("TINI_KILL_PROCESS_GROUP", "1"), ("TINI_VERBOSITY", "3")];
        let c = run_as(Mode::Tini, &["a"], &env).unwrap();
        assert!(!c.single_child);
        assert_eq!(c.log_level, Level::Debug);
        assert!(run_as(Mode::Tini, &["a"], &[("TINI_VERBOSITY", "x")]).is_err());
        // -s and TINI_SUBREAPER win over SHIM_NO_SUBREAPER; it alone turns it off.
        let no = [("SHIM_NO_SUBREAPER", "1")];
        assert!(!run_as(Mode::Tini, &["a"], &no).unwrap().subreaper);
        assert!(run_as(Mode::Tini, &["-s", "a"], &no).unwrap().subreaper);
        let both = [("SHIM_NO_SUBREAPER", "1"), ("TINI_SUBREAPER", "")];
        assert!(run_as(Mode::Tini, &["a"], &both).unwrap().subreaper);
    }

    #[test]
    fn dumb_init_mode_takes_dumb_inits_flags_and_defaults() {
        let c = run_as(Mode::DumbInit, &["-r", "15:3", "-r", "TTIN:0", "a"], &[]).unwrap();
        assert!(!c.single_child, "dumb-init signals the group");
        assert_eq!(rw(&c, 15), 3);
        // Its default job-control rewrites, unless a rule of the user's says otherwise.
        assert_eq!((rw(&c, 20), rw(&c, 21), rw(&c, 22)), (19, 0, 19));
        assert_eq!(c.parent_death, None);
        let c = run_as(Mode::DumbInit, &["-c", "--verbose", "a"], &[]).unwrap();
        assert!(c.single_child);
        assert_eq!(rw(&c, 20), 20, "no job-control rewrites with -c");
        assert_eq!(c.log_level, Level::Debug);
        let env = [("DUMB_INIT_SETSID", "0"), ("DUMB_INIT_DEBUG", "1")];
        let c = run_as(Mode::DumbInit, &["a"], &env).unwrap();
        assert!(c.single_child);
        assert_eq!(c.log_level, Level::Debug);
        assert!(run_as(Mode::DumbInit, &["-w", "a"], &[]).is_err());
    }

    #[test]
    fn the_drop_in_modes_have_no_grace_unless_given_and_a_second_for_leftovers() {
        for mode in [Mode::Tini, Mode::DumbInit] {
            let c = run_as(mode, &["a"], &[]).unwrap();
            assert_eq!((c.grace, c.leftover_grace), (None, Duration::from_secs(1)));
            let c = run_as(mode, &["a"], &[("SHIM_GRACE", "3s")]).unwrap();
            let three = Duration::from_secs(3);
            assert_eq!((c.grace, c.leftover_grace), (Some(three), three));
        }
        let c = run(&["a"], &[]).unwrap();
        assert_eq!(c.grace, Some(Duration::from_secs(8)));
        assert_eq!(c.leftover_grace, Duration::from_secs(8));
    }

    #[test]
    fn the_command_starts_at_the_first_value_and_keeps_everything_after_it() {
        let c = run(&["-vv", "-g5", "ls", "-la", "--", "x"], &[]).unwrap();
        assert_eq!(c.command, ["ls", "-la", "--", "x"]);
        assert_eq!(c.grace, Some(Duration::from_secs(5)));
        assert_eq!(c.log_level, Level::Debug);
        let c = run(&["--grace=1s", "--", "--weird"], &[]).unwrap();
        assert_eq!(c.command, ["--weird"]);
    }

    #[test]
    fn usage_errors_name_the_problem() {
        for (args, env, needle) in [
            (&["--bogus", "x"][..], &[][..], "--bogus"),
            (&[], &[], "missing COMMAND"),
            (&["--grace", "x", "a"], &[], "--grace"),
            (&["a"], &[("SHIM_GRACE", "soon")], "SHIM_GRACE"),
            (
                &["a"],
                &[("SHIM_REWRITE", "TERM:QUIT,FOO:1")],
                "SHIM_REWRITE 'FOO:1'",
            ),
            (&["-e", "256", "a"], &[], "--success-exit"),
            (&["a"], &[("SHIM_LOG", "loud")], "SHIM_LOG"),
            (&["--grace"], &[], "--grace"),
        ] {
            let err = run(args, env).unwrap_err();
            assert!(err.contains(needle), "{args:?} {env:?}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }

    #[test]
    fn options_win_over_the_environment_and_lists_split_on_commas() {
        let env = [
            ("SHIM_GRACE", "3s"),
            ("SHIM_SUCCESS_EXIT", "3, 4"),
            ("SHIM_REWRITE", "TERM:QUIT,INT:0"),
            ("SHIM_SINGLE_CHILD", "1"),
            ("SHIM_NO_SUBREAPER", "off"),
            ("SHIM_PARENT_DEATH", "off"),
        ];
        let c = run(&["a"], &env).unwrap();
        assert_eq!(c.grace, Some(Duration::from_secs(3)));
        assert_eq!(c.success_exit, [3, 4]);
        assert_eq!((rw(&c, 15), rw(&c, 2), rw(&c, 1)), (3, 0, 1));
        assert!(c.single_child && c.subreaper);
        assert_eq!(c.parent_death, None);
        let c = run(
            &[
                "-g",
                "1s",
                "-e",
                "9",
                "-r",
                "HUP:USR1",
                "--parent-death",
                "INT",
                "a",
            ],
            &env,
        )
        .unwrap();
        assert_eq!(c.grace, Some(Duration::from_secs(1)));
        assert_eq!(c.success_exit, [9]);
        assert_eq!((rw(&c, 15), rw(&c, 1)), (15, 10));
        assert_eq!(c.parent_death, Some(Signal::INT));
    }
}
