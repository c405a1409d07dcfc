//! One coordinator replica as a process of its own, the way
//! `accord-demo demo --replicas N` runs it (hidden command
//! `accord-demo demo-replica`): a host shim (filesystem store shared by the replicas,
//! static peers listed while their readiness probe answers, probes and
//! metrics) and the coordinator agent over it, on the INSECURE simulated
//! chip. Being a process, it can be killed with SIGKILL and restarted,
//! which is what the demo does to show peer recovery.
//!
//! Prints `demo replica: user API on ADDR, mesh API on ADDR, probes on
//! ADDR` once serving; runs until killed or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use accord_core::protocol::shim::Peer;
use accord_guest::coordinator::StoreLocation;
use accord_guest::tee::simulated::{SimulatedConfig, SimulatedSnp};
use accord_shim::channel::{self, Shim};
use accord_shim::discovery::{StaticPeer, StaticPeers};
use accord_shim::fs_store::FsStore;
use accord_shim::status::StatusBoard;
use anyhow::Context;
use clap::Args;
use tokio::sync::watch;

use accord_cli::net;

/// Arguments of the hidden `accord-demo demo-replica`.
#[derive(Clone, Debug, Args)]
pub struct ReplicaArgs {
    /// The simulated chip's directory (shared by all replicas: one
    /// measurement, one simulated root).
    #[arg(long, value_name = "DIR")]
    pub chip: PathBuf,
    /// The shared filesystem store.
    #[arg(long, value_name = "DIR")]
    pub store: PathBuf,
    /// HOST_DATA the chip reports (the coordinator policy hash, hex).
    #[arg(long, value_name = "HEX32")]
    pub host_data: String,
    /// The user API's address.
    #[arg(long, value_name = "ADDR")]
    pub user_api: String,
    /// The mesh API's address.
    #[arg(long, value_name = "ADDR")]
    pub mesh_api: String,
    /// The probes' address.
    #[arg(long, value_name = "ADDR")]
    pub probes: String,
    /// A peer: NAME=MESH_ADDR,PROBE_ADDR. Repeatable.
    #[arg(long, value_name = "NAME=MESH,PROBE")]
    pub peer: Vec<String>,
    /// The (simulated) vendor the shim fetches collateral from: the KDS
    /// and PCS base URL. Without it the shim fetches none (the simulated
    /// chip attaches its CRL).
    #[arg(long, value_name = "URL")]
    pub vendor_url: Option<String>,
}

/// Runs the replica until killed.
pub fn run(args: &ReplicaArgs) -> ExitCode {
    let result = net::runtime().and_then(|rt| rt.block_on(serve(args)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("demo replica: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn parse_peer(text: &str) -> anyhow::Result<StaticPeer> {
    let (name, rest) = text
        .split_once('=')
        .with_context(|| format!("--peer {text:?}: expected NAME=MESH_ADDR,PROBE_ADDR"))?;
    let (mesh, probe) = rest
        .split_once(',')
        .with_context(|| format!("--peer {text:?}: expected NAME=MESH_ADDR,PROBE_ADDR"))?;
    Ok(StaticPeer {
        peer: Peer {
            name: name.into(),
            mesh_api: mesh.into(),
        },
        probe: Some(probe.into()),
    })
}

/// The shim's collateral service over the (simulated) vendor at `url`,
/// its CRLs checked under the simulated `chip`'s root.
fn collateral(
    url: &str,
    chip: &SimulatedSnp,
) -> anyhow::Result<Arc<accord_shim::collateral::CollateralService>> {
    use accord_collateral::{Endpoints, Fetcher, HttpClient, HttpConfig};
    use accord_core::evidence::ReferenceValues;
    let http = HttpClient::new(HttpConfig::default())
        .map_err(|e| anyhow::anyhow!("the collateral client: {e}"))?;
    let trust = ReferenceValues {
        snp: vec![chip.reference_values()],
        ..ReferenceValues::default()
    };
    Ok(Arc::new(accord_shim::collateral::CollateralService::new(
        Fetcher::new(Some(http), Endpoints::new(url, url), None).trusting(trust),
    )))
}

async fn serve(args: &ReplicaArgs) -> anyhow::Result<()> {
    use std::io::Write;

    let host_data = accord_core::hex::decode_array::<32>(&args.host_data)
        .map_err(|e| anyhow::anyhow!("--host-data: {e}"))?;
    let chip = SimulatedSnp::open(
        &args.chip,
        &SimulatedConfig {
            host_data,
            ..SimulatedConfig::default()
        },
    )
    .map_err(|e| anyhow::anyhow!("the simulated chip: {e}"))?;
    let peers = args
        .peer
        .iter()
        .map(|p| parse_peer(p))
        .collect::<anyhow::Result<Vec<_>>>()?;

    // The shim, in this process, on an ephemeral loopback port.
    let store = FsStore::open(args.store.clone())
        .await
        .map_err(|e| anyhow::anyhow!("the store: {e}"))?;
    let board = Arc::new(StatusBoard::default());
    let shim = Arc::new(Shim {
        store,
        discovery: StaticPeers::new(peers),
        board: Arc::clone(&board),
        collateral: args
            .vendor_url
            .as_deref()
            .map(|url| collateral(url, &chip))
            .transpose()?,
    });
    let channel_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let channel_addr = channel_listener.local_addr()?.to_string();
    let probes = tokio::net::TcpListener::bind(&args.probes)
        .await
        .with_context(|| format!("binding the probes to {}", args.probes))?;
    let (_stop, shutdown) = watch::channel(false);
    tokio::spawn(channel::serve(channel_listener, shim, shutdown.clone()));
    tokio::spawn(accord_shim::http::serve(probes, board, shutdown));

    let coordinator = accord_guest::coordinator::spawn_at(
        Arc::new(chip),
        StoreLocation::Shim(channel_addr),
        &args.user_api,
        &args.mesh_api,
    )
    .await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "demo replica: user API on {}, mesh API on {}, probes on {}",
            coordinator.user_addr, coordinator.mesh_addr, args.probes
        )?;
        out.flush()?;
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    term.recv().await;
    coordinator.stop().await
}
