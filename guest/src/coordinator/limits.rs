//! What one client, or all of them together, can make the coordinator
//! hold: connections per source address, and request body bytes in flight.
//!
//! - **Connections per source** ([`Sources`]): each API accepts at most
//!   [`Limits::connections_per_source`] connections from one source (an
//!   IPv4 address, or an IPv6 /64); more are closed at accept, counted in
//!   the metrics and logged at most once per [`REFUSAL_LOG_EVERY`]
//!   ([`RefusalLog`]). This is on top of the per-API cap of
//!   [`super::server::MAX_CONNECTIONS`].
//! - **Body budget** ([`BodyBudget`]): one budget for the whole process
//!   (both APIs). A request body's announced length is reserved before any
//!   of it is read, and released when the request has been answered (or
//!   the connection ends); a body that cannot get its bytes within
//!   [`Limits::budget_wait`] is refused ("the coordinator is busy: …").
//!   The budget is tiered so that one kind of traffic cannot starve
//!   another: `SetManifest` bodies above [`MAX_USER_SMALL_FRAME`] together
//!   may fill 1/4 of it (counted on their own, so small requests in
//!   flight do not shut them out; with the default, one maximum-size
//!   frame: the state
//!   machine applies one update at a time anyway, and every large body
//!   admitted at once costs the allocator far more than its size under a
//!   flood), user requests together 15/16, and mesh requests all of it,
//!   so user-API traffic always leaves room for workloads' `NewMeshCert`.
//! - **Frame size by request type**: on the user API a frame longer than
//!   [`MAX_USER_SMALL_FRAME`] must be a `SetManifest`; its first body byte
//!   is read and checked ([`accord_core::protocol::check_user_frame`])
//!   before its bytes are reserved ([`RequestReader`]).
//!
//! With the defaults (1,024 connections per API, a 64 MiB budget) the
//! request bodies the coordinator holds are bounded by 64 MiB whatever the
//! clients do; 1,024 hostile connections each announcing a 16 MiB frame
//! get one body read at a time and "busy" for the rest.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use accord_core::protocol::{Api, MAX_USER_SMALL_FRAME, check_user_frame};
use tokio::io::AsyncRead;
use tokio::sync::Notify;

use super::metrics::Metrics;
use crate::wire::{self, WireError};

/// Connections each API accepts from one source address at once. A
/// workload pod, a CLI or a replica needs one or two at a time; 32 leaves
/// room for a NAT in front of many clients while a single address cannot
/// take more than 1/32 of the per-API cap.
pub const MAX_CONNECTIONS_PER_SOURCE: usize = 32;

/// Request body bytes in flight in the whole process: room for one
/// maximum-size `SetManifest` frame ([`accord_core::protocol::MAX_USER_FRAME`],
/// 16 MiB, the large tier) next to 44 MiB of small user requests, and
/// the last 4 MiB kept for the mesh API.
pub const BODY_BUDGET: usize = 64 * 1024 * 1024;

/// How long a request body waits for room in the budget before it is
/// refused as busy.
pub const BUDGET_WAIT: Duration = Duration::from_secs(2);

/// At most one log line per API per this interval about refused
/// connections (the rest are summed up in the next line).
pub const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// The admission limits (tests lower them through
/// [`super::spawn_with`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections per API from one source ([`MAX_CONNECTIONS_PER_SOURCE`]).
    pub connections_per_source: usize,
    /// Request body bytes in flight ([`BODY_BUDGET`]).
    pub body_budget: usize,
    /// How long a body waits for room ([`BUDGET_WAIT`]).
    pub budget_wait: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            connections_per_source: MAX_CONNECTIONS_PER_SOURCE,
            body_budget: BODY_BUDGET,
            budget_wait: BUDGET_WAIT,
        }
    }
}

/// Which tier of the budget a body may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyClass {
    /// A mesh-API request: the whole budget.
    Mesh,
    /// A user-API request of at most [`MAX_USER_SMALL_FRAME`] bytes: all
    /// but 1/16 of the budget (kept for the mesh API).
    UserSmall,
    /// A larger user-API request (`SetManifest`): 1/4 of the budget.
    UserLarge,
}

