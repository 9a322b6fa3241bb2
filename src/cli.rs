//! Command line and environment: every value is validated here, so a bad one
//! is a usage error (exit 2, one line naming it) before anything is spawned.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::FalseyValueParser;
use clap::{ArgAction, CommandFactory, Parser, error::ErrorKind};
use tracing::level_filters::LevelFilter;

use crate::signals;

/// The exit code of a usage error.
pub const USAGE_ERROR: i32 = 2;

/// Default grace period: long enough for an app to shut down cleanly, short
/// enough that the shim escalates and reports before `docker stop` (10 s)
/// and Kubernetes (30 s by default) kill it.
pub const DEFAULT_GRACE: &str = "8s";

#[derive(Parser, Debug)]
#[command(
    name = "shim",
    version,
    about = "A tiny PID 1: forwards signals, reaps zombies, stops with a grace period, reports every exit as a JSON line.",
    override_usage = "shim [OPTIONS] [--] COMMAND [ARG]...\n       shim install DEST",
    after_help = "Exit code: the app's code, 128+N when signal N killed it, 126 when COMMAND cannot be run, 127 when it is not found, 2 for a usage error."
)]
struct Args {
    /// Time from the first stop request to SIGKILL of everything left (500ms, 10s, 2m, or bare seconds)
    #[arg(short = 'g', long, value_name = "DUR", env = "SHIM_GRACE", default_value = DEFAULT_GRACE, value_parser = parse_duration)]
    grace: Duration,

    /// Deliver TO instead of FROM (TERM:QUIT); TO of 0 drops FROM. Repeatable
    #[arg(short = 'r', long, value_name = "FROM:TO", env = "SHIM_REWRITE", value_delimiter = ',', value_parser = parse_rewrite)]
    rewrite: Vec<(i32, i32)>,

    /// Forward signals to the child's pid only, not its process group
    #[arg(long, env = "SHIM_SINGLE_CHILD", value_parser = FalseyValueParser::new())]
    single_child: bool,

    /// Where exit events go: stderr, stdout, fd:N, a file path (appended), or off
    #[arg(long, value_name = "DEST", env = "SHIM_EVENTS", default_value = "stderr", value_parser = parse_events)]
    events: EventsDest,

    /// Also write the main child's final exit event to PATH (overwritten)
    #[arg(long, value_name = "PATH", env = "SHIM_TERMINATION_LOG")]
    termination_log: Option<PathBuf>,

    /// When not PID 1, do not register as child subreaper
    #[arg(long, env = "SHIM_NO_SUBREAPER", value_parser = FalseyValueParser::new())]
    no_subreaper: bool,

    /// When not PID 1 and the shim's parent dies, act as if SIG was received (or off)
    #[arg(long, value_name = "SIG|off", env = "SHIM_PARENT_DEATH", default_value = "TERM", value_parser = parse_parent_death)]
    parent_death: ParentDeath,

    /// Map the shim's exit code CODE to 0. Repeatable
    #[arg(short = 'e', long, value_name = "CODE", env = "SHIM_SUCCESS_EXIT", value_delimiter = ',', value_parser = clap::value_parser!(u8))]
    success_exit: Vec<u8>,

    /// More diagnostics (-v info, -vv debug, -vvv trace); SHIM_LOG sets a level
    #[arg(short = 'v', action = ArgAction::Count, conflicts_with = "quiet")]
    verbose: u8,

    /// Errors only
    #[arg(short = 'q')]
    quiet: bool,

    /// The program to run, and its arguments
    #[arg(value_name = "COMMAND", trailing_var_arg = true)]
    command: Vec<OsString>,
}

