//! An in-process fake of the Kubernetes API server, for tests only
//! (feature `test-apiserver`).
//!
//! There is no real Kubernetes API server on the build machines, so the
//! Kubernetes backends ([`crate::kube_store`], [`crate::kube_discovery`])
//! are tested against this one. It speaks the wire format `kube` uses, for
//! the two resources accord needs (core/v1 `configmaps` and `pods`, in any
//! namespace), over plain HTTP/1.1 on `127.0.0.1`:
//!
//! - `GET/POST /api/v1/namespaces/{ns}/{configmaps|pods}` (list, create),
//!   `GET/PUT/DELETE .../{name}`, JSON bodies;
//! - one global, monotonically increasing `resourceVersion`; a `PUT` with a
//!   stale one is `409 Conflict`, a `POST` of an existing name
//!   `409 AlreadyExists`, a missing object `404 NotFound`, each with a
//!   `Status` body;
//! - `labelSelector` (`k=v`, `k==v`, `k!=v`, `k`, `!k`, comma-separated)
//!   and `fieldSelector` (`metadata.name`, `metadata.namespace`, `=`/`!=`);
//! - `limit`/`continue` pagination (the token is the last name returned);
//! - `watch=true|1`: newline-delimited JSON watch events over chunked
//!   transfer encoding, from after `resourceVersion` (or the current objects
//!   as `ADDED` when it is absent or `0`), ending after `timeoutSeconds`;
//!   objects moving in or out of the selector are `ADDED`/`DELETED`, as on
//!   a real server; a watch from before [`TestApiServer::compact`] gets a
//!   `410 Expired` `ERROR` event. Bookmarks are never sent.
//!
//! Tests set pod status directly with [`TestApiServer::update_pod`] and
//! friends, inject faults ([`TestApiServer::fail_next`],
//! [`TestApiServer::hang_next`]) and cut watches
//! ([`TestApiServer::end_watches`], [`TestApiServer::break_watches`]).
//!
//! Use: `let server = TestApiServer::start().await?; let client =
//! server.client()?;` (a `kube::Client` on `http://127.0.0.1:PORT`). Other
//! crates (the workspace `tests` crate) get it with a dev-dependency on
//! `accord-shim` with `features = ["test-apiserver"]`.
//!
//! Not modelled: authentication, admission, `generateName`, PATCH,
//! `sendInitialEvents`, other resources, consistent pagination snapshots.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::StreamExt as _;
use http_body_util::{BodyExt as _, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::Frame;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, PodCondition};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

/// The resources the server knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    /// core/v1 ConfigMap.
    ConfigMaps,
    /// core/v1 Pod.
    Pods,
}

impl Resource {
    fn from_path(s: &str) -> Option<Self> {
        match s {
            "configmaps" => Some(Self::ConfigMaps),
            "pods" => Some(Self::Pods),
            _ => None,
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Self::ConfigMaps => "ConfigMap",
            Self::Pods => "Pod",
        }
    }
}

type Key = (Resource, String, String);

struct Event {
    rv: u64,
    resource: Resource,
    namespace: String,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    kind: &'static str,
    old: Option<Value>,
    new: Value,
}

#[derive(Default)]
struct Inner {
    rv: u64,
    uid: u64,
    objects: BTreeMap<Key, Value>,
    events: Vec<Event>,
    /// Watches from before this resource version get `410 Expired`.
    compacted: u64,
    fail_next: u32,
    hang_next: u32,
    requests: u64,
    watches: u64,
    /// Responses sent, by (status code, reason).
    responses: BTreeMap<(u16, String), u64>,
}

