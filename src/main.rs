//! The Lambda entry point: read the configuration, build the AWS clients once, and
//! hand each event to the library's [`Handler`].

use std::time::{Instant, SystemTime};

use iam_key_rotation::{Clients, Config, Handler, Invocation, RetryProfile, Settings};
use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn, tracing};
use serde_json::Value;

// One invocation at a time: a single-threaded runtime starts faster and uses less memory.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    iam_key_rotation::logging::init_lambda(env!("CARGO_CRATE_NAME"));
    // A bad variable stops the function here, as an initialisation error.
    let config = Config::from_env()?;
    let metrics = metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace(iam_key_rotation::METRICS_NAMESPACE)
        .init()?;
    iam_key_rotation::describe_metrics();
    let clients = Clients::load(Settings {
        retries: RetryProfile::Rotation,
        region: None,
        profile: None,
    })
    .await;
    let handler = Handler::new(clients, config);
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let invocation = Invocation {
            function_arn: &event.context.invoked_function_arn,
            deadline: Some(instant_of(event.context.deadline())),
        };
        let result = handler.handle(event.payload, invocation).await;
        // One Embedded Metric Format record per step, flushed with the invocation.
        // Metrics never fail a rotation.
        if let Err(error) = metrics
            .set_property("RequestId", event.context.request_id.as_str())
            .flush(std::io::stdout())
        {
            tracing::warn!(%error, "could not write the metrics record");
        }
        result.map_err(Diagnostic::from)
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
