//! `accord`: the user's command-line tool.
//!
//! Today it verifies one piece of hardware evidence offline
//! (`accord evidence verify`); setting, verifying and recovering a
//! deployment arrive with the coordinator services.

mod evidence;
mod input;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// accord: a confidential-deployment coordinator.
#[derive(Debug, Parser)]
#[command(name = "accord", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Work with hardware evidence (AMD SEV-SNP reports, Intel TDX quotes).
    Evidence {
        #[command(subcommand)]
        command: evidence::EvidenceCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Evidence { command } => evidence::run(command),
    }
}
