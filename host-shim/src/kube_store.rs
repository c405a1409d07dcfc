//! The Kubernetes store backend: one ConfigMap per key.
//!
//! Modelled on Contrast's ConfigMap store:
//!
//! - key `<dir>/<name>` is ConfigMap `accord-store-<dir>-<name>`, the value
//!   in `binaryData{<name>: bytes}`, labelled
//!   `app.kubernetes.io/managed-by: accord` and
//!   `accord.dev/store-dir: <dir>`;
//! - **no owner reference**: the history outlives the StatefulSet, so
//!   deleting or re-creating it (a routine operation) never deletes the
//!   deployment's history. Deleting the history is explicit (`kubectl
//!   delete configmap -l app.kubernetes.io/managed-by=accord`,
//!   `deploy/README.md`). ConfigMaps written by older shims, which were
//!   owned by the StatefulSet, are read as any other;
//!   [`KubeStore::release_owner_references`] removes those references;
//! - keys must already be valid Kubernetes names (lowercase, at most 253
//!   characters in all): others are refused, never rewritten;
//! - content-addressed objects are created once (an existing equal object
//!   is fine, a different one an error);
//! - the latest record (`transitions/latest`) is replaced by GET, compare,
//!   and a PUT carrying the object's `resourceVersion`, so the API server
//!   makes the compare-and-swap atomic; its `409 Conflict` is
//!   [`StoreError::Conflict`] (Contrast leaves it a generic error);
//! - a background task follows the latest record with a watch (field
//!   selector on its name), re-established with backoff on errors.
//!
//! Every API call has a 10 s timeout ([`KubeStore::with_timeout`]).
//! RBAC needed: configmaps get, list, watch, create, update.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::watcher;
use kube::runtime::{WatchStreamExt as _, watcher::Event};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::store::{LATEST_KEY, Store, StoreError, WriteBatch, valid_key};

/// Prefix of every ConfigMap name.
pub const NAME_PREFIX: &str = "accord-store-";
/// The label marking accord's ConfigMaps, and its value.
pub const MANAGED_BY_LABEL: (&str, &str) = ("app.kubernetes.io/managed-by", "accord");
/// The label holding the key's `<dir>`.
pub const DIR_LABEL: &str = "accord.dev/store-dir";
/// Default timeout of every API call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a compare-and-swap of the latest record re-reads it after
/// the PUT was refused while the value was still the expected one.
const SWAP_ATTEMPTS: usize = 5;
/// Default page size of [`Store::snapshot`]'s list.
pub const DEFAULT_PAGE_SIZE: u32 = 100;

/// The ConfigMap name of a key, or why the key cannot be stored.
pub fn config_map_name(key: &str) -> Result<String, StoreError> {
    let bad = |why: &str| StoreError::Failed(format!("cannot store key {key:?}: {why}"));
    if !valid_key(key) {
        return Err(bad("not of the form <dir>/<name>, both [A-Za-z0-9-]+"));
    }
    if key.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(bad("Kubernetes names must be lowercase"));
    }
    let (dir, name) = key.split_once('/').ok_or_else(|| bad("no '/'"))?;
    let name_ok = name.ends_with(|c: char| c.is_ascii_alphanumeric());
    let dir_ok = dir.len() <= 63
        && dir.starts_with(|c: char| c.is_ascii_alphanumeric())
        && dir.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !name_ok || !dir_ok {
        return Err(bad(
            "the name must end, the directory start and end, alphanumeric, \
             the directory at most 63 characters (a label value)",
        ));
    }
    let full = format!("{NAME_PREFIX}{dir}-{name}");
    if full.len() > 253 {
        return Err(bad(&format!(
            "the ConfigMap name would be {} characters, over Kubernetes' 253",
            full.len()
        )));
    }
    Ok(full)
}

async fn timed<T>(
    timeout: Duration,
    what: String,
    fut: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(StoreError::Failed(format!("{what}: {e}"))),
        Err(_) => Err(StoreError::Failed(format!(
            "{what}: timed out after {timeout:?}"
        ))),
    }
}

