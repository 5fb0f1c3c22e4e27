//! The daily audit function the SAM stack schedules: `keyrot audit` and `keyrot
//! status` over the account, published as CloudWatch metrics (Embedded Metric
//! Format on stdout) that the stack's alarms watch. A thin front end over the
//! library's `fleet::DailyAudit`; it only reads.

use iam_key_rotation::Clients;
use iam_key_rotation::fleet::DailyAudit;
use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn, tracing};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    iam_key_rotation::logging::init_lambda();
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
        let counts = daily.run(clients).await.map_err(|error| Diagnostic {
            error_type: "AuditFailed".into(),
            error_message: error.to_string(),
        })?;
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
            .set_property("RequestId", event.context.request_id.as_str())
            .flush(std::io::stdout())
        {
            tracing::warn!(%error, "could not write the metrics record");
        }
        serde_json::to_value(&counts).map_err(|error| Diagnostic {
            error_type: "AuditFailed".into(),
            error_message: error.to_string(),
        })
    }))
    .await
}
