//! The wall clock, in the seconds AWS's dates and our tags use, and times as
//! the fleet reports them: RFC 3339 strings, and ages in days.

use aws_sdk_iam::primitives::{DateTime, DateTimeFormat};

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.as_secs() as i64)
        .unwrap_or_default()
}

const SECONDS_PER_DAY: f64 = 86_400.0;

/// RFC 3339 (`2026-11-29T01:02:03Z`).
pub fn rfc3339(time: &DateTime) -> String {
    time.fmt(DateTimeFormat::DateTime)
        .unwrap_or_else(|_| time.secs().to_string())
}

/// The exact age in days, as a decimal number, of something made at `then`.
pub fn age_days(then: &DateTime, now: &DateTime) -> f64 {
    let seconds = (now.secs() - then.secs()) as f64
        + (f64::from(now.subsec_nanos()) - f64::from(then.subsec_nanos())) / 1e9;
    seconds / SECONDS_PER_DAY
}

pub fn now() -> DateTime {
    DateTime::from(std::time::SystemTime::now())
}

/// `then` plus whole days.
pub fn plus_days(then: &DateTime, days: i64) -> DateTime {
    DateTime::from_secs(then.secs() + days * 86_400)
}

/// Parses the credential report's times (`2026-11-29T01:02:03+00:00`); `N/A`,
/// `no_information` and anything else unparseable are `None`.
pub fn parse_report_time(text: &str) -> Option<DateTime> {
    DateTime::from_str(text, DateTimeFormat::DateTime)
        .ok()
        .or_else(|| {
            let utc = text.strip_suffix("+00:00")?;
            DateTime::from_str(&format!("{utc}Z"), DateTimeFormat::DateTime).ok()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_exact_decimals_and_report_times_parse() {
        let then = DateTime::from_secs(0);
        let now = DateTime::from_secs(90 * 86_400 + 43_200);
        assert!((age_days(&then, &now) - 90.5).abs() < 1e-9);
        assert_eq!(
            rfc3339(&DateTime::from_secs(86_400)),
            "1970-01-02T00:00:00Z"
        );
        assert_eq!(
            parse_report_time("2026-11-29T01:02:03+00:00").map(|t| t.secs()),
            parse_report_time("2026-11-29T01:02:03Z").map(|t| t.secs())
        );
        assert!(parse_report_time("2026-11-29T01:02:03+00:00").is_some());
        assert!(parse_report_time("N/A").is_none());
        assert!(parse_report_time("no_information").is_none());
    }
}