/// Like [`timed`], but keeps the API status for the caller to inspect.
async fn timed_api<T>(
    timeout: Duration,
    what: &str,
    fut: impl Future<Output = Result<T, kube::Error>>,
) -> Result<Result<T, Box<kube::core::Status>>, StoreError> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(v)) => Ok(Ok(v)),
        Ok(Err(kube::Error::Api(s))) if s.code == 409 || s.code == 404 => Ok(Err(s)),
        Ok(Err(e)) => Err(StoreError::Failed(format!("{what}: {e}"))),
        Err(_) => Err(StoreError::Failed(format!(
            "{what}: timed out after {timeout:?}"
        ))),
    }
}

/// The single value of a ConfigMap stored under `name`, if it has exactly
/// that one entry.
fn value_of<'a>(cm: &'a ConfigMap, name: &str) -> Option<&'a [u8]> {
    let data = cm.binary_data.as_ref()?;
    if data.len() != 1 || cm.data.as_ref().is_some_and(|d| !d.is_empty()) {
        return None;
    }
    data.get(name).map(|b| b.0.as_slice())
}

/// The latest record as last seen, with the resource version it had.
struct Latest {
    tx: watch::Sender<Option<Vec<u8>>>,
    rv: Mutex<Option<u64>>,
}

impl Latest {
    /// Publishes `value` unless `rv` is older than what was published.
    fn offer(&self, rv: Option<&str>, value: Option<Vec<u8>>) {
        let rv = rv.and_then(|r| r.parse::<u64>().ok());
        let mut last = self.rv.lock().unwrap_or_else(|e| e.into_inner());
        if let (Some(new), Some(old)) = (rv, *last)
            && new < old
        {
            return;
        }
        if rv.is_some() {
            *last = rv;
        }
        self.tx.send_if_modified(|v| {
            if *v == value {
                false
            } else {
                *v = value;
                true
            }
        });
    }
}

/// The ConfigMap store.
pub struct KubeStore {
    api: Api<ConfigMap>,
    timeout: Duration,
    page_size: u32,
    latest: Arc<Latest>,
    watcher: JoinHandle<()>,
}

impl Drop for KubeStore {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

impl KubeStore {
    /// A store in `namespace`. Reads the latest record once (failing if
    /// the API server cannot be reached), then starts following it.
    pub async fn new(client: kube::Client, namespace: &str) -> Result<Self, StoreError> {
        Self::with_timeout(client, namespace, DEFAULT_TIMEOUT).await
    }

    /// [`KubeStore::new`] with another per-call timeout.
    pub async fn with_timeout(
        client: kube::Client,
        namespace: &str,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        let api: Api<ConfigMap> = Api::namespaced(client, namespace);
        let latest_name = config_map_name(LATEST_KEY)?;
        let latest_field = latest_name_part();
        let initial = timed(
            timeout,
            format!("get {latest_name}"),
            api.get_opt(&latest_name),
        )
        .await?;
        let latest = Arc::new(Latest {
            tx: watch::channel(None).0,
            rv: Mutex::new(None),
        });
        if let Some(cm) = &initial {
            latest.offer(
                cm.metadata.resource_version.as_deref(),
                value_of(cm, latest_field).map(<[u8]>::to_vec),
            );
        }
        let watcher = tokio::spawn(follow_latest(api.clone(), latest_name, latest.clone()));
        Ok(Self {
            api,
            timeout,
            page_size: DEFAULT_PAGE_SIZE,
            latest,
            watcher,
        })
    }

    /// Sets the page size of [`Store::snapshot`]'s list.
    pub fn set_page_size(&mut self, page_size: u32) {
        self.page_size = page_size.max(1);
    }

    /// Removes the StatefulSet owner references that older shims put on
    /// accord's ConfigMaps, so that deleting the StatefulSet no longer
    /// deletes the history; returns how many ConfigMaps changed. See
    /// [`OwnerRelease`].
    pub async fn release_owner_references(&self) -> Result<usize, StoreError> {
        self.owner_release().run().await
    }

    /// [`Self::release_owner_references`] as a task of its own, to run
    /// beside the store (the shim runs it in the background at startup, so
    /// a large history does not hold up its listeners).
    pub fn owner_release(&self) -> OwnerRelease {
        OwnerRelease {
            api: self.api.clone(),
            timeout: self.timeout,
            list: self.list_params(None),
        }
    }

