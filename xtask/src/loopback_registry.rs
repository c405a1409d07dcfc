//! A real OCI registry on loopback for tests: Debian's `docker-registry
//! serve` on a free `127.0.0.1` port, its storage in a directory of ours;
//! stopped, and its directory removed, on drop (no Docker engine).

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A running `docker-registry serve`.
pub struct LoopbackRegistry {
    child: Child,
    dir: PathBuf,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl LoopbackRegistry {
    /// Starts one with its configuration and storage under `dir` (made
    /// anew), and waits until `/v2/` answers 200.
    pub fn start(dir: &Path) -> anyhow::Result<Self> {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        let addr = format!("127.0.0.1:{port}");
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir.join("storage"))
            .with_context(|| format!("creating {}", dir.display()))?;
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
                dir.join("storage").display()
            ),
        )?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting docker-registry (the Debian package `docker-registry`; .ci/run installs it)")?;
        let mut registry = Self {
            child,
            dir: dir.to_path_buf(),
            addr,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok((status, _)) = registry.get("/v2/", "*/*") {
                if status != 200 {
                    bail!("docker-registry: GET /v2/ answered {status}");
                }
                return Ok(registry);
            }
            if registry.child.try_wait()?.is_some() {
                bail!("docker-registry exited before it served");
            }
            if Instant::now() > deadline {
                bail!("docker-registry did not start in 60 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A plain HTTP/1.0 GET: (status, body).
    pub fn get(&self, path: &str, accept: &str) -> std::io::Result<(u16, Vec<u8>)> {
        let mut stream = TcpStream::connect(&self.addr)?;
        write!(
            stream,
            "GET {path} HTTP/1.0\r\nHost: {}\r\nAccept: {accept}\r\n\r\n",
            self.addr
        )?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response)?;
        let split = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or(std::io::ErrorKind::InvalidData)?;
        let head = String::from_utf8_lossy(&response[..split]);
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or(std::io::ErrorKind::InvalidData)?;
        Ok((status, response[split + 4..].to_vec()))
    }

    /// Stops it; fails unless the process is gone.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.kill();
        match self.child.try_wait()? {
            Some(_) => Ok(()),
            None => bail!("docker-registry (pid {}) is still running", self.child.id()),
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for LoopbackRegistry {
    fn drop(&mut self) {
        self.kill();
    }
}
