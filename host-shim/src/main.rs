//! `accord-shim`: the untrusted host side of one coordinator replica.
//!
//! Serves the agent channel (storage, peer list, status reports) and the
//! probes and metrics, over the chosen storage backend and peer discovery.
//! Prints `accord-shim: agent channel on ADDR, probes on ADDR, store WHAT`
//! on stdout once listening; stops on SIGTERM or Ctrl-C.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use accord_core::protocol::shim::Peer;
use accord_shim::channel::{self, Shim};
use accord_shim::collateral::CollateralService;
use accord_shim::discovery::{Discovery, StaticPeer, StaticPeers};
use accord_shim::fs_store::FsStore;
use accord_shim::kube_discovery::KubeDiscovery;
use accord_shim::kube_store::KubeStore;
use accord_shim::status::StatusBoard;
use accord_shim::store::Store;
use anyhow::Context;
use clap::{Parser, ValueEnum};
use tokio::sync::watch;

/// accord's host shim: stores the coordinator's history, lists its peers,
/// and serves its probes and metrics. Untrusted by design: the agent
/// checks everything it returns.
#[derive(Parser, Debug)]
#[command(name = "accord-shim", version)]
struct Args {
    /// Where the agent connects (the agent's `--shim`).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9103")]
    listen: String,

    /// Where the probes (/probe/startup, /probe/liveness,
    /// /probe/readiness) and /metrics are served.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:9102")]
    probes: String,

    /// Storage backend.
    #[arg(long, value_enum, default_value_t = BackendKind::Fs)]
    backend: BackendKind,

    /// The filesystem backend's directory (shared by replicas on one
    /// host).
    #[arg(long, value_name = "DIR", default_value = "/var/lib/accord/store")]
    store: PathBuf,

    /// Peer discovery.
    #[arg(long, value_enum, default_value_t = DiscoveryKind::Static)]
    discovery: DiscoveryKind,

    /// A static peer: NAME=MESH_ADDR, or NAME=MESH_ADDR,PROBE_ADDR to list
    /// it only while its readiness probe answers 200. Repeatable.
    #[arg(long, value_name = "NAME=MESH_ADDR[,PROBE_ADDR]", value_parser = parse_peer)]
    peer: Vec<StaticPeer>,

    /// Kubernetes namespace (backend and discovery `kube`).
    #[arg(long, value_name = "NS", env = "POD_NAMESPACE")]
    namespace: Option<String>,

    /// This replica's pod name (`kube` discovery: excluded from its own
    /// peers).
    #[arg(long, value_name = "NAME", env = "POD_NAME")]
    pod_name: Option<String>,

    /// The peers' mesh API port (`kube` discovery).
    #[arg(long, value_name = "PORT", default_value_t = accord_core::protocol::MESH_API_PORT)]
    mesh_port: u16,

    /// The Kubernetes API server's URL (default: the in-cluster
    /// configuration, or the kubeconfig).
    #[arg(long, value_name = "URL")]
    kube_api: Option<String>,

    /// AMD's Key Distribution Service (or a mirror serving its paths), for
    /// the agent's VCEKs and CRLs.
    #[arg(long, value_name = "URL", default_value = accord_collateral::DEFAULT_KDS_URL)]
    kds_url: String,

    /// Intel's Provisioning Certification Service v4, or a PCCS, for the
    /// agent's TDX collateral.
    #[arg(long, value_name = "URL", default_value = accord_collateral::DEFAULT_PCS_URL)]
    pcs_url: String,

    /// An HTTP proxy for the collateral fetches (`http://HOST:PORT`).
    #[arg(long, value_name = "URL")]
    collateral_proxy: Option<String>,

