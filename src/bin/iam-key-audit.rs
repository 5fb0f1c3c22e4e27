//! The daily audit function the SAM stack schedules: `keyrot audit` and `keyrot
//! status` over the account, published as CloudWatch metrics (Embedded Metric
//! Format on stdout) that the stack's alarms watch. A thin front end over the
//! library's `report::DailyAudit`; it only reads.
//!
//! The scheduled event (`{}`) runs the whole audit. With `AuditFanOut`, the
//! stack's state machine calls it instead with `{"Action": "list-accounts"}`,
//! then `{"Action": "audit-account", "Account": ID}` per account (counts
//! returned, nothing published), then `{"Action": "total", "Results": [...]}`,
//! which publishes the organization's counts once.

// The runtime's future nests both reports and the SDK's loader, whose
// credentials chain now has IAM Identity Center and credential_process in it:
// deeper than rustc's default query depth of 128.
#![recursion_limit = "256"]

use iam_key_rotation::report::{AuditRequest, DailyAudit, DailyCounts, ReportError};
use iam_key_rotation::{Clients, RetryProfile, Settings};
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
    let clients = Clients::load(Settings {
        retries: RetryProfile::Fleet,
        region: None,
        profile: None,
    })
    .await;
    let (daily, clients) = (&daily, &clients);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let request_id = event.context.request_id.as_str();
        let request = AuditRequest::from_payload(event.payload).map_err(|message| Diagnostic {
            error_type: "InvalidEvent".into(),
            error_message: message,
        })?;
        match request {
            AuditRequest::Whole => {
                let counts = daily.run(clients).await.map_err(failed)?;
                publish(metrics, &counts, request_id);
                to_json(&counts)
            }
            AuditRequest::ListAccounts => {
                let accounts = daily.accounts(clients).await.map_err(failed)?;
                Ok(json!({"Accounts": accounts
                    .iter()
                    .map(|member| json!({"Account": member.account, "Name": member.name}))
                    .collect::<Vec<_>>()}))
            }
            AuditRequest::AuditAccount { account } => {
                let counts = daily.run_account(clients, &account).await.map_err(failed)?;
                to_json(&counts)
            }
            AuditRequest::Total { results } => {
                let counts = DailyCounts::total(&results);
                publish(metrics, &counts, request_id);
                to_json(&counts)
            }
        }
    }))
    .await
}

fn failed(error: ReportError) -> Diagnostic {
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
        ("NotRotatingKeys", counts.not_rotating_keys),
        ("TwoActiveKeys", counts.two_active_keys),
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
