//! Key descriptions: the user tag whose key is an access key id and whose value
//! is `iam-key-rotation <secret ARN> <version>`, as the IAM console writes a
//! key's description. The function writes it for a key it created, or adopted
//! after proof of possession, in the version that holds the key.
//!
//! Anyone with `iam:TagUser` can write such a tag (its key is the key id, so
//! it cannot be reserved): a description alone proves nothing. A key is
//! managed by a secret only when both records agree (SPEC 11, T2): one of the
//! secret's own versions holds the key for this user, and the description
//! names the secret and that version. Forging both needs write access to this
//! secret's value and to this user's tags, which is as much as the user's
//! owner has.

use crate::model::user::IamUser;

/// The first word of the description tag of every key this function made or adopted.
pub const DESCRIPTION_PREFIX: &str = "iam-key-rotation";
/// What earlier versions of the function wrote as the version of an adopted
/// key's description.
const LEGACY_ADOPTED: &str = "adopted";
/// IAM's limit on a tag value.
const MAX_TAG_VALUE_LEN: usize = 256;

/// The secret's ARN is too long to record in a description, even without the
/// version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the secret's ARN is too long to record in an IAM key description (256 characters); use a shorter secret name"
)]
pub struct ArnTooLong;

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

/// The description tag value for a key this secret manages in version
/// `token`. The version id is left out when the ARN is too long for both to
/// fit in a tag.
pub fn key_description(secret_arn: &str, token: &str) -> Result<String, ArnTooLong> {
    let full = format!("{DESCRIPTION_PREFIX} {secret_arn} {token}");
    let short = format!("{DESCRIPTION_PREFIX} {secret_arn}");
    [full, short]
        .into_iter()
        .find(|value| value.len() <= MAX_TAG_VALUE_LEN)
        .ok_or(ArnTooLong)
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
pub(crate) fn description_version<'d>(
    description: &'d str,
    secret_arn: &str,
) -> Option<Option<&'d str>> {
    let rest = description
        .strip_prefix(DESCRIPTION_PREFIX)?
        .strip_prefix(' ')?
        .strip_prefix(secret_arn)?;
    if rest.is_empty() {
        return Some(None);
    }
    Some(Some(rest.strip_prefix(' ')?))
}

impl IamUser {
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

    /// Whether the key's description names this secret and exactly `version`
    /// (not the short form, nor an earlier version's `adopted`).
    pub fn describes_exactly_in(&self, key_id: &str, secret_arn: &str, version: &str) -> bool {
        is_access_key_id(key_id)
            && self
                .tags
                .get(key_id)
                .and_then(|description| description_version(description, secret_arn))
                == Some(Some(version))
    }

    /// Whether the key's description names this secret in the short form,
    /// without a version (an ARN too long for the version to fit in IAM's
    /// 256 characters): a description that cannot tell versions apart.
    pub fn describes_without_version(&self, key_id: &str, secret_arn: &str) -> bool {
        is_access_key_id(key_id)
            && self
                .tags
                .get(key_id)
                .and_then(|description| description_version(description, secret_arn))
                == Some(None)
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::user::tagged_user as user;

    const ARN: &str = "arn:aws:secretsmanager:us-east-1:111122223333:secret:app-AbCdEf";
    const TOKEN: &str = "tok-2";

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
        assert!(!legacy.describes_exactly_in("AKIAPREVIOUS00000001", ARN, "tok-9"));
        assert!(owner.describes_exactly_in("AKIAPREVIOUS00000001", ARN, "tok-1"));
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
}
