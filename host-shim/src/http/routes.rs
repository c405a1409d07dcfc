//! The answers to requests hyper has parsed: which path says what (the
//! probe rules are in [`super`]'s docs).

use accord_core::protocol::shim::AgentState;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{ALLOW, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use super::{LIVENESS, METRICS, READINESS, STARTUP, Server, metrics};

/// An answer's body (whole).
pub(super) type Body = Full<Bytes>;

/// The `Content-Type` of the probes' (and errors') plain-text answers.
const TEXT: &str = "text/plain; charset=utf-8";

/// An answer: `status`, `body`, and the headers every answer has
/// (`Content-Length` also for `HEAD`, whose body hyper leaves out).
fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let length = body.len();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A plain-text answer: `body` and a newline.
fn text(status: StatusCode, body: &str) -> Response<Body> {
    respond(status, TEXT, format!("{body}\n"))
}

/// Answers `request`: `400` unless its target is a path (origin form),
/// `405` unless it is `GET` or `HEAD`, else the path's answer (`404` for
/// an unknown path; a query string is ignored).
pub(super) fn answer<B>(request: &Request<B>, server: &Server) -> Response<Body> {
    let uri = request.uri();
    if uri.scheme().is_some() || uri.authority().is_some() || !uri.path().starts_with('/') {
        return text(StatusCode::BAD_REQUEST, "bad request");
    }
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    route(uri.path(), server)
}

fn probe(ok: bool, what: &str) -> Response<Body> {
    if ok {
        text(StatusCode::OK, "ok")
    } else {
        text(StatusCode::SERVICE_UNAVAILABLE, what)
    }
}

fn route(path: &str, server: &Server) -> Response<Body> {
    let config = &server.config;
    let board = &server.board;
    let latest = board.latest();
    match path {
        STARTUP => probe(
            latest.as_ref().is_some_and(|(status, _)| status.listening),
            "the agent's listeners are not up",
        ),
        LIVENESS => {
            let liveness = board.liveness(config.liveness_grace, config.boot_grace);
            probe(liveness.is_alive(), &liveness.to_string())
        }
        READINESS => probe(
            board.status_connection_open()
                && latest.as_ref().is_some_and(|(status, age)| {
                    *age < config.report_timeout && status.state == Some(AgentState::Ready)
                }),
            "the agent is not ready",
        ),
        METRICS => {
            let shim = metrics::ShimCounters {
                probe_connections: server.connections.len() as u64,
                probe_connections_evicted: server.connections.evicted(),
                agent_connections: board.open_connections() as u64,
                ..metrics::ShimCounters::default()
            };
            let shim = match board.collateral() {
                Some(service) => metrics::ShimCounters {
                    collateral_answers: service.stats().snapshot(),
                    collateral_fetches: service.fetcher().stats().snapshot(),
                    ..shim
                },
                None => shim,
            };
            respond(
                StatusCode::OK,
                metrics::CONTENT_TYPE,
                metrics::render(latest.as_ref().map(|(status, age)| (status, *age)), &shim),
            )
        }
        _ => text(StatusCode::NOT_FOUND, "not found"),
    }
}
