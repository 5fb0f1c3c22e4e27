//! The creation marker: the reserved user tag `iam-key-rotation:creating` that
//! createSecret writes just before `CreateAccessKey` (SPEC 11, T4), so that a
//! crash right after the call leaves a key the retry recognises as its own
//! orphan, and no other. Written by createSecret (and emptied by
//! finishSecret); parsed here, for createSecret's room plan.

use std::time::Duration;

use aws_sdk_iam::primitives::DateTime;

use crate::model::description::{description_version, is_access_key_id};
use crate::model::user::{AccessKey, IamUser};

/// The user tag that marks a key creation in flight.
pub const CREATING_TAG: &str = "iam-key-rotation:creating";
/// How long after its marker a key may have been created and still be the
/// marker's orphan: one invocation at most (Lambda stops any at 15 minutes), so a
/// key created by hand later is never taken for it.
pub const ORPHAN_WINDOW: Duration = Duration::from_secs(15 * 60);
/// How much earlier than its marker an orphan may look created: IAM's clock and
/// the function's may differ by this much.
const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// A marker left by a `createSecret` that was about to create a key: the
/// version; when it was written and the latest moment its `CreateAccessKey`
/// could still take effect (the invocation's deadline), in seconds since the
/// epoch; the key that call made, once known; and the keys that existed before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreationMarker {
    pub token: String,
    pub at: i64,
    pub until: i64,
    pub created: Option<String>,
    pub keys_before: Vec<String>,
}

impl CreationMarker {
    /// A marker written now, for an invocation that ends at `until` (`None`:
    /// Lambda's longest, 15 minutes).
    pub fn new(token: &str, at: i64, until: Option<i64>, keys_before: Vec<String>) -> Self {
        let longest = at + ORPHAN_WINDOW.as_secs() as i64;
        Self {
            token: token.to_string(),
            at,
            until: until.map_or(longest, |until| until.min(longest)),
            created: None,
            keys_before,
        }
    }

    /// The same marker, naming the key its `CreateAccessKey` made.
    pub fn naming(&self, key_id: &str) -> Self {
        Self {
            created: Some(key_id.to_string()),
            ..self.clone()
        }
    }

    pub fn to_tag_value(&self) -> String {
        let (at, until) = (self.at.to_string(), self.until.to_string());
        [
            self.token.as_str(),
            at.as_str(),
            until.as_str(),
            self.created.as_deref().unwrap_or("-"),
        ]
        .into_iter()
        .chain(self.keys_before.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
    }

    /// A marker of an earlier version of the function (no times) proves nothing.
    fn parse(value: &str) -> Option<Self> {
        let mut parts = value.split_whitespace();
        let token = parts.next()?.to_string();
        let at = parts.next()?.parse().ok()?;
        let until = parts.next()?.parse().ok()?;
        let created = match parts.next()? {
            "-" => None,
            id if is_access_key_id(id) => Some(id.to_string()),
            _ => return None,
        };
        Some(Self {
            token,
            at,
            until,
            created,
            keys_before: parts.map(str::to_string).collect(),
        })
    }

    /// Whether `key` is the key this marker's `CreateAccessKey` made. Once the
    /// marker names it, that key only. Before (a crash right after the call),
    /// a key absent when the marker was written, created between the marker and
    /// the invocation's deadline, and described by no one but this version.
    pub fn orphan(&self, user: &IamUser, key: &AccessKey, secret_arn: &str) -> bool {
        if let Some(created) = &self.created {
            return *created == key.id;
        }
        let Some(created) = key.created.map(|c: DateTime| c.secs()) else {
            return false;
        };
        let in_window = created >= self.at - CLOCK_SKEW.as_secs() as i64 && created <= self.until;
        let described_by_this_version = match user.tags.get(&key.id) {
            None => true,
            Some(description) => description_version(description, secret_arn)
                .is_some_and(|version| version.is_none_or(|v| v == self.token)),
        };
        !self.keys_before.contains(&key.id) && in_window && described_by_this_version
    }
}

impl IamUser {
    pub fn creation_marker(&self) -> Option<CreationMarker> {
        self.tags
            .get(CREATING_TAG)
            .and_then(|value| CreationMarker::parse(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "tok-2";
    const NOW: i64 = 1_800_000_000;

    #[test]
    fn markers_round_trip_through_their_tag_value() {
        let marker = CreationMarker::new(TOKEN, NOW, Some(NOW + 120), vec!["AKIA1".into()]);
        assert_eq!(marker.until, NOW + 120);
        assert_eq!(
            CreationMarker::parse(&marker.to_tag_value()),
            Some(marker.clone())
        );
        let named = marker.naming("AKIAORPHAN0000000001");
        assert_eq!(CreationMarker::parse(&named.to_tag_value()), Some(named));
        assert_eq!(CreationMarker::parse(""), None);
        // Never longer than Lambda's longest invocation.
        assert_eq!(
            CreationMarker::new(TOKEN, NOW, Some(NOW + 86_400), vec![]).until,
            NOW + 900
        );
    }
}
