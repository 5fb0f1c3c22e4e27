//! GitHub's rate limits (SPEC 14, after GitHub's "Rate limits for the REST
//! API"), read from a response. Pure: the client decides how long to pause.
//!
//! - Primary: a 403 or 429 with `x-ratelimit-remaining: 0`: no call until
//!   `x-ratelimit-reset` (UTC epoch seconds). It is the credentials' hourly
//!   budget, so every call of the run pauses.
//! - Secondary: a 403 or 429 with `retry-after` (seconds); without either
//!   header, a 429, or a 403 whose message says it is a rate limit, waits 60 s
//!   (longer when it repeats). Any other 403 is a refusal, not a limit.

use std::time::Duration;

/// The headers that carry GitHub's rate limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct RateHeaders {
    pub remaining: Option<u64>,
    pub reset: Option<i64>,
    pub retry_after: Option<u64>,
}

/// How long GitHub asks us to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Limit {
    /// No call until this UTC epoch second.
    Until(i64),
    /// No call for this long.
    For(Duration),
}

/// GitHub's advice when a secondary limit names no time.
const SECONDARY_DEFAULT: Duration = Duration::from_secs(60);

/// The limit a response reports, if it is one. `repeats` counts the limits
/// this call met before, so a secondary limit without a time waits longer each
/// time, as GitHub asks.
pub(super) fn limit(
    status: u16,
    headers: &RateHeaders,
    message: &str,
    repeats: u32,
) -> Option<Limit> {
    if status != 403 && status != 429 {
        return None;
    }
    if let Some(seconds) = headers.retry_after {
        return Some(Limit::For(Duration::from_secs(seconds)));
    }
    if headers.remaining == Some(0)
        && let Some(reset) = headers.reset
    {
        return Some(Limit::Until(reset));
    }
    if status == 429 || says_rate_limit(message) {
        return Some(Limit::For(
            SECONDARY_DEFAULT * 2u32.saturating_pow(repeats.min(4)),
        ));
    }
    None
}

/// A successful response that spent the last call of the budget: the next
/// would be refused, so wait for the reset before it.
pub(super) fn exhausted(headers: &RateHeaders) -> Option<i64> {
    (headers.remaining == Some(0))
        .then_some(headers.reset)
        .flatten()
}

fn says_rate_limit(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    message.contains("rate limit") || message.contains("abuse detection")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(
        remaining: Option<u64>,
        reset: Option<i64>,
        retry_after: Option<u64>,
    ) -> RateHeaders {
        RateHeaders {
            remaining,
            reset,
            retry_after,
        }
    }

    #[test]
    fn a_primary_limit_waits_for_the_reset() {
        let primary = headers(Some(0), Some(1_800_000_000), None);
        assert_eq!(
            limit(403, &primary, "API rate limit exceeded", 0),
            Some(Limit::Until(1_800_000_000))
        );
        assert_eq!(
            limit(429, &primary, "", 0),
            Some(Limit::Until(1_800_000_000))
        );
        assert_eq!(exhausted(&primary), Some(1_800_000_000));
        assert_eq!(exhausted(&headers(Some(1), Some(1), None)), None);
    }

    #[test]
    fn a_secondary_limit_waits_retry_after_or_a_minute_and_longer_when_it_repeats() {
        let any = headers(Some(4000), Some(1), Some(7));
        assert_eq!(
            limit(403, &any, "", 0),
            Some(Limit::For(Duration::from_secs(7)))
        );
        let none = RateHeaders::default();
        let message = "You have exceeded a secondary rate limit. Please wait a few minutes";
        assert_eq!(
            limit(403, &none, message, 0),
            Some(Limit::For(Duration::from_secs(60)))
        );
        assert_eq!(
            limit(403, &none, message, 1),
            Some(Limit::For(Duration::from_secs(120)))
        );
        assert_eq!(
            limit(403, &none, message, 9),
            Some(Limit::For(Duration::from_secs(960)))
        );
        assert_eq!(
            limit(429, &none, "", 0),
            Some(Limit::For(Duration::from_secs(60)))
        );
    }

    #[test]
    fn any_other_403_is_a_refusal_and_other_statuses_no_limit() {
        let none = RateHeaders::default();
        assert_eq!(
            limit(
                403,
                &none,
                "Resource not accessible by personal access token",
                0
            ),
            None
        );
        assert_eq!(
            limit(
                403,
                &headers(Some(10), Some(1), None),
                "Must have admin rights",
                0
            ),
            None
        );
        assert_eq!(limit(404, &headers(Some(0), Some(1), Some(3)), "", 0), None);
        assert_eq!(limit(500, &none, "rate limit", 0), None);
    }
}
