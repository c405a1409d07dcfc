//! The mutual TLS exchange on loopback, with certificates of accord's own
//! CA: it works between two workloads of one mesh, and each side refuses
//! a peer of another CA (or, the client, a server for another name, and
//! the server, a client without a certificate).

mod common;

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use accord_mesh_echo::rustls::{self, ClientConfig};
use accord_mesh_echo::{
    Served, call, client_config, config, connect, files, serve_one, server_config,
};
use common::{new_ca, workload};

/// One exchange: the server (`db`'s files) on a loopback port in a
/// thread, the client with `client` to it as `server_name`.
fn exchange(
    db: &Path,
    client: &Arc<ClientConfig>,
    server_name: &str,
) -> (anyhow::Result<Served>, anyhow::Result<String>) {
    let server = server_config(db).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let db_side = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        serve_one(&server, tcp, "db")
    });
    let tcp = TcpStream::connect(addr).unwrap();
    let got = call(client, tcp, server_name, "web here: SELECT 1;");
    (db_side.join().unwrap(), got)
}

#[test]
fn two_workloads_of_one_mesh_talk() {
    let base = tempfile::tempdir().unwrap();
    let ca = new_ca();
    let db = workload(base.path(), "db", &ca, &["db", "db.default.svc"], &ca);
    let web = workload(base.path(), "web", &ca, &["web"], &ca);
    let (served, got) = exchange(&db, &client_config(&web).unwrap(), "db");
    let served = served.unwrap();
    assert_eq!(served.line, "web here: SELECT 1;");
    assert_eq!(served.bytes, "web here: SELECT 1;\n".len());
    // The leaf and the intermediate.
    assert_eq!(served.client_certs, 2);
    assert_eq!(
        got.unwrap(),
        "db here: got your 20 byte(s) over mutual TLS (you presented 2 certificate(s) chaining to the mesh CA)"
    );
    // Another of the server's names works too.
    let (served, got) = exchange(&db, &client_config(&web).unwrap(), "db.default.svc");
    served.unwrap();
    got.unwrap();
}

#[test]
fn the_server_refuses_a_client_of_another_ca() {
    let base = tempfile::tempdir().unwrap();
    let (ca, other) = (new_ca(), new_ca());
    let db = workload(base.path(), "db", &ca, &["db"], &ca);
    // web trusts the right mesh CA but its certificate is another CA's.
    let web = workload(base.path(), "web", &other, &["web"], &ca);
    let (served, got) = exchange(&db, &client_config(&web).unwrap(), "db");
    let served = format!("{:#}", served.unwrap_err());
    assert!(served.contains("TLS handshake with the client"), "{served}");
    assert!(served.contains("invalid peer certificate"), "{served}");
    let got = format!("{:#}", got.unwrap_err());
    assert!(
        got.contains("reading the answer of db at 127.0.0.1:"),
        "{got}"
    );
    assert!(got.contains("alert"), "{got}");
}

#[test]
fn the_client_refuses_a_server_of_another_ca() {
    let base = tempfile::tempdir().unwrap();
    let (ca, other) = (new_ca(), new_ca());
    let db = workload(base.path(), "db", &other, &["db"], &ca);
    let web = workload(base.path(), "web", &ca, &["web"], &ca);
    let (served, got) = exchange(&db, &client_config(&web).unwrap(), "db");
    let got = format!("{:#}", got.unwrap_err());
    assert!(got.contains("TLS handshake with db at 127.0.0.1:"), "{got}");
    assert!(got.contains("invalid peer certificate"), "{got}");
    assert!(served.is_err(), "the server saw no exchange");
}

#[test]
fn the_client_refuses_a_server_for_another_name() {
    let base = tempfile::tempdir().unwrap();
    let ca = new_ca();
    let db = workload(base.path(), "db", &ca, &["db"], &ca);
    let web = workload(base.path(), "web", &ca, &["web"], &ca);
    // The server's certificate is good, but for db, not cache.
    let (served, got) = exchange(&db, &client_config(&web).unwrap(), "cache");
    let got = format!("{:#}", got.unwrap_err());
    assert!(got.contains("TLS handshake with cache at"), "{got}");
    assert!(got.contains("not valid for name \"cache\""), "{got}");
    assert!(served.is_err(), "the server saw no exchange");
}

#[test]
fn the_server_refuses_a_client_without_a_certificate() {
    let base = tempfile::tempdir().unwrap();
    let ca = new_ca();
    let db = workload(base.path(), "db", &ca, &["db"], &ca);
    let web = workload(base.path(), "web", &ca, &["web"], &ca);
    // A client that verifies the server but presents nothing.
    let anonymous = Arc::new(
        ClientConfig::builder_with_provider(config::provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(files::roots(&web).unwrap())
            .with_no_client_auth(),
    );
    let (served, got) = exchange(&db, &anonymous, "db");
    let served = format!("{:#}", served.unwrap_err());
    assert!(served.contains("TLS handshake with the client"), "{served}");
    assert!(served.contains("no certificates"), "{served}");
    assert!(got.is_err(), "the client got no answer");
}

#[test]
fn missing_files_are_named() {
    let base = tempfile::tempdir().unwrap();
    let err = format!("{:#}", server_config(base.path()).unwrap_err());
    assert!(err.contains("tls-config/certChain.pem"), "{err}");
    assert!(err.contains("has it run"), "{err}");
    let ca = new_ca();
    let web = workload(base.path(), "web", &ca, &["web"], &ca);
    std::fs::remove_file(web.join("tls-config/mesh-ca.pem")).unwrap();
    let err = format!("{:#}", client_config(&web).unwrap_err());
    assert!(err.contains("tls-config/mesh-ca.pem"), "{err}");
}

#[test]
fn a_refused_connection_fails_with_the_target_named() {
    // A port nobody listens on any more.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let err = format!(
        "{:#}",
        connect(&addr.to_string(), Duration::ZERO).unwrap_err()
    );
    assert!(err.contains(&format!("connecting to {addr}")), "{err}");
    assert!(err.contains("1 attempt(s)"), "{err}");
    // A malformed target is not retried.
    let err = format!(
        "{:#}",
        connect("no-port", Duration::from_secs(60)).unwrap_err()
    );
    assert!(err.contains("connecting to no-port"), "{err}");
    assert!(err.contains("1 attempt(s)"), "{err}");
}
