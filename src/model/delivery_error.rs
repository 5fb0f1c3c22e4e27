//! The last delivery failure of a secret: the reserved secret tag
//! `iam-key-rotation:delivery-error` = `<label> <unix seconds> <what went
//! wrong>`, written by the delivery function when a target fails, removed once
//! every target holds the current version, and shown by `keyrot status` beside
//! the `undelivered` state (SPEC 14: "the failing target and its last error").
//!
//! Why a tag: `keyrot status` already lists every secret with its tags
//! (`ListSecrets` returns them), so the error costs the operator no call and
//! no permission on the delivery function's logs, and the delivery function
//! writes it in the `TagResource` that records what it delivered (one call, on
//! a failing run only). Who can write it: the key is reserved (the SCP denies
//! `iam-key-rotation:*` on `secretsmanager:TagResource` to all but
//! administrators and the delivery function's role), and nothing acts on it:
//! it is only ever shown, never a reason to retire or keep a key.
//!
//! Secrets Manager accepts in a tag value only letters, digits, spaces and `+ -
//! = . _ : / @`, up to 256 characters: the writer replaces anything else by a
//! space and cuts the message to fit, so the full text stays in the delivery
//! function's log. One writer ([`DeliveryError::to_tag_value`]) and one parser
//! ([`DeliveryError::parse`]).

/// The reserved secret tag key of the record.
pub const DELIVERY_ERROR_TAG: &str = "iam-key-rotation:delivery-error";
/// Secrets Manager's longest tag value.
const MAX_VALUE_LEN: usize = 256;

/// The last failure of one of a secret's targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryError {
    /// The target's label (as its tag key names it, made tag-safe).
    pub label: String,
    /// When the run that failed it ended (unix seconds).
    pub at: i64,
    /// What went wrong, made tag-safe and cut to fit.
    pub message: String,
}

impl DeliveryError {
    /// The record of `label` failing at `at` with `message`.
    pub fn new(label: &str, at: i64, message: &str) -> Self {
        let label: String = tag_safe(label).replace(' ', "_");
        let label = if label.is_empty() { "-".into() } else { label };
        let at = at.max(0);
        let room = MAX_VALUE_LEN.saturating_sub(label.len() + at.to_string().len() + 2);
        let message = cut(&tag_safe(message), room);
        Self {
            label,
            at,
            message: if message.is_empty() {
                "failed".into()
            } else {
                message
            },
        }
    }

    /// The one writer of the tag value.
    pub fn to_tag_value(&self) -> String {
        format!("{} {} {}", self.label, self.at, self.message)
    }

    /// The one parser: `<label> <unix seconds> <message>`, or `None`.
    pub fn parse(value: &str) -> Option<Self> {
        let mut parts = value.splitn(3, ' ');
        let label = parts.next().filter(|label| !label.is_empty())?;
        let at = parts.next()?.parse().ok().filter(|at: &i64| *at >= 0)?;
        let message = parts.next().filter(|message| !message.is_empty())?;
        Some(Self {
            label: label.to_string(),
            at,
            message: message.to_string(),
        })
    }
}

/// The text with every character a Secrets Manager tag value refuses made a
/// space, and runs of spaces made one.
fn tag_safe(text: &str) -> String {
    let allowed = |c: char| c.is_ascii_alphanumeric() || " +-=._:/@".contains(c);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let c = if allowed(c) { c } else { ' ' };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        out.push(c);
    }
    out.trim_end().to_string()
}

/// At most `room` characters (all ASCII after `tag_safe`).
fn cut(text: &str, room: usize) -> String {
    text.chars()
        .take(room)
        .collect::<String>()
        .trim_end()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_reads_back_as_it_was_written() {
        let record = DeliveryError::new(
            "ci",
            1_700_000_000,
            "GitHub answered 404 for repository o/r",
        );
        assert_eq!(
            record.to_tag_value(),
            "ci 1700000000 GitHub answered 404 for repository o/r"
        );
        assert_eq!(DeliveryError::parse(&record.to_tag_value()), Some(record));
    }

    #[test]
    fn only_what_a_tag_value_holds_is_written_and_it_fits() {
        let record = DeliveryError::new(
            "bad label!",
            5,
            &format!(
                "GitHub refused (403: \"Resource not accessible\"), {}",
                "x".repeat(400)
            ),
        );
        let value = record.to_tag_value();
        assert!(value.len() <= MAX_VALUE_LEN, "{}", value.len());
        assert!(
            value.starts_with("bad_label 5 GitHub refused 403: Resource not accessible xxx"),
            "{value}"
        );
        assert!(
            value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || " +-=._:/@".contains(c)),
            "{value}"
        );
        assert_eq!(DeliveryError::parse(&value), Some(record));
    }

    #[test]
    fn a_value_the_writer_would_not_write_is_no_record() {
        for bad in [
            "",
            "ci",
            "ci x failed",
            "ci -1 failed",
            "ci 5",
            "ci 5 ",
            " 5 failed",
        ] {
            assert_eq!(DeliveryError::parse(bad), None, "{bad:?}");
        }
    }
}
