//! The coordinator service: a driver that owns the sans-IO state machine
//! ([`accord_core::coordinator::Coordinator`]) and executes its outputs,
//! and the user and mesh API servers ([`server`]) in front of it.
//!
//! # The driver
//!
//! The machine lives on a thread of its own (it borrows the crypto
//! provider and the RNG and is not `Send`), running a single-threaded
//! tokio runtime. Requests arrive over an mpsc channel ([`Handle::call`])
//! and are answered through a oneshot. Writes and snapshots run on the
//! blocking pool and come back as inputs; a tick every second feeds the
//! system clock. State changes and warnings go to stderr, one line each,
//! prefixed with the time. The current mesh reference values are published
//! on a [`watch`] channel ([`MeshState`]) for the mesh API.
//!
//! The driver ends when every [`Handle`] is dropped.

mod allocator;
pub mod limits;
pub mod metrics;
mod peers;
pub mod server;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use accord_core::coordinator::store::StoreSnapshot;
use accord_core::coordinator::{
    ApiError, Coordinator, Env, Input, Output, PeerSecrets, Request, Response, StateName,
    StoreError, WriteBatch,
};
use accord_core::crypto::awslc::PROVIDER;
use accord_core::crypto::{CryptoError, SecureRandom};
use accord_core::evidence::ReferenceValues;
use accord_core::protocol::shim::{AgentState, AgentStatus, Peer};
use tokio::sync::{mpsc, oneshot, watch};

use crate::atls::system_now;
use crate::shim_client::{self, ShimClient};
use crate::store::FsStore;
use crate::tee::TeeProvider;
use metrics::Metrics;

/// The operating system's random number generator.
pub struct OsRandom;

impl SecureRandom for OsRandom {
    fn fill(&self, dest: &mut [u8]) -> Result<(), CryptoError> {
        getrandom::fill(dest).map_err(|_| CryptoError::RandomFailed)
    }
}

static OS_RANDOM: OsRandom = OsRandom;

/// How many requests may queue for the driver.
const QUEUE: usize = 256;

/// How often the machine gets the clock.
const TICK: Duration = Duration::from_secs(1);

/// Prints one log line on stderr, prefixed with the time.
pub fn log(line: &str) {
    eprintln!("{} accord-guest coordinator: {line}", system_now());
}

/// What the mesh API verifies workloads against.
#[derive(Clone, Debug)]
pub enum MeshState {
    /// Not serving certificates: why (for the refusal the client sees).
    NotReady(String),
    /// Serving generation `generation`, whose manifest trusts `reference`.
    Ready {
        /// The manifest generation.
        generation: u64,
        /// The manifest's reference values.
        reference: Arc<ReferenceValues>,
    },
}

struct Call {
    request: Request,
    reply: oneshot::Sender<Result<Response, ApiError>>,
}

/// A cheap, cloneable way to send requests to the driver.
#[derive(Clone)]
pub struct Handle {
    tx: mpsc::Sender<Call>,
    metrics: Arc<Metrics>,
}

impl Handle {
    /// Sends `request` to the state machine and waits for its reply
    /// (counted in the metrics by API, method and outcome).
    pub async fn call(&self, request: Request) -> Result<Response, ApiError> {
        let (api, method) = metrics::request_name(&request);
        let started = Instant::now();
        let result = self.call_uncounted(request).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(err) => err.code(),
        };
        self.metrics
            .request(api, method, outcome, started.elapsed());
        result
    }

    async fn call_uncounted(&self, request: Request) -> Result<Response, ApiError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Call { request, reply })
            .await
            .map_err(|_| ApiError::Internal("the coordinator is shutting down".into()))?;
        rx.await
            .map_err(|_| ApiError::Internal("the coordinator dropped the request".into()))?
    }

    /// The counters.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }
}

/// Where the history is stored.
#[derive(Clone)]
pub enum Backend {
    /// A directory of this machine (`--state DIR`).
    Local(FsStore),
    /// The host shim's store (`--shim ADDR`).
    Shim(Arc<ShimClient>),
}

