//! [`LiveServer`]: a `livecov server` process for end-to-end tests and benchmarks.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

/// How long a server may take to answer `/healthz` after it is started.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A `livecov server` process listening on `127.0.0.1:port`, its standard error written to a
/// log file; killed when dropped.
///
/// The server gets `--listen 127.0.0.1:PORT` and the given arguments and variables, and none
/// of the `LIVECOV_*` variables of the caller's environment, so that only what the caller says
/// configures it.
pub struct LiveServer {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl LiveServer {
    /// Starts `livecov` (the executable at `bin`) as `livecov server` on a free port, with
    /// `args` and `env`, and waits until it answers `GET /healthz` with 200.
    pub fn start(bin: &Path, args: &[&str], env: &[(&str, &str)], log: &Path) -> Result<Self> {
        LiveServer::start_on(free_port()?, bin, args, env, log)
    }

    /// [`start`](Self::start) on a given port (to start a server again where one ran).
    pub fn start_on(
        port: u16,
        bin: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        log: &Path,
    ) -> Result<Self> {
        let mut cmd = Command::new(bin);
        cmd.args(["server", "--listen", &format!("127.0.0.1:{port}")])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(log)
                    .with_context(|| format!("creating {}", log.display()))?,
            );
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("LIVECOV_") {
                cmd.env_remove(name);
            }
        }
        cmd.envs(env.iter().copied());
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot run {}", bin.display()))?;
        let mut server = LiveServer {
            child,
            port,
            log: log.to_path_buf(),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = server.child.try_wait()? {
                bail!("livecov server exited ({status}):\n{}", server.log_tail());
            }
            if matches!(get(port, "/healthz"), Ok(200)) {
                return Ok(server);
            }
            if Instant::now() > deadline {
                bail!(
                    "livecov server not up within {} s:\n{}",
                    START_TIMEOUT.as_secs(),
                    server.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last 20 lines of the server's log.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Kills the server without warning (SIGKILL) and waits for it.
    pub fn kill(mut self) {
        self.reap();
    }

    /// Stops the server as an operator would (SIGTERM) and waits for it to exit, which it
    /// must do successfully.
    pub fn stop(mut self) -> Result<()> {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .context("cannot run kill")?;
        ensure!(status.success(), "kill -TERM {}: {status}", self.pid());
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                ensure!(
                    status.success(),
                    "livecov server exited with {status}:\n{}",
                    self.log_tail()
                );
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("livecov server did not stop within 60 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn reap(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for LiveServer {
    fn drop(&mut self) {
        self.reap();
    }
}

/// A port nothing listens on now.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `GET path` on `127.0.0.1:port` over HTTP/1.0: the status.
fn get(port: u16, path: &str) -> std::io::Result<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let head = String::from_utf8_lossy(&buf);
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("not an HTTP answer"))
}