struct Shared {
    inner: Mutex<Inner>,
    /// The latest resource version, for watch streams to wake up on.
    rv_tx: watch::Sender<u64>,
    /// (generation, abrupt): every watch stream ends when it changes.
    cut_tx: watch::Sender<(u64, bool)>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere in a test must not hide the real failure.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores `obj` (or removes it when `None`), bumps the resource
    /// version and records the event. Returns the stored object.
    fn write(&self, inner: &mut Inner, key: &Key, obj: Option<Value>) -> Value {
        inner.rv += 1;
        let rv = inner.rv;
        let old = inner.objects.get(key).cloned();
        let (kind, mut new) = match (obj, &old) {
            (Some(o), None) => ("ADDED", o),
            (Some(o), Some(_)) => ("MODIFIED", o),
            (None, Some(o)) => ("DELETED", o.clone()),
            (None, None) => unreachable!("deleting a missing object"),
        };
        new["metadata"]["resourceVersion"] = json!(rv.to_string());
        if kind == "DELETED" {
            inner.objects.remove(key);
        } else {
            inner.objects.insert(key.clone(), new.clone());
        }
        inner.events.push(Event {
            rv,
            resource: key.0,
            namespace: key.1.clone(),
            kind,
            old,
            new: new.clone(),
        });
        self.rv_tx.send_replace(rv);
        new
    }
}

