//! The sweep's transition policy: which step a previous key is due for, from
//! its status, the time since `AWSCURRENT` moved and the settings. Pure, so
//! every rule has a unit test; the visit in `mod.rs` asks IAM and acts.

use std::time::Duration;

use crate::config::{OldKeyAction, Retirement};

/// The transition a previous key is due for, before IAM is asked whether a
/// consumer still uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Nothing,
    /// Deactivate, unless it was used since the rotation and `may_keep`.
    DeactivateUnlessUsed {
        may_keep: bool,
    },
    Delete,
}

/// Decides from the key's status and the time since `AWSCURRENT` moved (SPEC
/// 11, T6: not since its version was created). One transition at most: an Active key is never deleted.
pub fn transition(
    active: bool,
    age: Duration,
    rules: &Retirement,
    action: OldKeyAction,
) -> Transition {
    if active {
        if action != OldKeyAction::Grace || age < rules.grace {
            return Transition::Nothing;
        }
        return Transition::DeactivateUnlessUsed {
            may_keep: age < rules.grace_max,
        };
    }
    match rules.delete_after {
        Some(after) if age >= after => Transition::Delete,
        _ => Transition::Nothing,
    }
}

/// The shortest age at which any transition can be due; `None` when this
/// configuration never retires anything in a sweep.
pub fn earliest_transition(rules: &Retirement, action: OldKeyAction) -> Option<Duration> {
    let deactivation = (action == OldKeyAction::Grace).then_some(rules.grace);
    match (deactivation, rules.delete_after) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(grace: u64, grace_max: u64, delete_after: Option<u64>) -> Retirement {
        let h = |n: u64| Duration::from_secs(n * 3600);
        Retirement {
            grace: h(grace),
            grace_max: h(grace_max),
            delete_after: delete_after.map(h),
        }
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn an_active_key_is_deactivated_after_the_grace_and_kept_in_use_until_the_maximum() {
        let rules = rules(24, 168, None);
        let grace = OldKeyAction::Grace;
        assert_eq!(
            transition(true, 23 * HOUR, &rules, grace),
            Transition::Nothing
        );
        assert_eq!(
            transition(true, 24 * HOUR, &rules, grace),
            Transition::DeactivateUnlessUsed { may_keep: true }
        );
        assert_eq!(
            transition(true, 168 * HOUR, &rules, grace),
            Transition::DeactivateUnlessUsed { may_keep: false }
        );
    }

    #[test]
    fn only_grace_mode_deactivates_and_only_inactive_keys_are_deleted() {
        let rules = rules(0, 0, Some(0));
        for action in [
            OldKeyAction::Keep,
            OldKeyAction::Deactivate,
            OldKeyAction::Delete,
        ] {
            assert_eq!(
                transition(true, 1000 * HOUR, &rules, action),
                Transition::Nothing
            );
        }
        assert_eq!(
            transition(true, 1000 * HOUR, &rules, OldKeyAction::Grace),
            Transition::DeactivateUnlessUsed { may_keep: false }
        );
        assert_eq!(
            transition(false, Duration::ZERO, &rules, OldKeyAction::Deactivate),
            Transition::Delete
        );
        let later = self::rules(24, 168, Some(48));
        assert_eq!(
            transition(false, 47 * HOUR, &later, OldKeyAction::Grace),
            Transition::Nothing
        );
        assert_eq!(
            transition(false, 48 * HOUR, &later, OldKeyAction::Grace),
            Transition::Delete
        );
        let never = self::rules(24, 168, None);
        assert_eq!(
            transition(false, 10_000 * HOUR, &never, OldKeyAction::Grace),
            Transition::Nothing
        );
    }

    #[test]
    fn the_sweep_reads_nothing_when_nothing_can_fall_due() {
        assert_eq!(
            earliest_transition(&rules(24, 168, None), OldKeyAction::Deactivate),
            None
        );
        assert_eq!(
            earliest_transition(&rules(24, 168, None), OldKeyAction::Grace),
            Some(24 * HOUR)
        );
        assert_eq!(
            earliest_transition(&rules(24, 168, Some(2)), OldKeyAction::Grace),
            Some(2 * HOUR)
        );
        assert_eq!(
            earliest_transition(&rules(24, 168, Some(2)), OldKeyAction::Keep),
            Some(2 * HOUR)
        );
    }
}
