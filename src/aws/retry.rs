//! How the SDK retries every call but `CreateAccessKey` (which retries only
//! throttling, by hand, with the same back-off).
//!
//! Two things are asked of it, and docs/performance.md has the measurements
//! behind each choice here. A transient throttle must cost what it must: a
//! fraction of a second, not the quarter minute it cost under adaptive mode,
//! whose client-side limiter in a fresh process (every cold start) sets its
//! rate from the few calls it has seen, charges a throttled retry ten tokens at
//! about one token a second, and so holds the retry for the whole back-off cap,
//! and every later call of the step behind it. And a storm (dozens of secrets
//! falling due at once, Lambda running many instances, IAM throttling the
//! account as a whole) must fail no step, which the SDK's default (3 attempts)
//! does.
//!
//! So: standard mode (exponential back-off with full jitter: a pause anywhere
//! up to an interval that doubles from [`INITIAL_BACKOFF`] to [`MAX_BACKOFF`]),
//! patient enough in attempts to ride out a storm, and a retry quota in which
//! throttling costs nothing: the SDK's quota takes 5 of its 500 tokens per
//! throttled retry and gives them back only slowly, so a busy instance in a
//! long storm ran dry and failed every step after (43 failed steps where IAM
//! allowed 2 calls a second). Throttling is answered before anything happens,
//! and the back-off already spaces the retries; the quota still bounds retries
//! of server errors and timeouts, where retrying could deepen an outage. What
//! bounds it all is the invocation's deadline (`Handler::handle` stops a step
//! just before it), not a small attempt count.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_sdk_iam::config::retry::{RetryPartition, TokenBucket};

/// Attempts per call, first included. With the back-off below they pause about
/// 21 s on average (42.5 s at most), more than any throttling burst, and less
/// than the deadline allows.
pub(crate) const MAX_ATTEMPTS: u32 = 12;
/// The first retry waits up to this long; each later one up to twice as long
/// as the one before, up to [`MAX_BACKOFF`]. One throttle costs at most 0.5 s,
/// three in a row at most 3.5 s.
const INITIAL_BACKOFF: Duration = Duration::from_millis(500);
/// Longest pause between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The retry settings for the function's clients, unless the operator chose their
/// own with the SDK's usual `AWS_RETRY_MODE` or `AWS_MAX_ATTEMPTS` (read through
/// `lookup`), which then apply unchanged.
pub fn sdk_retry_config(lookup: impl Fn(&str) -> Option<String>) -> Option<RetryConfig> {
    (!operator_chose(lookup)).then(|| {
        RetryConfig::standard()
            .with_max_attempts(MAX_ATTEMPTS)
            .with_initial_backoff(INITIAL_BACKOFF)
            .with_max_backoff(MAX_BACKOFF)
    })
}

/// The retry settings for `keyrot` and the audit (the same as the function's,
/// unless the operator chose their own): they already bound their own
/// concurrency, and a throttle should cost a report no more than a rotation.
pub fn cli_retry_config(lookup: impl Fn(&str) -> Option<String>) -> Option<RetryConfig> {
    sdk_retry_config(lookup)
}

/// The pause before retry number `retry` (1 for the first) of a throttled call
/// that is retried by hand: the SDK's standard back-off with this module's
/// settings, `unit` in [0, 1) picking where under the interval it falls.
pub(crate) fn throttled_pause(retry: u32, unit: f64) -> Duration {
    let doublings = retry.saturating_sub(1).min(16);
    let interval = (INITIAL_BACKOFF * 2u32.pow(doublings)).min(MAX_BACKOFF);
    interval.mul_f64(unit.clamp(0.0, 1.0))
}

/// The retry partition of one service's clients (`service` as the SDK names
/// it, and the account when it is not the caller's own: IAM throttles per
/// account, so one throttled account must not use up another's retries). With
/// this module's settings, a partition whose retry quota lets throttling
/// through free; with the operator's, the SDK's usual partition (`None`: its
/// default).
pub(crate) fn partition(
    service: &str,
    account: Option<&str>,
    lookup: impl Fn(&str) -> Option<String>,
) -> Option<RetryPartition> {
    let name = match account {
        Some(account) => format!("{service}-{account}"),
        None => service.to_string(),
    };
    if operator_chose(lookup) {
        return account.map(|_| RetryPartition::new(name));
    }
    Some(
        RetryPartition::custom(name)
            .token_bucket(TokenBucket::builder().throttling_retry_cost(0).build())
            .build(),
    )
}