impl Backend {
    async fn snapshot(&self) -> Result<StoreSnapshot, StoreError> {
        match self {
            Self::Local(store) => {
                let store = store.clone();
                tokio::task::spawn_blocking(move || store.snapshot())
                    .await
                    .unwrap_or_else(|e| Err(StoreError::Failed(format!("reading the store: {e}"))))
            }
            Self::Shim(client) => client.snapshot().await,
        }
    }

    async fn apply(&self, batch: WriteBatch) -> Result<(), StoreError> {
        match self {
            Self::Local(store) => {
                let store = store.clone();
                tokio::task::spawn_blocking(move || store.apply(&batch))
                    .await
                    .unwrap_or_else(|e| Err(StoreError::Failed(format!("writing the store: {e}"))))
            }
            Self::Shim(client) => client.apply(&batch).await,
        }
    }
}

/// What the driver needs besides its store.
pub struct Wiring {
    /// Attests this replica to its peers (peer recovery).
    pub tee: Arc<dyn TeeProvider>,
    /// The ready peers (empty without a shim or static peers).
    pub peers: watch::Receiver<Vec<Peer>>,
    /// The latest record as the store's watch sees it.
    pub latest: mpsc::UnboundedReceiver<Vec<u8>>,
}

/// A running driver.
pub struct Service {
    /// Sends requests.
    pub handle: Handle,
    /// The mesh API's view.
    pub mesh: watch::Receiver<MeshState>,
    /// The state and generation, as last published.
    pub state: watch::Receiver<(StateName, u64)>,
    /// The driver thread (ends once every handle is dropped).
    pub thread: std::thread::JoinHandle<()>,
}

/// Starts the driver over `backend`.
pub fn start(backend: Backend, wiring: Wiring) -> anyhow::Result<Service> {
    let (tx, rx) = mpsc::channel(QUEUE);
    let (mesh_tx, mesh) = watch::channel(MeshState::NotReady("the coordinator is starting".into()));
    let (state_tx, state) = watch::channel((StateName::Uninitialized, 0));
    let metrics = Arc::new(Metrics::default());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let driver_metrics = Arc::clone(&metrics);
    let thread = std::thread::Builder::new()
        .name("coordinator-driver".into())
        .spawn(move || {
            runtime.block_on(drive(
                backend,
                rx,
                wiring,
                mesh_tx,
                state_tx,
                driver_metrics,
            ));
        })?;
    Ok(Service {
        handle: Handle { tx, metrics },
        mesh,
        state,
        thread,
    })
}

enum Done {
    Write {
        batch: u64,
        result: Result<(), StoreError>,
    },
    Snapshot(Result<StoreSnapshot, StoreError>),
    /// A peer recovery attempt ended.
    Peer(Box<Result<(String, PeerSecrets), String>>),
}

struct Driver {
    backend: Backend,
    done: mpsc::UnboundedSender<Done>,
    replies: HashMap<u64, oneshot::Sender<Result<Response, ApiError>>>,
    mesh: watch::Sender<MeshState>,
    state: watch::Sender<(StateName, u64)>,
    /// What was last published: (state, generation).
    published: Option<(StateName, u64)>,
    peers: peers::PeerRecovery,
    metrics: Arc<Metrics>,
}

impl Driver {
    fn execute(&mut self, machine: &Coordinator<'static>, outputs: Vec<Output>) {
        // Publish before replying: a client that saw its SetManifest
        // answered must find the mesh API at the new generation.
        self.publish(machine);
        for output in outputs {
            match output {
                Output::Reply { id, result } => {
                    if let Some(reply) = self.replies.remove(&id) {
                        // The caller may have gone away (connection closed).
                        let _ = reply.send(result);
                    }
                }
                Output::Write(batch) => {
                    let backend = self.backend.clone();
                    let done = self.done.clone();
                    tokio::spawn(async move {
                        let id = batch.id;
                        let result = backend.apply(batch).await;
                        let _ = done.send(Done::Write { batch: id, result });
                    });
                }
                Output::LoadSnapshot => {
                    let backend = self.backend.clone();
                    let done = self.done.clone();
                    tokio::spawn(async move {
                        let _ = done.send(Done::Snapshot(backend.snapshot().await));
                    });
                }
                Output::StateChanged(state) => log(&format!("state {state}")),
                Output::Warning(warning) => log(&format!("WARNING: {warning}")),
                Output::Forged(why) => {
                    self.metrics.forged_history();
                    log(&format!("FORGED: {why}"));
                }
            }
        }
    }