    /// The on-disk collateral cache.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "/var/cache/accord/collateral"
    )]
    collateral_cache: PathBuf,

    /// A CA certificate (PEM or DER) trusted for the TLS of a PCCS or
    /// mirror, besides Mozilla's roots.
    #[arg(long, value_name = "FILE")]
    collateral_ca: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum BackendKind {
    /// Files under --store (atomic renames, fsync, flock).
    Fs,
    /// One ConfigMap per object in --namespace.
    Kube,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum DiscoveryKind {
    /// The --peer list.
    Static,
    /// Ready pods of the coordinator StatefulSet in --namespace.
    Kube,
}

fn parse_peer(text: &str) -> Result<StaticPeer, String> {
    let (name, rest) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected NAME=MESH_ADDR[,PROBE_ADDR]"))?;
    let (mesh, probe) = match rest.split_once(',') {
        Some((mesh, probe)) => (mesh, Some(probe.to_string())),
        None => (rest, None),
    };
    if name.is_empty() || mesh.is_empty() || probe.as_deref() == Some("") {
        return Err(format!("{text:?}: expected NAME=MESH_ADDR[,PROBE_ADDR]"));
    }
    Ok(StaticPeer {
        peer: Peer {
            name: name.into(),
            mesh_api: mesh.into(),
        },
        probe,
    })
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(err) = accord_log::init(accord_log::LevelFilter::INFO) {
        eprintln!("accord-shim: error: {err}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("accord-shim: starting the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("accord-shim: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let kube = match (args.backend, args.discovery) {
        (BackendKind::Kube, _) | (_, DiscoveryKind::Kube) => Some(kube_context(&args).await?),
        _ => None,
    };
    let store_name = match args.backend {
        BackendKind::Fs => format!("{}", args.store.display()),
        BackendKind::Kube => "kube (ConfigMaps)".into(),
    };
    match (args.backend, args.discovery, kube) {
        (BackendKind::Fs, DiscoveryKind::Static, _) => {
            let store = fs_store(&args).await?;
            serve(
                &args,
                store,
                StaticPeers::new(args.peer.clone()),
                &store_name,
            )
            .await
        }
        (BackendKind::Fs, DiscoveryKind::Kube, Some(k)) => {
            let store = fs_store(&args).await?;
            serve(&args, store, k.discovery(&args), &store_name).await
        }
        (BackendKind::Kube, DiscoveryKind::Static, Some(k)) => {
            let store = k.store().await?;
            serve(
                &args,
                store,
                StaticPeers::new(args.peer.clone()),
                &store_name,
            )
            .await
        }
        (BackendKind::Kube, DiscoveryKind::Kube, Some(k)) => {
            let store = k.store().await?;
            serve(&args, store, k.discovery(&args), &store_name).await
        }
        (_, _, None) => {
            anyhow::bail!("internal: no Kubernetes client for a kube backend or discovery")
        }
    }
}

async fn fs_store(args: &Args) -> anyhow::Result<FsStore> {
    FsStore::open(args.store.clone())
        .await
        .map_err(|e| anyhow::anyhow!("the store in {}: {e}", args.store.display()))
}

/// A Kubernetes client and namespace.
struct KubeContext {
    client: kube::Client,
    namespace: String,
}

async fn kube_context(args: &Args) -> anyhow::Result<KubeContext> {
    let namespace = args
        .namespace
        .clone()
        .context("--namespace (or POD_NAMESPACE) is needed with the kube backend or discovery")?;
    if matches!(args.discovery, DiscoveryKind::Kube) && args.pod_name.is_none() {
        anyhow::bail!("--pod-name (or POD_NAME) is needed with the kube discovery");
    }
    let client = match &args.kube_api {
        Some(url) => {
            let url = url
                .parse()
                .with_context(|| format!("--kube-api {url:?} is not a URL"))?;
            kube::Client::try_from(kube::Config::new(url))
                .context("building the Kubernetes client")?
        }
        None => kube::Client::try_default()
            .await
            .context("no Kubernetes configuration (in-cluster or kubeconfig)")?,
    };
    Ok(KubeContext { client, namespace })
}

impl KubeContext {
    /// The ConfigMap store. ConfigMaps that an older shim made owned by
    /// the StatefulSet are released from it in the background (best
    /// effort: a failure is logged and retried at the next start).
    async fn store(&self) -> anyhow::Result<KubeStore> {
        let store = KubeStore::new(self.client.clone(), &self.namespace)
            .await
            .map_err(|e| anyhow::anyhow!("the ConfigMap store: {e}"))?;
        let release = store.owner_release();
        tokio::spawn(async move {
            match release.run().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    "released {n} history ConfigMap(s) from the StatefulSet's ownership \
                     (deleting the StatefulSet no longer deletes the history)"
                ),
                Err(e) => tracing::warn!(
                    "could not release the history ConfigMaps from the \
                     StatefulSet's ownership ({e}); until this succeeds (it is retried at every \
                     start), deleting the StatefulSet deletes the history"
                ),
            }
        });
        Ok(store)
    }

    fn discovery(&self, args: &Args) -> KubeDiscovery {
        KubeDiscovery::with_mesh_port(
            self.client.clone(),
            &self.namespace,
            args.pod_name.as_deref().unwrap_or_default(),
            args.mesh_port,
        )
    }
}

async fn serve<S: Store, D: Discovery>(
    args: &Args,
    store: S,
    discovery: D,
    store_name: &str,
) -> anyhow::Result<()> {
    use std::io::Write;

    let channel_listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding the agent channel to {}", args.listen))?;
    let probe_listener = tokio::net::TcpListener::bind(&args.probes)
        .await
        .with_context(|| format!("binding the probes to {}", args.probes))?;
    let board = Arc::new(StatusBoard::default());
    let (stop, shutdown) = watch::channel(false);
    {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "accord-shim: agent channel on {}, probes on {}, store {store_name}",
            channel_listener.local_addr()?,
            probe_listener.local_addr()?,
        )?;
        out.flush()?;
    }
    let collateral = Arc::new(collateral_service(args)?);
    let shim = Arc::new(Shim {
        store,
        discovery,
        board: Arc::clone(&board),
        collateral: Some(Arc::clone(&collateral)),
    });
    let channel_task = tokio::spawn(channel::serve(channel_listener, shim, shutdown.clone()));
    board.set_collateral(collateral);
    let probe_task = tokio::spawn(accord_shim::http::serve(probe_listener, board, shutdown));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        result = tokio::signal::ctrl_c() => {
            result.context("waiting for Ctrl-C")?;
            tracing::info!("interrupted: shutting down");
        }
    }
    let _ = stop.send(true);
    let _ = tokio::join!(channel_task, probe_task);
    Ok(())
}

