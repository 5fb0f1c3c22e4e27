//! CloudWatch Logs: the rotation function's failed steps for one secret, read
//! back from its log group (`FilterLogEvents`), for `keyrot status`. The
//! function logs every failed step as a line `step failed` with its
//! `error_type`, in a span naming the step and the secret's ARN; those lines
//! are the only record of why a rotation failed that can be read later (the
//! `Rotation Step Failed` event cannot).

use super::Clients;
use super::error::AwsError;

/// How many matching lines keyrot reads for one secret: the last failure is
/// among the first pages of a pending rotation's lines.
const MAX_LINES: i32 = 200;

/// One logged line of the function about the secret: when, and its text.
#[derive(Debug, Clone)]
pub struct LoggedLine {
    /// Milliseconds since the epoch.
    pub at_ms: i64,
    pub message: String,
}

/// The lines of `log_group` since `since_ms` that name `secret_arn` (a quoted
/// term, so the ARN's `:` and `/` are taken as they are), oldest first.
pub async fn lines_naming(
    clients: &Clients,
    log_group: &str,
    secret_arn: &str,
    since_ms: i64,
) -> Result<Vec<LoggedLine>, AwsError> {
    let output = clients
        .logs()
        .filter_log_events()
        .log_group_name(log_group)
        .start_time(since_ms)
        .filter_pattern(quoted_term(secret_arn))
        .limit(MAX_LINES)
        .send()
        .await
        .map_err(|error| AwsError::from_sdk("FilterLogEvents", log_group, &error))?;
    Ok(output
        .events()
        .iter()
        .filter_map(|event| {
            Some(LoggedLine {
                at_ms: event.timestamp()?,
                message: event.message()?.to_string(),
            })
        })
        .collect())
}

/// A CloudWatch Logs filter pattern matching `term` exactly.
pub fn quoted_term(term: &str) -> String {
    format!("\"{}\"", term.replace('"', ""))
}