    /// Publishes the mesh state when the machine's state or generation
    /// changed (the reference values are cloned only then).
    fn publish(&mut self, machine: &Coordinator<'static>) {
        let key = (machine.state(), machine.generation());
        if self.published == Some(key) {
            return;
        }
        self.published = Some(key);
        self.state.send_replace(key);
        let state = match machine.mesh_reference() {
            Some((generation, reference)) => MeshState::Ready {
                generation,
                reference: Arc::new(reference.clone()),
            },
            None => MeshState::NotReady(
                match machine.state() {
                    StateName::Uninitialized => {
                        ApiError::NoManifest("no manifest has been set".into())
                    }
                    _ => ApiError::NeedsRecovery,
                }
                .to_string(),
            ),
        };
        self.mesh.send_replace(state);
    }
}

async fn drive(
    backend: Backend,
    mut calls: mpsc::Receiver<Call>,
    wiring: Wiring,
    mesh: watch::Sender<MeshState>,
    state: watch::Sender<(StateName, u64)>,
    metrics: Arc<Metrics>,
) {
    let env = Env {
        provider: &PROVIDER,
        rng: &OS_RANDOM,
    };
    let Wiring {
        tee,
        peers: mut peer_list,
        latest: mut latest_rx,
    } = wiring;
    let boot = backend.snapshot().await;
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let mut driver = Driver {
        backend,
        done: done_tx,
        replies: HashMap::new(),
        mesh,
        state,
        published: None,
        peers: peers::PeerRecovery::new(tee, Arc::clone(&metrics)),
        metrics,
    };
    let boot_latest = latest_hash(boot.as_ref().ok());
    let (mut machine, outputs) = Coordinator::new(env, system_now(), boot);
    driver.metrics.store_read(boot_latest);
    driver.execute(&machine, outputs);
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut next_id: u64 = 0;
    let mut peers_open = true;
    let mut latest_open = true;
    loop {
        let input = tokio::select! {
            call = calls.recv() => {
                let Some(Call { request, reply }) = call else { break };
                next_id += 1;
                driver.replies.insert(next_id, reply);
                Input::Request { id: next_id, request }
            }
            Some(done) = done_rx.recv() => match done {
                Done::Write { batch, result } => Input::WriteDone { batch, result },
                Done::Snapshot(snapshot) => Input::Snapshot(snapshot),
                Done::Peer(result) => match driver.peers.finished(*result) {
                    Some(secrets) => Input::PeerSecrets(secrets),
                    None => continue,
                },
            },
            changed = peer_list.changed(), if peers_open => {
                if changed.is_err() {
                    peers_open = false;
                    continue;
                }
                let list = peer_list.borrow_and_update().clone();
                driver.peers.set_peers(list);
                Input::ReadyPeers(driver.peers.count())
            }
            latest = latest_rx.recv(), if latest_open => match latest {
                Some(bytes) => Input::LatestChanged(bytes),
                None => {
                    latest_open = false;
                    continue;
                }
            },
            _ = ticks.tick() => Input::Tick(system_now()),
        };
        let read = match &input {
            Input::Snapshot(snapshot) => Some(latest_hash(snapshot.as_ref().ok())),
            Input::LatestChanged(_) => Some(None),
            _ => None,
        };
        let outputs = machine.handle(input);
        if let Some(latest) = read {
            driver.metrics.store_read(latest);
        }
        driver.peers.after_input(&machine);
        driver.execute(&machine, outputs);
        driver.peers.maybe_start(&machine, &driver.done);
    }
    // Every handle is gone. Let writes still in flight land (their results
    // are only logged now).
    drop(driver.done);
    while let Some(done) = done_rx.recv().await {
        if let Done::Write {
            result: Err(err), ..
        } = done
        {
            log(&format!("a write failed during shutdown: {err}"));
        }
    }
}

