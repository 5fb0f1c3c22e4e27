//! The real function binary, run as Lambda runs it: a child process polling our
//! Runtime API, configured only through the environment, with its output kept so
//! tests can read (and scan) every line it logged.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use crate::cpu_share::CpuShare;
use crate::runtime_api::{Reply, RuntimeApi};

/// The binary under test: `IAM_KEY_ROTATION_BOOTSTRAP` (the release or arm64
/// build, as scripts/test.sh sets it) or else the debug build beside the running
/// test or example (`target/debug/deps/it-*` and `target/debug/examples/*` both
/// sit one level below `target/debug`, where cargo puts the binary it builds for
/// integration tests).
pub fn bootstrap() -> PathBuf {
    std::env::var_os("IAM_KEY_ROTATION_BOOTSTRAP")
        .map(PathBuf::from)
        .unwrap_or_else(|| sibling_binary("iam-key-rotation"))
}

/// The audit function's binary: `IAM_KEY_AUDIT_BOOTSTRAP` (a release artifact),
/// else the debug build beside this process.
pub fn audit_bootstrap() -> PathBuf {
    std::env::var_os("IAM_KEY_AUDIT_BOOTSTRAP")
        .map(PathBuf::from)
        .unwrap_or_else(|| sibling_binary("iam-key-audit"))
}

/// The delivery function's binary: `IAM_KEY_DELIVER_BOOTSTRAP` (a release
/// artifact), else the debug build beside this process.
pub fn deliver_bootstrap() -> PathBuf {
    std::env::var_os("IAM_KEY_DELIVER_BOOTSTRAP")
        .map(PathBuf::from)
        .unwrap_or_else(|| sibling_binary("iam-key-deliver"))
}

/// The first CloudWatch Embedded Metric Format record among a function's output
/// lines; panics if it printed none.
pub fn emf_record(output: &[String]) -> serde_json::Value {
    output
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|value| value.get("_aws").is_some())
        .expect("an EMF record")
}

/// A binary of the crate in the target directory this process runs from.
pub fn sibling_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the path of the running executable");
    let profile_dir = exe
        .parent()
        .and_then(|dir| dir.parent())
        .expect("the executable lives under target/<profile>/");
    profile_dir.join(name)
}

