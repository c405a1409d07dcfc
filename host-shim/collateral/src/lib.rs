//! accord's collateral fetcher: the untrusted side that brings the vendors'
//! endorsements to the verifier.
//!
//! **No trust decision is made here.** Everything this crate returns (a
//! VCEK, AMD's ASK/ARK chains and CRLs, Intel's TCB info, QE identity and
//! CRLs with their issuer chains) is signed by AMD or Intel and is verified
//! by `accord-core` against the pinned roots before it is used. A lying
//! network, proxy, mirror or cache can therefore deny service but cannot
//! make evidence pass. The crate only reads dates (with core's parsers) to
//! decide what to cache, refresh and serve.
//!
//! - [`item`]: what can be fetched, its AMD KDS / Intel PCS v4 URL, its
//!   cache key and validity window;
//! - [`http`]: the HTTP(S) client, with timeouts, a size cap and an
//!   optional HTTP proxy;
//! - [`cache`]: the on-disk cache, keyed by what an entry covers;
//! - [`fetch`]: the policy (cache while valid, refresh before nextUpdate,
//!   serve the cache while still valid when the vendor fails);
//! - [`evidence`]: what a report or quote needs, and the TDX collateral
//!   assembled from its PCS parts;
//! - [`request`]: core's `CollateralRequest` (what the in-service verifier
//!   needs) mapped to those items ([`Fetcher::fetch_request`]), for the
//!   shim, the CLI's network commands and the demo.
//!
//! - `test_vendor` (feature `test-vendor`): a loopback KDS/PCS for tests.
//!
//! Used by `accord evidence verify`, the CLI's network commands, the demo
//! and the shim.

pub mod cache;
pub mod evidence;
pub mod fetch;
pub mod http;
pub mod item;
pub mod request;
#[cfg(feature = "test-vendor")]
pub mod test_vendor;

pub use cache::{Cache, Entry};
pub use evidence::{TdxCollateral, crl_item, fetch_tdx_collateral, pck_target, vcek_item};
pub use fetch::{FetchCounts, FetchError, FetchStats, Fetched, Fetcher, Progress, Source, human};
pub use http::{HttpClient, HttpConfig, HttpError, Response};
pub use item::{DEFAULT_KDS_URL, DEFAULT_PCS_URL, Endpoints, Item, KeyKind, PckCa, Validity};
pub use request::{RequestAnswer, snp_item};
