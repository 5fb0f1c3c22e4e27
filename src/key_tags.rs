//! The bookkeeping that tells which access keys a secret manages, and the rules of
//! trust behind it (SPEC 11). Pure: no AWS calls, so every rule has unit tests.
//!
//! Records and who can write them:
//! - `iam-key-rotation:secret` (the binding) and every other `iam-key-rotation:*`
//!   tag key are reserved: only administrators and the function's role may write
//!   them (the README's SCP / permissions boundary), and the role never the binding.
//!   They may be trusted.
//! - The key's description tag (key = the access key id, as the IAM console writes
//!   it) is a plain tag: anyone with `iam:TagUser` can forge it. The function
//!   writes it only for a key it created or adopted after proof of possession, so
//!   it says "this function recorded the key as the secret's", but never alone.
//! - The secret's versions: anyone with `PutSecretValue` on the secret can put any
//!   key id in them, but not the description.
//!
//! So a key is managed by a secret only when both agree: one of the secret's own
//! versions holds the key for this user, and the description names the secret.
//! Forging that needs both permissions on this user and this secret. The one
//! other way is the orphan of an interrupted `createSecret`, proven by the
//! reserved creation marker and bounded in time.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_iam::primitives::DateTime;

use crate::error::RotationError;
use crate::iam_names::{BINDING_TAG, CREATING_TAG, CURRENT_SINCE_TAG, DESCRIPTION_PREFIX};

/// How far a `keyrot rollback` got, as its record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollbackStage {
    /// Written just before `AWSCURRENT` moved back.
    Started,
    /// The event was put too.
    Done,
}

pub const ROLLBACK_STARTED: &str = "rollback";
pub const ROLLBACK_DONE: &str = "rolled-back";