/// A command to run the binary through, such as
/// `qemu-aarch64 -L /usr/aarch64-linux-gnu` for the arm64 build.
fn launcher() -> Vec<String> {
    std::env::var("IAM_KEY_ROTATION_LAUNCHER")
        .map(|value| value.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// The access key id a function binary signs with, so that moto records its
/// calls under the template's function whose role it stands for. The file
/// and its directory, not only the file name: a release artifact is always
/// `bootstrap`, under `.../iam-key-audit/` (cargo lambda) or
/// `.../AuditFunction/` (sam build), hence the case-insensitive match.
fn signing_key(binary: &std::path::Path) -> &'static str {
    // The file and its directory only: the checkout's own path may hold any
    // of these words.
    let name = |path: Option<&std::path::Path>| {
        path.and_then(|path| path.file_name())
            .map(|name| name.to_string_lossy().to_lowercase())
            .unwrap_or_default()
    };
    let path = format!("{}/{}", name(binary.parent()), name(Some(binary)));
    if path.contains("audit") {
        crate::AUDIT_FUNCTION_KEY
    } else if path.contains("deliver") {
        crate::DELIVERY_FUNCTION_KEY
    } else {
        crate::ROTATION_FUNCTION_KEY
    }
}

pub struct Function {
    pub api: RuntimeApi,
    /// Just before the process was spawned.
    pub spawned_at: std::time::Instant,
    child: Child,
    output: Arc<Mutex<Vec<String>>>,
}

impl Function {
    /// Starts the function against `endpoint` with Lambda's environment plus
    /// `extra` (the function's own variables).
    pub async fn start(endpoint: &str, extra: &[(&str, &str)]) -> Self {
        Self::start_binary(&bootstrap(), endpoint, extra).await
    }

    /// As [`Self::start`], for another Lambda binary of the crate (the audit).
    pub async fn start_binary(
        binary: &std::path::Path,
        endpoint: &str,
        extra: &[(&str, &str)],
    ) -> Self {
        Self::spawn(binary, endpoint, extra, Vec::new()).await
    }

    /// As [`Self::start`], with the process held to Lambda's CPU share of a
    /// memory size from its first instruction on.
    pub async fn start_held(endpoint: &str, extra: &[(&str, &str)], share: &CpuShare) -> Self {
        let memory = share.memory_mb.to_string();
        let mut extra = extra.to_vec();
        extra.push(("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", &memory));
        Self::spawn(&bootstrap(), endpoint, &extra, share.launcher()).await
    }

    async fn spawn(
        binary: &std::path::Path,
        endpoint: &str,
        extra: &[(&str, &str)],
        held_by: Vec<String>,
    ) -> Self {
        let api = RuntimeApi::start().await;
        let mut words = held_by;
        words.extend(launcher());
        words.push(binary.display().to_string());
        let mut command = Command::new(&words[0]);
        command
            .args(&words[1..])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", api.address())
            .env("AWS_LAMBDA_FUNCTION_NAME", "iam-key-rotation")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env("AWS_REGION", crate::REGION)
            .env("AWS_ACCESS_KEY_ID", signing_key(binary))
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_ENDPOINT_URL", endpoint)
            .envs(extra.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let spawned_at = std::time::Instant::now();
        let mut child = command.spawn().expect("start the function binary");
        let output = Arc::new(Mutex::new(Vec::new()));
        collect_lines(child.stdout.take().unwrap(), output.clone());
        collect_lines(child.stderr.take().unwrap(), output.clone());
        Self {
            api,
            spawned_at,
            child,
            output,
        }
    }

    /// The process's peak resident memory so far (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()?)).ok()?;
        let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// CPU time the process has used so far (its scheduler statistics, in
    /// nanoseconds: exact, unlike the clock ticks of `/proc/PID/stat`).
    pub fn cpu_time(&self) -> Option<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/schedstat", self.child.id()?)).ok()?;
        let nanos = stat.split_whitespace().next()?.parse().ok()?;
        Some(Duration::from_nanos(nanos))
    }

    /// Invocations from now on are made by `function_arn`, as if the function
    /// were deployed under that name.
    pub fn set_function_arn(&self, function_arn: &str) {
        self.api.set_function_arn(function_arn);
    }

    /// Whether the binary runs through a launcher (qemu), whose memory is not its own.
    pub fn is_launched(&self) -> bool {
        !launcher().is_empty()
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("the function is running")
    }

    pub async fn invoke(&mut self, step: &str, secret_id: &str, token: &str) -> Reply {
        self.invoke_payload(
            json!({"Step": step, "SecretId": secret_id, "ClientRequestToken": token}),
        )
        .await
    }

    pub async fn invoke_payload(&mut self, payload: Value) -> Reply {
        self.try_invoke(payload).await.unwrap_or_else(|| {
            panic!(
                "no reply from the function; it logged:\n{}",
                self.output().join("\n")
            )
        })
    }

    /// Runs the four steps of the rotation `token` in order, as Secrets Manager
    /// would, and returns their responses; panics with the function's output at
    /// the first step that fails.
    pub async fn rotate(&mut self, secret_id: &str, token: &str) -> Vec<Value> {
        let mut responses = Vec::new();
        for step in crate::STEPS {
            match self.invoke(step, secret_id, token).await {
                Reply::Response(response) => responses.push(response),
                Reply::Error(error) => panic!(
                    "{step} failed: {error}
{}",
                    self.output().join("\n")
                ),
            }
        }
        responses
    }

    /// Invokes the sweep (`{"Action": "sweep"}`) and returns its response;
    /// panics with the function's output if it fails.
    pub async fn sweep(&mut self) -> Value {
        match self.invoke_payload(json!({"Action": "sweep"})).await {
            Reply::Response(response) => response,
            Reply::Error(error) => {
                panic!("the sweep failed: {error}\n{}", self.output().join("\n"))
            }
        }
    }

    /// The delivery function (`iam-key-deliver`) against `endpoint`, with its
    /// own variables.
    pub async fn start_deliver(endpoint: &str, extra: &[(&str, &str)]) -> Self {
        Self::start_binary(&deliver_bootstrap(), endpoint, extra).await
    }

    /// Invokes a delivery run (`{"Action": "deliver"}`, with `SecretId` when
    /// given) and returns its response; panics with the function's output if
    /// the run fails.
    pub async fn deliver(&mut self, secret_id: Option<&str>) -> Value {
        let payload = match secret_id {
            Some(secret_id) => json!({"Action": "deliver", "SecretId": secret_id}),
            None => json!({"Action": "deliver"}),
        };
        match self.invoke_payload(payload).await {
            Reply::Response(response) => response,
            Reply::Error(error) => {
                panic!(
                    "the delivery run failed: {error}\n{}",
                    self.output().join("\n")
                )
            }
        }
    }

    /// Invokes, returning `None` when the process dies (or hangs) instead of
    /// answering.
    pub async fn try_invoke(&mut self, payload: Value) -> Option<Reply> {
        let reply = tokio::select! {
            reply = self.api.invoke(payload, Duration::from_secs(60)) => reply,
            _ = self.child.wait() => None,
        };
        if let Some(reply) = &reply {
            crate::record_log(&format!("{reply:?}"));
        }
        reply
    }

    /// Waits for the process to end, for at most `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        tokio::time::timeout(timeout, self.child.wait())
            .await
            .ok()?
            .ok()
    }

    /// Everything the function printed so far, a line each.
    pub fn output(&self) -> Vec<String> {
        self.output.lock().unwrap().clone()
    }

    pub async fn stop(mut self) -> Vec<String> {
        let _ = self.child.kill().await;
        // Let the readers drain what the process wrote before it died.
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.output()
    }
}

fn collect_lines(stream: impl AsyncRead + Unpin + Send + 'static, into: Arc<Mutex<Vec<String>>>) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            crate::record_log(&line);
            into.lock().unwrap().push(line);
        }
    });
}
