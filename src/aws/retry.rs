//! How the SDK retries every call but `CreateAccessKey` (which retries only
//! throttling, by hand).
//!
//! The SDK's default (standard mode, 3 attempts) gives up after about two seconds
//! of throttling. IAM throttles per account, so when many secrets fall due at once
//! and Lambda runs many instances, a step would fail from throttling alone and
//! Secrets Manager would have to re-run the rotation. The function instead uses
//! adaptive mode (a client-side rate limiter that slows down after throttling)
//! with enough attempts to ride out a storm; what bounds the retries is the
//! invocation's deadline (`Handler::handle` stops a step just before it), not a
//! small attempt count.

use std::time::Duration;

use aws_config::retry::RetryConfig;

/// Attempts per call, first included. With the back-off below they span about
/// a minute, more than any throttling burst, and less than the deadline allows.
const MAX_ATTEMPTS: u32 = 12;
/// Longest pause between two attempts (each is jittered below it).
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The retry settings for the function's clients, unless the operator chose their
/// own with the SDK's usual `AWS_RETRY_MODE` or `AWS_MAX_ATTEMPTS` (read through
/// `lookup`), which then apply unchanged.
pub fn sdk_retry_config(lookup: impl Fn(&str) -> Option<String>) -> Option<RetryConfig> {
    (!operator_chose(lookup)).then(|| {
        RetryConfig::adaptive()
            .with_max_attempts(MAX_ATTEMPTS)
            .with_max_backoff(MAX_BACKOFF)
    })
}

/// The retry settings for `keyrot` (the same unless the operator chose their
/// own): standard mode rather than adaptive, because the CLI already bounds its
/// own concurrency, and adaptive mode's client-side limiter cuts its rate by a
/// third at every throttle, which over thousands of calls can slow a report to
/// a crawl when IAM throttles steadily.
pub fn cli_retry_config(lookup: impl Fn(&str) -> Option<String>) -> Option<RetryConfig> {
    (!operator_chose(lookup)).then(|| {
        RetryConfig::standard()
            .with_max_attempts(MAX_ATTEMPTS)
            .with_max_backoff(MAX_BACKOFF)
    })
}

fn operator_chose(lookup: impl Fn(&str) -> Option<String>) -> bool {
    ["AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS"]
        .iter()
        .any(|name| lookup(name).is_some_and(|value| !value.trim().is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operators_retry_settings_win() {
        let ours = sdk_retry_config(|_| None).unwrap();
        assert_eq!(ours.mode(), aws_config::retry::RetryMode::Adaptive);
        assert_eq!(ours.max_attempts(), MAX_ATTEMPTS);
        assert!(
            sdk_retry_config(|name| (name == "AWS_MAX_ATTEMPTS").then(|| "3".into())).is_none()
        );
        assert!(
            sdk_retry_config(|name| (name == "AWS_RETRY_MODE").then(|| "standard".into()))
                .is_none()
        );
        assert!(sdk_retry_config(|name| (name == "AWS_RETRY_MODE").then(String::new)).is_some());
        let cli = cli_retry_config(|_| None).unwrap();
        assert_eq!(cli.mode(), aws_config::retry::RetryMode::Standard);
        assert!(
            cli_retry_config(|name| (name == "AWS_MAX_ATTEMPTS").then(|| "3".into())).is_none()
        );
    }
}
