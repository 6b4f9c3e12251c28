//! Starting real registry processes and running real wallet commands.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use civitas_core::keys::SecretKey;
use civitas_core::note::NoteVerifier;
use civitas_core::proof::PinnedKeys;

/// The passphrase of every test wallet.
pub(crate) const PASSPHRASE: &str = "correct horse battery staple";

/// A registry node running as its own process.
pub(crate) struct Registry {
    pub(crate) url: String,
    child: Option<Child>,
}

impl Registry {
    /// Starts `did-registry serve` on 127.0.0.1:0 with `args`, waiting for its
    /// `listening on ADDR` line.
    pub(crate) fn start(data_dir: &Path, args: &[&str]) -> Self {
        Self::try_start(data_dir, args).unwrap_or_else(|e| panic!("registry did not start: {e}"))
    }

    /// Like `start`, returning the process's stderr when it exits instead.
    pub(crate) fn try_start(data_dir: &Path, args: &[&str]) -> Result<Self, String> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_e2e-did-registry"));
        command
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data_dir)
            .args(args);
        let (addr, child) = spawn_server(command)?;
        Ok(Self {
            url: format!("http://{addr}"),
            child: Some(child),
        })
    }

    /// Kills the process with SIGKILL, as a crash would.
    pub(crate) fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The node's note verifier key.
    pub(crate) async fn log_key(&self) -> NoteVerifier {
        civitas_client::fetch_log_key(&self.url)
            .await
            .expect("log key")
    }

    /// A client pinned to this node's key.
    pub(crate) async fn client(&self) -> civitas_client::RegistryClient {
        let pins = PinnedKeys {
            verifiers: vec![self.log_key().await],
            min_signatures: 1,
        };
        civitas_client::RegistryClient::new(&self.url, pins).expect("client")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Starts a server process and waits for its `listening on ADDR` line; returns ADDR, or
/// the process's stderr when it exits first.
pub(crate) fn spawn_server(mut command: Command) -> Result<(String, Child), String> {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next();
        let _ = tx.send(first);
        // Keep draining so the child never blocks on a full pipe.
        for _ in lines {}
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Some(Ok(line))) => {
            let addr = line
                .strip_prefix("listening on ")
                .ok_or_else(|| format!("unexpected first line {line:?}"))?;
            Ok((addr.to_owned(), child))
        }
        _ => {
            let _ = child.kill();
            let output = child.wait_with_output().map_err(|e| e.to_string())?;
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }
}

/// A port free now on 127.0.0.1, for a server whose URL must be known before it starts
/// (it goes into a DID document).
pub(crate) fn reserve_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// An issuer running as its own process.
pub(crate) struct Issuer {
    pub(crate) url: String,
    child: Option<Child>,
}

impl Issuer {
    /// `issuer init`: makes the key in `data_dir` and returns its multibase.
    pub(crate) fn init(data_dir: &Path) -> String {
        let output = Command::new(env!("CARGO_BIN_EXE_e2e-issuer"))
            .arg("init")
            .arg("--data-dir")
            .arg(data_dir)
            .output()
            .expect("issuer init");
        assert!(output.status.success(), "issuer init: {output:?}");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// `issuer serve` on `port` (reserved earlier: the URL is in the DID document).
    pub(crate) fn start(
        data_dir: &Path,
        port: u16,
        did: &str,
        registry: &str,
        args: &[&str],
    ) -> Self {
        let url = format!("http://127.0.0.1:{port}");
        let mut command = Command::new(env!("CARGO_BIN_EXE_e2e-issuer"));
        command
            .arg("serve")
            .args(["--did", did, "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--registry", registry, "--public-url", &url])
            .arg("--schemas")
            .arg(schemas_dir())
            .args(args);
        let (_, child) =
            spawn_server(command).unwrap_or_else(|e| panic!("issuer did not start: {e}"));
        Self {
            url,
            child: Some(child),
        }
    }
}

impl Drop for Issuer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The workspace's schemas directory.
pub(crate) fn schemas_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas")
}

/// What one wallet command did.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// Exit code as the binary would give it: 0, 1, or 2 for an error.
    pub(crate) code: i32,
    /// stdout.
    pub(crate) stdout: String,
    /// The error chain, for code 2.
    pub(crate) error: String,
}

impl Outcome {
    /// stdout parsed as JSON.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    /// Panics unless the command succeeded.
    #[track_caller]
    pub(crate) fn ok(self) -> Self {
        assert_eq!(self.code, 0, "wallet command failed: {self:?}");
        self
    }
}

/// A wallet in its own directory.
pub(crate) struct Wallet {
    pub(crate) dir: PathBuf,
    pub(crate) registry: String,
}

impl Wallet {
    /// `wallet init` (minimum KDF cost) in `dir`, using `registry`.
    pub(crate) async fn init(dir: &Path, registry: &str) -> Self {
        let wallet = Self {
            dir: dir.to_owned(),
            registry: registry.to_owned(),
        };
        wallet.run(&["init", "--kdf", "minimum"]).await.ok();
        wallet
    }