/// The process-wide budget of request body bytes in flight.
pub struct BodyBudget {
    total: usize,
    wait: Duration,
    in_flight: Mutex<InFlight>,
    /// Notified on every release (what mesh and small user bodies wait
    /// for).
    freed: Notify,
    /// Notified when a large body's bytes are released, or when the
    /// whole budget was near its user ceiling (the only releases that can
    /// let a large body in): large bodies, which a flood parks by the
    /// thousand, are not woken by every small release.
    freed_large: Notify,
    metrics: Arc<Metrics>,
}

/// The bytes reserved: in all, and by large user bodies.
#[derive(Clone, Copy, Debug, Default)]
struct InFlight {
    all: usize,
    large: usize,
}

/// No room in the budget within the wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Busy {
    /// Bytes reserved when the wait ended.
    pub in_flight: usize,
    /// The bytes asked for.
    pub len: usize,
}

impl fmt::Display for Busy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MIB: f64 = 1024.0 * 1024.0;
        write!(
            f,
            "the coordinator is busy: {:.1} MiB of request bodies in flight \
             (no room for {} more bytes); try again later",
            self.in_flight as f64 / MIB,
            self.len
        )
    }
}

impl std::error::Error for Busy {}

/// A body's bytes in the budget; released when dropped.
pub struct BodyTicket {
    budget: Arc<BodyBudget>,
    len: usize,
    large: bool,
}

impl fmt::Debug for BodyTicket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyTicket")
            .field("len", &self.len)
            .finish()
    }
}

impl Drop for BodyTicket {
    fn drop(&mut self) {
        self.budget.release(self.len, self.large);
    }
}

impl BodyBudget {
    /// A budget of `total` bytes whose bodies wait up to `wait` for room;
    /// the bytes in flight are published in `metrics`.
    pub fn new(total: usize, wait: Duration, metrics: Arc<Metrics>) -> Self {
        Self {
            total,
            wait,
            in_flight: Mutex::new(InFlight::default()),
            freed: Notify::new(),
            freed_large: Notify::new(),
            metrics,
        }
    }

    /// How much of the budget bodies of `class` may fill: mesh bodies the
    /// whole budget, user bodies all but 1/16 (kept for the mesh API),
    /// large user bodies together 1/4 (counted on their own, and within
    /// the user ceiling).
    pub fn ceiling(&self, class: BodyClass) -> usize {
        match class {
            BodyClass::Mesh => self.total,
            BodyClass::UserSmall => self.total - self.total / 16,
            BodyClass::UserLarge => self.total / 4,
        }
    }

