//! shim: a tiny PID 1 for containers. See README.md and the contract.
//!
//! main only wires the modules together: block signals, parse, start the
//! loop, exit with its code.

mod cli;
mod events;
mod install;
mod output;
mod reaper;
mod signals;
mod spawn;
mod supervisor;

fn main() {
    // First of all: from here on a signal waits, pending, for the loop
    // instead of killing the shim with its default action.
    if let Err(e) = signals::block_all() {
        eprintln!("error: cannot block signals: {e}");
        std::process::exit(1);
    }
    let sigchld_ignored = signals::reclaim_sigchld();
    output::guard_standard_fds();

    let mut args = std::env::args_os();
    // Invoked as `tini` or `dumb-init`, the shim takes that tool's options.
    let mode = cli::Mode::from_argv0(args.next().as_deref());
    let args: Vec<std::ffi::OsString> = args.collect();
    if mode == cli::Mode::Shim && args.first().is_some_and(|a| a == "install") {
        init_diagnostics(tracing::level_filters::LevelFilter::WARN);
        std::process::exit(install::run(&args[1..]));
    }
    let config = cli::parse(mode, args);
    init_diagnostics(config.log_level);
    std::process::exit(supervisor::run(config, sigchld_ignored));
}

/// The shim's own diagnostics: plain lines on stderr, written without ever
/// blocking (see `output`).
fn init_diagnostics(level: tracing::level_filters::LevelFilter) {
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(|| output::Diagnostics)
        .without_time()
        .init();
}
