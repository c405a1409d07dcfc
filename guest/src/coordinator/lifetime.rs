//! The coordinator's lifetime: binding the listeners, starting the driver
//! over its store, serving both APIs, and shutting down (SIGTERM, Ctrl-C,
//! or [`InProcess::stop`]) so that writes in flight land.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::backend::Backend;
use super::driver::{Service, Wiring, start};
use super::{allocator, limits, server, status};
use crate::atls::CollateralSource;
use crate::shim_client::{self, ShimClient};
use accord_fs_store::FsStore;

/// Where a coordinator keeps its history.
#[derive(Clone, Debug)]
pub enum StoreLocation {
    /// A directory of this machine (its `store/` subdirectory), no peers.
    Dir(std::path::PathBuf),
    /// The host shim listening at this address: storage, the watch on the
    /// latest record, peers, and status reports for probes and metrics.
    Shim(String),
}

/// Runs the coordinator process: the driver over `store`, the user API on
/// `user_addr` and the mesh API on `mesh_addr`, until SIGTERM or Ctrl-C.
/// Prints `accord-guest coordinator: user API on ADDR, mesh API on ADDR,
/// store STORE` on stdout once both listen (with the bound addresses).
pub async fn run(
    tee: Arc<dyn crate::tee::TeeProvider>,
    store: StoreLocation,
    user_addr: &str,
    mesh_addr: &str,
) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::io::Write;

    allocator::fix_mmap_threshold();
    let where_ = match &store {
        StoreLocation::Dir(dir) => dir.join("store").display().to_string(),
        StoreLocation::Shim(addr) => format!("shim {addr}"),
    };
    let running = spawn_at(tee, store, user_addr, mesh_addr).await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "accord-guest coordinator: user API on {}, mesh API on {}, store {where_}",
            running.user_addr, running.mesh_addr,
        )?;
        out.flush()?;
    }

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        result = tokio::signal::ctrl_c() => {
            result.context("waiting for Ctrl-C")?;
            tracing::info!("interrupted: shutting down");
        }
    }
    // Both servers stop, and with them every handle: the driver ends once
    // writes in flight have landed.
    let driver = running.stop_servers().await?;
    match join_driver(driver).await {
        Ok(()) => tracing::info!("stopped"),
        Err(err) => tracing::error!("{err:#}"),
    }
    Ok(())
}

/// A coordinator serving in this process (the CLI's demo, tests): the
/// driver and both API servers on tasks of the calling runtime.
/// [`InProcess::stop`] shuts it down like SIGTERM does for [`run`].
pub struct InProcess {
    /// Where the user API listens.
    pub user_addr: std::net::SocketAddr,
    /// Where the mesh API listens.
    pub mesh_addr: std::net::SocketAddr,
    stop: watch::Sender<bool>,
    user_task: tokio::task::JoinHandle<anyhow::Result<()>>,
    mesh_task: tokio::task::JoinHandle<anyhow::Result<()>>,
    /// The shim's watches and the status reporter.
    helpers: Vec<tokio::task::JoinHandle<()>>,
    thread: std::thread::JoinHandle<()>,
}

/// Starts a coordinator in this process over `state_dir/store`: see
/// [`spawn_at`].
pub async fn spawn(
    tee: Arc<dyn crate::tee::TeeProvider>,
    state_dir: &Path,
    user_addr: &str,
    mesh_addr: &str,
) -> anyhow::Result<InProcess> {
    spawn_at(
        tee,
        StoreLocation::Dir(state_dir.to_path_buf()),
        user_addr,
        mesh_addr,
    )
    .await
}

/// Starts a coordinator in this process: binds `user_addr` and
/// `mesh_addr` (port 0 for ephemeral ports), starts the driver over
/// `store` and serves both APIs on the current tokio runtime, with the
/// default admission limits.
pub async fn spawn_at(
    tee: Arc<dyn crate::tee::TeeProvider>,
    store: StoreLocation,
    user_addr: &str,
    mesh_addr: &str,
) -> anyhow::Result<InProcess> {
    spawn_with(tee, store, user_addr, mesh_addr, limits::Limits::default()).await
}

/// [`spawn`] with a collateral source for the verifier (the demo: a
/// fetcher at the simulated vendor): what the verifier needs for peers'
/// evidence, and what the coordinator's own evidence lacks, are fetched
/// through `collateral` (untrusted: the verifier authenticates it).
pub async fn spawn_with_collateral(
    tee: Arc<dyn crate::tee::TeeProvider>,
    state_dir: &Path,
    user_addr: &str,
    mesh_addr: &str,
    collateral: Arc<dyn CollateralSource>,
) -> anyhow::Result<InProcess> {
    spawn_full(
        tee,
        StoreLocation::Dir(state_dir.to_path_buf()),
        user_addr,
        mesh_addr,
        limits::Limits::default(),
        Some(collateral),
    )
    .await
}