/// Where exit events are written.
#[derive(Debug, Clone, PartialEq)]
pub enum EventsDest {
    Off,
    Fd(i32),
    Path(PathBuf),
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct ParentDeath(Option<i32>);

/// Everything the supervisor needs, validated.
#[derive(Debug)]
pub struct Config {
    pub grace: Duration,
    /// `rewrite[signo]`: the signal to deliver instead, 0 to drop it.
    rewrite: Vec<(i32, i32)>,
    pub single_child: bool,
    pub events: EventsDest,
    pub termination_log: Option<PathBuf>,
    pub subreaper: bool,
    pub parent_death: Option<i32>,
    pub success_exit: Vec<u8>,
    pub log_level: LevelFilter,
    pub command: Vec<OsString>,
}

impl Config {
    /// The signal to deliver for `signo` as received; 0 drops it. The last
    /// rule for a signal wins, so a command-line rule overrides nothing else.
    pub fn rewrite(&self, signo: i32) -> i32 {
        self.rewrite
            .iter()
            .rev()
            .find(|(from, _)| *from == signo)
            .map_or(signo, |(_, to)| *to)
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

/// Parses the arguments (without `argv[0]`'s special meanings) and the
/// environment. On a usage error, prints it and exits 2; `--help` and
/// `--version` print and exit 0.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Config {
    let args = match Args::try_parse_from(args) {
        Ok(a) => a,
        Err(e) => {
            let code = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
                _ => USAGE_ERROR,
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    if args.command.is_empty() {
        usage_error("missing COMMAND to run (shim [OPTIONS] [--] COMMAND [ARG]...)");
    }
    let log_level = match (args.quiet, args.verbose) {
        (true, _) => LevelFilter::ERROR,
        (false, 1) => LevelFilter::INFO,
        (false, 2) => LevelFilter::DEBUG,
        (false, 3..) => LevelFilter::TRACE,
        (false, 0) => match std::env::var("SHIM_LOG") {
            Ok(v) => v.parse().unwrap_or_else(|_| {
                usage_error(&format!(
                    "invalid SHIM_LOG '{v}': expected off, error, warn, info, debug or trace"
                ))
            }),
            Err(_) => LevelFilter::WARN,
        },
    };
    Config {
        grace: args.grace,
        rewrite: args.rewrite,
        single_child: args.single_child,
        events: args.events,
        termination_log: args.termination_log,
        subreaper: !args.no_subreaper,
        parent_death: args.parent_death.0,
        success_exit: args.success_exit,
        log_level,
        command: args.command,
    }
}

/// Prints `msg` as clap prints its own errors (first line names the problem),
/// then exits 2.
pub fn usage_error(msg: &str) -> ! {
    let _ = Args::command().error(ErrorKind::InvalidValue, msg).print();
    std::process::exit(USAGE_ERROR);
}

/// `500ms`, `10s`, `2m`, `1h 30m`, or bare seconds `10` / `1.5`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if let Ok(secs) = t.parse::<f64>() {
        return Duration::try_from_secs_f64(secs)
            .map_err(|_| format!("'{text}' is not a duration (negative or too large)"));
    }
    humantime::parse_duration(t)
        .map_err(|e| format!("'{text}' is not a duration like 500ms, 10s or 2m ({e})"))
}

/// `FROM:TO`, each a signal name or number; `TO` of 0 drops `FROM`.
fn parse_rewrite(text: &str) -> Result<(i32, i32), String> {
    let (from, to) = text
        .split_once(':')
        .ok_or_else(|| format!("'{text}' is not FROM:TO"))?;
    let from = signals::parse(from)?;
    if matches!(from, libc::SIGKILL | libc::SIGSTOP) {
        return Err(format!(
            "{} cannot be caught, so it cannot be rewritten",
            signals::name(from)
        ));
    }
    let to = if to.trim() == "0" {
        0
    } else {
        signals::parse(to)?
    };
    Ok((from, to))
}

fn parse_events(text: &str) -> Result<EventsDest, String> {
    match text {
        "off" => Ok(EventsDest::Off),
        "stderr" => Ok(EventsDest::Fd(libc::STDERR_FILENO)),
        "stdout" => Ok(EventsDest::Fd(libc::STDOUT_FILENO)),
        "" => Err("the events destination is empty".into()),
        _ => match text.strip_prefix("fd:") {
            Some(n) => {
                let fd: i32 = n
                    .parse()
                    .ok()
                    .filter(|fd| *fd >= 0)
                    .ok_or_else(|| format!("'{n}' is not a file descriptor number"))?;
                // SAFETY: F_GETFD only queries the descriptor table.
                if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
                    return Err(format!("file descriptor {fd} is not open"));
                }
                Ok(EventsDest::Fd(fd))
            }
            None => Ok(EventsDest::Path(PathBuf::from(text))),
        },
    }
}

fn parse_parent_death(text: &str) -> Result<ParentDeath, String> {
    if text.eq_ignore_ascii_case("off") {
        Ok(ParentDeath(None))
    } else {
        signals::parse(text).map(|s| ParentDeath(Some(s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(parse_rewrite("TERM:QUIT"), Ok((15, 3)));
        assert_eq!(parse_rewrite("SIGHUP:10"), Ok((1, 10)));
        assert_eq!(parse_rewrite("int:0"), Ok((2, 0)));
        assert!(parse_rewrite("KILL:TERM").is_err());
        assert!(parse_rewrite("TERM").is_err());
        assert!(parse_rewrite("TERM:BOGUS").is_err());
    }

    #[test]
    fn events_destinations() {
        assert_eq!(parse_events("off"), Ok(EventsDest::Off));
        assert_eq!(parse_events("stdout"), Ok(EventsDest::Fd(1)));
        assert_eq!(parse_events("fd:2"), Ok(EventsDest::Fd(2)));
        assert!(parse_events("fd:987654").is_err());
        assert!(parse_events("fd:x").is_err());
        assert_eq!(
            parse_events("/tmp/e.log"),
            Ok(EventsDest::Path("/tmp/e.log".into()))
        );
    }
}
