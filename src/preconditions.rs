//! The checks every step makes before it acts (SPEC section 3), taken from the
//! official rotation templates.

use crate::error::RotationError;
use crate::secrets::{AWSCURRENT, AWSPENDING, SecretInfo};

/// Where the token's version stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionState {
    /// Already `AWSCURRENT`: the rotation is over (finishSecret still retires the old key).
    Current,
    /// `AWSPENDING`: the rotation is in progress.
    Pending,
}

/// Checks that rotation is enabled and that `token` is this secret's current or
/// pending version.
pub fn check(secret: &SecretInfo, token: &str) -> Result<VersionState, RotationError> {
    if !secret.rotation_enabled {
        return Err(RotationError::RotationNotEnabled {
            secret: secret.arn.clone(),
        });
    }
    if secret.stages_of(token).is_none() {
        return Err(RotationError::VersionNotFound {
            secret: secret.arn.clone(),
            token: token.to_string(),
        });
    }
    if secret.has_stage(token, AWSCURRENT) {
        return Ok(VersionState::Current);
    }
    if secret.has_stage(token, AWSPENDING) {
        return Ok(VersionState::Pending);
    }
    Err(RotationError::VersionNotPending {
        secret: secret.arn.clone(),
        token: token.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn secret(enabled: bool, versions: &[(&str, &[&str])]) -> SecretInfo {
        SecretInfo {
            arn: "arn:aws:secretsmanager:us-east-1:1:secret:s-AbCdEf".into(),
            name: "s".into(),
            rotation_enabled: enabled,
            versions: versions
                .iter()
                .map(|(id, stages)| {
                    (
                        id.to_string(),
                        stages.iter().map(|s| s.to_string()).collect(),
                    )
                })
                .collect::<HashMap<_, _>>(),
        }
    }

    #[test]
    fn each_precondition_is_checked_in_order() {
        let versions: &[(&str, &[&str])] = &[
            ("cur", &["AWSCURRENT"]),
            ("pend", &["AWSPENDING"]),
            ("old", &["AWSPREVIOUS"]),
        ];
        let kind = |enabled, token| check(&secret(enabled, versions), token).map_err(|e| e.kind());
        assert_eq!(kind(false, "pend"), Err("RotationNotEnabled"));
        assert_eq!(kind(true, "nope"), Err("VersionNotFound"));
        assert_eq!(kind(true, "old"), Err("VersionNotPending"));
        assert_eq!(kind(true, "cur"), Ok(VersionState::Current));
        assert_eq!(kind(true, "pend"), Ok(VersionState::Pending));
    }
}
