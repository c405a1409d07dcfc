//! The fetch policy: cache first while an entry is valid and not due for
//! refresh, then the vendor, then, when the vendor is down, slow or answers
//! garbage, the cached entry while it is still valid.
//!
//! Every decision is made at the instant the caller passes (`at`: the
//! instant the evidence is judged at), from the entry's own dates:
//! - an entry is *usable* while `at` lies in its window (notBefore or
//!   thisUpdate/issueDate up to, excluded, notAfter or nextUpdate);
//! - a usable CRL, TCB info or QE identity is *due for refresh* when less
//!   than a quarter of its window, or 24 h, remains;
//! - an entry past its nextUpdate is never served: the error says when it
//!   expired.
//!
//! A caller can pass an `accept` check (core's signature check against the
//! pinned roots) so that collateral which does not verify is neither cached
//! nor served, and a valid cached copy is used instead. The fetcher itself
//! trusts nothing it returns.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use accord_core::evidence::ReferenceValues;
use accord_core::time::UnixTime;

use crate::cache::{Cache, Entry};
use crate::http::HttpClient;
use crate::item::{Endpoints, Item, Validity};

/// Where a [`Fetched`] item came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The cache: the entry was valid and not due for refresh (or the
    /// fetcher is offline).
    Cache,
    /// The vendor, just now.
    Vendor,
    /// The cache, because the vendor failed (see [`Fetched::vendor_error`]);
    /// the entry is still valid.
    CacheVendorFailed,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Cache => "cache",
            Source::Vendor => "vendor",
            Source::CacheVendorFailed => "cache (vendor failed)",
        })
    }
}

/// An item as obtained, with where it came from and how old it is.
#[derive(Clone, Debug)]
pub struct Fetched {
    /// What it is.
    pub item: Item,
    /// The URL it was (or would have been) fetched from.
    pub url: String,
    /// The normalized body (DER certificate or CRL, PCS response text).
    pub body: Vec<u8>,
    /// The issuer chain from the response header, for PCS items.
    pub issuer_chain: Option<String>,
    /// Where it came from.
    pub source: Source,
    /// Time since it was fetched from the vendor.
    pub age: Duration,
    /// Its validity window.
    pub validity: Validity,
    /// Why the vendor was not used, when it was asked and failed.
    pub vendor_error: Option<String>,
}

/// Why an item could not be obtained. The message names the item, the URL
/// and what the cache held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchError(pub String);

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FetchError {}

/// Counters of a [`Fetcher`] (for the metrics: fetches by source and
/// outcome, cache hits).
#[derive(Debug, Default)]
pub struct FetchStats {
    /// Served from the cache without asking the vendor.
    pub cache_hits: AtomicU64,
    /// Fetched from the vendor and served.
    pub vendor_ok: AtomicU64,
    /// The vendor failed (down, slow, error status, garbage, did not
    /// verify, older issue) and the valid cached copy was served.
    pub vendor_failed_cache_served: AtomicU64,
    /// Nothing could be served.
    pub failed: AtomicU64,
}

/// A snapshot of [`FetchStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FetchCounts {
    /// See [`FetchStats::cache_hits`].
    pub cache_hits: u64,
    /// See [`FetchStats::vendor_ok`].
    pub vendor_ok: u64,
    /// See [`FetchStats::vendor_failed_cache_served`].
    pub vendor_failed_cache_served: u64,
    /// See [`FetchStats::failed`].
    pub failed: u64,
}