    /// Bytes reserved now.
    pub fn in_flight(&self) -> usize {
        self.lock().all
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, InFlight> {
        // A poisoned lock means a panic while adding or subtracting: the
        // numbers are still consistent.
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reserves `len` bytes now if they fit under `class`'s ceilings.
    pub fn try_reserve(self: &Arc<Self>, len: usize, class: BodyClass) -> Option<BodyTicket> {
        let mut in_flight = self.lock();
        let large = class == BodyClass::UserLarge;
        let all = in_flight.all.checked_add(len)?;
        let all_ceiling = if large {
            self.ceiling(BodyClass::UserSmall)
        } else {
            self.ceiling(class)
        };
        if all > all_ceiling {
            return None;
        }
        if large {
            let after = in_flight.large.checked_add(len)?;
            if after > self.ceiling(BodyClass::UserLarge) {
                return None;
            }
            in_flight.large = after;
        }
        in_flight.all = all;
        self.metrics.set_body_bytes_in_flight(all);
        Some(BodyTicket {
            budget: Arc::clone(self),
            len,
            large,
        })
    }

    /// Reserves `len` bytes, waiting up to the budget's wait for room.
    pub async fn reserve(
        self: &Arc<Self>,
        len: usize,
        class: BodyClass,
    ) -> Result<BodyTicket, Busy> {
        let busy = || Busy {
            in_flight: self.in_flight(),
            len,
        };
        let large = class == BodyClass::UserLarge;
        if len > self.ceiling(class) {
            // It can never fit: no point in waiting.
            return Err(busy());
        }
        let deadline = tokio::time::Instant::now() + self.wait;
        let notify = if large {
            &self.freed_large
        } else {
            &self.freed
        };
        loop {
            // Registered before trying, so a release in between wakes us.
            let freed = notify.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if let Some(ticket) = self.try_reserve(len, class) {
                return Ok(ticket);
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return Err(busy());
            }
        }
    }

    fn release(&self, len: usize, large: bool) {
        let before = {
            let mut in_flight = self.lock();
            let before = in_flight.all;
            in_flight.all = before.saturating_sub(len);
            if large {
                in_flight.large = in_flight.large.saturating_sub(len);
            }
            self.metrics.set_body_bytes_in_flight(in_flight.all);
            before
        };
        self.freed.notify_waiters();
        // A large body waits on its own tier, or on the user ceiling when
        // the whole budget was that full.
        let user_ceiling = self.ceiling(BodyClass::UserSmall);
        if large || before + self.ceiling(BodyClass::UserLarge) > user_ceiling {
            self.freed_large.notify_waiters();
        }
    }
}

/// What the servers share: the limits, the body budget, the counters.
pub struct Admission {
    /// The limits.
    pub limits: Limits,
    budget: Arc<BodyBudget>,
    metrics: Arc<Metrics>,
}

impl Admission {
    /// Admission under `limits`, counted in `metrics`.
    pub fn new(limits: Limits, metrics: Arc<Metrics>) -> Self {
        Self {
            budget: Arc::new(BodyBudget::new(
                limits.body_budget,
                limits.budget_wait,
                Arc::clone(&metrics),
            )),
            limits,
            metrics,
        }
    }

    /// The counters.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The body budget.
    pub fn budget(&self) -> &Arc<BodyBudget> {
        &self.budget
    }

    /// Reads request bodies for a connection on `api`.
    pub fn reader(&self, api: Api) -> RequestReader {
        RequestReader {
            api,
            budget: Arc::clone(&self.budget),
            metrics: Arc::clone(&self.metrics),
        }
    }
}

/// The API's name in metrics and logs.
pub fn api_name(api: Api) -> &'static str {
    match api {
        Api::User => "user",
        Api::Mesh => "mesh",
        Api::Shim => "shim",
    }
}

/// Why a request body was not read.
#[derive(Debug)]
pub enum BodyError {
    /// Refuse the frame with a `Protocol` error: `reason` for the metrics
    /// (`too_large`, `busy`), `message` for the client.
    Refused {
        /// The metrics label.
        reason: &'static str,
        /// What the client is told.
        message: String,
    },
    /// The connection failed, closed or stalled: close it quietly.
    Closed(WireError),
}

/// Reads request bodies on one connection under the budget.
pub struct RequestReader {
    api: Api,
    budget: Arc<BodyBudget>,
    metrics: Arc<Metrics>,
}

impl RequestReader {
    /// The API.
    pub fn api(&self) -> Api {
        self.api
    }

    /// Counts a refused frame.
    pub fn count_refusal(&self, reason: &'static str) {
        self.metrics.frame_refused(api_name(self.api), reason);
    }