fn operator_chose(lookup: impl Fn(&str) -> Option<String>) -> bool {
    ["AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS"]
        .iter()
        .any(|name| lookup(name).is_some_and(|value| !value.trim().is_empty()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use aws_sdk_iam::config::http::HttpResponse;
    use aws_sdk_iam::config::{BehaviorVersion, Credentials, Region};
    use aws_smithy_runtime_api::client::http::{
        HttpConnector, HttpConnectorFuture, SharedHttpConnector, http_client_fn,
    };
    use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
    use aws_smithy_runtime_api::http::StatusCode;

    use super::*;

    #[test]
    fn the_operators_retry_settings_win() {
        let ours = sdk_retry_config(|_| None).unwrap();
        assert_eq!(ours.mode(), aws_config::retry::RetryMode::Standard);
        assert_eq!(ours.max_attempts(), MAX_ATTEMPTS);
        assert_eq!(ours.initial_backoff(), INITIAL_BACKOFF);
        assert_eq!(ours.max_backoff(), MAX_BACKOFF);
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
        assert_eq!(cli.initial_backoff(), INITIAL_BACKOFF);
        assert!(
            cli_retry_config(|name| (name == "AWS_MAX_ATTEMPTS").then(|| "3".into())).is_none()
        );
    }

    /// Whatever the jitter draws, one throttle adds at most about 1 s and
    /// three in a row at most about 4 s (the targets docs/performance.md
    /// measures against).
    #[test]
    fn a_throttle_costs_at_most_half_a_second_and_three_in_a_row_three_and_a_half() {
        let worst = |retries: u32| -> Duration {
            (1..=retries)
                .map(|retry| throttled_pause(retry, 0.999_999_9))
                .sum()
        };
        assert!(worst(1) <= Duration::from_millis(500), "{:?}", worst(1));
        assert!(worst(3) <= Duration::from_millis(3500), "{:?}", worst(3));
        assert_eq!(throttled_pause(1, 0.0), Duration::ZERO);
        assert_eq!(throttled_pause(4, 0.5), Duration::from_secs(2));
        assert_eq!(throttled_pause(5, 0.5), MAX_BACKOFF / 2);
        assert_eq!(throttled_pause(40, 1.0), MAX_BACKOFF);
        // As patient as the SDK with every other call: 11 retries, on average
        // about 21 s of pauses.
        let mean: Duration = (1..MAX_ATTEMPTS).map(|r| throttled_pause(r, 0.5)).sum();
        assert!(mean > Duration::from_secs(15), "{mean:?}");
    }

    /// IAM that answers `Throttling` to the first three attempts at every call
    /// and lists no keys at the fourth.
    #[derive(Debug, Clone, Default)]
    struct ThrottlesThreeInFour(Arc<AtomicUsize>);

    impl HttpConnector for ThrottlesThreeInFour {
        fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
            let attempt = self.0.fetch_add(1, Ordering::Relaxed) + 1;
            let (status, body) = if attempt.is_multiple_of(4) {
                (
                    200,
                    "<ListAccessKeysResponse><ListAccessKeysResult><AccessKeyMetadata/><IsTruncated>false</IsTruncated></ListAccessKeysResult></ListAccessKeysResponse>",
                )
            } else {
                (
                    400,
                    "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>1</RequestId></ErrorResponse>",
                )
            };
            let mut response =
                HttpResponse::new(StatusCode::try_from(status).unwrap(), body.into());
            response.headers_mut().insert("content-type", "text/xml");
            HttpConnectorFuture::ready(Ok(response))
        }
    }

    /// How many of `calls` calls (each throttled three times before it
    /// succeeds, no pause between attempts) succeed with the retry partition.
    async fn calls_that_succeed(partition: Option<RetryPartition>, calls: usize) -> usize {
        let iam = ThrottlesThreeInFour::default();
        let mut config = aws_sdk_iam::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("AKID", "secret", None, None, "test"))
            .http_client(http_client_fn(move |_, _| {
                SharedHttpConnector::new(iam.clone())
            }))
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(4)
                    .with_initial_backoff(Duration::ZERO),
            );
        config.set_retry_partition(partition);
        let client = aws_sdk_iam::Client::from_conf(config.build());
        let mut succeeded = 0;
        for _ in 0..calls {
            succeeded += usize::from(client.list_access_keys().send().await.is_ok());
        }
        succeeded
    }

    /// The storm's guard: the SDK's retry quota loses 10 of its 500 tokens to
    /// every call throttled three times, so after about 50 such calls a busy
    /// instance is refused its retries; this module's partition never runs dry.
    #[tokio::test]
    async fn throttling_never_runs_the_retry_quota_dry() {
        let sdks = RetryPartition::new("sdk-default-quota");
        assert!(calls_that_succeed(Some(sdks), 60).await < 60);
        let ours = partition("iam", None, |_| None);
        assert_eq!(calls_that_succeed(ours, 60).await, 60);
    }

    #[test]
    fn the_operators_settings_keep_the_sdks_partitions() {
        let ours = partition("iam", Some("111122223333"), |_| None).unwrap();
        assert_eq!(ours.to_string(), "iam-111122223333");
        assert_eq!(partition("iam", None, |_| None).unwrap().to_string(), "iam");
        let chose = |name: &str| (name == "AWS_RETRY_MODE").then(|| "adaptive".to_string());
        assert!(partition("iam", None, chose).is_none());
        assert_eq!(
            partition("iam", Some("111122223333"), chose),
            Some(RetryPartition::new("iam-111122223333"))
        );
    }
}
