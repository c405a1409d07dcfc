//! Crash consistency: the coordinator process (`accord-guest coordinator`
//! with its filesystem store) is killed with SIGKILL at random points
//! while it stores a `SetManifest`, many times. After every kill the
//! store must hold either the old history or the new one — never a
//! corrupt one — as the core's loader checks it (every object re-hashed,
//! the chain walked, the tree head matched); the restarted coordinator
//! is recovered with a seed share and the next round builds on whatever
//! survived.

use std::process::Command;
use std::time::Duration;

use crate::support::process::{Killed, addr_after, binary, start_until};
use crate::support::*;
use accord_core::coordinator::store;
use accord_core::crypto::default_provider;
use accord_core::hex;
use accord_core::protocol::{ManifestSet, RecoverReply, SetManifestReply, ShareAccepted, UserCall};
use accord_guest::client::UserClient;

fn start(d: &Deployment) -> (Killed, String) {
    let mut command = Command::new(binary("accord-guest"));
    command.args([
        "coordinator",
        "--tee",
        "insecure-simulated",
        "--user-api",
        "127.0.0.1:0",
        "--mesh-api",
        "127.0.0.1:0",
        "--host-data",
        &hex::encode(&sha256(COORD_POLICY)),
    ]);
    command.arg("--state").arg(&d.dir);
    let (child, line) = start_until(command, "user API on", &d.dir.join("coordinator.log"));
    (child, addr_after(&line, "user API on "))
}

/// The generation the store holds, checked as the coordinator would.
fn stored_generation(d: &Deployment) -> u64 {
    let store = accord_fs_store::FsStore::open(&d.dir.join("store")).unwrap();
    let snapshot = store.snapshot().unwrap();
    let loaded = store::load(default_provider(), &snapshot)
        .unwrap_or_else(|e| panic!("the store is corrupt after a kill: {e}"))
        .expect("the store lost its history");
    loaded.history.generation()
}

async fn user_call<C: UserCall>(
    addr: &str,
    d: &Deployment,
    request: C,
) -> anyhow::Result<C::Reply> {
    let mut client = UserClient::connect(addr, d.user_policy()).await?;
    client.call(request).await
}

async fn latest_at(addr: &str, d: &Deployment) -> Base {
    Base::of(&user_call(addr, d, get()).await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_set_manifest_leaves_the_old_or_the_new_history() {
    let _heavy = crate::support::heavy().await;
    let d = Deployment::new("crash");
    let (mut child, mut addr) = start(&d);
    let set = user_call(&addr, &d, set_request(d.manifest(0), None))
        .await
        .unwrap();
    let SetManifestReply::ManifestSet(ManifestSet {
        seed_share_document: Some(document),
        ..
    }) = set
    else {
        panic!("{set:?}")
    };
    // How long a whole update takes here (connect, attest, store, answer).
    let started = std::time::Instant::now();
    let base = latest_at(&addr, &d).await;
    let update = user_call(&addr, &d, set_request(d.manifest(1000), Some(base)))
        .await
        .unwrap();
    assert_eq!(outcome(&update), "ok", "{update:?}");
    let whole = started.elapsed();
    let mut generation = 2;
    let (mut kept_old, mut got_new) = (0, 0);
    // Kill points spread (pseudo-randomly) from a third of an update's
    // time, before the request reaches the store, to a little past its
    // end: 40 rounds, and more while the kills have not yet hit both
    // sides (the update's time varies with the machine's load, so the
    // spread follows what the kills found: later while no update landed,
    // earlier while every one did).
    let span = u64::try_from(whole.as_micros()).unwrap();
    let mut state = 0x2545_f491_u32;
    let mut scale = 1.0f64;
    let mut round = 0u32;
    while round < 40 || ((kept_old == 0 || got_new == 0) && round < 120) {
        round += 1;
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        if round > 20 && got_new == 0 {
            scale *= 1.25;
        } else if round > 20 && kept_old == 0 {
            scale *= 0.8;
        }
        let micros = span / 3 + u64::from(state) % (span * 4 / 5);
        let delay = Duration::from_micros((micros as f64 * scale) as u64);
        let base = latest_at(&addr, &d).await;
        let request = set_request(d.manifest(round), Some(base));
        let update = {
            let addr = addr.clone();
            let policy = d.user_policy();
            tokio::spawn(async move {
                let mut client = UserClient::connect(&addr, policy).await?;
                client.call(request).await
            })
        };
        tokio::time::sleep(delay).await;
        child.kill();
        let _ = update.await;

        let now = stored_generation(&d);
        assert!(
            now == generation || now == generation + 1,
            "round {round}: generation {now} after a kill at generation {generation}"
        );
        if now == generation {
            kept_old += 1;
        } else {
            got_new += 1;
        }
        generation = now;

        // Restart: Recovery, then a seed share brings it back.
        let (restarted, new_addr) = start(&d);
        child = restarted;
        let recovered = recover_at(&new_addr, &d, &document, false).await.unwrap();
        assert!(
            matches!(
                recovered,
                RecoverReply::Recovery(ShareAccepted {
                    recovered: Some(g),
                    ..
                }) if g == generation
            ),
            "round {round}: {recovered:?}"
        );
        addr = new_addr;
    }
    println!(
        "crash consistency: an update takes {whole:?}; {kept_old} kills kept the old history, {got_new} the new one"
    );
    assert!(got_new > 0 && kept_old > 0, "{kept_old} old, {got_new} new");
    drop(child);
}
