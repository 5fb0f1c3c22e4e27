//! createSecret's decision: which keys to delete to make room for a new one.
//! IAM allows two keys per user, and only keys this secret manages (SPEC 11,
//! T2), never `AWSCURRENT`'s, and this version's proven orphan (T4) may ever be
//! deleted. Pure, so every rule has a unit test; the step acts on the plan.

use crate::model::user::{AccessKey, IamUser, MAX_KEYS_PER_USER};

/// What `createSecret` must do to make room for a new key: IAM allows two keys
/// per user, and only keys this secret manages may ever be deleted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RoomPlan {
    /// The `AWSPREVIOUS` key, when the secret manages it, and the orphan of an
    /// interrupted creation for this version: safe to delete.
    pub delete: Vec<String>,
    /// Keys that stay: the `AWSCURRENT` key and keys this secret does not manage.
    pub keep: Vec<String>,
    /// Keys that stay and this secret does not manage.
    pub unmanaged: Vec<String>,
    /// The keys to delete that carry a description: ask IAM first whether a
    /// consumer still uses them (a warning, never a refusal).
    pub ask_before_deleting: Vec<String>,
    /// The key an earlier invocation of this version's createSecret made, if
    /// the creation marker names one here (among `delete`).
    pub orphan: Option<String>,
    /// The descriptions of this secret's keys that no longer stay, including
    /// those of keys a crashed attempt deleted before it could untag them.
    pub untag: Vec<String>,
}

/// What the room plan is made from, besides the user and its keys.
#[derive(Debug, Clone, Copy)]
pub struct RoomFor<'a> {
    pub secret_arn: &'a str,
    pub token: &'a str,
    /// The key `AWSCURRENT` holds: never deleted.
    pub current_key: Option<&'a str>,
    /// The key `AWSPREVIOUS` holds for the same user, and that version's id.
    pub previous_key: Option<(&'a str, &'a str)>,
}

impl RoomPlan {
    pub fn new(user: &IamUser, keys: &[AccessKey], room: RoomFor<'_>) -> Self {
        let marker = user
            .creation_marker()
            .filter(|marker| marker.token == room.token);
        let held: Vec<(&str, &str)> = room.previous_key.into_iter().collect();
        let mut plan = Self::default();
        for key in keys {
            let id = key.id.clone();
            if room.current_key == Some(key.id.as_str()) {
                plan.keep.push(id);
            } else if marker
                .as_ref()
                .is_some_and(|marker| marker.orphan(user, key, room.secret_arn))
            {
                plan.orphan = Some(id.clone());
                plan.delete.push(id);
            } else if user.is_managed(&key.id, room.secret_arn, &held) {
                plan.delete.push(id);
            } else {
                plan.keep.push(id.clone());
                plan.unmanaged.push(id);
            }
        }
        plan.ask_before_deleting = plan
            .delete
            .iter()
            .filter(|id| user.has_description(id))
            .cloned()
            .collect();
        plan.untag = user
            .described_key_ids(room.secret_arn)
            .into_iter()
            .filter(|id| !plan.keep.contains(id))
            .collect();
        plan
    }