/// The collateral fetcher of the `--kds-url`, `--pcs-url`,
/// `--collateral-proxy`, `--collateral-cache` and `--collateral-ca` flags.
fn collateral_service(args: &Args) -> anyhow::Result<CollateralService> {
    use accord_collateral::{Cache, Endpoints, Fetcher, HttpClient, HttpConfig};
    let proxy = args
        .collateral_proxy
        .as_deref()
        .map(|url| {
            url.parse()
                .map_err(|_| anyhow::anyhow!("--collateral-proxy {url}: not a URL"))
        })
        .transpose()?;
    let extra_roots = match &args.collateral_ca {
        Some(path) => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("--collateral-ca {}", path.display()))?;
            if bytes.first() == Some(&0x30) {
                vec![bytes]
            } else {
                let text = std::str::from_utf8(&bytes)
                    .with_context(|| format!("{}: neither DER nor PEM", path.display()))?;
                accord_core::x509::pem::decode_all(text, "CERTIFICATE").map_err(|err| {
                    anyhow::anyhow!("{}: no PEM certificate ({err})", path.display())
                })?
            }
        }
        None => Vec::new(),
    };
    let http = HttpClient::new(HttpConfig {
        proxy,
        extra_roots,
        ..HttpConfig::default()
    })
    .context("setting up TLS for the collateral fetches")?;
    let endpoints = Endpoints::new(&args.kds_url, &args.pcs_url);
    let cache = Cache::new(args.collateral_cache.clone());
    Ok(CollateralService::new(Fetcher::new(
        Some(http),
        endpoints,
        Some(cache),
    )))
}
