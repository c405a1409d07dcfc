//! `accord`: the user's command-line tool.
//!
//! Today it verifies one piece of hardware evidence offline
//! (`accord evidence verify`), makes owner keys (`accord keys`), builds and
//! checks manifests from Kubernetes resources (`accord manifest`), builds
//! init-data annotations (`accord policy annotate`), rewrites plain
//! Kubernetes YAML into attestable Kata pods with generated policies
//! (`accord generate`), signs manifest
//! updates offline (`accord sign`), sets and verifies a deployment over
//! the network (`accord set`, `accord verify`, `accord get-manifests`),
//! and recovers a restarted coordinator with seed shares
//! (`accord recover`). The demo and the load benchmarks are a binary of
//! their own, `accord-demo` (`cli/demo/`).

use std::process::ExitCode;

use accord_cli::{evidence, generate, keys, manifest_cmd, recover_cmd, set_cmd, sign, verify_cmd};
use clap::{Parser, Subcommand};

/// accord: a confidential-deployment coordinator.
#[derive(Debug, Parser)]
#[command(name = "accord", version, about, long_about = None)]
struct Cli {
    /// Show debug output on stderr (what accord connects to, attests and
    /// checks). ACCORD_LOG_LEVEL (error, warn, info, debug, trace, or
    /// TARGET=LEVEL directives) and ACCORD_LOG_FORMAT (text or json) set
    /// logging in more detail; -v raises it to at least debug.
    #[arg(short, long, global = true)]
    verbose: bool,
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
    /// Rewrite plain Kubernetes YAML into attestable Kata pods (runtime
    /// class, initializer, generated agent policy, init-data) and write
    /// the manifest.
    #[command(long_about = generate::LONG_ABOUT)]
    Generate(generate::GenerateArgs),
    /// Work with Kata init-data policies.
    Policy {
        #[command(subcommand)]
        command: manifest_cmd::PolicyCommand,
    },
    /// Sign a manifest update offline (workload owner): --prepare writes a
    /// sign request, --key signs it.
    Sign(sign::SignArgs),
    /// Set or update the coordinator's manifest (attests the coordinator
    /// first; updates are signed with --workload-owner-key or --signature).
    Set(set_cmd::SetArgs),
    /// Attest the coordinator and verify its manifest history against
    /// manifest.json and the workspace's trust state; writes verify/.
    Verify(verify_cmd::VerifyArgs),
    /// Attest the coordinator and print its manifest history.
    GetManifests(verify_cmd::VerifyArgs),
    /// Recover a restarted coordinator: each seed-share owner sends their
    /// share (k of n owners, once each).
    #[command(long_about = recover_cmd::LONG_ABOUT)]
    Recover(recover_cmd::RecoverArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(err) = init_logging(cli.verbose) {
        eprintln!("error: {err}");
        return ExitCode::from(2);
    }
    match cli.command {
        Command::Evidence { command } => evidence::run(command),
        Command::Keys { command } => keys::run(command),
        Command::Manifest { command } => manifest_cmd::run(command),
        Command::Generate(args) => generate::run(&args),
        Command::Policy { command } => manifest_cmd::run_policy(command),
        Command::Sign(args) => sign::run(args),
        Command::Set(args) => set_cmd::run(&args),
        Command::Verify(args) => verify_cmd::run_verify(&args),
        Command::GetManifests(args) => verify_cmd::run_get_manifests(&args),
        Command::Recover(args) => recover_cmd::run(&args),
    }
}

/// Logging on stderr: warnings and errors by default, debug with `-v`.
fn init_logging(verbose: bool) -> Result<(), accord_log::ConfigError> {
    use accord_log::{Config, LevelFilter, install};
    let config = Config::from_env(LevelFilter::WARN)?;
    install(if verbose {
        config.at_least(LevelFilter::DEBUG)
    } else {
        config
    });
    Ok(())
}