    /// Reads a body of `len` bytes (its length prefix already checked
    /// against the API's largest frame): on the user API the type of a
    /// frame above [`MAX_USER_SMALL_FRAME`] first, then room in the budget,
    /// then the bytes. The ticket must be kept until the request has been
    /// answered. No time limit: the caller sets one.
    pub async fn read_body<S: AsyncRead + Unpin>(
        &self,
        stream: &mut S,
        len: usize,
    ) -> Result<(Vec<u8>, BodyTicket), BodyError> {
        let mut body = Vec::new();
        let class = match self.api {
            Api::User if len > MAX_USER_SMALL_FRAME => {
                let tag = wire::read_byte(stream).await.map_err(BodyError::Closed)?;
                check_user_frame(len, tag).map_err(|err| BodyError::Refused {
                    reason: "too_large",
                    message: err.to_string(),
                })?;
                body.push(tag);
                BodyClass::UserLarge
            }
            Api::User => BodyClass::UserSmall,
            Api::Mesh | Api::Shim => BodyClass::Mesh,
        };
        let ticket = self
            .budget
            .reserve(len, class)
            .await
            .map_err(|busy| BodyError::Refused {
                reason: "busy",
                message: busy.to_string(),
            })?;
        // The body has its room: one allocation of its announced length
        // (pages cost memory only once written). Growing by doubling
        // instead leaves the allocator holding freed buffers of every
        // size between 64 KiB and 16 MiB, which under a flood of large
        // bodies cost far more resident memory than the bodies did.
        body.reserve_exact(len - body.len());
        wire::fill_body(stream, &mut body, len)
            .await
            .map_err(BodyError::Closed)?;
        Ok((body, ticket))
    }
}

/// Why a connection was refused at accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionRefusal {
    /// The source already has its share of connections open.
    PerSource,
    /// The API has [`super::server::MAX_CONNECTIONS`] open.
    Total,
}

impl ConnectionRefusal {
    /// The metrics label.
    pub fn reason(self) -> &'static str {
        match self {
            Self::PerSource => "per_source_limit",
            Self::Total => "connection_limit",
        }
    }
}

/// The source a connection is counted against: an IPv4 address (also
/// when mapped into IPv6), or an IPv6 /64 (one host's usual allocation).
pub fn source_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

/// Open connections per source on one API.
pub struct Sources {
    limit: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted connection's place in [`Sources`]; freed when dropped.
pub struct SourceSlot {
    sources: Arc<Sources>,
    source: IpAddr,
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut open = self.sources.lock();
        if let Some(count) = open.get_mut(&self.source) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.source);
            }
        }
    }
}

impl Sources {
    /// At most `limit` connections per source.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            open: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot for a connection from `ip`, or `None` when its source has
    /// `limit` open.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<SourceSlot> {
        let source = source_of(ip);
        let mut open = self.lock();
        let count = open.entry(source).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(SourceSlot {
            sources: Arc::clone(self),
            source,
        })
    }

    /// Connections open from `ip`'s source.
    pub fn open(&self, ip: IpAddr) -> usize {
        self.lock().get(&source_of(ip)).copied().unwrap_or(0)
    }
}

/// Log lines about refused connections, at most one per
/// [`REFUSAL_LOG_EVERY`]: the first refusal after a quiet spell is logged
/// at once, the ones after it are summed up when the interval is over.
pub struct RefusalLog {
    api: &'static str,
    every: Duration,
    per_source_limit: usize,
    last_line: Option<Instant>,
    pending: [u64; 2],
    last_source: Option<IpAddr>,
}

impl RefusalLog {
    /// The log of `api`'s accept loop.
    pub fn new(api: &'static str, every: Duration, per_source_limit: usize) -> Self {
        Self {
            api,
            every,
            per_source_limit,
            last_line: None,
            pending: [0; 2],
            last_source: None,
        }
    }

    fn index(why: ConnectionRefusal) -> usize {
        match why {
            ConnectionRefusal::PerSource => 0,
            ConnectionRefusal::Total => 1,
        }
    }

    /// Notes a refusal at `now`; returns a line to log, if it is time.
    pub fn refused(&mut self, now: Instant, why: ConnectionRefusal, ip: IpAddr) -> Option<String> {
        let quiet = self
            .last_line
            .is_none_or(|last| now.duration_since(last) >= self.every);
        if quiet && self.pending == [0; 2] {
            self.last_line = Some(now);
            let detail = match why {
                ConnectionRefusal::PerSource => format!(
                    "{} connections from its source are open (the per-source limit)",
                    self.per_source_limit
                ),
                ConnectionRefusal::Total => format!(
                    "{} connections are open (the limit)",
                    super::server::MAX_CONNECTIONS
                ),
            };
            return Some(format!(
                "{} API: refused a connection from {ip}: {detail}; further refusals are summed up every {} s",
                self.api,
                self.every.as_secs()
            ));
        }
        if let Some(slot) = self.pending.get_mut(Self::index(why)) {
            *slot += 1;
        }
        self.last_source = Some(ip);
        if quiet { self.flush(now) } else { None }
    }

