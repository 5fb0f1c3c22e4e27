//! An IAM user as the function reads it: its name, its tags (where the
//! reserved records live) and its access keys, and IAM's rules for user names.
//! The records on a user each have a module of their own, with one writer and
//! one parser: the binding, key descriptions, the creation marker and the
//! current-since record; the exemption is read here.

use std::collections::HashMap;

use aws_sdk_iam::primitives::DateTime;

/// The user tag that exempts a user's keys from the audit's findings (its value
/// is the reason): they are still listed, with `"exempt": true`. Reserved, like
/// every `iam-key-rotation:` tag key: an exemption hides findings, so writing
/// one is an administrator's decision.
pub const EXEMPT_TAG: &str = "iam-key-rotation:exempt";
/// IAM's limit on access keys per user.
pub const MAX_KEYS_PER_USER: usize = 2;

/// An IAM user as `GetUser` (or `GetAccountAuthorizationDetails`) returns it,
/// tags included.
#[derive(Debug, Clone)]
pub struct IamUser {
    pub name: String,
    /// Its IAM path (`/`, `/rotated/`): the template's policies reach only
    /// users under `ManagedUserPath`.
    pub path: String,
    pub tags: HashMap<String, String>,
}

/// One access key of the user, as `ListAccessKeys` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKey {
    pub id: String,
    pub active: bool,
    pub created: Option<DateTime>,
}

impl IamUser {
    /// Why the user is exempt from the audit's findings, if it is.
    pub fn exemption(&self) -> Option<&str> {
        self.tags.get(EXEMPT_TAG).map(String::as_str)
    }
}

/// A user `app` with `tags`, for the model's tests.
#[cfg(test)]
pub(crate) fn tagged_user(tags: &[(&str, &str)]) -> IamUser {
    IamUser {
        name: "app".into(),
        path: "/".into(),
        tags: tags
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect(),
    }
}

/// Whether IAM allows `c` in a user name or an STS session name: letters, digits
/// and `+=,.@_-`.
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "+=,.@_-".contains(c)
}

/// IAM's rule for user names, checked before a name goes into API calls or tags.
pub fn is_valid_user_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.chars().all(is_name_char)
}
