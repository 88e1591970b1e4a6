//! What differs between platforms: process groups and signals (unix), with plain fallbacks.

use std::process::{Command, ExitStatus};

/// Starts the worker in a process group of its own, so that a terminal's Ctrl-C reaches the
/// parent only, which passes it on once, over the pipe (a second Ctrl-C then ends the parent
/// at once, and its workers with it, as their stdin closes).
pub fn own_process_group(command: &mut Command) -> &mut Command {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        command.process_group(0)
    }
    #[cfg(not(unix))]
    {
        command
    }
}

/// "killed by signal 9 (SIGKILL)", "exited with status 3".
pub fn describe_exit(exit: ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = exit.signal() {
            return format!("killed by signal {signal} ({})", signal_name(signal));
        }
    }
    match exit.code() {
        Some(code) => format!("exited with status {code}"),
        None => "ended".to_owned(),
    }
}

#[cfg(unix)]
fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGHUP => "SIGHUP",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGQUIT => "SIGQUIT",
        _ => "unknown signal",
    }
}