/// SHA-256 of a snapshot's latest record, for the metrics (which store
/// content the machine judged last).
fn latest_hash(snapshot: Option<&StoreSnapshot>) -> Option<[u8; 32]> {
    let latest = snapshot?
        .objects
        .get(accord_core::coordinator::store::LATEST_KEY)?;
    Some(accord_core::crypto::CryptoProvider::sha256(
        &PROVIDER,
        &[latest],
    ))
}

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
/// state STATE` on stdout once both listen (with the bound addresses).
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
        StoreLocation::Dir(dir) => dir.display().to_string(),
        StoreLocation::Shim(addr) => format!("shim {addr}"),
    };
    let running = spawn_at(tee, store, user_addr, mesh_addr).await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "accord-guest coordinator: user API on {}, mesh API on {}, state {where_}",
            running.user_addr, running.mesh_addr,
        )?;
        out.flush()?;
    }

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        _ = term.recv() => log("SIGTERM: shutting down"),
        result = tokio::signal::ctrl_c() => {
            result.context("waiting for Ctrl-C")?;
            log("interrupted: shutting down");
        }
    }
    // Both servers stop, and with them every handle: the driver ends once
    // writes in flight have landed.
    let driver = running.stop_servers().await?;
    match join_driver(driver).await {
        Ok(()) => log("stopped"),
        Err(err) => log(&format!("{err:#}")),
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

/// [`spawn_at`] with other admission limits (tests lower them).
pub async fn spawn_with(
    tee: Arc<dyn crate::tee::TeeProvider>,
    store: StoreLocation,
    user_addr: &str,
    mesh_addr: &str,
    limits: limits::Limits,
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
            helpers.push(tokio::spawn(shim_client::watch_peers(addr, peers_tx)));
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
    ));
    let mesh_task = tokio::spawn(server::serve_mesh(
        mesh,
        tee,
        service.handle.clone(),
        service.mesh.clone(),
        admission,
        shutdown,
    ));
    if let Some(client) = shim {
        helpers.push(tokio::spawn(report_status(
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

/// How often the status goes to the shim when nothing changes (its
/// readiness probe fails when reports stop).
const REPORT_EVERY: Duration = Duration::from_secs(2);

/// This process's resident set size (`VmRSS` in `/proc/self/status`).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Reports the state and the counters to the shim on every change and
/// every [`REPORT_EVERY`]. Both listeners are up before this starts.
async fn report_status(
    client: Arc<ShimClient>,
    mut state: watch::Receiver<(StateName, u64)>,
    metrics: Arc<Metrics>,
) {
    let mut failing = false;
    loop {
        let (name, generation) = *state.borrow_and_update();
        let mut status = AgentStatus {
            state: Some(match name {
                StateName::Uninitialized => AgentState::Uninitialized,
                StateName::Recovery => AgentState::Recovery,
                StateName::Ready => AgentState::Ready,
            }),
            listening: true,
            generation,
            resident_bytes: resident_bytes().unwrap_or(0),
            ..AgentStatus::default()
        };
        metrics.fill(&mut status);
        match client.report(status).await {
            Ok(()) if failing => {
                failing = false;
                log(&format!("the shim at {} is reachable again", client.addr()));
            }
            Ok(()) => {}
            Err(err) if !failing => {
                failing = true;
                log(&format!("WARNING: cannot report to the shim: {err}"));
            }
            Err(_) => {}
        }
        tokio::select! {
            changed = state.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(REPORT_EVERY) => {}
        }
    }
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
