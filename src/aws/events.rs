//! Putting the lifecycle events (`model::lifecycle`) on EventBridge, so that
//! consumers can reload or restart when a key changes instead of polling the
//! secret.
//!
//! Events are a courtesy to consumers, never a condition of rotation: a failure to
//! put one is logged and the step goes on. They are sent at least once: a step
//! retried after a crash may send its event again, so consumers must treat them
//! as "something changed, re-read the secret". The detail holds ids and names
//! only, never a secret.

use std::time::Duration;

use aws_sdk_eventbridge::error::ProvideErrorMetadata;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use tracing::{info, warn};

use crate::model::lifecycle::{Lifecycle, SOURCE, Subject};

/// Attempts for one `PutEvents`: a lost event costs a consumer a late reload, so
/// it is not worth holding a step for.
pub const PUT_ATTEMPTS: u32 = 3;
/// The longest a `PutEvents`, retries included, may hold up a step.
pub const PUT_TIMEOUT: Duration = Duration::from_secs(3);

/// Puts the events (one `PutEvents` for all of them, at most ten) on `bus`.
/// Never fails: a failure is a WARN in the log.
pub async fn publish(clients: &super::Clients, bus: &str, subject: &Subject, events: &[Lifecycle]) {
    if events.is_empty() {
        return;
    }
    let resources = subject
        .secret_arn
        .starts_with("arn:")
        .then(|| vec![subject.secret_arn.clone()]);
    let entries = events
        .iter()
        .map(|event| {
            PutEventsRequestEntry::builder()
                .event_bus_name(bus)
                .source(SOURCE)
                .detail_type(event.detail_type())
                .detail(event.detail(subject).to_string())
                .set_resources(resources.clone())
                .build()
        })
        .collect();
    let detail_types: Vec<&str> = events.iter().map(Lifecycle::detail_type).collect();
    let put = clients
        .events
        .put_events()
        .set_entries(Some(entries))
        .send();
    let failure = match tokio::time::timeout(PUT_TIMEOUT, put).await {
        Ok(Ok(output)) if output.failed_entry_count() == 0 => None,
        Ok(Ok(output)) => Some(
            output
                .entries()
                .iter()
                .find_map(|entry| entry.error_code().map(str::to_string))
                .unwrap_or_else(|| "FailedEntry".to_string()),
        ),
        Ok(Err(error)) => Some(error.code().unwrap_or("NetworkError").to_string()),
        Err(_) => Some("Timeout".to_string()),
    };
    match failure {
        None => info!(?detail_types, bus, "put the lifecycle events"),
        Some(code) => warn!(
            ?detail_types,
            bus,
            code,
            secret = %subject.secret_arn,
            "could not put the lifecycle events (consumers relying on them will not hear of this change): the function's role needs events:PutEvents on the bus EVENT_BUS_NAME names"
        ),
    }
}
