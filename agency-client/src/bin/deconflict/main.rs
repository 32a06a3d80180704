//! `deconflict`: the duty officers' command-line tool.
//!
//! One module per subcommand, so that `register`, `check`, `alerts` ... can be added beside
//! `normalize` without touching it.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod normalize;

#[derive(Debug, Parser)]
#[command(
    name = "deconflict",
    version,
    about = "Deconfliction client for duty officers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the canonical form(s) of a selector, or of every case of a token-vectors file.
    Normalize(normalize::Args),
}

/// Exit code for input the spec rejects (clap uses the same code for bad usage).
pub(crate) const EXIT_BAD_INPUT: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Normalize(args) => normalize::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("deconflict: {err:#}");
            ExitCode::FAILURE
        }
    }
}