    /// The list of accord's ConfigMaps, one page from `token`.
    fn list_params(&self, token: Option<&str>) -> ListParams {
        let lp = ListParams::default()
            .labels(&format!("{}={}", MANAGED_BY_LABEL.0, MANAGED_BY_LABEL.1))
            .limit(self.page_size);
        match token {
            Some(t) => lp.continue_token(t),
            None => lp,
        }
    }

    fn object(&self, key: &str, value: &[u8]) -> Result<ConfigMap, StoreError> {
        let name = config_map_name(key)?;
        let (dir, entry) = key
            .split_once('/')
            .ok_or_else(|| StoreError::Failed(format!("bad key {key:?}")))?;
        Ok(ConfigMap {
            metadata: ObjectMeta {
                name: Some(name),
                labels: Some(BTreeMap::from([
                    (MANAGED_BY_LABEL.0.to_owned(), MANAGED_BY_LABEL.1.to_owned()),
                    (DIR_LABEL.to_owned(), dir.to_owned()),
                ])),
                ..Default::default()
            },
            binary_data: Some(BTreeMap::from([(
                entry.to_owned(),
                ByteString(value.to_vec()),
            )])),
            ..Default::default()
        })
    }

    /// Creates one content-addressed object, or checks the existing one.
    async fn put(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let cm = self.object(key, value)?;
        let name = cm.metadata.name.clone().unwrap_or_default();
        let what = format!("create {name}");
        match timed_api(
            self.timeout,
            &what,
            self.api.create(&PostParams::default(), &cm),
        )
        .await?
        {
            Ok(_) => Ok(()),
            Err(s) if s.reason == "AlreadyExists" => {
                let existing =
                    timed(self.timeout, format!("get {name}"), self.api.get_opt(&name)).await?;
                let (dir, entry) = key.split_once('/').unwrap_or_default();
                let same = existing.as_ref().is_some_and(|e| {
                    value_of(e, entry) == Some(value)
                        && e.metadata.labels.as_ref().and_then(|l| l.get(DIR_LABEL))
                            == Some(&dir.to_owned())
                });
                if same {
                    Ok(())
                } else {
                    Err(StoreError::Failed(format!(
                        "stored object {key} differs from the one being written"
                    )))
                }
            }
            Err(s) => Err(StoreError::Failed(format!("{what}: {s}"))),
        }
    }

