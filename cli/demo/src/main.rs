//! `accord-demo`: the demo of a whole deployment (`accord-demo demo`, with
//! `--replicas N` as replica processes) and the load benchmarks
//! (`accord-demo bench`), all with the INSECURE simulated TEE. The user's
//! tool is `accord` (`cli/`); this binary is for trying accord out and
//! measuring it, never for a real deployment.

use std::process::ExitCode;

use accord_demo::{bench, demo, replica};
use clap::{Parser, Subcommand};

/// accord-demo: try out and measure accord with the INSECURE simulated
/// TEE (never for a real deployment; the user's tool is `accord`).
#[derive(Debug, Parser)]
#[command(name = "accord-demo", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a whole deployment in this process with the INSECURE simulated
    /// TEE: coordinator, keys, manifest, set, workloads, mutual TLS,
    /// verify, a signed update, the history.
    Demo(demo::DemoArgs),
    /// One replica of `accord-demo demo --replicas N` (its agent and shim
    /// in one process); started by the demo, not by people.
    #[command(name = "demo-replica", hide = true)]
    DemoReplica(replica::ReplicaArgs),
    /// Measure a coordinator under load (simulated workloads, INSECURE).
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A replica logs like the agent and the shim it runs (info); the demo
    // and the benchmarks report on stdout and log warnings only.
    let default = match cli.command {
        Command::DemoReplica(_) => accord_log::LevelFilter::INFO,
        _ => accord_log::LevelFilter::WARN,
    };
    if let Err(err) = accord_log::init(default) {
        eprintln!("error: {err}");
        return ExitCode::from(2);
    }
    match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::DemoReplica(args) => replica::run(&args),
        Command::Bench { command } => bench::run(command),
    }
}