/// What a user's binding tag holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding<'a> {
    None,
    /// A secret's ARN.
    To(&'a str),
    /// Anything else: a name, as earlier versions accepted.
    ByName(&'a str),
}

/// What earlier versions of the function wrote as the version of an adopted
/// key's description.
const LEGACY_ADOPTED: &str = "adopted";

/// IAM's limit on a tag value.
const MAX_TAG_VALUE_LEN: usize = 256;
/// IAM's limit on access keys per user.
pub const MAX_KEYS_PER_USER: usize = 2;
/// How long after its marker a key may have been created and still be the
/// marker's orphan: one invocation at most (Lambda stops any at 15 minutes), so a
/// key created by hand later is never taken for it.
pub const ORPHAN_WINDOW: Duration = Duration::from_secs(15 * 60);
/// How much earlier than its marker an orphan may look created: IAM's clock and
/// the function's may differ by this much.
const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// An IAM user as `GetUser` returns it, tags included.
#[derive(Debug, Clone)]
pub struct IamUser {
    pub name: String,
    pub tags: HashMap<String, String>,
}

/// One access key of the user, as `ListAccessKeys` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKey {
    pub id: String,
    pub active: bool,
    pub created: Option<DateTime>,
}

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
    fn orphan(&self, user: &IamUser, key: &AccessKey, secret_arn: &str) -> bool {
        if let Some(created) = &self.created {
            return *created == key.id;
        }
        let Some(created) = key.created.map(|c| c.secs()) else {
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

/// Whether a tag key is an access key id (`AKIA` and 16 more), the only tag
/// keys that can be key descriptions. Any other tag, whatever its value says,
/// is none of this function's business (and the template lets it write none).
pub fn is_access_key_id(key: &str) -> bool {
    key.len() == 20
        && key.starts_with("AKIA")
        && key
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

impl IamUser {
    /// The user must carry the binding tag with the secret's full ARN. A name
    /// is not an identity: it is freed when its secret is deleted and is the same
    /// in every region and account, while the ARN's random suffix is never reused.
    pub fn check_binding(&self, secret_arn: &str) -> Result<(), RotationError> {
        let retag = format!(
            "aws iam tag-user --user-name {} --tags Key={BINDING_TAG},Value={secret_arn}",
            self.name
        );
        let (detail, fix) = match self.binding() {
            Binding::To(arn) if arn == secret_arn => return Ok(()),
            Binding::ByName(name) => (
                format!(
                    "its tag {BINDING_TAG} holds a name ({name}), not the secret's ARN; a name is not proof (a deleted secret's name can be taken by a new secret, and the same name exists in every region)"
                ),
                format!(
                    "an administrator who has checked that this secret is the one the tag meant (who created it, and when: CloudTrail CreateSecret) re-tags the user with its ARN: `{retag}`"
                ),
            ),
            Binding::To(other) => (
                format!("its tag {BINDING_TAG} names another secret ({other})"),
                format!(
                    "nothing, if that secret rotates the user; to move the user to this one, an administrator first checks who created this secret (CloudTrail CreateSecret), then re-tags: `{retag}`"
                ),
            ),
            Binding::None => (
                format!("it has no tag {BINDING_TAG}"),
                format!("an administrator binds it: `{retag}`"),
            ),
        };
        Err(RotationError::UserNotBound {
            secret: secret_arn.to_string(),
            user: self.name.clone(),
            detail,
            fix,
        })
    }

    /// What the user's binding tag holds.
    pub fn binding(&self) -> Binding<'_> {
        match self.tags.get(BINDING_TAG) {
            None => Binding::None,
            Some(value) if value.starts_with("arn:") => Binding::To(value),
            Some(value) => Binding::ByName(value),
        }
    }

    /// Whether the key's description says this function recorded it as this
    /// secret's. Anyone who may tag the user can write this: never proof alone.
    pub fn describes(&self, key_id: &str, secret_arn: &str) -> bool {
        is_access_key_id(key_id)
            && self
                .tags
                .get(key_id)
                .is_some_and(|description| description_names(description, secret_arn))
    }

    /// Whether the key's description names this secret and `version`, the
    /// version that holds it: the function writes the version it stores a key
    /// in. A description of another version of the same secret is a key that
    /// someone who may write the value moved there (SPEC 11, T3). The short form
    /// without a version (a very long ARN) and the `adopted` of earlier versions
    /// of the function name no version, and are taken for any.
    pub fn describes_in(&self, key_id: &str, secret_arn: &str, version: &str) -> bool {
        is_access_key_id(key_id)
            && self
                .tags
                .get(key_id)
                .and_then(|description| description_version(description, secret_arn))
                .is_some_and(|described| {
                    described
                        .is_none_or(|described| described == version || described == LEGACY_ADOPTED)
                })
    }

    /// Whether `secret_arn` manages the key (SPEC 11, T2): a version of the
    /// secret holds it for this user (`held`: (key id, version id) of the
    /// secret's `AWSCURRENT`, `AWSPREVIOUS` and pending values that name this
    /// user) and its description names the secret and that version.
    pub fn is_managed(&self, key_id: &str, secret_arn: &str, held: &[(&str, &str)]) -> bool {
        held.iter()
            .any(|(key, version)| *key == key_id && self.describes_in(key_id, secret_arn, version))
    }

    /// The key ids whose description tag names this secret (keys may be gone).
    pub fn described_key_ids(&self, secret_arn: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .tags
            .iter()
            .filter(|(key_id, description)| {
                is_access_key_id(key_id) && description_names(description, secret_arn)
            })
            .map(|(key_id, _)| key_id.clone())
            .collect();
        ids.sort_unstable();
        ids
    }

    pub fn has_description(&self, key_id: &str) -> bool {
        self.tags.contains_key(key_id)
    }

    /// The version `AWSCURRENT` was last recorded moving to, and when.
    pub fn current_since(&self) -> Option<(&str, i64)> {
        let mut parts = self.tags.get(CURRENT_SINCE_TAG)?.split_whitespace();
        let version = parts.next()?;
        Some((version, parts.next()?.parse().ok()?))
    }

    /// The version `keyrot rollback` moved (or was about to move) `AWSCURRENT`
    /// back to, and whether it finished (its event put).
    pub fn rollback_record(&self) -> Option<(&str, RollbackStage)> {
        let value = self.tags.get(CURRENT_SINCE_TAG)?;
        let version = value.split_whitespace().next()?;
        match value.split_whitespace().nth(2)? {
            ROLLBACK_STARTED => Some((version, RollbackStage::Started)),
            ROLLBACK_DONE => Some((version, RollbackStage::Done)),
            _ => None,
        }
    }

    pub fn creation_marker(&self) -> Option<CreationMarker> {
        self.tags
            .get(CREATING_TAG)
            .and_then(|value| CreationMarker::parse(value))
    }
}

/// The description tag value for a key this secret manages. The version id is left
/// out when the ARN is too long for both to fit in a tag.
pub fn key_description(secret_arn: &str, token: &str) -> Result<String, RotationError> {
    let full = format!("{DESCRIPTION_PREFIX} {secret_arn} {token}");
    let short = format!("{DESCRIPTION_PREFIX} {secret_arn}");
    [full, short]
        .into_iter()
        .find(|value| value.len() <= MAX_TAG_VALUE_LEN)
        .ok_or_else(|| {
            RotationError::invalid_value(
                secret_arn,
                token,
                format!(
                    "the secret's ARN is too long to record in an IAM key description ({MAX_TAG_VALUE_LEN} characters); use a shorter secret name"
                ),
            )
        })
}

/// The ARN of the secret a key description names, if it is one of ours. Only a
/// hint of where to look: see [`IamUser::is_managed`].
pub fn described_secret(description: &str) -> Option<&str> {
    description
        .strip_prefix(DESCRIPTION_PREFIX)?
        .strip_prefix(' ')?
        .split(' ')
        .next()
        .filter(|arn| !arn.is_empty())
}

fn description_names(description: &str, secret_arn: &str) -> bool {
    description_version(description, secret_arn).is_some()
}

/// The version a description of this secret's names: `Some(None)` for the short
/// form without one, `None` when it does not describe a key of this secret.
fn description_version<'d>(description: &'d str, secret_arn: &str) -> Option<Option<&'d str>> {
    let rest = description
        .strip_prefix(DESCRIPTION_PREFIX)?
        .strip_prefix(' ')?
        .strip_prefix(secret_arn)?;
    if rest.is_empty() {
        return Some(None);
    }
    Some(Some(rest.strip_prefix(' ')?))
}

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
            } else if user.is_managed(&key.id, room.secret_arn, &held)
                || marker
                    .as_ref()
                    .is_some_and(|marker| marker.orphan(user, key, room.secret_arn))
            {
                plan.delete.push(id);
            } else {
                plan.keep.push(id.clone());
                plan.unmanaged.push(id);
            }
        }
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

    const ARN: &str = "arn:aws:secretsmanager:us-east-1:111122223333:secret:app-AbCdEf";
    const TOKEN: &str = "tok-2";
    const NOW: i64 = 1_800_000_000;

    fn user(tags: &[(&str, &str)]) -> IamUser {
        IamUser {
            name: "app".into(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

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
    fn binding_accepts_the_arn_and_nothing_else() {
        assert!(user(&[(BINDING_TAG, ARN)]).check_binding(ARN).is_ok());
        let by_name = user(&[(BINDING_TAG, "app")])
            .check_binding(ARN)
            .unwrap_err();
        assert_eq!(by_name.kind(), "UserNotBound");
        let message = by_name.to_string();
        assert!(message.contains("holds a name (app)"), "{message}");
        assert!(
            message.contains(&format!("Key=iam-key-rotation:secret,Value={ARN}")),
            "{message}"
        );
        let recreated = "arn:aws:secretsmanager:us-east-1:111122223333:secret:app-ZyXwVu";
        let other = user(&[(BINDING_TAG, recreated)])
            .check_binding(ARN)
            .unwrap_err();
        assert!(other.to_string().contains("names another secret"));
        let missing = user(&[]).check_binding(ARN).unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("has no tag iam-key-rotation:secret")
        );
    }

    #[test]
    fn descriptions_name_exactly_one_secret() {
        let description = key_description(ARN, TOKEN).unwrap();
        assert!(description_names(&description, ARN));
        assert!(!description_names(&description, &ARN[..ARN.len() - 1]));
        assert!(!description_names("deploy key for app", ARN));
        let long_arn = format!("{ARN}{}", "x".repeat(150));
        let short = key_description(&long_arn, &"t".repeat(64)).unwrap();
        assert!(description_names(&short, &long_arn));
        assert!(key_description(&"x".repeat(300), TOKEN).is_err());
        assert_eq!(described_secret(&description), Some(ARN));
        assert_eq!(described_secret("deploy key for app"), None);
    }

    #[test]
    fn a_key_is_managed_only_when_a_version_holds_it_and_its_description_agrees() {
        let description = key_description(ARN, "tok-1").unwrap();
        let owner = user(&[
            ("AKIAPREVIOUS00000001", &description),
            ("AKIAFORGED0000000001", &description),
        ]);
        let held = [("AKIAPREVIOUS00000001", "tok-1")];
        assert!(owner.is_managed("AKIAPREVIOUS00000001", ARN, &held));
        // A forged description (iam:TagUser) without a version holding the key.
        assert!(!owner.is_managed("AKIAFORGED0000000001", ARN, &held));
        // A version holding a key (PutSecretValue) without the description.
        assert!(!user(&[]).is_managed("AKIAPREVIOUS00000001", ARN, &held));
        // A described key moved into another version by whoever writes the value.
        assert!(!owner.is_managed(
            "AKIAPREVIOUS00000001",
            ARN,
            &[("AKIAPREVIOUS00000001", "tok-9")]
        ));
        // Adopted by an earlier version of the function: any version.
        let legacy = user(&[(
            "AKIAPREVIOUS00000001",
            &format!("iam-key-rotation {ARN} adopted"),
        )]);
        assert!(legacy.is_managed(
            "AKIAPREVIOUS00000001",
            ARN,
            &[("AKIAPREVIOUS00000001", "tok-9")]
        ));
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

    #[test]
    fn only_tag_keys_shaped_as_access_key_ids_are_descriptions() {
        let forged = key_description(ARN, "tok-1").unwrap();
        let owner = user(&[("Owner", &forged), ("AKIACURRENT000000001", &forged)]);
        assert_eq!(owner.described_key_ids(ARN), vec!["AKIACURRENT000000001"]);
        assert!(!owner.describes("Owner", ARN));
        assert!(is_access_key_id("AKIAIOSFODNN7EXAMPLE"));
        assert!(!is_access_key_id("akiaiosfodnn7example"));
        assert!(!is_access_key_id("iam-key-rotation:creating"));
    }

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
