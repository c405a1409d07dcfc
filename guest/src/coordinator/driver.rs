//! The driver: owns the sans-IO state machine
//! ([`accord_core::coordinator::Coordinator`]), feeds it inputs and
//! executes its outputs.
//!
//! The machine lives on a thread of its own (it borrows the crypto
//! provider and the RNG and is not `Send`), running a single-threaded
//! tokio runtime. Requests arrive over an mpsc channel ([`Handle::call`])
//! and are answered through a oneshot. Writes and snapshots run on the
//! blocking pool and come back as inputs; peer-recovery attempts, which
//! the machine schedules, run as tasks ([`super::peers`]) and come back as
//! inputs too; a tick every second feeds the system clock. State changes
//! and warnings are logged (`tracing`, see `accord-log`). Every request
//! carries the id the server gave it ([`new_request_id`]): the machine
//! echoes it in its reply and names it in the writes it causes, and the
//! driver logs the request's handling and its store writes in a
//! `request` span with that id. The current mesh reference values are published on a [`watch`] channel
//! ([`MeshState`]) for the mesh API.
//!
//! The driver ends when every [`Handle`] is dropped.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use accord_core::coordinator::store::StoreSnapshot;
use accord_core::coordinator::{
    ApiError, Coordinator, Env, Input, Output, PeerSecrets, Request, RequestId, Response,
    StateName, StoreError,
};
use accord_core::crypto::awslc::PROVIDER;
use accord_core::crypto::{CryptoError, SecureRandom};
use accord_core::evidence::ReferenceValues;
use accord_core::protocol::shim::Peer;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::Instrument;

use super::backend::Backend;
use super::metrics::{self, Metrics};
use super::peers;
use crate::atls::system_now;
use crate::tee::TeeProvider;

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

/// A fresh request id, unique in this process (the servers give one to
/// each request they read; logs name it from the connection to the
/// store).
pub fn new_request_id() -> RequestId {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

struct Call {
    id: RequestId,
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
    /// Sends `request` (with the id from [`new_request_id`]) to the state
    /// machine and waits for its reply (counted in the metrics by API,
    /// method and outcome, logged at debug).
    pub async fn call(&self, id: RequestId, request: Request) -> Result<Response, ApiError> {
        let (api, method) = metrics::request_name(&request);
        let started = Instant::now();
        tracing::debug!(request = id, api, method, "request");
        let result = self.call_uncounted(id, request).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(err) => err.code(),
        };
        let elapsed = started.elapsed();
        tracing::debug!(
            request = id,
            outcome,
            micros = elapsed.as_micros() as u64,
            "replied"
        );
        self.metrics.request(api, method, outcome, elapsed);
        result
    }

    async fn call_uncounted(&self, id: RequestId, request: Request) -> Result<Response, ApiError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Call { id, request, reply })
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

pub(super) enum Done {
    Write {
        batch: u64,
        result: Result<(), StoreError>,
    },
    Snapshot(Result<StoreSnapshot, StoreError>),
    /// A peer recovery attempt ended: the peer and its secrets, or why
    /// none came.
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
    peers: peers::PeerDialer,
    metrics: Arc<Metrics>,
}

impl Driver {
    fn execute(&mut self, machine: &Coordinator<'static>, outputs: Vec<Output>) {
        // Count a peer recovery before the state is published, so that a
        // status report saying Ready counts it too.
        for output in &outputs {
            if let Output::PeerRecoveryEnded { recovered } = output {
                self.peers.ended(*recovered);
            }
        }
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
                    let span = tracing::debug_span!("request", id = batch.request);
                    tokio::spawn(
                        async move {
                            let id = batch.id;
                            tracing::debug!(batch = id, objects = batch.puts.len(), "store write");
                            let result = backend.apply(batch).await;
                            match &result {
                                Ok(()) => tracing::debug!(batch = id, "store write done"),
                                Err(err) => {
                                    tracing::warn!(batch = id, "store write failed: {err}")
                                }
                            }
                            let _ = done.send(Done::Write { batch: id, result });
                        }
                        .instrument(span),
                    );
                }
                Output::LoadSnapshot => {
                    let backend = self.backend.clone();
                    let done = self.done.clone();
                    tokio::spawn(async move {
                        let _ = done.send(Done::Snapshot(backend.snapshot().await));
                    });
                }
                Output::StateChanged(state) => tracing::info!("state {state}"),
                Output::Warning(warning) => tracing::warn!("{warning}"),
                Output::Forged(why) => {
                    self.metrics.forged_history();
                    tracing::error!("FORGED: {why}");
                }
                Output::StartPeerRecovery(attempt) => self.peers.start(attempt, &self.done),
                // Counted above.
                Output::PeerRecoveryEnded { .. } => {}
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
        peers: peers::PeerDialer::new(tee, Arc::clone(&metrics)),
        metrics,
    };
    let boot_latest = latest_hash(boot.as_ref().ok());
    driver.metrics.store_read(boot_latest);
    let (mut machine, outputs) = Coordinator::new(env, system_now(), boot);
    driver.execute(&machine, outputs);
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut peers_open = true;
    let mut latest_open = true;
    loop {
        let input = tokio::select! {
            call = calls.recv() => {
                let Some(Call { id, request, reply }) = call else { break };
                driver.replies.insert(id, reply);
                Input::Request { id, request }
            }
            Some(done) = done_rx.recv() => match done {
                Done::Write { batch, result } => Input::WriteDone { batch, result },
                Done::Snapshot(snapshot) => Input::Snapshot(snapshot),
                Done::Peer(result) => driver.peers.finished(*result),
            },
            changed = peer_list.changed(), if peers_open => {
                if changed.is_err() {
                    peers_open = false;
                    continue;
                }
                let list = peer_list.borrow_and_update().clone();
                match driver.peers.set_peers(list) {
                    Some(count) => Input::ReadyPeers(count),
                    None => continue,
                }
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
        if let Some(latest) = read {
            driver.metrics.store_read(latest);
        }
        let span = match &input {
            Input::Request { id, .. } => tracing::debug_span!("request", id),
            _ => tracing::Span::none(),
        };
        let _entered = span.enter();
        let outputs = machine.handle(input);
        driver.execute(&machine, outputs);
    }
    // Every handle is gone. Let writes still in flight land (their results
    // are only logged now).
    drop(driver.done);
    while let Some(done) = done_rx.recv().await {
        if let Done::Write {
            result: Err(err), ..
        } = done
        {
            tracing::warn!("a write failed during shutdown: {err}");
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