    /// Runs `wallet --json ARGS` in-process.
    pub(crate) async fn run(&self, args: &[&str]) -> Outcome {
        let mut argv = vec![
            "wallet".to_owned(),
            "--json".to_owned(),
            "--wallet-dir".to_owned(),
            self.dir.display().to_string(),
            "--registry".to_owned(),
            self.registry.clone(),
        ];
        argv.extend(args.iter().map(|s| (*s).to_owned()));
        let cli = match <wallet_cli::Cli as clap::Parser>::try_parse_from(&argv) {
            Ok(cli) => cli,
            Err(e) => {
                return Outcome {
                    code: 2,
                    stdout: String::new(),
                    error: e.to_string(),
                };
            }
        };
        let env = wallet_cli::Env {
            passphrase: Some(zeroize::Zeroizing::new(PASSPHRASE.to_owned())),
            home: None,
        };
        let mut out = Vec::new();
        let result = wallet_cli::run(cli, &env, &mut out).await;
        let stdout = String::from_utf8_lossy(&out).into_owned();
        match result {
            Ok(wallet_cli::ExitStatus::Success) => Outcome {
                code: 0,
                stdout,
                error: String::new(),
            },
            Ok(_) => Outcome {
                code: 1,
                stdout,
                error: String::new(),
            },
            Err(e) => Outcome {
                code: 2,
                stdout,
                error: format!("{e:#}"),
            },
        }
    }

    /// `wallet did create`; returns the DID.
    pub(crate) async fn create_did(&self, extra: &[&str]) -> String {
        let mut args = vec!["did", "create"];
        args.extend_from_slice(extra);
        let out = self.run(&args).await.ok();
        out.json()["did"].as_str().expect("did").to_owned()
    }
}

/// A fresh key, for tests that build ledger objects by hand.
pub(crate) fn key() -> SecretKey {
    SecretKey::generate()
}

/// A verifier gateway running as its own process.
pub(crate) struct VerifierProcess {
    pub(crate) url: String,
    pub(crate) did: String,
    child: Option<Child>,
}

impl VerifierProcess {
    /// `verifier serve` on `port` (reserved: the origin goes into its DID) with the example
    /// gateway policy, in front of `upstream`, with `args` (e.g. cache ages).
    pub(crate) fn start(
        data_dir: &Path,
        port: u16,
        registry: &str,
        upstream: &str,
        args: &[&str],
    ) -> Self {
        let url = format!("http://127.0.0.1:{port}");
        let mut command = Command::new(env!("CARGO_BIN_EXE_e2e-verifier"));
        command
            .arg("serve")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--public-origin", &url])
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--registry", registry, "--upstream", upstream])
            .arg("--policy")
            .arg(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../verifier/examples/gateway-policy.toml"),
            )
            .arg("--schemas")
            .arg(schemas_dir())
            .args(args);
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("verifier starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next().and_then(Result::ok);
            let second = lines.next().and_then(Result::ok);
            let _ = tx.send((first, second));
            for _ in lines {}
        });
        let (first, second) = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the verifier printed its address");
        assert!(
            first
                .as_deref()
                .is_some_and(|l| l.starts_with("listening on ")),
            "first line: {first:?}"
        );
        let did = second
            .and_then(|l| l.strip_prefix("service did: ").map(str::to_owned))
            .expect("the verifier printed its DID");
        Self {
            url,
            did,
            child: Some(child),
        }
    }

    /// A counter from `GET /metrics`.
    pub(crate) async fn metric(&self, name: &str) -> u64 {
        let text = reqwest::get(format!("{}/metrics", self.url))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics body");
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no metric {name} in {text}"))
    }
}

impl Drop for VerifierProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A request the test upstream received.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub(crate) method: String,
    pub(crate) path_and_query: String,
    pub(crate) headers: axum::http::HeaderMap,
    pub(crate) body: Vec<u8>,
}

/// A data service behind the gateway: answers every request with a small JSON document
/// and remembers what it received.
pub(crate) struct Upstream {
    pub(crate) url: String,
    pub(crate) seen: std::sync::Arc<std::sync::Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    pub(crate) async fn start() -> Self {
        let seen: std::sync::Arc<std::sync::Mutex<Vec<Seen>>> = std::sync::Arc::default();
        let record = std::sync::Arc::clone(&seen);
        let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let record = std::sync::Arc::clone(&record);
            async move {
                let (parts, body) = request.into_parts();
                let body = axum::body::to_bytes(body, 1 << 20)
                    .await
                    .unwrap_or_default();
                let path = parts
                    .uri
                    .path_and_query()
                    .map_or("/", |p| p.as_str())
                    .to_owned();
                record.lock().unwrap().push(Seen {
                    method: parts.method.to_string(),
                    path_and_query: path.clone(),
                    headers: parts.headers.clone(),
                    body: body.to_vec(),
                });
                axum::Json(serde_json::json!({ "served": path, "rows": [1, 2, 3] }))
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, seen, task }
    }

    pub(crate) fn last(&self) -> Seen {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("a request reached the upstream")
    }

    pub(crate) fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}
