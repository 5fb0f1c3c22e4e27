//! The delivery function (SPEC 14): pushes each secret's current key to the
//! targets its reserved tags name (GitHub Actions secrets, SSM parameters,
//! copies in other secrets), verifies them and records what reached where, so
//! that the previous key is retired only after every consumer has the new one.
//! A thin front end over the library's `deliver::Deliverer`.
//!
//! `{"Action": "deliver", "SecretId": ARN}` (the EventBridge rule on `Access
//! Key Rotated` and `Access Key Rolled Back`) delivers one secret;
//! `{"Action": "deliver"}` (the schedule) every secret under
//! `SECRET_NAME_PREFIX` with a target. Each run publishes `Deliveries`,
//! `DeliveryFailures` and `UndeliveredSecrets` as one EMF record.

use std::time::{Instant, SystemTime};

use iam_key_rotation::deliver::{Deliverer, DeliveryConfig, describe_metrics};
use iam_key_rotation::{Clients, RetryProfile, Settings};
use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn, tracing};
use serde_json::Value;

// One invocation at a time: a single-threaded runtime starts faster and uses less memory.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    iam_key_rotation::logging::init_lambda(env!("CARGO_CRATE_NAME"));
    // A bad variable stops the function here, as an initialisation error.
    let config = DeliveryConfig::from_env()?;
    let metrics = metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace(iam_key_rotation::METRICS_NAMESPACE)
        .emit_zeros(true)
        .init()?;
    describe_metrics();
    let clients = Clients::load(Settings {
        retries: RetryProfile::Rotation,
        region: None,
        profile: None,
    })
    .await;
    let deliverer = Deliverer::new(clients, config);
    let deliverer = &deliverer;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = instant_of(event.context.deadline());
        let result = deliverer.handle(event.payload, Some(deadline)).await;
        // One Embedded Metric Format record per run; metrics never fail it.
        if result.is_ok()
            && let Err(error) = metrics
                .set_property("RequestId", event.context.request_id.as_str())
                .flush(std::io::stdout())
        {
            tracing::warn!(%error, "could not write the metrics record");
        }
        result
            .map(|report| report.to_json())
            .map_err(Diagnostic::from)
    }))
    .await
}

/// Converts Lambda's wall-clock deadline to a monotonic instant.
fn instant_of(deadline: SystemTime) -> Instant {
    let remaining = deadline
        .duration_since(SystemTime::now())
        .unwrap_or_default();
    Instant::now() + remaining
}
