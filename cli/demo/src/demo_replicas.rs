//! `accord-demo demo --replicas N`: the demo on N coordinator replicas, each a
//! process of its own (`accord-demo demo-replica`: the agent and its host shim,
//! [`crate::replica`]) sharing one filesystem store under `DIR/store/`,
//! peers listed while their readiness probe answers.
//!
//! After the usual steps (against replica 0), it shows high availability:
//! the other replicas recovered from replica 0 and serve the same history;
//! replica 1 is killed with SIGKILL while workloads keep attesting at the
//! others; it is restarted and comes back Ready from its peers (the time
//! is reported); every replica then serves the same tree head and the
//! same mesh CA.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use accord_core::protocol::{GetManifests, GetManifestsReply, Manifests};
use accord_guest::atls::Identity;
use accord_guest::initializer::{self, AttemptError};
use accord_shim::discovery::is_ready;
use anyhow::{Context, bail};

use crate::demo::Deployment;
use accord_cli::net::{self, CoordinatorOptions};

/// How long a replica may take to become Ready.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// The loopback ports of one replica.
#[derive(Clone, Copy, Debug)]
struct Ports {
    user: u16,
    mesh: u16,
    probes: u16,
}

fn addr(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The replica processes (killed when dropped).
pub struct Replicas {
    dir: PathBuf,
    exe: PathBuf,
    ports: Vec<Ports>,
    children: Vec<Option<Child>>,
    /// The KDS/PCS base URL the replicas' shims fetch collateral from.
    vendor: Option<String>,
    /// The coordinator's host data: the hash of the init-data `accord
    /// generate` wrote for it.
    host_data: [u8; 32],
}

impl Drop for Replicas {
    fn drop(&mut self) {
        for child in self.children.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Replicas {
    /// Starts `n` replicas of `deployment`'s coordinator (launched with
    /// its generated policy's hash as host data) on free loopback ports,
    /// their shims fetching collateral from the (simulated) vendor at
    /// `vendor`, if given.
    pub fn start(deployment: &Deployment, n: usize, vendor: Option<&str>) -> anyhow::Result<Self> {
        let dir = deployment.dir();
        let host_data = deployment.coordinator_policy_hash()?;
        let exe = std::env::current_exe().context("finding the accord-demo binary")?;
        let mut ports = Vec::new();
        for _ in 0..n {
            ports.push(Ports {
                user: free_port()?,
                mesh: free_port()?,
                probes: free_port()?,
            });
        }
        let mut replicas = Self {
            dir: dir.to_path_buf(),
            exe,
            ports,
            children: (0..n).map(|_| None).collect(),
            vendor: vendor.map(str::to_owned),
            host_data,
        };
        for i in 0..n {
            replicas.spawn(i)?;
        }
        Ok(replicas)
    }

    /// The user API of replica `i`.
    pub fn user(&self, i: usize) -> String {
        addr(self.ports[i].user)
    }

    /// The mesh API of replica `i`.
    pub fn mesh(&self, i: usize) -> String {
        addr(self.ports[i].mesh)
    }

    fn spawn(&mut self, i: usize) -> anyhow::Result<()> {
        let log_path = self.dir.join(format!("replica-{i}.log"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let mut command = Command::new(&self.exe);
        command
            .arg("demo-replica")
            .arg("--chip")
            .arg(self.dir.join("coordinator/chip"))
            .arg("--store")
            .arg(self.dir.join("store"))
            .args(["--host-data", &accord_core::hex::encode(&self.host_data)])
            .args(["--user-api", &addr(self.ports[i].user)])
            .args(["--mesh-api", &addr(self.ports[i].mesh)])
            .args(["--probes", &addr(self.ports[i].probes)]);
        if let Some(url) = &self.vendor {
            command.args(["--vendor-url", url]);
        }
        for (j, other) in self.ports.iter().enumerate() {
            if j != i {
                command.arg("--peer").arg(format!(
                    "replica-{j}={},{}",
                    addr(other.mesh),
                    addr(other.probes)
                ));
            }
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .context("starting a replica process")?;
        self.children[i] = Some(child);
        Ok(())
    }

    /// SIGKILL replica `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.children[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Restarts replica `i` and waits until its readiness probe answers;
    /// how long that took.
    pub async fn restart(&mut self, i: usize) -> anyhow::Result<Duration> {
        let started = Instant::now();
        self.spawn(i)?;
        self.wait_ready(i).await?;
        Ok(started.elapsed())
    }

    /// Waits until replica `i`'s readiness probe answers 200.
    pub async fn wait_ready(&self, i: usize) -> anyhow::Result<()> {
        let started = Instant::now();
        while !is_ready(&addr(self.ports[i].probes)).await {
            if started.elapsed() > READY_WITHIN {
                bail!(
                    "replica {i} is not ready after {} s (see {})",
                    READY_WITHIN.as_secs(),
                    self.dir.join(format!("replica-{i}.log")).display()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// Waits until replica `i`'s user API accepts connections.
    pub async fn wait_listening(&self, i: usize) -> anyhow::Result<()> {
        let started = Instant::now();
        while tokio::net::TcpStream::connect(self.user(i)).await.is_err() {
            if started.elapsed() > READY_WITHIN {
                bail!(
                    "replica {i} does not listen after {} s (see {})",
                    READY_WITHIN.as_secs(),
                    self.dir.join(format!("replica-{i}.log")).display()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Whether replica `i`'s readiness probe answers 200 now.
    pub async fn is_ready(&self, i: usize) -> bool {
        is_ready(&addr(self.ports[i].probes)).await
    }

    /// How many replicas there are.
    pub fn len(&self) -> usize {
        self.ports.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ports.is_empty()
    }
}

/// What a replica serves: its latest transition, the number of manifests,
/// and its mesh CA's public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Served {
    /// The latest transition.
    pub latest: [u8; 32],
    /// Manifests in the history.
    pub manifests: usize,
    /// The mesh CA certificate's SubjectPublicKeyInfo.
    pub mesh_ca_key: Vec<u8>,
}

/// Asks replica `user` for its history, attesting it against the
/// workspace's manifest (which trusts the demo's INSECURE simulated chip),
/// with collateral from the simulated vendor at `vendor`.
pub async fn served(dir: &Path, user: &str, vendor: &str) -> anyhow::Result<Served> {
    let options = CoordinatorOptions::new(user)
        .in_workspace(dir)
        .accepting_insecure_simulation()
        .fetching_from(vendor);
    let (_, _, mut client) = options
        .connect_attested()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let response = net::call(
        &mut client,
        GetManifests {
            consistency_from: None,
            inclusion_of: Vec::new(),
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    match response {
        GetManifestsReply::Manifests(Manifests {
            latest_transition,
            manifests,
            mesh_ca,
            ..
        }) => {
            let cert = accord_core::x509::Certificate::from_der(&mesh_ca)
                .map_err(|e| anyhow::anyhow!("the mesh CA certificate: {e}"))?;
            Ok(Served {
                latest: latest_transition,
                manifests: manifests.len(),
                mesh_ca_key: cert.spki_der().to_vec(),
            })
        }
        GetManifestsReply::Error(error) => bail!(
            "GetManifests answered Error ({:?}: {})",
            error.code,
            error.message
        ),
    }
}

/// Workloads attesting in the background, round robin over some replicas.
pub struct Attesting {
    stop: Arc<AtomicBool>,
    issued: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<Result<(), String>>,
}

impl Attesting {
    /// Starts one workload (`web`'s policy) attesting in a loop at `meshes`
    /// with the initializer's checks (pinning what the manifest says);
    /// each certificate must come within 10 s, trying the next replica on
    /// a failure, and a refused replica ends it at once.
    pub fn start(deployment: &Deployment, meshes: Vec<String>) -> anyhow::Result<Self> {
        let tee = deployment.tee("web")?;
        let pins = deployment.pins()?;
        let stop = Arc::new(AtomicBool::new(false));
        let issued = Arc::new(AtomicU64::new(0));
        let (stop_flag, counter) = (Arc::clone(&stop), Arc::clone(&issued));
        let task = tokio::spawn(async move {
            let mut next = 0usize;
            while !stop_flag.load(Ordering::Relaxed) {
                let began = Instant::now();
                loop {
                    let mesh = &meshes[next % meshes.len()];
                    next += 1;
                    let identity = Identity::ephemeral().map_err(|e| e.to_string())?;
                    // What the initializer does, without writing files: a
                    // replica of the pinned deployment must never be refused.
                    match initializer::request(mesh, &pins, Arc::clone(&tee), &identity).await {
                        Ok(_) => {
                            counter.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        Err(refused @ AttemptError::Refused { .. }) => {
                            return Err(format!("the workload refused replica {mesh}: {refused}"));
                        }
                        Err(AttemptError::Failed(_)) => {}
                    }
                    if began.elapsed() > Duration::from_secs(10) {
                        return Err("a workload got no certificate for 10 s".into());
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            Ok(())
        });
        Ok(Self { stop, issued, task })
    }

    /// Certificates issued so far.
    pub fn issued(&self) -> u64 {
        self.issued.load(Ordering::Relaxed)
    }

    /// Stops; an error if a workload went without a certificate too long.
    pub async fn finish(self) -> anyhow::Result<u64> {
        self.stop.store(true, Ordering::Relaxed);
        match self.task.await {
            Ok(Ok(())) => Ok(self.issued.load(Ordering::Relaxed)),
            Ok(Err(why)) => bail!("{why}"),
            Err(e) => bail!("the workload task failed: {e}"),
        }
    }
}