/// A running fake API server; stops when dropped.
pub struct TestApiServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for TestApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestApiServer {
    /// Starts a server on `127.0.0.1`, on a free port.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner::default()),
            rv_tx: watch::channel(0).0,
            cut_tx: watch::channel((0, false)).0,
        });
        let s = shared.clone();
        let task = tokio::spawn(async move {
            // Dropped with the accept loop: aborts every connection.
            let mut conns = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let s = s.clone();
                        conns.spawn(async move {
                            let service = hyper::service::service_fn(move |req| {
                                let s = s.clone();
                                async move { Ok::<_, Infallible>(handle(s, req).await) }
                            });
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        });
                    }
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
        });
        Ok(Self { addr, shared, task })
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A `kube` client for this server.
    pub fn client(&self) -> Result<kube::Client, kube::Error> {
        let uri = self
            .url()
            .parse()
            .map_err(|e| kube::Error::Service(Box::new(e)))?;
        kube::Client::try_from(kube::Config::new(uri))
    }

    /// The current (latest) resource version.
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().rv
    }

    /// Requests served so far (watches included).
    pub fn request_count(&self) -> u64 {
        self.shared.lock().requests
    }

    /// Error responses sent so far with this status code and reason
    /// (e.g. `409, "Conflict"`).
    pub fn error_count(&self, code: u16, reason: &str) -> u64 {
        let inner = self.shared.lock();
        inner
            .responses
            .get(&(code, reason.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// Watch requests served so far.
    pub fn watch_count(&self) -> u64 {
        self.shared.lock().watches
    }

    /// The next `n` requests fail with `500 InternalError`.
    pub fn fail_next(&self, n: u32) {
        self.shared.lock().fail_next = n;
    }

    /// The next `n` requests never get a response.
    pub fn hang_next(&self, n: u32) {
        self.shared.lock().hang_next = n;
    }

    /// Ends every open watch stream cleanly (the final chunk is sent), as
    /// an API server does at its timeout or on restart.
    pub fn end_watches(&self) {
        self.shared.cut_tx.send_modify(|(g, abrupt)| {
            *g += 1;
            *abrupt = false;
        });
    }

    /// Breaks every open watch connection (no final chunk), as a crashing
    /// API server or a broken network does.
    pub fn break_watches(&self) {
        self.shared.cut_tx.send_modify(|(g, abrupt)| {
            *g += 1;
            *abrupt = true;
        });
    }

    /// Forgets the event history: watches from an older resource version
    /// get `410 Expired`.
    pub fn compact(&self) {
        let mut inner = self.shared.lock();
        inner.compacted = inner.rv;
        inner.events.clear();
    }

    /// An object, as stored.
    pub fn get_raw(&self, resource: Resource, ns: &str, name: &str) -> Option<Value> {
        let key = (resource, ns.to_owned(), name.to_owned());
        self.shared.lock().objects.get(&key).cloned()
    }

    /// Every object of a kind in `ns`, by name.
    pub fn list_raw(&self, resource: Resource, ns: &str) -> Vec<Value> {
        let inner = self.shared.lock();
        inner
            .objects
            .iter()
            .filter(|((r, n, _), _)| *r == resource && n == ns)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// A ConfigMap, as stored.
    pub fn config_map(&self, ns: &str, name: &str) -> Option<ConfigMap> {
        self.get_raw(Resource::ConfigMaps, ns, name)
            .and_then(|v| serde_json::from_value(v).ok())
    }

    /// Every ConfigMap in `ns`, by name.
    pub fn config_maps(&self, ns: &str) -> Vec<ConfigMap> {
        self.list_raw(Resource::ConfigMaps, ns)
            .into_iter()
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect()
    }

    /// A pod, as stored.
    pub fn pod(&self, ns: &str, name: &str) -> Option<Pod> {
        self.get_raw(Resource::Pods, ns, name)
            .and_then(|v| serde_json::from_value(v).ok())
    }

    /// Creates or replaces an object (resource version, uid and
    /// namespace are set here), emitting the watch event.
    pub fn put_raw(&self, resource: Resource, ns: &str, mut obj: Value) -> Value {
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(!name.is_empty(), "put_raw: the object has no name");
        let key = (resource, ns.to_owned(), name);
        let mut inner = self.shared.lock();
        let old = inner.objects.get(&key).cloned();
        prepare(&mut inner, resource, ns, &mut obj, old.as_ref());
        self.shared.write(&mut inner, &key, Some(obj))
    }

    /// Creates or replaces a pod.
    pub fn put_pod(&self, ns: &str, pod: &Pod) {
        let v = serde_json::to_value(pod).unwrap_or_else(|e| panic!("pod to JSON: {e}"));
        self.put_raw(Resource::Pods, ns, v);
    }

    /// Changes a pod in place (e.g. its status); false if it is missing.
    pub fn update_pod(&self, ns: &str, name: &str, f: impl FnOnce(&mut Pod)) -> bool {
        let Some(mut pod) = self.pod(ns, name) else {
            return false;
        };
        f(&mut pod);
        self.put_pod(ns, &pod);
        true
    }

    /// Sets the pod's `Ready` condition; false if it is missing.
    pub fn set_pod_ready(&self, ns: &str, name: &str, ready: bool) -> bool {
        self.update_pod(ns, name, |pod| {
            let status = pod.status.get_or_insert_with(Default::default);
            let conds = status.conditions.get_or_insert_with(Vec::new);
            conds.retain(|c| c.type_ != "Ready");
            conds.push(PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..Default::default()
            });
        })
    }

    /// Deletes an object; false if it is missing.
    pub fn delete_raw(&self, resource: Resource, ns: &str, name: &str) -> bool {
        let key = (resource, ns.to_owned(), name.to_owned());
        let mut inner = self.shared.lock();
        if !inner.objects.contains_key(&key) {
            return false;
        }
        self.shared.write(&mut inner, &key, None);
        true
    }

    /// Deletes a pod; false if it is missing.
    pub fn delete_pod(&self, ns: &str, name: &str) -> bool {
        self.delete_raw(Resource::Pods, ns, name)
    }
}

/// Fills in the server-set fields of an object about to be stored.
fn prepare(inner: &mut Inner, resource: Resource, ns: &str, obj: &mut Value, old: Option<&Value>) {
    obj["apiVersion"] = json!("v1");
    obj["kind"] = json!(resource.kind());
    obj["metadata"]["namespace"] = json!(ns);
    match old {
        Some(old) => {
            obj["metadata"]["uid"] = old["metadata"]["uid"].clone();
            obj["metadata"]["creationTimestamp"] = old["metadata"]["creationTimestamp"].clone();
        }
        None => {
            inner.uid += 1;
            obj["metadata"]["uid"] = json!(format!("00000000-0000-4000-8000-{:012x}", inner.uid));
            obj["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
        }
    }
}

type Body = UnsyncBoxBody<Bytes, std::io::Error>;

fn full(status: StatusCode, v: &Value) -> Response<Body> {
    let body = Full::new(Bytes::from(v.to_string()))
        .map_err(|never: Infallible| match never {})
        .boxed_unsync();
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

fn status_value(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    })
}

/// The reason of an error response, for [`TestApiServer::error_count`].
#[derive(Clone)]
struct ErrorReason(String);

fn status(code: StatusCode, reason: &str, message: &str) -> Response<Body> {
    let mut resp = full(code, &status_value(code.as_u16(), reason, message));
    resp.extensions_mut().insert(ErrorReason(reason.to_owned()));
    resp
}

fn not_found(resource: Resource, name: &str) -> Response<Body> {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("{} \"{name}\" not found", resource_plural(resource)),
    )
}

fn resource_plural(r: Resource) -> &'static str {
    match r {
        Resource::ConfigMaps => "configmaps",
        Resource::Pods => "pods",
    }
}

