//! A secret's delivery (SPEC 14) as its reserved tags tell it: the targets
//! (`iam-key-rotation:deliver:<label>`), what reached them
//! (`iam-key-rotation:delivered`) and the last failure
//! (`iam-key-rotation:delivery-error`). Read from the tags `DescribeSecret` and
//! `ListSecrets` return with the secret, so the rotation's steps, the sweep,
//! the delivery job and `keyrot status` all ask the same questions of the same
//! records without another call: has the secret targets, and does every one
//! hold the current version?
//!
//! Only reserved tag keys count, matched byte for byte: a target written in the
//! secret's value, in a tag of another case or in a user's tag is nobody's
//! target (each record's module says who may write it).

use super::delivered::{DELIVERED_TAG, DeliveredRecord, check_labels_fit};
use super::delivery_error::{DELIVERY_ERROR_TAG, DeliveryError};
use super::delivery_target::{DeliveryTag, delivery_tags};

/// What a secret's tags say of its delivery.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretDelivery {
    /// Every reserved target tag, by label; an invalid one stays, as a target
    /// that fails (and, when the labels would not fit in the record, every
    /// target is one: `invalid target spec: record too long`).
    pub targets: Vec<DeliveryTag>,
    /// What reached where, if the tag holds a record the writer would write.
    pub delivered: Option<DeliveredRecord>,
    /// The last failure, if any.
    pub last_error: Option<DeliveryError>,
}

impl SecretDelivery {
    /// From a secret's tags (key, value).
    pub fn from_tags<'a>(tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let tags: Vec<(&str, &str)> = tags.into_iter().collect();
        let mut targets = delivery_tags(tags.iter().copied());
        let labels: Vec<_> = targets
            .iter()
            .filter_map(|tag| tag.target.as_ref().ok().map(|(label, _)| label))
            .collect();
        if let Err(too_long) = check_labels_fit(labels) {
            for tag in &mut targets {
                tag.target = Err(too_long.clone());
            }
        }
        let value_of = |key: &str| {
            tags.iter()
                .find(|(found, _)| *found == key)
                .map(|(_, value)| *value)
        };
        Self {
            targets,
            delivered: value_of(DELIVERED_TAG).and_then(DeliveredRecord::parse),
            last_error: value_of(DELIVERY_ERROR_TAG).and_then(DeliveryError::parse),
        }
    }

    /// Whether the secret has delivery targets (valid or not).
    pub fn has_targets(&self) -> bool {
        !self.targets.is_empty()
    }

    /// The labels (as their tags name them) of the targets that do not hold
    /// `version`: invalid ones, and those the record does not list for it.
    pub fn undelivered(&self, version: &str) -> Vec<&str> {
        self.targets
            .iter()
            .filter(|tag| !self.holds(tag, version))
            .map(|tag| tag.label.as_str())
            .collect()
    }

    /// How many targets hold `version`.
    pub fn delivered_count(&self, version: &str) -> usize {
        self.targets
            .iter()
            .filter(|tag| self.holds(tag, version))
            .count()
    }

    /// When every target was last confirmed holding `version` (the record's
    /// time), if every one does; `None` without targets.
    pub fn delivered_at(&self, version: &str) -> Option<i64> {
        let record = self.delivered.as_ref()?;
        (self.has_targets() && self.undelivered(version).is_empty()).then(|| record.confirmed_at())
    }

    fn holds(&self, tag: &DeliveryTag, version: &str) -> bool {
        match (&tag.target, &self.delivered) {
            (Ok((label, _)), Some(record)) => record.holds(version, label),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "github:acme/app";

    fn delivery(tags: &[(&str, &str)]) -> SecretDelivery {
        SecretDelivery::from_tags(tags.iter().copied())
    }

    #[test]
    fn a_secret_without_reserved_target_tags_has_no_targets() {
        let none = delivery(&[
            ("Iam-Key-Rotation:deliver:ci", GOOD),
            ("iam-key-rotation:Deliver:ci", GOOD),
            ("deliver:ci", GOOD),
            ("team", "ci"),
        ]);
        assert!(!none.has_targets());
        assert!(none.undelivered("v1").is_empty());
        assert_eq!(none.delivered_at("v1"), None);
    }

    #[test]
    fn every_target_must_hold_the_current_version() {
        let tags = [
            ("iam-key-rotation:deliver:ci", GOOD),
            ("iam-key-rotation:deliver:ops", "ssm:us-east-1:/app"),
            ("iam-key-rotation:delivered", "v2 1700000000 ci"),
        ];
        let partly = delivery(&tags);
        assert!(partly.has_targets());
        assert_eq!(partly.undelivered("v2"), ["ops"]);
        assert_eq!(partly.delivered_count("v2"), 1);
        assert_eq!(partly.delivered_at("v2"), None);
        // A record of another version holds nothing of this one.
        assert_eq!(partly.undelivered("v3"), ["ci", "ops"]);

        let whole = delivery(&[
            tags[0],
            tags[1],
            ("iam-key-rotation:delivered", "v2 1700000000 ci ops"),
        ]);
        assert!(whole.undelivered("v2").is_empty());
        assert_eq!(whole.delivered_at("v2"), Some(1_700_000_000));
    }

    #[test]
    fn an_invalid_target_is_never_delivered_and_a_malformed_record_is_none() {
        let invalid = delivery(&[
            ("iam-key-rotation:deliver:ci", GOOD),
            ("iam-key-rotation:deliver:bad", "ftp:somewhere"),
            ("iam-key-rotation:delivered", "v2 1700000000 bad ci"),
        ]);
        assert_eq!(invalid.undelivered("v2"), ["bad"]);
        let malformed = delivery(&[
            ("iam-key-rotation:deliver:ci", GOOD),
            ("iam-key-rotation:delivered", "v2 1700000000  ci"),
        ]);
        assert_eq!(malformed.delivered, None);
        assert_eq!(malformed.undelivered("v2"), ["ci"]);
    }

    #[test]
    fn labels_that_would_not_fit_in_the_record_make_every_target_fail() {
        let keys: Vec<String> = (0..4)
            .map(|i| format!("iam-key-rotation:deliver:{i}{}", "l".repeat(60)))
            .collect();
        let tags: Vec<(&str, &str)> = keys.iter().map(|key| (key.as_str(), GOOD)).collect();
        let too_many = delivery(&tags);
        assert_eq!(too_many.targets.len(), 4);
        for tag in &too_many.targets {
            let error = tag.target.as_ref().unwrap_err().to_string();
            assert!(
                error.starts_with("invalid target spec: record too long"),
                "{error}"
            );
        }
    }

    #[test]
    fn the_last_error_is_read_when_well_formed() {
        let failing = delivery(&[
            ("iam-key-rotation:deliver:ci", GOOD),
            (
                "iam-key-rotation:delivery-error",
                "ci 1700000000 GitHub answered 404",
            ),
        ]);
        let error = failing.last_error.unwrap();
        assert_eq!((error.label.as_str(), error.at), ("ci", 1_700_000_000));
        assert_eq!(error.message, "GitHub answered 404");
    }
}
