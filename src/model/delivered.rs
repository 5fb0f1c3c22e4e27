//! What reached where: the reserved secret tag `iam-key-rotation:delivered` =
//! `<version id> <unix seconds of the last confirmation> <label> <label> ...`
//! (SPEC 14), labels sorted, single spaces, at most 255 characters.
//!
//! Who can write the record: the tag key is reserved (the SCP denies
//! `iam-key-rotation:*` on `secretsmanager:TagResource` to all but
//! administrators and the delivery function's role), so the sweep may trust it
//! to retire a previous key. One writer ([`DeliveredRecord::to_tag_value`]) and
//! one parser ([`DeliveredRecord::parse`]), strict: a value the writer would not
//! have written is no record (the targets are then delivered again, which is
//! harmless; believing a malformed record could retire a key too early).

use std::collections::BTreeSet;

use super::delivery_target::{InvalidTarget, Label};

/// The reserved secret tag key of the record.
pub const DELIVERED_TAG: &str = "iam-key-rotation:delivered";
/// The record's longest value (Secrets Manager allows 256 in a tag value).
pub const MAX_RECORD_LEN: usize = 255;
/// The longest version id: Secrets Manager's `ClientRequestToken` is 32 to 64
/// characters.
const MAX_VERSION_LEN: usize = 64;
/// Digits of a unix time until the year 2286.
const TIME_DIGITS: usize = 10;
const MAX_TIME: i64 = 9_999_999_999;

/// The version last confirmed at every listed target, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveredRecord {
    version: String,
    confirmed_at: i64,
    labels: BTreeSet<Label>,
}

impl DeliveredRecord {
    /// A record of `version` confirmed at `labels` at `confirmed_at` (unix
    /// seconds). Refused when it would not fit in the tag.
    pub fn new(
        version: &str,
        confirmed_at: i64,
        labels: impl IntoIterator<Item = Label>,
    ) -> Result<Self, InvalidTarget> {
        if !is_version_id(version) {
            return Err(InvalidTarget::new(format!(
                "version id {version:?} cannot be recorded (1 to {MAX_VERSION_LEN} printable characters, no spaces)"
            )));
        }
        if !(0..=MAX_TIME).contains(&confirmed_at) {
            return Err(InvalidTarget::new(format!(
                "time {confirmed_at} cannot be recorded"
            )));
        }
        let record = Self {
            version: version.to_string(),
            confirmed_at,
            labels: labels.into_iter().collect(),
        };
        if record.to_tag_value().len() > MAX_RECORD_LEN {
            return Err(record_too_long());
        }
        Ok(record)
    }

