use std::process::ExitCode;

use clap::Parser;
use fetchbench::{Cli, report::EXIT_USAGE};

fn main() -> ExitCode {
    match fetchbench::run(Cli::parse()) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("fetchbench: error: {err:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}
