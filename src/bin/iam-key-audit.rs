//! The daily audit function the SAM stack schedules: `keyrot audit` and `keyrot
//! status` over the account, published as CloudWatch metrics (Embedded Metric
//! Format on stdout) that the stack's alarms watch. A thin front end over the
//! library's `fleet::DailyAudit`; it only reads.
//!
//! The scheduled event (`{}`) runs the whole audit. With `AuditFanOut`, the
//! stack's state machine calls it instead with `{"Action": "list-accounts"}`,
//! then `{"Action": "audit-account", "Account": ID}` per account (counts
//! returned, nothing published), then `{"Action": "total", "Results": [...]}`,
//! which publishes the organization's counts once.

use iam_key_rotation::Clients;
use iam_key_rotation::fleet::{DailyAudit, DailyCounts, FleetError};
use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn, tracing};
use metrics_cloudwatch_embedded::Collector;
use serde_json::{Value, json};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    iam_key_rotation::logging::init_lambda(env!("CARGO_CRATE_NAME"));
    let daily = DailyAudit::from_lookup(|name| std::env::var(name).ok())?;
    let metrics = metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace(iam_key_rotation::METRICS_NAMESPACE)
        .emit_zeros(true)
        .init()?;
    let mut loader = aws_config::from_env().http_client(iam_key_rotation::shared_https_client());
    if let Some(retry) = iam_key_rotation::cli_retry_config(|name| std::env::var(name).ok()) {
        loader = loader.retry_config(retry);
    }
    let clients = Clients::new(&loader.load().await);
    let (daily, clients) = (&daily, &clients);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let request_id = event.context.request_id.as_str();
        let action = event
            .payload
            .get("Action")
            .and_then(Value::as_str)
            .map(str::to_string);
        match action.as_deref() {
            None => {
                let counts = daily.run(clients).await.map_err(failed)?;
                publish(metrics, &counts, request_id);
                to_json(&counts)
            }
            Some("list-accounts") => {
                let accounts = daily.accounts(clients).await.map_err(failed)?;
                Ok(json!({"Accounts": accounts
                    .iter()
                    .map(|member| json!({"Account": member.account, "Name": member.name}))
                    .collect::<Vec<_>>()}))
            }
            Some("audit-account") => {
                let account = event.payload.get("Account").and_then(Value::as_str);
                let counts = daily
                    .run_account(clients, account.unwrap_or_default())
                    .await
                    .map_err(failed)?;
                to_json(&counts)
            }
            Some("total") => {
                let mut payload = event.payload;
                let results: Vec<DailyCounts> =
                    serde_json::from_value(payload["Results"].take()).map_err(|error| {
                        Diagnostic {
                            error_type: "InvalidEvent".into(),
                            error_message: format!(
                                "\"Results\" must be the list of every account's counts: {error}"
                            ),
                        }
                    })?;
                let counts = DailyCounts::total(&results);
                publish(metrics, &counts, request_id);
                to_json(&counts)
            }
            Some(other) => Err(Diagnostic {
                error_type: "InvalidEvent".into(),
                error_message: format!(
                    "unknown Action {other:?}: the audit takes {{}} (the whole audit), or list-accounts, audit-account and total (the state machine's)"
                ),
            }),
        }
    }))
    .await
}

fn failed(error: FleetError) -> Diagnostic {
    Diagnostic {
        error_type: "AuditFailed".into(),
        error_message: error.to_string(),
    }
}

fn to_json(counts: &DailyCounts) -> Result<Value, Diagnostic> {
    serde_json::to_value(counts).map_err(|error| Diagnostic {
        error_type: "AuditFailed".into(),
        error_message: error.to_string(),
    })
}

/// One EMF record of the counts, the metrics the stack's alarms watch.
fn publish(metrics: &Collector, counts: &DailyCounts, request_id: &str) {
    for (name, value) in [
        ("UnmanagedOldKeys", counts.unmanaged_old_keys),
        ("StuckRotations", counts.stuck_rotations),
        ("OverdueRotations", counts.overdue_rotations),
        ("BrokenSecrets", counts.broken_secrets),
        ("AuditedKeys", counts.keys),
        ("AuditedSecrets", counts.secrets),
        ("UnreadableItems", counts.unreadable),
        ("UnreachableAccounts", counts.unreachable_accounts),
    ] {
        metrics::gauge!(name).set(value as f64);
    }
    if let Err(error) = metrics
        .set_property("RequestId", request_id)
        .flush(std::io::stdout())
    {
        tracing::warn!(%error, "could not write the metrics record");
    }
}
