//! `accord`: the user's command-line tool.
//!
//! Today it verifies one piece of hardware evidence offline
//! (`accord evidence verify`), makes owner keys (`accord keys`), builds and
//! checks manifests from Kubernetes resources (`accord manifest`), builds
//! init-data annotations (`accord policy annotate`) and signs manifest
//! updates offline (`accord sign`); setting,
//! verifying and recovering a deployment arrive with the coordinator
//! services.

use std::process::ExitCode;

use accord_cli::{evidence, keys, manifest_cmd, sign};
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
    /// Make owner keys (workload owner: Ed25519 / P-384; seed-share owner: X25519).
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Build and check manifests (manifest.json) from Kubernetes resources.
    Manifest {
        #[command(subcommand)]
        command: manifest_cmd::ManifestCommand,
    },
    /// Work with Kata init-data policies.
    Policy {
        #[command(subcommand)]
        command: manifest_cmd::PolicyCommand,
    },
    /// Sign a manifest update offline (workload owner): --prepare writes a
    /// sign request, --key signs it.
    Sign(sign::SignArgs),
    /// Measure a coordinator under load (simulated workloads, INSECURE).
    Bench {
        #[command(subcommand)]
        command: accord_cli::bench::BenchCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Evidence { command } => evidence::run(command),
        Command::Keys { command } => keys::run(command),
        Command::Manifest { command } => manifest_cmd::run(command),
        Command::Policy { command } => manifest_cmd::run_policy(command),
        Command::Sign(args) => sign::run(args),
        Command::Bench { command } => accord_cli::bench::run(command),
    }
}
