//! The deactivation record: the reserved user tag
//! `iam-key-rotation:deactivated` = `<access key id> <unix seconds>`, the last
//! key this function made Inactive (finishSecret in `deactivate` mode, the
//! sweep) and when. Read by `keyrot rollback`, which reactivates a key only
//! when this record shows the rotation retired it: an Inactive key without one
//! was deactivated by someone else, an incident responder containing a leak
//! perhaps, and is reactivated only with `--force`.
//!
//! Who can write it: the key is reserved (`iam-key-rotation:*`, SCP), so a
//! principal who may tag users cannot make a responder's deactivation pass for
//! the rotation's. One writer ([`Deactivation::to_tag_value`]) and one parser.

use super::description::is_access_key_id;
use super::user::IamUser;

/// The reserved user tag that records the function's last deactivation.
pub const DEACTIVATED_TAG: &str = "iam-key-rotation:deactivated";

/// A key this function made Inactive, and when (unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deactivation {
    pub key_id: String,
    pub at: i64,
}

impl Deactivation {
    pub fn new(key_id: &str, at: i64) -> Self {
        Self {
            key_id: key_id.to_string(),
            at,
        }
    }

    /// The one writer.
    pub fn to_tag_value(&self) -> String {
        format!("{} {}", self.key_id, self.at)
    }

    /// The one parser: exactly what the writer writes, or `None`.
    fn parse(value: &str) -> Option<Self> {
        let (key_id, at) = value.split_once(' ')?;
        if !is_access_key_id(key_id)
            || at.is_empty()
            || !at.bytes().all(|b| b.is_ascii_digit())
            || (at.len() > 1 && at.starts_with('0'))
        {
            return None;
        }
        Some(Self::new(key_id, at.parse().ok()?))
    }
}

impl IamUser {
    /// The function's last deactivation, if the record is well formed.
    pub fn deactivation(&self) -> Option<Deactivation> {
        Deactivation::parse(self.tags.get(DEACTIVATED_TAG)?)
    }

    /// When this function made `key_id` Inactive, if its record says so.
    pub fn deactivated_by_rotation_at(&self, key_id: &str) -> Option<i64> {
        self.deactivation()
            .filter(|record| record.key_id == key_id)
            .map(|record| record.at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::user::tagged_user as user;

    const KEY: &str = "AKIAIOSFODNN7EXAMPLE";

    #[test]
    fn the_parser_reads_exactly_what_the_writer_writes() {
        let record = Deactivation::new(KEY, 1_800_000_000);
        assert_eq!(record.to_tag_value(), format!("{KEY} 1800000000"));
        assert_eq!(Deactivation::parse(&record.to_tag_value()), Some(record));
        for bad in [
            "",
            KEY,
            &format!("{KEY}  1800000000"),
            &format!("{KEY} 01800000000"),
            &format!("{KEY} -5"),
            &format!("{KEY} 18e8"),
            "not-a-key 1800000000",
            &format!("{KEY} 1800000000 extra"),
        ] {
            assert_eq!(Deactivation::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn only_the_named_key_was_deactivated_by_the_rotation() {
        let tagged = user(&[(DEACTIVATED_TAG, &format!("{KEY} 1800000000"))]);
        assert_eq!(tagged.deactivated_by_rotation_at(KEY), Some(1_800_000_000));
        assert_eq!(
            tagged.deactivated_by_rotation_at("AKIAOTHEROTHEROTHER1"),
            None
        );
        assert_eq!(user(&[]).deactivated_by_rotation_at(KEY), None);
    }
}
