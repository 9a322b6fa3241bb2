//! The shim's own diagnostics: `shim: warning: ...` lines on stderr, written
//! through the same never-blocking output as the events (see `output`), so a
//! diagnostic and an event never share a line and a stuck stderr never
//! stalls PID 1.

use std::fmt;
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};

/// How much the shim says, least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Off,
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl Level {
    /// `off`, `error`, `warn`, `info`, `debug` or `trace`, in any case.
    pub fn parse(text: &str) -> Option<Level> {
        Some(match text.trim().to_ascii_lowercase().as_str() {
            "off" => Level::Off,
            "error" => Level::Error,
            "warn" | "warning" => Level::Warn,
            "info" => Level::Info,
            "debug" => Level::Debug,
            "trace" => Level::Trace,
            _ => return None,
        })
    }

    fn word(self) -> &'static str {
        match self {
            Level::Off => "",
            Level::Error => "error",
            Level::Warn => "warning",
            Level::Info => "info",
            Level::Debug | Level::Trace => "debug",
        }
    }
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Warn as u8);

pub fn set_level(level: Level) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

pub fn enabled(level: Level) -> bool {
    level != Level::Off && level as u8 <= LEVEL.load(Ordering::Relaxed)
}

/// Writes one diagnostic line, if its level is enabled. A diagnostic that
/// cannot be written is dropped: it must never cost the app anything.
pub fn emit(level: Level, args: fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    let mut line = format!("shim: {}: {args}", level.word());
    // One diagnostic is one line, whatever the message holds, and within
    // PIPE_BUF: a pipe shared with the app takes it whole, never torn by
    // or glued to the app's writes, and never left half-written in front of
    // the events that follow (a message may quote a 70 kB COMMAND).
    line = line.replace('\n', " ");
    if line.len() >= libc::PIPE_BUF {
        line = crate::output::shorten(&line, line.len() + 1 - libc::PIPE_BUF);
    }
    line.push('\n');
    let _ = crate::output::with_stderr(|out| out.write_line(line.as_bytes()));
}

/// Warnings that are worth saying once per run, not at every re-sweep.
#[derive(Debug, Clone, Copy)]
pub enum Once {
    Kill,
    Wait,
    Events,
}

static SAID: AtomicU32 = AtomicU32::new(0);

pub fn warn_once(key: Once, args: fmt::Arguments<'_>) {
    let bit = 1 << key as u32;
    if SAID.fetch_or(bit, Ordering::Relaxed) & bit == 0 {
        emit(Level::Warn, args);
    }
}

macro_rules! error { ($($t:tt)*) => { $crate::diag::emit($crate::diag::Level::Error, format_args!($($t)*)) } }
macro_rules! warning { ($($t:tt)*) => { $crate::diag::emit($crate::diag::Level::Warn, format_args!($($t)*)) } }
macro_rules! info { ($($t:tt)*) => { $crate::diag::emit($crate::diag::Level::Info, format_args!($($t)*)) } }
macro_rules! debug { ($($t:tt)*) => { $crate::diag::emit($crate::diag::Level::Debug, format_args!($($t)*)) } }
pub(crate) use {debug, error, info, warning};