    /// Whether a new key fits once the deletions are done.
    pub fn leaves_room(&self) -> bool {
        self.keep.len() < MAX_KEYS_PER_USER
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::user::tagged_user as user;
    use aws_sdk_iam::primitives::DateTime;

    use crate::model::creation_marker::{CREATING_TAG, CreationMarker};
    use crate::model::description::key_description;

    const ARN: &str = "arn:aws:secretsmanager:us-east-1:111122223333:secret:app-AbCdEf";
    const TOKEN: &str = "tok-2";
    const NOW: i64 = 1_800_000_000;

    fn keys_made_at(ids: &[&str], at: i64) -> Vec<AccessKey> {
        ids.iter()
            .map(|id| AccessKey {
                id: id.to_string(),
                active: true,
                created: Some(DateTime::from_secs(at)),
            })
            .collect()
    }

    fn keys(ids: &[&str]) -> Vec<AccessKey> {
        keys_made_at(ids, NOW - 86_400)
    }

    fn room<'a>(current: Option<&'a str>, previous: Option<(&'a str, &'a str)>) -> RoomFor<'a> {
        RoomFor {
            secret_arn: ARN,
            token: TOKEN,
            current_key: current,
            previous_key: previous,
        }
    }

    fn marker(at: i64, before: &[&str]) -> String {
        CreationMarker::new(
            TOKEN,
            at,
            None,
            before.iter().map(|k| k.to_string()).collect(),
        )
        .to_tag_value()
    }

    #[test]
    fn room_is_made_from_the_managed_previous_key_only() {
        let description = key_description(ARN, "tok-1").unwrap();
        let owner = user(&[
            ("AKIAPREVIOUS00000001", &description),
            ("AKIAHUMAN00000000001", "laptop key"),
        ]);
        let plan = RoomPlan::new(
            &owner,
            &keys(&["AKIACURRENT000000001", "AKIAPREVIOUS00000001"]),
            room(
                Some("AKIACURRENT000000001"),
                Some(("AKIAPREVIOUS00000001", "tok-1")),
            ),
        );
        assert_eq!(plan.delete, vec!["AKIAPREVIOUS00000001"]);
        assert!(plan.leaves_room());
        assert_eq!(plan.ask_before_deleting, vec!["AKIAPREVIOUS00000001"]);
        assert_eq!(plan.untag, vec!["AKIAPREVIOUS00000001"]);

        let plan = RoomPlan::new(
            &owner,
            &keys(&["AKIACURRENT000000001", "AKIAHUMAN00000000001"]),
            room(
                Some("AKIACURRENT000000001"),
                Some(("AKIAPREVIOUS00000001", "tok-1")),
            ),
        );
        assert!(plan.delete.is_empty());
        assert_eq!(plan.unmanaged, vec!["AKIAHUMAN00000000001"]);
        assert!(!plan.leaves_room());
    }

    #[test]
    fn a_forged_description_on_a_persons_key_gets_it_nothing() {
        let forged = key_description(ARN, "tok-1").unwrap();
        let owner = user(&[("AKIAHUMAN00000000001", &forged)]);
        let plan = RoomPlan::new(
            &owner,
            &keys(&["AKIACURRENT000000001", "AKIAHUMAN00000000001"]),
            room(Some("AKIACURRENT000000001"), None),
        );
        assert!(plan.delete.is_empty());
        assert_eq!(plan.unmanaged, vec!["AKIAHUMAN00000000001"]);
    }

    #[test]
    fn a_previous_version_naming_a_key_this_function_never_recorded_gets_it_nothing() {
        let owner = user(&[("AKIAHUMAN00000000001", "laptop key")]);
        let plan = RoomPlan::new(
            &owner,
            &keys(&["AKIACURRENT000000001", "AKIAHUMAN00000000001"]),
            room(
                Some("AKIACURRENT000000001"),
                Some(("AKIAHUMAN00000000001", "tok-1")),
            ),
        );
        assert!(plan.delete.is_empty());
    }

    #[test]
    fn the_current_key_is_kept_even_when_described() {
        let description = key_description(ARN, "tok-1").unwrap();
        let owner = user(&[("AKIACURRENT000000001", &description)]);
        let plan = RoomPlan::new(
            &owner,
            &keys(&["AKIACURRENT000000001"]),
            room(
                Some("AKIACURRENT000000001"),
                Some(("AKIACURRENT000000001", "tok-1")),
            ),
        );
        assert!(plan.delete.is_empty());
        assert_eq!(plan.keep, vec!["AKIACURRENT000000001"]);
    }

    #[test]
    fn a_key_made_just_after_this_versions_marker_is_its_orphan() {
        let owner = user(&[(CREATING_TAG, &marker(NOW, &["AKIACURRENT000000001"]))]);
        let plan = RoomPlan::new(
            &owner,
            &keys_made_at(&["AKIACURRENT000000001", "AKIAORPHAN0000000001"], NOW + 2),
            room(Some("AKIACURRENT000000001"), None),
        );
        assert_eq!(plan.delete, vec!["AKIAORPHAN0000000001"]);

        // Described by this version (the crash came after the description).
        let description = key_description(ARN, TOKEN).unwrap();
        let owner = user(&[
            (CREATING_TAG, &marker(NOW, &["AKIACURRENT000000001"])),
            ("AKIAORPHAN0000000001", &description),
        ]);
        let plan = RoomPlan::new(
            &owner,
            &keys_made_at(&["AKIACURRENT000000001", "AKIAORPHAN0000000001"], NOW + 2),
            room(Some("AKIACURRENT000000001"), None),
        );
        assert_eq!(plan.delete, vec!["AKIAORPHAN0000000001"]);
    }

    #[test]
    fn a_marker_proves_nothing_for_another_version_a_later_key_or_a_described_key() {
        let owner = user(&[(CREATING_TAG, &marker(NOW, &["AKIACURRENT000000001"]))]);
        let made = keys_made_at(&["AKIACURRENT000000001", "AKIAHAND000000000001"], NOW + 2);
        let other_version = RoomFor {
            token: "tok-3",
            ..room(Some("AKIACURRENT000000001"), None)
        };
        assert_eq!(
            RoomPlan::new(&owner, &made, other_version).unmanaged,
            vec!["AKIAHAND000000000001"]
        );
        // Made by hand after the window.
        let late = keys_made_at(
            &["AKIACURRENT000000001", "AKIAHAND000000000001"],
            NOW + 16 * 60,
        );
        assert_eq!(
            RoomPlan::new(&owner, &late, room(Some("AKIACURRENT000000001"), None)).unmanaged,
            vec!["AKIAHAND000000000001"]
        );
        // Made before the marker.
        let early = keys_made_at(
            &["AKIACURRENT000000001", "AKIAHAND000000000001"],
            NOW - 3600,
        );
        assert!(
            RoomPlan::new(&owner, &early, room(Some("AKIACURRENT000000001"), None))
                .delete
                .is_empty()
        );
        // Described by someone else (the console's description of a person's key).
        let owner = user(&[
            (CREATING_TAG, &marker(NOW, &["AKIACURRENT000000001"])),
            ("AKIAHAND000000000001", "ci key"),
        ]);
        assert!(
            RoomPlan::new(&owner, &made, room(Some("AKIACURRENT000000001"), None))
                .delete
                .is_empty()
        );
        // A marker of an earlier version of the function carries no time.
        let owner = user(&[(CREATING_TAG, "tok-2 AKIACURRENT000000001")]);
        assert!(owner.creation_marker().is_none());
    }
}
