//! The local channel between the agent (inside the TEE) and its host shim
//! (outside it): storage, peer lists, and the agent's status for probes
//! and metrics.
//!
//! The agent is the client: it connects to the shim, sends
//! [`Hello`](super::Hello) with [`Api::Shim`](super::Api::Shim), then
//! [`ShimRequest`]s, each answered by one [`ShimResponse`]. Long waits
//! ([`ShimRequest::WatchLatest`], [`ShimRequest::WatchPeers`]) are long
//! polls on a connection of their own, so that storage calls never queue
//! behind them.
//!
//! **The shim is untrusted.** Nothing it returns is believed: stored
//! objects are re-hashed and the signed tree head checked by the state
//! machine, peers are attested before anything is said to them, and the
//! status the agent reports holds no secret. Vendor collateral
//! ([`ShimRequest::Collateral`]) is authenticated by the vendor's signature
//! in the agent's verifier before it is kept: the shim can deny service
//! but cannot lie.

use alloc::string::String;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use super::Message;
use crate::evidence::collateral::CollateralRequest;

/// The shim channel's own version, offered in the agent's `Hello` (with
/// [`Api::Shim`](super::Api::Shim)) and negotiated by the shim
/// ([`negotiate`](super::negotiate)) independently of the coordinator
/// APIs' [`VERSION`](super::VERSION). postcard messages cannot grow
/// compatibly, so every change of a shim-channel message (a field
/// appended to [`AgentStatus`], a new variant) bumps it: an agent and a
/// shim of different versions are refused at `Hello`, by version, instead
/// of failing to decode each other's frames. History in
/// `docs/protocol.md`. Version 3: the collateral request and the
/// verifier's collateral counters in [`AgentStatus`].
pub const SHIM_VERSION: u16 = 3;

/// Largest frame on the shim channel (a whole store snapshot).
pub const MAX_SHIM_FRAME: usize = 64 * 1024 * 1024;

/// Upper edges (seconds) of the request latency histogram buckets; the
/// last bucket (`+Inf`) is implicit.
pub const LATENCY_BUCKETS: [f64; 11] = [
    0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0,
];

/// A request from the agent to its shim.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ShimRequest {
    /// Every stored object (key, value).
    Snapshot,
    /// Write `puts` (idempotent, content-addressed), then replace the latest
    /// record with `latest_new` if it currently is `latest_old` (`None`: it
    /// must not exist).
    Apply {
        /// Objects to write first.
        puts: Vec<(String, Vec<u8>)>,
        /// The latest record the write builds on.
        latest_old: Option<Vec<u8>>,
        /// The new latest record.
        latest_new: Vec<u8>,
    },
    /// Answer once the latest record differs from `known`, or after
    /// `timeout_ms` with the current value (which may equal `known`).
    WatchLatest {
        /// The latest record the agent knows (`None`: none).
        known: Option<Vec<u8>>,
        /// How long to wait at most.
        timeout_ms: u32,
    },
    /// Answer once the peer list's version differs from `known_version`, or
    /// after `timeout_ms` with the current list.
    WatchPeers {
        /// The version the agent knows (0: none yet).
        known_version: u64,
        /// How long to wait at most.
        timeout_ms: u32,
    },
    /// The agent's status, sent on every change and at least every few
    /// seconds (the shim's readiness probe fails when it stops coming).
    ReportStatus(AgentStatus),
    /// Vendor collateral one attestation needs (a VCEK, an AMD CRL or
    /// chain, TDX collateral), fetched by the shim from AMD's KDS, Intel's
    /// PCS (or a PCCS, a proxy) or its cache. Answered by
    /// [`ShimResponse::Collateral`] or [`ShimResponse::Failed`].
    Collateral(CollateralRequest),
}

/// The shim's answer to one [`ShimRequest`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ShimResponse {
    /// Answer to [`ShimRequest::Snapshot`].
    Snapshot {
        /// Every object (key, value).
        objects: Vec<(String, Vec<u8>)>,
    },
    /// The batch was applied.
    Applied,
    /// The latest record was not `latest_old`: nothing of the
    /// compare-and-swap was written.
    Conflict,
    /// The storage or the request failed; the text is for logs.
    Failed {
        /// What went wrong.
        reason: String,
    },
    /// Answer to [`ShimRequest::WatchLatest`].
    Latest {
        /// The current latest record.
        latest: Option<Vec<u8>>,
    },
    /// Answer to [`ShimRequest::WatchPeers`].
    Peers {
        /// Changes whenever the list changes.
        version: u64,
        /// The peers (never the agent itself), ready ones only.
        peers: Vec<Peer>,
    },
    /// Answer to [`ShimRequest::ReportStatus`].
    StatusAccepted,
    /// Answer to [`ShimRequest::Collateral`]: the vendor's bytes, as
    /// [`ServiceVerifier::offer`](crate::evidence::ServiceVerifier::offer)
    /// takes them (a certificate or CRL DER, a PEM chain, TDX collateral
    /// JSON). Untrusted: the agent authenticates them.
    Collateral {
        /// The bytes.
        bytes: Vec<u8>,
        /// Where the shim got them.
        source: CollateralSource,
        /// Seconds since the shim fetched them from the vendor (for TDX
        /// collateral: its oldest part).
        age_secs: u64,
    },
}