fn query_pairs(query: Option<&str>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(percent_decode(k), percent_decode(v));
    }
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A parsed label or field selector: (key, op, value); op is `=`, `!=`,
/// `exists` or `!exists`.
type Selector = Vec<(String, &'static str, String)>;

fn parse_selector(s: &str) -> Selector {
    let mut out = Vec::new();
    for term in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        if let Some((k, v)) = term.split_once("!=") {
            out.push((k.trim().to_owned(), "!=", v.trim().to_owned()));
        } else if let Some((k, v)) = term.split_once("==") {
            out.push((k.trim().to_owned(), "=", v.trim().to_owned()));
        } else if let Some((k, v)) = term.split_once('=') {
            out.push((k.trim().to_owned(), "=", v.trim().to_owned()));
        } else if let Some(k) = term.strip_prefix('!') {
            out.push((k.trim().to_owned(), "!exists", String::new()));
        } else {
            out.push((term.to_owned(), "exists", String::new()));
        }
    }
    out
}

fn matches_labels(sel: &Selector, obj: &Value) -> bool {
    let labels = &obj["metadata"]["labels"];
    sel.iter().all(|(k, op, v)| {
        let actual = labels.get(k).and_then(Value::as_str);
        match *op {
            "=" => actual == Some(v.as_str()),
            "!=" => actual != Some(v.as_str()),
            "exists" => actual.is_some(),
            _ => actual.is_none(),
        }
    })
}

fn field_value<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    match field {
        "metadata.name" => obj["metadata"]["name"].as_str(),
        "metadata.namespace" => obj["metadata"]["namespace"].as_str(),
        _ => None,
    }
}

fn valid_fields(sel: &Selector) -> Result<(), String> {
    for (k, op, _) in sel {
        if !matches!(k.as_str(), "metadata.name" | "metadata.namespace") || op.contains("exists") {
            return Err(format!("field label not supported: {k}"));
        }
    }
    Ok(())
}

fn matches_fields(sel: &Selector, obj: &Value) -> bool {
    sel.iter().all(|(k, op, v)| {
        let actual = field_value(obj, k);
        match *op {
            "=" => actual == Some(v.as_str()),
            _ => actual != Some(v.as_str()),
        }
    })
}

struct Filter {
    resource: Resource,
    namespace: String,
    labels: Selector,
    fields: Selector,
}

impl Filter {
    fn matches(&self, obj: &Value) -> bool {
        matches_labels(&self.labels, obj) && matches_fields(&self.fields, obj)
    }
}

async fn handle(shared: Arc<Shared>, req: Request<hyper::body::Incoming>) -> Response<Body> {
    let resp = route(shared.clone(), req).await;
    if let Some(ErrorReason(reason)) = resp.extensions().get::<ErrorReason>() {
        let key = (resp.status().as_u16(), reason.clone());
        *shared.lock().responses.entry(key).or_default() += 1;
    }
    resp
}