    /// The record after `labels` were confirmed holding `version` at `at`: the
    /// labels `previous` lists for the same version stay while they are still
    /// targets (`targets`: a removed target's label goes, so the record always
    /// fits beside the targets there are); those of another version are
    /// dropped (they hold an older key).
    pub fn confirming<'a>(
        previous: Option<&Self>,
        targets: impl IntoIterator<Item = &'a Label>,
        version: &str,
        labels: impl IntoIterator<Item = Label>,
        at: i64,
    ) -> Result<Self, InvalidTarget> {
        let targets: BTreeSet<&Label> = targets.into_iter().collect();
        let kept: Vec<Label> = previous
            .filter(|previous| previous.version == version)
            .map(|previous| {
                previous
                    .labels
                    .iter()
                    .filter(|label| targets.contains(label))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        Self::new(version, at, kept.into_iter().chain(labels))
    }

    /// The record after `labels` were written with `version` while another
    /// version became `AWSCURRENT` (a rollback or a rotation moved it during
    /// the run): those targets now hold `version`, whatever the record said.
    /// A record of `version` gains them (as [`Self::confirming`]); a record of
    /// any other version loses them, keeping its time, so it never claims a
    /// target holds a key that was overwritten after the record was written
    /// (the next run writes the current version there again). `None` when the
    /// record does not change.
    pub fn overwritten<'a>(
        previous: Option<&Self>,
        targets: impl IntoIterator<Item = &'a Label>,
        version: &str,
        labels: impl IntoIterator<Item = Label>,
        at: i64,
    ) -> Option<Result<Self, InvalidTarget>> {
        match previous {
            Some(other) if other.version != version => {
                let written: BTreeSet<Label> = labels.into_iter().collect();
                if other.labels.is_disjoint(&written) {
                    return None;
                }
                let kept = other.labels.difference(&written).cloned();
                Some(Self::new(&other.version, other.confirmed_at, kept))
            }
            _ => Some(Self::confirming(previous, targets, version, labels, at)),
        }
    }

    /// The record without `label`, if it lists it: a target removed must not
    /// leave a claim that a later target under the same label would inherit.
    pub fn without(&self, label: &Label) -> Option<Self> {
        self.labels.contains(label).then(|| Self {
            version: self.version.clone(),
            confirmed_at: self.confirmed_at,
            labels: self
                .labels
                .iter()
                .filter(|l| *l != label)
                .cloned()
                .collect(),
        })
    }

    /// The one writer of the tag value.
    pub fn to_tag_value(&self) -> String {
        let mut value = format!("{} {}", self.version, self.confirmed_at);
        for label in &self.labels {
            value.push(' ');
            value.push_str(label.as_str());
        }
        value
    }

    /// The one parser: exactly what [`Self::to_tag_value`] writes, or `None`.
    pub fn parse(value: &str) -> Option<Self> {
        if value.len() > MAX_RECORD_LEN {
            return None;
        }
        let mut words = value.split(' ');
        let version = words.next()?;
        let time = words.next()?;
        if time.is_empty() || !time.bytes().all(|b| b.is_ascii_digit()) || time.len() > TIME_DIGITS
        {
            return None;
        }
        if time.len() > 1 && time.starts_with('0') {
            return None;
        }
        let mut labels = Vec::new();
        for word in words {
            let label = Label::parse(word).ok()?;
            if labels.last().is_some_and(|last| *last >= label) {
                return None;
            }
            labels.push(label);
        }
        Self::new(version, time.parse().ok()?, labels).ok()
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    /// Unix seconds of the last confirmation.
    pub fn confirmed_at(&self) -> i64 {
        self.confirmed_at
    }

    pub fn labels(&self) -> impl Iterator<Item = &Label> {
        self.labels.iter()
    }

    /// Whether the record says `label` holds `version`.
    pub fn holds(&self, version: &str, label: &Label) -> bool {
        self.version == version && self.labels.contains(label)
    }
}

/// Whether a secret's labels fit in a record whatever its version id (64
/// characters at most) and time: the one rule by which `keyrot deliver add`
/// refuses a label and the delivery function fails every target of a secret
/// (`invalid target spec: record too long`), so both always agree.
pub fn check_labels_fit<'a>(
    labels: impl IntoIterator<Item = &'a Label>,
) -> Result<(), InvalidTarget> {
    let unique: BTreeSet<&Label> = labels.into_iter().collect();
    let longest = MAX_VERSION_LEN
        + 1
        + TIME_DIGITS
        + unique
            .iter()
            .map(|label| 1 + label.as_str().len())
            .sum::<usize>();
    if longest > MAX_RECORD_LEN {
        return Err(record_too_long());
    }
    Ok(())
}

fn record_too_long() -> InvalidTarget {
    InvalidTarget::new(format!(
        "record too long: the secret's labels must fit in the tag {DELIVERED_TAG} with a version id ({MAX_RECORD_LEN} characters in all); use fewer or shorter labels"
    ))
}