/// [`spawn_at`] with other admission limits (tests lower them).
pub async fn spawn_with(
    tee: Arc<dyn crate::tee::TeeProvider>,
    store: StoreLocation,
    user_addr: &str,
    mesh_addr: &str,
    limits: limits::Limits,
) -> anyhow::Result<InProcess> {
    spawn_full(tee, store, user_addr, mesh_addr, limits, None).await
}

/// Starts a coordinator in this process. The collateral comes through
/// `collateral` if given, else through the shim for a
/// [`StoreLocation::Shim`], else from nowhere (what evidence carries).
async fn spawn_full(
    tee: Arc<dyn crate::tee::TeeProvider>,
    store: StoreLocation,
    user_addr: &str,
    mesh_addr: &str,
    limits: limits::Limits,
    collateral: Option<Arc<dyn CollateralSource>>,
) -> anyhow::Result<InProcess> {
    use anyhow::Context;

    let user = tokio::net::TcpListener::bind(user_addr)
        .await
        .with_context(|| format!("binding the user API to {user_addr}"))?;
    let mesh = tokio::net::TcpListener::bind(mesh_addr)
        .await
        .with_context(|| format!("binding the mesh API to {mesh_addr}"))?;
    let (peers_tx, peers) = watch::channel(Vec::new());
    let (latest_tx, latest) = mpsc::unbounded_channel();
    let mut helpers = Vec::new();
    let mut collateral = collateral;
    let (backend, shim) = match store {
        StoreLocation::Dir(dir) => {
            let store = FsStore::open(&dir.join("store")).map_err(|e| anyhow::anyhow!("{e}"))?;
            drop((peers_tx, latest_tx));
            (Backend::Local(store), None)
        }
        StoreLocation::Shim(addr) => {
            let client = Arc::new(ShimClient::new(&addr));
            helpers.push(tokio::spawn(shim_client::watch_latest(
                addr.clone(),
                latest_tx,
            )));
            helpers.push(tokio::spawn(shim_client::watch_peers(
                addr.clone(),
                peers_tx,
            )));
            // Collateral on a connection of its own: fetches never queue
            // behind storage calls.
            if collateral.is_none() {
                let source: Arc<dyn CollateralSource> = Arc::new(ShimClient::new(&addr));
                collateral = Some(source);
            }
            (Backend::Shim(Arc::clone(&client)), Some(client))
        }
    };
    let service = start(
        backend,
        Wiring {
            tee: Arc::clone(&tee),
            peers,
            latest,
        },
    )?;
    let (stop, shutdown) = watch::channel(false);
    let user_local = user.local_addr()?;
    let mesh_local = mesh.local_addr()?;
    let admission = Arc::new(limits::Admission::new(
        limits,
        Arc::clone(service.handle.metrics()),
    ));
    let user_task = tokio::spawn(server::serve_user(
        user,
        Arc::clone(&tee),
        service.handle.clone(),
        Arc::clone(&admission),
        shutdown.clone(),
        collateral.clone(),
    ));
    let mesh_task = tokio::spawn(server::serve_mesh(
        mesh,
        tee,
        service.handle.clone(),
        service.mesh.clone(),
        admission,
        shutdown,
        collateral,
    ));
    if let Some(client) = shim {
        helpers.push(tokio::spawn(status::report_status(
            client,
            service.state.clone(),
            Arc::clone(service.handle.metrics()),
        )));
    }
    let Service { handle, thread, .. } = service;
    drop(handle);
    Ok(InProcess {
        user_addr: user_local,
        mesh_addr: mesh_local,
        stop,
        user_task,
        mesh_task,
        helpers,
        thread,
    })
}

impl InProcess {
    /// Stops serving, lets writes in flight land and ends the driver.
    pub async fn stop(self) -> anyhow::Result<()> {
        let driver = self.stop_servers().await?;
        join_driver(driver).await
    }

    /// Stops both servers (an error of either is returned); the driver
    /// thread is left to end.
    async fn stop_servers(self) -> anyhow::Result<std::thread::JoinHandle<()>> {
        let _ = self.stop.send(true);
        for helper in &self.helpers {
            helper.abort();
        }
        let (user_result, mesh_result) = tokio::join!(self.user_task, self.mesh_task);
        user_result??;
        mesh_result??;
        Ok(self.thread)
    }
}

/// Waits (up to [`server::GRACE`]) for the driver thread to end.
async fn join_driver(thread: std::thread::JoinHandle<()>) -> anyhow::Result<()> {
    match tokio::time::timeout(
        server::GRACE,
        tokio::task::spawn_blocking(move || thread.join()),
    )
    .await
    {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(_) => anyhow::bail!("the driver ended abnormally"),
        Err(_) => anyhow::bail!("the driver did not stop in time"),
    }
}