    async fn swap_latest(&self, old: Option<Vec<u8>>, new: &[u8]) -> Result<ConfigMap, StoreError> {
        let mut cm = self.object(LATEST_KEY, new)?;
        let name = cm.metadata.name.clone().unwrap_or_default();
        let entry = latest_name_part();
        match old {
            None => {
                let what = format!("create {name}");
                match timed_api(
                    self.timeout,
                    &what,
                    self.api.create(&PostParams::default(), &cm),
                )
                .await?
                {
                    Ok(stored) => Ok(stored),
                    Err(s) if s.reason == "AlreadyExists" => Err(StoreError::Conflict),
                    Err(s) => Err(StoreError::Failed(format!("{what}: {s}"))),
                }
            }
            Some(old) => {
                // The compare is on the value: a PUT refused because only
                // the metadata changed meanwhile (a release of the owner
                // reference, a label) is tried again on a fresh read.
                for _ in 0..SWAP_ATTEMPTS {
                    let current =
                        timed(self.timeout, format!("get {name}"), self.api.get_opt(&name)).await?;
                    let Some(current) = current else {
                        return Err(StoreError::Conflict);
                    };
                    if value_of(&current, entry) != Some(old.as_slice()) {
                        return Err(StoreError::Conflict);
                    }
                    // Keep the object's metadata (an older shim's owner
                    // reference too: the history is owned as a whole or
                    // not at all, see `release_owner_references`), set our
                    // labels, change the value.
                    let mut meta = current.metadata;
                    meta.labels = cm.metadata.labels.clone();
                    cm.metadata = meta;
                    let what = format!("replace {name}");
                    match timed_api(
                        self.timeout,
                        &what,
                        self.api.replace(&name, &PostParams::default(), &cm),
                    )
                    .await?
                    {
                        Ok(stored) => return Ok(stored),
                        // Changed between the GET and the PUT: look again.
                        Err(s) if s.code == 409 => {}
                        // Deleted between the GET and the PUT.
                        Err(s) if s.code == 404 => return Err(StoreError::Conflict),
                        Err(s) => return Err(StoreError::Failed(format!("{what}: {s}"))),
                    }
                }
                Err(StoreError::Conflict)
            }
        }
    }
}

/// Releases accord's ConfigMaps from the StatefulSet owner references that
/// older shims put on them. Other owner references, labels and values are
/// left as they are. Each object is replaced with its `resourceVersion`:
/// one changed by another replica meanwhile is read again and retried. A
/// failure on one object does not stop the others (the first is returned
/// at the end). Idempotent.
pub struct OwnerRelease {
    api: Api<ConfigMap>,
    timeout: Duration,
    list: ListParams,
}

impl OwnerRelease {
    /// Runs it: how many ConfigMaps changed.
    pub async fn run(self) -> Result<usize, StoreError> {
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let lp = match &token {
                Some(t) => self.list.clone().continue_token(t),
                None => self.list.clone(),
            };
            let page = timed(self.timeout, "list ConfigMaps".into(), self.api.list(&lp)).await?;
            names.extend(
                page.items
                    .iter()
                    .filter(|cm| statefulset_owned(cm))
                    .filter_map(|cm| cm.metadata.name.clone()),
            );
            token = page.metadata.continue_.filter(|t| !t.is_empty());
            if token.is_none() {
                break;
            }
        }
        let mut released = 0;
        let mut failed: Option<(usize, StoreError)> = None;
        for name in names {
            match self.release_one(&name).await {
                Ok(true) => released += 1,
                Ok(false) => {}
                Err(e) => {
                    let (n, _) = failed.get_or_insert((0, e));
                    *n += 1;
                }
            }
        }
        match failed {
            None => Ok(released),
            Some((1, e)) => Err(e),
            Some((n, e)) => Err(StoreError::Failed(format!(
                "{e} (and {} more ConfigMap(s) failed; {released} released)",
                n - 1
            ))),
        }
    }

    /// Releases one ConfigMap; `false` if there was nothing to do.
    async fn release_one(&self, name: &str) -> Result<bool, StoreError> {
        for _ in 0..SWAP_ATTEMPTS {
            let current =
                timed(self.timeout, format!("get {name}"), self.api.get_opt(name)).await?;
            let Some(mut cm) = current else {
                return Ok(false);
            };
            if !statefulset_owned(&cm) {
                return Ok(false);
            }
            let kept: Vec<OwnerReference> = cm
                .metadata
                .owner_references
                .take()
                .unwrap_or_default()
                .into_iter()
                .filter(|o| !is_statefulset(o))
                .collect();
            cm.metadata.owner_references = (!kept.is_empty()).then_some(kept);
            let what = format!("release {name} from the StatefulSet");
            match timed_api(
                self.timeout,
                &what,
                self.api.replace(name, &PostParams::default(), &cm),
            )
            .await?
            {
                Ok(_) => return Ok(true),
                // Changed (or deleted) meanwhile: look again.
                Err(s) if s.code == 409 || s.code == 404 => {}
                Err(s) => return Err(StoreError::Failed(format!("{what}: {s}"))),
            }
        }
        Err(StoreError::Failed(format!(
            "release {name} from the StatefulSet: still changing after {SWAP_ATTEMPTS} attempts"
        )))
    }
}

/// Whether `owner` is a StatefulSet (what older shims set).
fn is_statefulset(owner: &OwnerReference) -> bool {
    owner.kind == "StatefulSet" && owner.api_version == "apps/v1"
}

/// Whether a StatefulSet owns `cm`.
fn statefulset_owned(cm: &ConfigMap) -> bool {
    cm.metadata
        .owner_references
        .iter()
        .flatten()
        .any(is_statefulset)
}

/// The `<name>` part of [`LATEST_KEY`].
fn latest_name_part() -> &'static str {
    LATEST_KEY.split_once('/').map_or(LATEST_KEY, |(_, n)| n)
}

