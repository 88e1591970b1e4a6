//! The `fetchbench` binary: parses the command line, runs it ([`fetchbench::run`]), and turns
//! a setup error into its message on stderr and exit code 2.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use fetchbench::{Cli, EXIT_USAGE};

fn main() -> ExitCode {
    match fetchbench::run(Cli::parse()) {
        Ok(code) => code,
        Err(err) => {
            // Not eprintln!: it panics when stderr is closed or full.
            let _ = writeln!(std::io::stderr().lock(), "fetchbench: error: {err:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}
