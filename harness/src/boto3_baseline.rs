//! The baseline the throttling benchmark compares the function with: createSecret's
//! calls made by boto3 with its default retry settings
//! (`harness/boto3_create_secret.py`, run with the Python that has the pinned
//! moto and boto3), against the same endpoint.

use std::time::Duration;

use crate::moto::{moto_python, repo_root};

/// What one boto3 createSecret did.
#[derive(Debug, Clone)]
pub struct Boto3Run {
    /// Whether every call succeeded (a call boto3 gave up on fails the step).
    pub ok: bool,
    /// The error code of the call that failed the step.
    pub error: Option<String>,
    /// The time of the calls, from the first to the end of the last.
    pub took: Duration,
}

/// Makes createSecret's calls for `secret_arn`'s rotation `token` with boto3's
/// default retries (standard mode, 3 attempts; no `AWS_RETRY_MODE` or
/// `AWS_MAX_ATTEMPTS` reaches it).
pub async fn create_secret_with_boto3(endpoint: &str, secret_arn: &str, token: &str) -> Boto3Run {
    let output = tokio::process::Command::new(moto_python())
        .arg(repo_root().join("harness/boto3_create_secret.py"))
        .args([endpoint, secret_arn, token])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_ACCESS_KEY_ID", "boto3-baseline")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", crate::REGION)
        .output()
        .await
        .expect("run boto3_create_secret.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let result: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "boto3_create_secret.py printed no result: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    Boto3Run {
        ok: result["ok"].as_bool().unwrap_or(false),
        error: result["error"].as_str().map(str::to_string),
        took: Duration::from_secs_f64(result["ms"].as_f64().unwrap_or(0.0) / 1000.0),
    }
}
