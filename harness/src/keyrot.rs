//! The `keyrot` binary run as an operator runs it: a child process configured by
//! the SDK's usual environment, its exit code and output kept for the test (and
//! its output for the secret scan).

use std::process::Stdio;

use serde_json::Value;

use crate::function::sibling_binary;
use crate::moto::{moto_python, repo_root};
use crate::{REGION, record_log};

/// What one `keyrot` run did.
#[derive(Debug)]
pub struct KeyrotRun {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl KeyrotRun {
    /// stdout as JSON (it must be nothing else with `--output json`).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|error| {
            panic!(
                "stdout is not JSON ({error}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Runs `keyrot ARGS` against `endpoint` (moto or a fault proxy).
pub async fn keyrot(endpoint: &str, args: &[&str]) -> KeyrotRun {
    keyrot_with_env(
        args,
        &[
            ("AWS_REGION", REGION),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_ENDPOINT_URL", endpoint),
        ],
    )
    .await
}

/// Runs `keyrot ARGS` with only `env` (besides `PATH`, and no AWS config files):
/// a machine set up as far as `env` goes, and no further.
pub async fn keyrot_with_env(args: &[&str], env: &[(&str, &str)]) -> KeyrotRun {
    let output = tokio::process::Command::new(sibling_binary("keyrot"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run keyrot");
    let run = KeyrotRun {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    record_log(&run.stdout);
    record_log(&run.stderr);
    run
}

/// Registers a function in moto so that `RotateSecret` accepts its ARN (see
/// `harness/register_function.py`): a rotation function of a stack whose
/// `ManagedUserPath` is `/` and whose `SecretNamePrefix` is empty, as the
/// tests' users and secrets are; returns the ARN.
pub fn register_function(endpoint: &str, name: &str) -> String {
    register_function_of_stack(endpoint, name, "/", "", "secretsmanager")
}

/// As [`register_function`], with the stack's `ManagedUserPath` and
/// `SecretNamePrefix` in its environment, and a resource policy for Secrets
/// Manager (`permission` "secretsmanager") or none ("none").
pub fn register_function_of_stack(
    endpoint: &str,
    name: &str,
    user_path: &str,
    secret_prefix: &str,
    permission: &str,
) -> String {
    let output = std::process::Command::new(moto_python())
        .arg(repo_root().join("harness/register_function.py"))
        .args([endpoint, name, user_path, secret_prefix, permission])
        .output()
        .expect("run register_function.py");
    assert!(
        output.status.success(),
        "register_function.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// Starts `keyrot ARGS` against `endpoint` without waiting: a child that begins
/// its first AWS call only after `delay` (so that a test can aim the fault
/// proxy's crash at its pid first). The caller collects it with
/// `wait_with_output`.
pub fn spawn_keyrot(
    endpoint: &str,
    args: &[&str],
    delay: std::time::Duration,
) -> tokio::process::Child {
    let mut command = tokio::process::Command::new("sh");
    command
        .arg("-c")
        .arg(format!("sleep {}; exec \"$0\" \"$@\"", delay.as_secs_f64()))
        .arg(sibling_binary("keyrot"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_ENDPOINT_URL", endpoint)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command.spawn().expect("start keyrot")
}

/// What one keyrot run through the fault proxy cost: for the benchmarks.
pub struct Measure {
    pub wall: std::time::Duration,
    /// AWS calls the proxy saw (attempts, retries included).
    pub calls: usize,
    /// Of those, the ones the proxy throttled (each retried).
    pub throttled: usize,
    /// keyrot's peak resident memory, as the kernel reports it.
    pub peak_rss_kib: Option<u64>,
}

impl Measure {
    /// `3.2x`: how much faster than `baseline`, or `-` without one.
    pub fn speedup_over(&self, baseline: Option<&Measure>) -> String {
        baseline
            .map(|b| format!("{:.1}x", b.wall.as_secs_f64() / self.wall.as_secs_f64()))
            .unwrap_or_else(|| "-".into())
    }

    /// Peak memory in MiB, or `-` when not measured.
    pub fn peak_rss_mib(&self) -> String {
        self.peak_rss_kib
            .map(|k| format!("{:.1}", k as f64 / 1024.0))
            .unwrap_or_else(|| "-".into())
    }
}

/// Runs keyrot through `proxy` (its calls are counted from zero), output
/// discarded; wall time, calls and peak memory.
pub async fn measure_keyrot(proxy: &crate::fault_proxy::FaultProxy, args: &[&str]) -> Measure {
    proxy.clear_calls();
    let started = std::time::Instant::now();
    let child = std::process::Command::new(sibling_binary("keyrot"))
        .args(args)
        .env("AWS_ENDPOINT_URL", &proxy.endpoint)
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run keyrot (cargo build --bin keyrot)");
    let peak_rss_kib = tokio::task::spawn_blocking(move || wait_with_peak_rss(child))
        .await
        .unwrap();
    let calls = proxy.calls();
    Measure {
        wall: started.elapsed(),
        calls: calls.len(),
        throttled: calls
            .iter()
            .filter(|call| call.fault == Some("throttled"))
            .count(),
        peak_rss_kib,
    }
}

/// Waits for the child and returns its peak resident memory (KiB), which the
/// kernel reports in the child's resource usage.
fn wait_with_peak_rss(child: std::process::Child) -> Option<u64> {
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 fills it in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pid is our own child, not yet waited for.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    (pid > 0).then_some(usage.ru_maxrss as u64)
}
