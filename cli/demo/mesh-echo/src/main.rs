//! `accord-mesh-echo`: a mesh workload that talks mutual TLS with the
//! files accord's initializer wrote (see the library's docs).
//!
//! - `accord-mesh-echo serve --tls DIR --listen ADDR [--count N]`
//! - `accord-mesh-echo call --tls DIR --connect HOST:PORT --server-name
//!   NAME [--retry-for SECS] [--message TEXT]`
//!
//! Exit status: 0 on success; 1 if the files cannot be used or (`call`)
//! the exchange failed; 2 for bad usage.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use accord_mesh_echo::{call, client_config, connect, serve_one, server_config};
use anyhow::Context;
use clap::{Parser, Subcommand};

/// What `serve` answers as.
const WHO: &str = "accord-mesh-echo";

/// A workload of accord's mesh: talks mutual TLS (TLS 1.3) with the files
/// accord's initializer wrote into DIR/tls-config/ (certChain.pem, key.pem,
/// mesh-ca.pem). Both sides present their chain and verify the other's
/// against the mesh CA alone.
#[derive(Parser, Debug)]
#[command(name = "accord-mesh-echo", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Answer each client's line over mutual TLS: clients must present a
    /// certificate chaining to the mesh CA. One client at a time (each
    /// socket times out after 30 s). Prints one line per exchange on
    /// stdout, refused connections on stderr.
    Serve {
        /// The initializer's output directory (holds tls-config/).
        #[arg(long, value_name = "DIR")]
        tls: PathBuf,
        /// The address to listen on, e.g. 0.0.0.0:8443 (port 0: any free
        /// port; the one taken is printed).
        #[arg(long, value_name = "ADDR")]
        listen: String,
        /// Exit after N successful exchanges (default: serve forever).
        /// Refused connections do not count.
        #[arg(long, value_name = "N")]
        count: Option<u64>,
    },
    /// Send one line to a server over mutual TLS and print its answer.
    Call {
        /// The initializer's output directory (holds tls-config/).
        #[arg(long, value_name = "DIR")]
        tls: PathBuf,
        /// The server's address.
        #[arg(long, value_name = "HOST:PORT")]
        connect: String,
        /// The name the server's certificate must be for (a DNS name or
        /// IP address among its SANs).
        #[arg(long, value_name = "NAME")]
        server_name: String,
        /// Retry refused connections and names that do not resolve yet for
        /// up to SECS seconds (default 0: one attempt). TLS and
        /// certificate failures are never retried.
        #[arg(long, value_name = "SECS", default_value_t = 0)]
        retry_for: u64,
        /// The line to send.
        #[arg(long, value_name = "TEXT", default_value = "hello over mutual TLS")]
        message: String,
    },
}

fn serve(tls: &std::path::Path, listen: &str, count: Option<u64>) -> anyhow::Result<()> {
    let config = server_config(tls)?;
    let listener = TcpListener::bind(listen).with_context(|| format!("listening on {listen}"))?;
    let bound = listener.local_addr()?;
    println!(
        "listening on {bound} (mutual TLS: clients must chain to {})",
        accord_mesh_echo::files::tls_file(tls, accord_mesh_echo::files::MESH_CA).display()
    );
    let mut served = 0u64;
    while count.is_none_or(|n| served < n) {
        let tcp = match listener.accept() {
            Ok((tcp, _)) => tcp,
            Err(err) => {
                eprintln!("accept on {bound}: {err}");
                // Out of descriptors, say: do not spin.
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        match serve_one(&config, tcp, WHO) {
            Ok(exchange) => {
                served += 1;
                println!(
                    "exchange {served}: {} presented {} certificate(s) and sent {:?}",
                    exchange.peer, exchange.client_certs, exchange.line
                );
            }
            Err(err) => eprintln!("refused: {err:#}"),
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Serve { tls, listen, count } => serve(tls, listen, *count).context("serve"),
        Command::Call {
            tls,
            connect: target,
            server_name,
            retry_for,
            message,
        } => client_config(tls)
            .and_then(|config| {
                let tcp = connect(target, Duration::from_secs(*retry_for))?;
                call(&config, tcp, server_name, message)
            })
            .map(|answer| println!("{answer}"))
            .context("call"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("accord-mesh-echo {err:#}");
            ExitCode::FAILURE
        }
    }
}
