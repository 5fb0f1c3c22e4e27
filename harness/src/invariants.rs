//! What the tests compare and assert: a snapshot of a user's keys and tags and a
//! secret's versions, and the invariants every rotation must keep.

use std::collections::BTreeMap;

use aws_sdk_iam::types::StatusType;
use serde_json::Value;

use crate::world::{Fixture, World};

/// The state a test compares before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Access key id to "Active"/"Inactive".
    pub keys: BTreeMap<String, String>,
    /// User tags.
    pub tags: BTreeMap<String, String>,
    /// Version id to its sorted staging labels.
    pub versions: BTreeMap<String, Vec<String>>,
    pub rotation_enabled: bool,
}

impl World {
    pub async fn snapshot(&self, fixture: &Fixture) -> Snapshot {
        let keys = access_keys(self.iam(), &fixture.user).await;
        let tags = self
            .iam()
            .list_user_tags()
            .user_name(&fixture.user)
            .send()
            .await
            .unwrap()
            .tags()
            .iter()
            .map(|tag| (tag.key().to_string(), tag.value().to_string()))
            .collect();
        let described = self
            .secrets()
            .describe_secret()
            .secret_id(&fixture.secret_arn)
            .send()
            .await
            .unwrap();
        let versions = described
            .version_ids_to_stages()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|(id, mut stages)| {
                stages.sort();
                (id, stages)
            })
            .collect();
        Snapshot {
            keys,
            tags,
            versions,
            rotation_enabled: described.rotation_enabled().unwrap_or(false),
        }
    }

    /// The value stored under `stage`, if any.
    pub async fn value(&self, fixture: &Fixture, stage: &str) -> Option<Value> {
        let output = self
            .secrets()
            .get_secret_value()
            .secret_id(&fixture.secret_arn)
            .version_stage(stage)
            .send()
            .await
            .ok()?;
        Some(serde_json::from_str(output.secret_string()?).unwrap())
    }

    /// Invariant 1 (docs/design.md): the key `AWSCURRENT` holds exists and is Active.
    pub async fn assert_current_key_works(&self, fixture: &Fixture, context: &str) {
        let key = self
            .current_key(fixture)
            .await
            .expect("AWSCURRENT holds a key");
        let snapshot = self.snapshot(fixture).await;
        assert_eq!(
            snapshot.keys.get(&key).map(String::as_str),
            Some("Active"),
            "{context}: the AWSCURRENT key {key} does not work: {snapshot:?}"
        );
    }

    pub async fn current_key(&self, fixture: &Fixture) -> Option<String> {
        self.value(fixture, "AWSCURRENT").await?["AccessKeyId"]
            .as_str()
            .map(str::to_string)
    }

    pub async fn set_key_status(&self, user: &str, key: &str, status: StatusType) {
        self.iam()
            .update_access_key()
            .user_name(user)
            .access_key_id(key)
            .status(status)
            .send()
            .await
            .unwrap();
    }

    /// Invariants 2 and 3 (docs/design.md), after a completed rotation: at most two
    /// keys, every key is AWSCURRENT's, AWSPREVIOUS's or unmanaged, no AWSPENDING
    /// is left, and the stored secret key is the one IAM returned.
    pub async fn assert_rotation_complete(&self, fixture: &Fixture, unmanaged: &[&str]) {
        let ledger = self.ledger.clone();
        self.assert_rotation_complete_issued(fixture, unmanaged, &move |key| ledger.secret_of(key))
            .await
    }

    /// As [`Self::assert_rotation_complete`], with the issued secrets looked up
    /// by `issued` (keys made by the function binary are seen by a fault proxy).
    pub async fn assert_rotation_complete_issued(
        &self,
        fixture: &Fixture,
        unmanaged: &[&str],
        issued: &(dyn Fn(&str) -> Option<String> + Sync),
    ) {
        let snapshot = self.snapshot(fixture).await;
        assert!(snapshot.keys.len() <= 2, "more than two keys: {snapshot:?}");
        let current = self.value(fixture, "AWSCURRENT").await.unwrap();
        let current_key = current["AccessKeyId"].as_str().unwrap();
        assert_eq!(
            snapshot.keys.get(current_key).map(String::as_str),
            Some("Active"),
            "{snapshot:?}"
        );
        let issued =
            issued(current_key).expect("every key in these tests is created where it is recorded");
        assert_eq!(
            current["SecretAccessKey"].as_str(),
            Some(issued.as_str()),
            "invariant 3"
        );
        let previous_key = self
            .value(fixture, "AWSPREVIOUS")
            .await
            .and_then(|v| v["AccessKeyId"].as_str().map(str::to_string));
        for key in snapshot.keys.keys() {
            assert!(
                key == current_key
                    || Some(key) == previous_key.as_ref()
                    || unmanaged.contains(&key.as_str()),
                "key {key} is neither AWSCURRENT, AWSPREVIOUS nor unmanaged: {snapshot:?}"
            );
        }
        let pending: Vec<_> = snapshot
            .versions
            .values()
            .filter(|stages| stages.iter().any(|s| s == "AWSPENDING"))
            .collect();
        assert!(pending.is_empty(), "AWSPENDING left behind: {snapshot:?}");
        assert!(
            snapshot
                .tags
                .get("iam-key-rotation:creating")
                .is_none_or(String::is_empty),
            "creation marker left set: {snapshot:?}"
        );
    }
}
/// The user's access keys, id to "Active"/"Inactive", as `iam` sees them.
pub async fn access_keys(iam: &aws_sdk_iam::Client, user: &str) -> BTreeMap<String, String> {
    iam.list_access_keys()
        .user_name(user)
        .send()
        .await
        .unwrap()
        .access_key_metadata()
        .iter()
        .map(|key| {
            (
                key.access_key_id().unwrap().to_string(),
                key.status().unwrap().as_str().to_string(),
            )
        })
        .collect()
}