    /// When the pending refusals are due to be logged (`None`: none
    /// pending).
    pub fn due(&self) -> Option<Instant> {
        if self.pending == [0; 2] {
            return None;
        }
        Some(
            self.last_line
                .map_or_else(Instant::now, |last| last + self.every),
        )
    }

    /// The summary of the pending refusals, if any.
    pub fn flush(&mut self, now: Instant) -> Option<String> {
        let [per_source, total] = self.pending;
        if per_source + total == 0 {
            return None;
        }
        let since = self
            .last_line
            .map_or(0.0, |last| now.duration_since(last).as_secs_f64());
        self.pending = [0; 2];
        self.last_line = Some(now);
        let last = self
            .last_source
            .map_or_else(String::new, |ip| format!("; the last from {ip}"));
        Some(format!(
            "{} API: refused {} more connection(s) in the last {since:.0} s \
             ({per_source} over the per-source limit of {}, {total} over the limit of {}){last}",
            self.api,
            per_source + total,
            self.per_source_limit,
            super::server::MAX_CONNECTIONS,
        ))
    }
}

/// Per-connection log lines (a refused frame, a failed handshake) of one
/// API, at most [`LineLimiter::PER_WINDOW`] per [`REFUSAL_LOG_EVERY`]: a
/// flood of hostile connections must not flood the log (or block the
/// runtime on stderr). The first line after a full window says how many
/// were left out.
pub struct LineLimiter {
    window: Duration,
    state: Mutex<LineWindow>,
}

struct LineWindow {
    started: Option<Instant>,
    lines: u32,
    suppressed: u64,
}

impl LineLimiter {
    /// Lines let through per window.
    pub const PER_WINDOW: u32 = 20;

