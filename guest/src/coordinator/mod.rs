//! The coordinator service: a driver that owns the sans-IO state machine
//! ([`accord_core::coordinator::Coordinator`]) and executes its outputs,
//! and the user and mesh API servers ([`server`]) in front of it.
//!
//! One module per job:
//!
//! - `driver`: the machine's thread, its inputs and the execution of
//!   its outputs; `peers` executes peer-recovery attempts for it.
//! - `backend`: where the history is stored (a local directory or the
//!   host shim).
//! - `lifetime`: the process (or in-process coordinator) from start to
//!   stop: listeners, servers, driver, shutdown.
//! - `status`: the state and counters reported to the shim.
//! - [`server`], [`limits`], [`metrics`]: the API servers, their
//!   admission limits and their counters.

mod allocator;
mod backend;
mod driver;
mod lifetime;
pub mod limits;
pub mod metrics;
mod peers;
pub mod server;
mod status;

pub use backend::Backend;
pub use driver::{Handle, MeshState, OsRandom, Service, Wiring, new_request_id, start};
pub use lifetime::{
    InProcess, StoreLocation, run, spawn, spawn_at, spawn_with, spawn_with_collateral,
};