/// Where the shim's answer to [`ShimRequest::Collateral`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CollateralSource {
    /// The vendor (or the configured PCCS, mirror or proxy), just now.
    Vendor,
    /// The shim's cache (still valid; also when the vendor failed).
    Cache,
}

/// A peer coordinator the shim knows of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    /// Its name (the pod name on Kubernetes), for logs.
    pub name: String,
    /// Where its mesh API listens (`host:port`).
    pub mesh_api: String,
}

/// The agent's state, as probes see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AgentState {
    /// No history.
    Uninitialized,
    /// A history but no secrets (or stale ones).
    Recovery,
    /// Serving.
    Ready,
}

/// What the agent tells its shim: enough for the probes and `/metrics`,
/// nothing secret.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentStatus {
    /// The state (`None` before the store was first read).
    pub state: Option<AgentState>,
    /// Both API listeners are up.
    pub listening: bool,
    /// The manifest generation served (0 unless Ready).
    pub generation: u64,
    /// Per API, method and outcome: how many requests and how long they
    /// took.
    pub requests: Vec<RequestStats>,
    /// Attestation failures on the mesh API, by reason.
    pub attestation_failures: Vec<(String, u64)>,
    /// Peer recovery attempts, and how many succeeded.
    pub peer_recovery_attempts: u64,
    /// Peer recoveries that succeeded.
    pub peer_recovery_successes: u64,
    /// The agent's resident set size in bytes (`VmRSS`; 0 when unknown).
    pub resident_bytes: u64,
    /// Store contents the agent refused as forged while Ready (a tree
    /// head its history key did not sign, a fork).
    pub forged_histories: u64,
    /// Connections refused when accepted, by API and reason
    /// (`per_source_limit`, `connection_limit`).
    pub refused_connections: Vec<RefusalStats>,
    /// Request frames refused before they were decoded, by API and reason
    /// (`busy`: no room in the body budget; `too_large`; `malformed`).
    pub refused_frames: Vec<RefusalStats>,
    /// Request body bytes reserved in the body budget right now (bodies
    /// being read, and requests being served).
    pub body_bytes_in_flight: u64,
    /// Store contents the agent has read and judged: the snapshot read at
    /// start and on each reload, and each latest record from the store's
    /// watch (a sign that a change of the store was seen, whatever the
    /// verdict).
    pub store_reads: u64,
    /// SHA-256 of the latest record in the store contents the agent last
    /// read whole and judged (`None` before the first such read, or when
    /// the store had no latest record): which change of the store the
    /// agent has seen.
    pub latest_read: Option<[u8; 32]>,
    /// Attestations (or collateral offers) the agent's verifier refused
    /// for its collateral, by reason: `stale` (a CRL or TDX collateral
    /// past its window), `revoked`, `older` (older than the newest seen),
    /// `missing` (a CRL, VCEK or TDX collateral neither carried nor
    /// held).
    pub collateral_refusals: Vec<(String, u64)>,
    /// Collateral offers (from the shim or carried by evidence) the
    /// verifier kept, and refused.
    pub collateral_offers: Vec<(String, u64)>,
    /// Seconds since the oldest collateral the verifier uses (CRL or TDX
    /// collateral still within its window) was issued (`None`: none held).
    pub oldest_collateral_age_secs: Option<u64>,
    /// How many collateral items the verifier holds.
    pub collateral_held: u64,
}

/// One (API, reason) refusal counter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusalStats {
    /// `user` or `mesh`.
    pub api: String,
    /// Why (a short snake_case word).
    pub reason: String,
    /// How many.
    pub count: u64,
}

/// One (API, method, outcome) series: a counter and a latency histogram.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestStats {
    /// `user` or `mesh`.
    pub api: String,
    /// `SetManifest`, `GetManifests`, `Recover`, `NewMeshCert`,
    /// `PeerRecover`.
    pub method: String,
    /// `ok` or an error code (`needs_recovery`, `permission_denied`, …).
    pub outcome: String,
    /// Requests.
    pub count: u64,
    /// Sum of their durations, in microseconds.
    pub sum_micros: u64,
    /// Requests that took at most [`LATENCY_BUCKETS`]`[i]` seconds
    /// (cumulative, one entry per bucket).
    pub buckets: Vec<u64>,
}

impl Message for ShimRequest {
    const NAME: &'static str = "ShimRequest";
}
impl Message for ShimResponse {
    const NAME: &'static str = "ShimResponse";
}