impl FetchStats {
    /// The counters now.
    pub fn snapshot(&self) -> FetchCounts {
        FetchCounts {
            cache_hits: self.cache_hits.load(Ordering::Relaxed),
            vendor_ok: self.vendor_ok.load(Ordering::Relaxed),
            vendor_failed_cache_served: self.vendor_failed_cache_served.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }

    fn count(&self, result: &Result<Fetched, FetchError>) {
        let counter = match result {
            Ok(f) if f.source == Source::Cache => &self.cache_hits,
            Ok(f) if f.source == Source::Vendor => &self.vendor_ok,
            Ok(_) => &self.vendor_failed_cache_served,
            Err(_) => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A check of a candidate body and its issuer chain (PCS items): `Err`
/// says why it is refused.
pub type Accept<'a> = dyn Fn(&[u8], Option<&str>) -> Result<(), String> + Sync + 'a;

/// Reports progress ("fetching the VCEK from https://…") to the caller.
pub type Progress = Arc<dyn Fn(&str) + Send + Sync>;

/// Fetches collateral through the cache.
#[derive(Clone)]
pub struct Fetcher {
    http: Option<HttpClient>,
    endpoints: Endpoints,
    cache: Option<Cache>,
    progress: Option<Progress>,
    stats: Arc<FetchStats>,
    trust: Arc<ReferenceValues>,
}

impl fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fetcher")
            .field("online", &self.http.is_some())
            .field("endpoints", &self.endpoints)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

/// A human duration: `42 s`, `5 min`, `3 h`, `2 d`.
pub fn human(age: Duration) -> String {
    let s = age.as_secs();
    match s {
        0..120 => format!("{s} s"),
        120..7_200 => format!("{} min", s / 60),
        7_200..172_800 => format!("{} h", s / 3_600),
        _ => format!("{} d", s / 86_400),
    }
}

fn age_of(fetched_at: SystemTime) -> Duration {
    SystemTime::now()
        .duration_since(fetched_at)
        .unwrap_or(Duration::ZERO)
}

impl Fetcher {
    /// A fetcher that asks the vendors through `http` (`None`: offline,
    /// cache only) and keeps what it gets in `cache` (`None`: no cache).
    pub fn new(http: Option<HttpClient>, endpoints: Endpoints, cache: Option<Cache>) -> Self {
        Self {
            http,
            endpoints,
            cache,
            progress: None,
            stats: Arc::default(),
            trust: Arc::default(),
        }
    }

    /// Checks the CRLs [`fetch_request`](Self::fetch_request) obtains
    /// against the roots `reference` names (its entries'
    /// `InsecureTrustedRoot`s, AMD's and Intel's pinned roots for entries
    /// naming none, and when there are no entries), as the verifier using
    /// these reference values will. Default: the pinned roots.
    #[must_use]
    pub fn trusting(mut self, reference: ReferenceValues) -> Self {
        self.trust = Arc::new(reference);
        self
    }

    /// The reference values whose roots fetched CRLs are checked against.
    pub fn trust(&self) -> &ReferenceValues {
        &self.trust
    }

    /// Reports each fetch and each cache fallback through `progress`.
    pub fn with_progress(mut self, progress: Progress) -> Self {
        self.progress = Some(progress);
        self
    }

    /// The endpoints.
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// The cache, if any.
    pub fn cache(&self) -> Option<&Cache> {
        self.cache.as_ref()
    }

    fn say(&self, message: &str) {
        if let Some(progress) = &self.progress {
            progress(message);
        }
    }

    /// Obtains `item` for use at `at`, without a signature check.
    pub async fn fetch(&self, item: &Item, at: UnixTime) -> Result<Fetched, FetchError> {
        self.fetch_checked(item, at, &|_, _| Ok(())).await
    }

    /// The counters (shared by clones of this fetcher).
    pub fn stats(&self) -> &FetchStats {
        &self.stats
    }

    /// Obtains `item` for use at `at`. `accept` checks a candidate body
    /// and its issuer chain (cached or fresh) and refuses it with a reason;
    /// a refused body is neither served nor cached.
    pub async fn fetch_checked(
        &self,
        item: &Item,
        at: UnixTime,
        accept: &Accept<'_>,
    ) -> Result<Fetched, FetchError> {
        let result = self.obtain(item, at, accept).await;
        self.stats.count(&result);
        result
    }

    async fn obtain(
        &self,
        item: &Item,
        at: UnixTime,
        accept: &Accept<'_>,
    ) -> Result<Fetched, FetchError> {
        let url = item.url(&self.endpoints);
        let key = item.cache_key();
        // What the cache holds, and why it cannot be served if it cannot.
        let mut cached: Option<(Entry, Validity)> = None;
        let mut cache_note = None;
        if let Some(cache) = &self.cache {
            match cache.load(&key) {
                Ok(Some(entry)) => match item
                    .validity(&entry.body)
                    .and_then(|v| accept(&entry.body, entry.issuer_chain.as_deref()).map(|()| v))
                    .and_then(|v| complete(item, &entry).map(|()| v))
                {
                    Ok(validity) if validity.contains(at) => cached = Some((entry, validity)),
                    Ok(validity) if at >= validity.not_after => {
                        cache_note = Some(format!(
                            "the cached copy is past its nextUpdate/notAfter {}",
                            validity.not_after
                        ));
                    }
                    Ok(validity) => {
                        cache_note = Some(format!(
                            "the cached copy is not valid yet (from {})",
                            validity.not_before
                        ));
                    }
                    Err(reason) => {
                        cache_note = Some(format!("the cached copy is unusable: {reason}"))
                    }
                },
                Ok(None) => {}
                Err(err) => {
                    cache_note = Some(format!("cannot read {}: {err}", cache.path(&key).display()));
                }
            }
        }
        let served = |(entry, validity): (Entry, Validity), source, vendor_error| Fetched {
            item: item.clone(),
            url: url.clone(),
            age: age_of(entry.fetched_at),
            body: entry.body,
            issuer_chain: entry.issuer_chain,
            source,
            validity,
            vendor_error,
        };
        let Some(http) = &self.http else {
            return match cached {
                Some(hit) => Ok(served(hit, Source::Cache, None)),
                None => Err(FetchError(match (&self.cache, cache_note) {
                    (None, _) => format!("offline and no cache: {item} is needed"),
                    (Some(cache), None) => format!(
                        "offline: {item} is not in the cache ({})",
                        cache.path(&key).display()
                    ),
                    (Some(cache), Some(note)) => format!(
                        "offline: {item} cannot be served from the cache ({}): {note}",
                        cache.path(&key).display()
                    ),
                })),
            };
        };
        let cached = match cached {
            Some(hit) if !hit.1.needs_refresh(at) => return Ok(served(hit, Source::Cache, None)),
            other => other,
        };
        self.say(&format!("fetching {item} from {url}"));
        match self.ask_vendor(http, item, &url, accept).await {
            Ok((entry, validity)) => {
                if let Some((old, old_validity)) = cached {
                    // Never replace a valid entry with an older issue.
                    if validity.not_before < old_validity.not_before {
                        let reason = format!(
                            "{} {url} served an older issue (from {}) than the cache holds (from {})",
                            item.vendor(),
                            validity.not_before,
                            old_validity.not_before
                        );
                        self.say(&format!("{reason}; using the cached copy"));
                        return Ok(served(
                            (old, old_validity),
                            Source::CacheVendorFailed,
                            Some(reason),
                        ));
                    }
                }
                if let Some(cache) = &self.cache
                    && let Err(err) = cache.store(&key, &entry)
                {
                    self.say(&format!(
                        "warning: cannot cache {item} at {}: {err}",
                        cache.path(&key).display()
                    ));
                }
                Ok(served((entry, validity), Source::Vendor, None))
            }
            Err(reason) => match cached {
                Some(hit) => {
                    self.say(&format!(
                        "{reason}; using the cached copy ({} old, valid until {})",
                        human(age_of(hit.0.fetched_at)),
                        hit.1.not_after
                    ));
                    Ok(served(hit, Source::CacheVendorFailed, Some(reason)))
                }
                None => Err(FetchError(match cache_note {
                    Some(note) => format!("{reason}; {note}"),
                    None => reason,
                })),
            },
        }
    }

    async fn ask_vendor(
        &self,
        http: &HttpClient,
        item: &Item,
        url: &str,
        accept: &Accept<'_>,
    ) -> Result<(Entry, Validity), String> {
        let vendor = item.vendor();
        let response = http
            .get(url)
            .await
            .map_err(|err| format!("{vendor} {url}: {err}"))?;
        if response.status != 200 {
            return Err(format!("{vendor} {url} answered {}", response.status));
        }
        let garbage =
            |reason: String| format!("{vendor} {url} answered garbage for {item}: {reason}");
        let body = item.normalize(&response.body).map_err(garbage)?;
        let validity = item.validity(&body).map_err(garbage)?;
        let issuer_chain = match item.issuer_chain_headers() {
            [] => None,
            names => {
                let raw = names
                    .iter()
                    .find_map(|name| response.headers.get(*name))
                    .ok_or_else(|| {
                        format!("{vendor} {url} sent no {} header", names.join(" or "))
                    })?;
                let raw = raw.to_str().map_err(|_| {
                    format!("{vendor} {url}: the {} header is not text", names.join("/"))
                })?;
                let decoded = percent_encoding::percent_decode_str(raw)
                    .decode_utf8()
                    .map_err(|_| {
                        format!(
                            "{vendor} {url}: the {} header is not URL-encoded PEM",
                            names.join("/")
                        )
                    })?;
                Some(decoded.into_owned())
            }
        };
        accept(&body, issuer_chain.as_deref()).map_err(|reason| {
            format!("{vendor} {url} served {item} that does not verify: {reason}")
        })?;
        let entry = Entry {
            body,
            issuer_chain,
            fetched_at: SystemTime::now(),
        };
        complete(item, &entry).map_err(garbage)?;
        Ok((entry, validity))
    }
}

/// An entry of an item that comes with an issuer chain must have one.
fn complete(item: &Item, entry: &Entry) -> Result<(), String> {
    if !item.issuer_chain_headers().is_empty() && entry.issuer_chain.is_none() {
        return Err("no issuer chain".into());
    }
    Ok(())
}