/// Follows the latest ConfigMap forever, re-establishing the watch with
/// backoff after errors.
async fn follow_latest(api: Api<ConfigMap>, name: String, latest: Arc<Latest>) {
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    loop {
        follow_once(&api, &config, &name, &latest).await;
        // The watcher retries by itself and should never end; if it does,
        // start over after a pause.
        tracing::info!("kube store: the watch of {name} ended; restarting");
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

async fn follow_once(api: &Api<ConfigMap>, config: &watcher::Config, name: &str, latest: &Latest) {
    let entry = latest_name_part();
    let mut stream = watcher(api.clone(), config.clone())
        .default_backoff()
        .boxed();
    // Objects seen during a (re)list, published at its end.
    let mut listed: Option<ConfigMap> = None;
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Apply(cm) | Event::InitApply(cm))
                if cm.metadata.name.as_deref() != Some(name) =>
            {
                tracing::warn!(
                    "kube store: ignoring unexpected ConfigMap {:?} in the latest watch",
                    cm.metadata.name
                );
            }
            Ok(Event::Apply(cm)) => {
                latest.offer(
                    cm.metadata.resource_version.as_deref(),
                    value_of(&cm, entry).map(<[u8]>::to_vec),
                );
            }
            Ok(Event::Delete(cm)) => {
                tracing::warn!("kube store: the latest record {name} was deleted");
                latest.offer(cm.metadata.resource_version.as_deref(), None);
            }
            Ok(Event::Init) => listed = None,
            Ok(Event::InitApply(cm)) => listed = Some(cm),
            // Nothing listed: keep what was seen. (A deletion missed while
            // disconnected is not noticed; the latest record is never
            // deleted in normal operation.)
            Ok(Event::InitDone) => {
                if let Some(cm) = listed.take() {
                    latest.offer(
                        cm.metadata.resource_version.as_deref(),
                        value_of(&cm, entry).map(<[u8]>::to_vec),
                    );
                }
            }
            // The backoff wrapper delays the next attempt.
            Err(e) => tracing::warn!("kube store: watch of {name}: {e}; retrying"),
        }
    }
}

impl Store for KubeStore {
    async fn snapshot(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let lp = self.list_params(token.as_deref());
            let page = timed(self.timeout, "list ConfigMaps".into(), self.api.list(&lp)).await?;
            for cm in &page.items {
                match entry_of(cm) {
                    Some(kv) => out.push(kv),
                    None => tracing::warn!(
                        "kube store: ignoring ConfigMap {:?}: not one binaryData entry matching its name",
                        cm.metadata.name
                    ),
                }
            }
            token = page.metadata.continue_.filter(|t| !t.is_empty());
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    async fn apply(&self, batch: WriteBatch) -> Result<(), StoreError> {
        let WriteBatch {
            puts,
            latest_old,
            latest_new,
            ..
        } = batch;
        // Refuse bad keys before writing anything.
        for (key, _) in &puts {
            config_map_name(key)?;
            if key == LATEST_KEY {
                return Err(StoreError::Failed(format!(
                    "{LATEST_KEY} is only written by compare-and-swap"
                )));
            }
        }
        for (key, value) in &puts {
            self.put(key, value).await?;
        }
        let stored = self.swap_latest(latest_old, &latest_new).await?;
        self.latest.offer(
            stored.metadata.resource_version.as_deref(),
            Some(latest_new),
        );
        Ok(())
    }

    fn watch_latest(&self) -> watch::Receiver<Option<Vec<u8>>> {
        self.latest.tx.subscribe()
    }
}

/// The (key, value) a listed ConfigMap holds, if it is well-formed.
fn entry_of(cm: &ConfigMap) -> Option<(String, Vec<u8>)> {
    let dir = cm.metadata.labels.as_ref()?.get(DIR_LABEL)?;
    let data = cm.binary_data.as_ref()?;
    let (entry, _) = data.iter().next()?;
    let key = format!("{dir}/{entry}");
    let expected = config_map_name(&key).ok()?;
    if cm.metadata.name.as_deref() != Some(expected.as_str()) {
        return None;
    }
    value_of(cm, entry).map(|v| (key, v.to_vec()))
}
