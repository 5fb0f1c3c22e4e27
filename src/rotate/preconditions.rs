//! The checks every step makes before it acts, taken from the official rotation
//! templates, plus one of our own: the secret must be set up to be rotated by this
//! very function, so that a direct invoke cannot rotate a secret that another
//! function (or no one) was meant to rotate.

use crate::error::RotationError;
use crate::model::secret::{AWSCURRENT, AWSPENDING, Secret};

/// Where the token's version stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionState {
    /// Already `AWSCURRENT`: the rotation is over (finishSecret still retires the old key).
    Current,
    /// `AWSPENDING`: the rotation is in progress.
    Pending,
}

/// Checks that rotation is enabled with `function_arn` as the rotation function,
/// and that `token` is this secret's current or pending version.
pub fn check(
    secret: &Secret,
    token: &str,
    function_arn: &str,
) -> Result<VersionState, RotationError> {
    if !secret.rotation_enabled {
        return Err(RotationError::RotationNotEnabled {
            secret: secret.arn.clone(),
        });
    }
    let configured = secret.rotation_lambda_arn.as_deref().unwrap_or_default();
    if crate::arn::unqualified(configured) != crate::arn::unqualified(function_arn) {
        return Err(RotationError::RotationFunctionMismatch {
            secret: secret.arn.clone(),
            configured: configured.to_string(),
            invoked: crate::arn::unqualified(function_arn).to_string(),
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

    const FUNCTION: &str = "arn:aws:lambda:us-east-1:1:function:rotator";

    fn secret(enabled: bool, versions: &[(&str, &[&str])]) -> Secret {
        Secret {
            arn: "arn:aws:secretsmanager:us-east-1:1:secret:s-AbCdEf".into(),
            name: "s".into(),
            rotation_enabled: enabled,
            rotation_lambda_arn: Some(FUNCTION.into()),
            versions: versions
                .iter()
                .map(|(id, stages)| {
                    (
                        id.to_string(),
                        stages.iter().map(|s| s.to_string()).collect(),
                    )
                })
                .collect::<HashMap<_, _>>(),
            ..Secret::default()
        }
    }

    #[test]
    fn each_precondition_is_checked_in_order() {
        let versions: &[(&str, &[&str])] = &[
            ("cur", &["AWSCURRENT"]),
            ("pend", &["AWSPENDING"]),
            ("old", &["AWSPREVIOUS"]),
        ];
        let kind = |enabled, token| {
            check(&secret(enabled, versions), token, FUNCTION).map_err(|e| e.kind())
        };
        assert_eq!(kind(false, "pend"), Err("RotationNotEnabled"));
        assert_eq!(kind(true, "nope"), Err("VersionNotFound"));
        assert_eq!(kind(true, "old"), Err("VersionNotPending"));
        assert_eq!(kind(true, "cur"), Ok(VersionState::Current));
        assert_eq!(kind(true, "pend"), Ok(VersionState::Pending));
    }

    #[test]
    fn only_the_configured_rotation_function_may_run_a_step() {
        let versions: &[(&str, &[&str])] = &[("pend", &["AWSPENDING"])];
        let pending = secret(true, versions);
        let run_as = |arn: &str| check(&pending, "pend", arn).map_err(|e| e.kind());
        assert_eq!(run_as(FUNCTION), Ok(VersionState::Pending));
        assert_eq!(
            run_as(&format!("{FUNCTION}:live")),
            Ok(VersionState::Pending)
        );
        assert_eq!(
            run_as(&format!("{FUNCTION}:$LATEST")),
            Ok(VersionState::Pending)
        );
        assert_eq!(
            run_as(&format!("{FUNCTION}2")),
            Err("RotationFunctionMismatch")
        );
        assert_eq!(
            run_as("arn:aws:lambda:us-east-1:2:function:rotator"),
            Err("RotationFunctionMismatch")
        );

        let mut aliased = pending.clone();
        aliased.rotation_lambda_arn = Some(format!("{FUNCTION}:live"));
        assert_eq!(
            check(&aliased, "pend", FUNCTION).map_err(|e| e.kind()),
            Ok(VersionState::Pending)
        );

        let mut unset = pending.clone();
        unset.rotation_lambda_arn = None;
        let error = check(&unset, "pend", FUNCTION).unwrap_err();
        assert_eq!(error.kind(), "RotationFunctionMismatch");
        assert!(error.to_string().contains(FUNCTION), "{error}");
    }
}
