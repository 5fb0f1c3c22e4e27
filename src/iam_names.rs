//! Names in IAM that several modules share: the user tags this function reads and
//! writes, and the characters IAM allows in user and session names. A module of
//! its own, below everything else, so that errors, key bookkeeping and the CLI can
//! all use them without importing one another.

/// The user tag that binds a user to the one secret allowed to rotate its keys.
pub const BINDING_TAG: &str = "iam-key-rotation:secret";
/// The user tag that marks a key creation in flight.
pub const CREATING_TAG: &str = "iam-key-rotation:creating";
/// The user tag that records when `AWSCURRENT` last moved (`<version> <unix
/// seconds>`), where the sweep's grace clock starts: a version's creation date
/// says nothing of a rollback or a stage moved by hand.
pub const CURRENT_SINCE_TAG: &str = "iam-key-rotation:current-since";
/// The user tag that exempts a user's keys from the audit's findings (its value
/// is the reason): they are still listed, with `"exempt": true`.
pub const EXEMPT_TAG: &str = "iam-key-rotation:exempt";
/// The first word of the description tag of every key this function made or adopted.
pub const DESCRIPTION_PREFIX: &str = "iam-key-rotation";

/// Whether IAM allows `c` in a user name or an STS session name: letters, digits
/// and `+=,.@_-`.
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "+=,.@_-".contains(c)
}

/// IAM's rule for user names, checked before a name goes into API calls or tags.
pub fn is_valid_user_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.chars().all(is_name_char)
}