    /// A limiter with windows of `window`.
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            state: Mutex::new(LineWindow {
                started: None,
                lines: 0,
                suppressed: 0,
            }),
        }
    }

    /// `line` if it may be logged at `now` (with a note of the lines left
    /// out before it), else `None`.
    pub fn admit(&self, now: Instant, line: &str) -> Option<String> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = state
            .started
            .is_none_or(|started| now.duration_since(started) >= self.window);
        let mut note = String::new();
        if fresh {
            if state.suppressed > 0 {
                note = format!(
                    " ({} similar line(s) left out before this one)",
                    state.suppressed
                );
            }
            *state = LineWindow {
                started: Some(now),
                lines: 0,
                suppressed: 0,
            };
        }
        if state.lines >= Self::PER_WINDOW {
            state.suppressed += 1;
            return None;
        }
        state.lines += 1;
        Some(format!("{line}{note}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(total: usize, wait_ms: u64) -> Arc<BodyBudget> {
        Arc::new(BodyBudget::new(
            total,
            Duration::from_millis(wait_ms),
            Arc::new(Metrics::default()),
        ))
    }

    #[test]
    fn tiers_keep_room_for_the_mesh_api() {
        let b = budget(64, 0);
        assert_eq!(b.ceiling(BodyClass::Mesh), 64);
        assert_eq!(b.ceiling(BodyClass::UserSmall), 60);
        assert_eq!(b.ceiling(BodyClass::UserLarge), 16);
        let large = b.try_reserve(16, BodyClass::UserLarge).unwrap();
        assert!(b.try_reserve(1, BodyClass::UserLarge).is_none());
        let small = b.try_reserve(44, BodyClass::UserSmall).unwrap();
        assert!(b.try_reserve(1, BodyClass::UserSmall).is_none());
        let mesh = b.try_reserve(4, BodyClass::Mesh).unwrap();
        assert!(b.try_reserve(1, BodyClass::Mesh).is_none());
        assert_eq!(b.in_flight(), 64);
        drop((large, small, mesh));
        assert_eq!(b.in_flight(), 0);
        // Small requests in flight do not shut large bodies out: the large
        // tier is counted on its own, within the user ceiling.
        let small = b.try_reserve(40, BodyClass::UserSmall).unwrap();
        let large = b.try_reserve(16, BodyClass::UserLarge).unwrap();
        let rest = b.try_reserve(4, BodyClass::UserSmall).unwrap();
        assert!(b.try_reserve(1, BodyClass::UserSmall).is_none());
        assert!(b.try_reserve(4, BodyClass::Mesh).is_some());
        drop((large, small, rest));
        // With the defaults: one maximum-size SetManifest at a time.
        let defaults = budget(BODY_BUDGET, 0);
        assert_eq!(
            defaults.ceiling(BodyClass::UserLarge),
            accord_core::protocol::MAX_USER_FRAME
        );
    }

    #[test]
    fn the_gauge_follows_the_budget() {
        let metrics = Arc::new(Metrics::default());
        let b = Arc::new(BodyBudget::new(100, Duration::ZERO, Arc::clone(&metrics)));
        let ticket = b.try_reserve(30, BodyClass::Mesh).unwrap();
        let mut status = accord_core::protocol::shim::AgentStatus::default();
        metrics.fill(&mut status);
        assert_eq!(status.body_bytes_in_flight, 30);
        drop(ticket);
        metrics.fill(&mut status);
        assert_eq!(status.body_bytes_in_flight, 0);
    }

    #[tokio::test]
    async fn a_body_waits_for_room_then_is_busy() {
        let b = budget(256, 300);
        let held = b.try_reserve(64, BodyClass::UserLarge).unwrap();
        // Freed during the wait: the waiter gets its room.
        let waiter = {
            let b = Arc::clone(&b);
            tokio::spawn(async move { b.reserve(16, BodyClass::UserLarge).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(held);
        let ticket = waiter.await.unwrap().unwrap();
        assert_eq!(b.in_flight(), 16);
        // Not freed: busy after the wait, naming what is in flight.
        let _more = b.try_reserve(32, BodyClass::UserLarge).unwrap();
        let started = Instant::now();
        let busy = b.reserve(32, BodyClass::UserLarge).await.unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!(busy.in_flight, 48);
        assert!(
            busy.to_string()
                .starts_with("the coordinator is busy: 0.0 MiB of request bodies in flight"),
            "{busy}"
        );
        // A body larger than its tier is refused without waiting.
        let started = Instant::now();
        assert!(b.reserve(65, BodyClass::UserLarge).await.is_err());
        assert!(started.elapsed() < Duration::from_millis(300));
        drop(ticket);
    }

    #[tokio::test]
    async fn reading_checks_the_type_before_the_budget() {
        let admission = Admission::new(Limits::default(), Arc::new(Metrics::default()));
        let reader = admission.reader(Api::User);
        // A 1 MiB GetManifests (tag 1): refused after one byte.
        let mut input: &[u8] = &[0x01, 0, 0, 0];
        let Err(BodyError::Refused { reason, message }) =
            reader.read_body(&mut input, 1 << 20).await
        else {
            panic!("not refused")
        };
        assert_eq!(reason, "too_large");
        assert!(
            message.starts_with("a GetManifests frame of 1048576 bytes"),
            "{message}"
        );
        assert_eq!(input.len(), 3, "only the tag was read");
        assert_eq!(admission.budget().in_flight(), 0);
        // A large SetManifest is read whole and holds its bytes.
        let frame = vec![0u8; MAX_USER_SMALL_FRAME + 10];
        let mut input = frame.as_slice();
        let (body, ticket) = reader.read_body(&mut input, frame.len()).await.unwrap();
        assert_eq!(body, frame);
        assert_eq!(body.capacity(), frame.len(), "never more than announced");
        assert_eq!(admission.budget().in_flight(), frame.len());
        drop(ticket);
        assert_eq!(admission.budget().in_flight(), 0);
        // A truncated body closes the connection.
        let mut input: &[u8] = &[0x01, 2];
        assert!(matches!(
            reader.read_body(&mut input, 3).await,
            Err(BodyError::Closed(_))
        ));
    }

    #[test]
    fn sources_are_addresses_and_ipv6_prefixes() {
        let sources = Arc::new(Sources::new(2));
        let a: IpAddr = "127.0.0.5".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.5".parse().unwrap();
        let one = sources.admit(a).unwrap();
        let two = sources.admit(mapped).unwrap();
        assert!(sources.admit(a).is_none());
        assert!(sources.admit("127.0.0.6".parse().unwrap()).is_some());
        drop(one);
        let three = sources.admit(a).unwrap();
        assert_eq!(sources.open(a), 2);
        drop((two, three));
        assert_eq!(sources.open(a), 0);
        assert!(
            sources.lock().is_empty(),
            "no entry is kept for idle sources"
        );

        let v6 = Arc::new(Sources::new(1));
        let _held = v6.admit("2001:db8:1:2::1".parse().unwrap()).unwrap();
        assert!(v6.admit("2001:db8:1:2:ffff::9".parse().unwrap()).is_none());
        assert!(v6.admit("2001:db8:1:3::1".parse().unwrap()).is_some());
    }

    #[test]
    fn connection_lines_are_limited_per_window() {
        let limiter = LineLimiter::new(Duration::from_secs(10));
        let t0 = Instant::now();
        for i in 0..LineLimiter::PER_WINDOW {
            assert_eq!(
                limiter.admit(t0, &format!("line {i}")),
                Some(format!("line {i}"))
            );
        }
        assert_eq!(limiter.admit(t0 + Duration::from_secs(1), "x"), None);
        assert_eq!(limiter.admit(t0 + Duration::from_secs(9), "x"), None);
        assert_eq!(
            limiter
                .admit(t0 + Duration::from_secs(10), "next")
                .as_deref(),
            Some("next (2 similar line(s) left out before this one)")
        );
        assert_eq!(
            limiter
                .admit(t0 + Duration::from_secs(11), "more")
                .as_deref(),
            Some("more")
        );
    }

    #[test]
    fn refusals_are_logged_at_most_once_per_interval() {
        let every = Duration::from_secs(10);
        let mut log = RefusalLog::new("user", every, 32);
        let t0 = Instant::now();
        let ip: IpAddr = "10.0.0.9".parse().unwrap();
        let first = log.refused(t0, ConnectionRefusal::PerSource, ip).unwrap();
        assert!(
            first.contains("refused a connection from 10.0.0.9: 32 connections"),
            "{first}"
        );
        for i in 1..=5 {
            let at = t0 + Duration::from_secs(i);
            assert_eq!(log.refused(at, ConnectionRefusal::PerSource, ip), None);
        }
        assert_eq!(
            log.refused(t0 + Duration::from_secs(6), ConnectionRefusal::Total, ip),
            None
        );
        assert_eq!(log.due(), Some(t0 + every));
        let summary = log.flush(t0 + every).unwrap();
        assert!(
            summary.contains("refused 6 more connection(s) in the last 10 s (5 over the per-source limit of 32, 1 over the limit of 1024); the last from 10.0.0.9"),
            "{summary}"
        );
        assert_eq!(log.due(), None);
        assert_eq!(log.flush(t0 + every), None);
        // Within the next interval: summed up again; after it, pending
        // refusals go out with the next one.
        assert_eq!(
            log.refused(t0 + Duration::from_secs(12), ConnectionRefusal::Total, ip),
            None
        );
        let late = log
            .refused(t0 + Duration::from_secs(25), ConnectionRefusal::Total, ip)
            .unwrap();
        assert!(
            late.contains("refused 2 more connection(s) in the last 15 s"),
            "{late}"
        );
        // After a quiet spell the first refusal is logged at once.
        let again = log
            .refused(t0 + Duration::from_secs(60), ConnectionRefusal::Total, ip)
            .unwrap();
        assert!(again.contains("1024 connections are open"), "{again}");
    }
}