/// A Secrets Manager version id as the record can hold it.
fn is_version_id(version: &str) -> bool {
    (1..=MAX_VERSION_LEN).contains(&version.len()) && version.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERSION: &str = "a1b2c3d4-5678-90ab-cdef-111122223333";

    fn labels(names: &[&str]) -> Vec<Label> {
        names
            .iter()
            .map(|name| Label::parse(name).unwrap())
            .collect()
    }

    #[test]
    fn the_writer_sorts_labels_and_separates_with_single_spaces() {
        let record =
            DeliveredRecord::new(VERSION, 1_790_000_000, labels(&["ssm", "ci", "org"])).unwrap();
        assert_eq!(
            record.to_tag_value(),
            format!("{VERSION} 1790000000 ci org ssm")
        );
        assert!(record.holds(VERSION, &Label::parse("ci").unwrap()));
        assert!(!record.holds("other", &Label::parse("ci").unwrap()));
        assert!(!record.holds(VERSION, &Label::parse("prod").unwrap()));
        assert_eq!(
            DeliveredRecord::new(VERSION, 5, vec![])
                .unwrap()
                .to_tag_value(),
            format!("{VERSION} 5")
        );
    }

    #[test]
    fn the_parser_reads_exactly_what_the_writer_writes() {
        let record = DeliveredRecord::new(VERSION, 1_790_000_000, labels(&["b", "a"])).unwrap();
        assert_eq!(
            DeliveredRecord::parse(&record.to_tag_value()),
            Some(record.clone())
        );
        assert_eq!(record.version(), VERSION);
        assert_eq!(record.confirmed_at(), 1_790_000_000);
        assert_eq!(
            record.labels().map(Label::as_str).collect::<Vec<_>>(),
            ["a", "b"]
        );
        for bad in [
            "",
            VERSION,
            &format!("{VERSION}  1790000000 a"),
            &format!("{VERSION} 1790000000  a"),
            &format!("{VERSION} 1790000000 a "),
            &format!(" {VERSION} 1790000000 a"),
            &format!("{VERSION} 1790000000 b a"),
            &format!("{VERSION} 1790000000 a a"),
            &format!("{VERSION} -5 a"),
            &format!("{VERSION} +5 a"),
            &format!("{VERSION} 05 a"),
            &format!("{VERSION} 99999999999 a"),
            &format!("{VERSION} 1790000000 bad/label"),
            &format!("{VERSION}\t1790000000 a"),
            &format!("{} 1 a", "v".repeat(MAX_VERSION_LEN + 1)),
        ] {
            assert_eq!(DeliveredRecord::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn confirming_keeps_the_labels_of_the_same_version_that_are_still_targets() {
        let targets = labels(&["ci", "ssm"]);
        let first = DeliveredRecord::new(VERSION, 100, labels(&["ci"])).unwrap();
        let more =
            DeliveredRecord::confirming(Some(&first), &targets, VERSION, labels(&["ssm"]), 200)
                .unwrap();
        assert_eq!(more.to_tag_value(), format!("{VERSION} 200 ci ssm"));
        let next = DeliveredRecord::confirming(
            Some(&more),
            &targets,
            "next-version",
            labels(&["ssm"]),
            300,
        )
        .unwrap();
        assert_eq!(next.to_tag_value(), "next-version 300 ssm");
        let fresh =
            DeliveredRecord::confirming(None, &targets, VERSION, labels(&["ci", "ci"]), 1).unwrap();
        assert_eq!(fresh.to_tag_value(), format!("{VERSION} 1 ci"));
        let removed = DeliveredRecord::confirming(
            Some(&more),
            &labels(&["ssm", "new"]),
            VERSION,
            labels(&["new"]),
            400,
        )
        .unwrap();
        assert_eq!(removed.to_tag_value(), format!("{VERSION} 400 new ssm"));
    }

    #[test]
    fn a_write_of_a_version_no_longer_current_takes_its_targets_out_of_any_other_record() {
        let targets = labels(&["ci", "ssm"]);
        // The restored version's record said both hold it; the run that
        // raced the rollback wrote the rolled-back version to ci.
        let restored = DeliveredRecord::new("restored", 100, labels(&["ci", "ssm"])).unwrap();
        let after = DeliveredRecord::overwritten(
            Some(&restored),
            &targets,
            "rolled-back",
            labels(&["ci"]),
            200,
        )
        .unwrap()
        .unwrap();
        assert_eq!(after.to_tag_value(), "restored 100 ssm");
        // Nothing in common: nothing to record.
        let other = DeliveredRecord::new("restored", 100, labels(&["ssm"])).unwrap();
        assert!(
            DeliveredRecord::overwritten(Some(&other), &targets, "v", labels(&["ci"]), 200)
                .is_none()
        );
        // A record of the written version gains the target, as a confirmation.
        let same = DeliveredRecord::new("v", 100, labels(&["ssm"])).unwrap();
        let gained = DeliveredRecord::overwritten(Some(&same), &targets, "v", labels(&["ci"]), 200)
            .unwrap()
            .unwrap();
        assert_eq!(gained.to_tag_value(), "v 200 ci ssm");
        let none = DeliveredRecord::overwritten(None, &targets, "v", labels(&["ci"]), 200)
            .unwrap()
            .unwrap();
        assert!(!none.holds("restored", &Label::parse("ci").unwrap()));
    }

    #[test]
    fn labels_must_fit_with_the_longest_version_id() {
        // 255 - 64 (version) - 1 - 10 (time) = 180 for " label" entries.
        let fitting: Vec<Label> = (0..18)
            .map(|i| Label::parse(&format!("target-{i:02}")).unwrap())
            .collect();
        assert_eq!(
            fitting.iter().map(|l| 1 + l.as_str().len()).sum::<usize>(),
            180
        );
        check_labels_fit(&fitting).unwrap();
        let longest_version = "v".repeat(MAX_VERSION_LEN);
        let record = DeliveredRecord::new(&longest_version, MAX_TIME, fitting.clone()).unwrap();
        assert_eq!(record.to_tag_value().len(), MAX_RECORD_LEN);
        assert_eq!(DeliveredRecord::parse(&record.to_tag_value()), Some(record));

        let mut too_many = fitting;
        too_many.push(Label::parse("x").unwrap());
        let error = check_labels_fit(&too_many).unwrap_err().to_string();
        assert!(
            error.starts_with("invalid target spec: record too long"),
            "{error}"
        );
        let error = DeliveredRecord::new(&longest_version, MAX_TIME, too_many)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("invalid target spec: record too long"),
            "{error}"
        );
    }

    #[test]
    fn versions_and_times_the_record_cannot_hold_are_refused() {
        assert!(DeliveredRecord::new("", 1, vec![]).is_err());
        assert!(DeliveredRecord::new("a b", 1, vec![]).is_err());
        assert!(DeliveredRecord::new(VERSION, -1, vec![]).is_err());
        assert!(DeliveredRecord::new(VERSION, MAX_TIME + 1, vec![]).is_err());
    }
}
