//! shim: a tiny PID 1 for containers. See README.md and docs/.
//!
//! main only wires the modules together: block signals, parse, start the
//! loop, exit with its code.
//!
//! `no_main`: the C runtime calls our `main` directly, without Rust's start-up
//! code, which would open /dev/null on a closed fd 0, 1 or 2 (the app would
//! then inherit it instead of finding the descriptor closed) and ignore
//! SIGPIPE. Nothing else of it is needed: the shim installs no handlers,
//! names no threads, and takes its arguments from `argv` below.
// (Unit tests keep the test harness's own main.)
#![cfg_attr(not(test), no_main)]

use std::ffi::{CStr, OsString, c_char, c_int};
use std::os::unix::ffi::OsStrExt;

mod cli;
mod diag;
mod dropin;
mod events;
mod install;
mod memory;
mod notify;
mod output;
mod procfs;
mod reaper;
mod signals;
mod spawn;
mod supervisor;

/// The process's entry point, called by the C runtime (the unit-test build
/// keeps the harness's own `main` and leaves this unused).
#[cfg_attr(not(test), unsafe(export_name = "main"))]
#[cfg_attr(test, allow(dead_code))]
extern "C" fn c_main(argc: c_int, argv: *const *const c_char) -> c_int {
    // First of all: from here on a signal waits, pending, for the loop
    // instead of killing the shim with its default action.
    if let Err(e) = signals::block_all() {
        eprintln!("shim: error: cannot block signals: {e}");
        return 1;
    }
    let sigchld_ignored = signals::reclaim_sigchld();
    output::guard_standard_fds();

    let mut args = (0..usize::try_from(argc).unwrap_or(0)).map(|i| {
        // SAFETY: the C runtime passes argc valid, NUL-terminated strings.
        let arg = unsafe { CStr::from_ptr(*argv.add(i)) };
        std::ffi::OsStr::from_bytes(arg.to_bytes()).to_owned()
    });
    // Invoked as `tini` or `dumb-init`, the shim takes that tool's options.
    let mode = cli::Mode::from_argv0(args.next().as_deref());
    let args: Vec<OsString> = args.collect();
    if mode == cli::Mode::Shim && args.first().is_some_and(|a| a == "install") {
        std::process::exit(install::run(&args[1..]));
    }
    if mode == cli::Mode::Shim && args.first().is_some_and(|a| a == "probe") {
        std::process::exit(notify::probe(&args[1..]));
    }
    let config = cli::parse(mode, args);
    diag::set_level(config.log_level);
    std::process::exit(supervisor::run(config, sigchld_ignored));
}