async fn route(shared: Arc<Shared>, req: Request<hyper::body::Incoming>) -> Response<Body> {
    let (fail, hang) = {
        let mut inner = shared.lock();
        inner.requests += 1;
        if inner.hang_next > 0 {
            inner.hang_next -= 1;
            (false, true)
        } else if inner.fail_next > 0 {
            inner.fail_next -= 1;
            (true, false)
        } else {
            (false, false)
        }
    };
    if hang {
        std::future::pending::<()>().await;
    }
    if fail {
        return status(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "injected fault",
        );
    }

    let path = req.uri().path().to_owned();
    let query = query_pairs(req.uri().query());
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (ns, resource, name) = match parts.as_slice() {
        ["api", "v1", "namespaces", ns, r] => (*ns, Resource::from_path(r), None),
        ["api", "v1", "namespaces", ns, r, name] => (*ns, Resource::from_path(r), Some(*name)),
        _ => ("", None, None),
    };
    let Some(resource) = resource else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("the server could not find the requested resource ({path})"),
        );
    };
    let ns = ns.to_owned();
    let name = name.map(str::to_owned);
    let method = req.method().clone();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return status(StatusCode::BAD_REQUEST, "BadRequest", &e.to_string()),
    };

    let labels = parse_selector(query.get("labelSelector").map_or("", String::as_str));
    let fields = parse_selector(query.get("fieldSelector").map_or("", String::as_str));
    if let Err(e) = valid_fields(&fields) {
        return status(StatusCode::BAD_REQUEST, "BadRequest", &e);
    }
    let filter = Filter {
        resource,
        namespace: ns.clone(),
        labels,
        fields,
    };

    match (method, name) {
        (Method::GET, None) => {
            if matches!(query.get("watch").map(String::as_str), Some("true" | "1")) {
                watch_response(shared, filter, &query)
            } else {
                list(&shared, &filter, &query)
            }
        }
        (Method::POST, None) => {
            let mut obj: Value = match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(e) => return status(StatusCode::BAD_REQUEST, "BadRequest", &e.to_string()),
            };
            let Some(name) = obj["metadata"]["name"].as_str().map(str::to_owned) else {
                return status(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Invalid",
                    "name is required",
                );
            };
            let key = (resource, ns.clone(), name.clone());
            let mut inner = shared.lock();
            if inner.objects.contains_key(&key) {
                return status(
                    StatusCode::CONFLICT,
                    "AlreadyExists",
                    &format!("{} \"{name}\" already exists", resource_plural(resource)),
                );
            }
            prepare(&mut inner, resource, &ns, &mut obj, None);
            let stored = shared.write(&mut inner, &key, Some(obj));
            full(StatusCode::CREATED, &stored)
        }
        (Method::GET, Some(name)) => {
            let key = (resource, ns, name.clone());
            match shared.lock().objects.get(&key) {
                Some(v) => full(StatusCode::OK, v),
                None => not_found(resource, &name),
            }
        }
        (Method::PUT, Some(name)) => {
            let mut obj: Value = match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(e) => return status(StatusCode::BAD_REQUEST, "BadRequest", &e.to_string()),
            };
            if obj["metadata"]["name"].as_str() != Some(name.as_str()) {
                return status(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "the name of the object does not match the name on the URL",
                );
            }
            let key = (resource, ns.clone(), name.clone());
            let mut inner = shared.lock();
            let Some(old) = inner.objects.get(&key).cloned() else {
                return not_found(resource, &name);
            };
            let wanted = obj["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or_default();
            if !wanted.is_empty() && Some(wanted) != old["metadata"]["resourceVersion"].as_str() {
                return status(
                    StatusCode::CONFLICT,
                    "Conflict",
                    &format!(
                        "Operation cannot be fulfilled on {} \"{name}\": the object has been \
                         modified; please apply your changes to the latest version and try again",
                        resource_plural(resource)
                    ),
                );
            }
            prepare(&mut inner, resource, &ns, &mut obj, Some(&old));
            let stored = shared.write(&mut inner, &key, Some(obj));
            full(StatusCode::OK, &stored)
        }
        (Method::DELETE, Some(name)) => {
            let key = (resource, ns, name.clone());
            let mut inner = shared.lock();
            if !inner.objects.contains_key(&key) {
                return not_found(resource, &name);
            }
            let gone = shared.write(&mut inner, &key, None);
            full(StatusCode::OK, &gone)
        }
        (m, _) => status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            &format!("{m} is not supported here"),
        ),
    }
}

fn list(shared: &Shared, filter: &Filter, query: &BTreeMap<String, String>) -> Response<Body> {
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|&l| l > 0);
    let after = query.get("continue").filter(|c| !c.is_empty()).cloned();
    let inner = shared.lock();
    let mut items = Vec::new();
    let mut more = false;
    for ((r, n, name), obj) in &inner.objects {
        if *r != filter.resource || *n != filter.namespace || !filter.matches(obj) {
            continue;
        }
        if after.as_ref().is_some_and(|a| name <= a) {
            continue;
        }
        if limit.is_some_and(|l| items.len() == l) {
            more = true;
            break;
        }
        items.push(obj.clone());
    }
    let mut metadata = json!({ "resourceVersion": inner.rv.to_string() });
    if more && let Some(last) = items.last() {
        metadata["continue"] = last["metadata"]["name"].clone();
    }
    full(
        StatusCode::OK,
        &json!({
            "kind": format!("{}List", filter.resource.kind()),
            "apiVersion": "v1",
            "metadata": metadata,
            "items": items,
        }),
    )
}

fn watch_line(kind: &str, obj: &Value) -> Bytes {
    let mut line = json!({ "type": kind, "object": obj }).to_string();
    line.push('\n');
    Bytes::from(line)
}

/// The events after `from` that `filter` sees, translated for objects
/// moving in or out of the selector.
fn events_after(inner: &Inner, filter: &Filter, from: u64) -> Vec<Bytes> {
    let mut out = Vec::new();
    for ev in inner.events.iter().filter(|e| e.rv > from) {
        if ev.resource != filter.resource || ev.namespace != filter.namespace {
            continue;
        }
        let was = ev.old.as_ref().is_some_and(|o| filter.matches(o));
        let is = filter.matches(&ev.new);
        let kind = match (ev.kind, was, is) {
            ("DELETED", true, _) => "DELETED",
            ("DELETED", false, _) => continue,
            (_, false, true) => "ADDED",
            (_, true, true) => ev.kind,
            (_, true, false) => "DELETED",
            (_, false, false) => continue,
        };
        out.push(watch_line(kind, &ev.new));
    }
    out
}

fn watch_response(
    shared: Arc<Shared>,
    filter: Filter,
    query: &BTreeMap<String, String>,
) -> Response<Body> {
    let from = match query.get("resourceVersion").map(String::as_str) {
        None | Some("" | "0") => None,
        Some(rv) => match rv.parse::<u64>() {
            Ok(rv) => Some(rv),
            Err(_) => {
                return status(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    &format!("invalid resource version {rv:?}"),
                );
            }
        },
    };
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs);
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    let mut rv_rx = shared.rv_tx.subscribe();
    let mut cut_rx = shared.cut_tx.subscribe();
    cut_rx.mark_unchanged();

    // The first batch, under the same lock as the cursor.
    let (first, mut cursor) = {
        let mut inner = shared.lock();
        inner.watches += 1;
        rv_rx.mark_unchanged();
        match from {
            None => {
                let lines = inner
                    .objects
                    .iter()
                    .filter(|((r, n, _), o)| {
                        *r == filter.resource && *n == filter.namespace && filter.matches(o)
                    })
                    .map(|(_, o)| watch_line("ADDED", o))
                    .collect();
                (lines, inner.rv)
            }
            Some(rv) if rv < inner.compacted => {
                let gone = status_value(
                    410,
                    "Expired",
                    &format!("too old resource version: {rv} ({})", inner.compacted),
                );
                (vec![watch_line("ERROR", &gone)], u64::MAX)
            }
            Some(rv) => (events_after(&inner, &filter, rv), inner.rv.max(rv)),
        }
    };

    tokio::spawn(async move {
        for line in first {
            if tx.send(Ok(line)).await.is_err() {
                return;
            }
        }
        if cursor == u64::MAX {
            return; // the 410 ERROR event ends the stream
        }
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        loop {
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                changed = rv_rx.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let lines = {
                        let inner = shared.lock();
                        let lines = events_after(&inner, &filter, cursor);
                        cursor = inner.rv;
                        lines
                    };
                    for line in lines {
                        if tx.send(Ok(line)).await.is_err() {
                            return;
                        }
                    }
                }
                _ = cut_rx.changed() => {
                    let abrupt = cut_rx.borrow().1;
                    if abrupt {
                        let _ = tx
                            .send(Err(std::io::Error::other("watch connection broken by the test")))
                            .await;
                    }
                    return;
                }
                () = sleep => return,
                () = tx.closed() => return,
            }
        }
    });

    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item.map(Frame::data), rx))
    })
    .boxed();
    let mut resp = Response::new(StreamBody::new(stream).boxed_unsync());
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}
