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
    /// Deactivate if IAM shows the new key used since the delivery and the
    /// old one not (`RETIRE_WHEN_SWITCHED`, SPEC 14).
    DeactivateIfSwitched,
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

/// The transition of a previous key of a secret with delivery targets (SPEC
/// 14): `delivered`, the time since every target was confirmed holding the
/// current version, if every one is. Until then an Active key stays, but
/// never past `GRACE_MAX_HOURS` after `AWSCURRENT` moved (`moved`), so a
/// broken target keeps no key alive for ever (in `keep` mode the next rotation
/// bounds it instead). Once delivered, `OLD_KEY_ACTION` applies as finishSecret
/// would have applied it, grace counted from the delivery; `switch_after`
/// (`RETIRE_WHEN_SWITCHED`: a sweep interval) may end the grace early. An
/// Inactive key follows `DELETE_AFTER_HOURS` as always.
pub fn after_delivery(
    active: bool,
    moved: Duration,
    delivered: Option<Duration>,
    rules: &Retirement,
    action: OldKeyAction,
    switch_after: Option<Duration>,
) -> Transition {
    if !active {
        return transition(false, moved, rules, action);
    }
    let bounded = action != OldKeyAction::Keep && moved >= rules.grace_max;
    let Some(delivered) = delivered else {
        return match bounded {
            true => Transition::DeactivateUnlessUsed { may_keep: false },
            false => Transition::Nothing,
        };
    };
    match action {
        OldKeyAction::Keep => Transition::Nothing,
        OldKeyAction::Deactivate => Transition::DeactivateUnlessUsed { may_keep: false },
        OldKeyAction::Delete => Transition::Delete,
        OldKeyAction::Grace if bounded => Transition::DeactivateUnlessUsed { may_keep: false },
        OldKeyAction::Grace if delivered >= rules.grace => Transition::DeactivateUnlessUsed {
            may_keep: moved < rules.grace_max,
        },
        OldKeyAction::Grace if switch_after.is_some_and(|after| delivered >= after) => {
            Transition::DeactivateIfSwitched
        }
        OldKeyAction::Grace => Transition::Nothing,
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
    fn a_delivered_key_is_retired_as_finish_secret_would_have_and_an_undelivered_one_only_at_the_maximum()
     {
        let rules = rules(24, 168, None);
        let after = |action, moved: u32, delivered: Option<u32>| {
            after_delivery(
                true,
                moved * HOUR,
                delivered.map(|hours| hours * HOUR),
                &rules,
                action,
                None,
            )
        };
        let retire_now = Transition::DeactivateUnlessUsed { may_keep: false };
        for action in [
            OldKeyAction::Deactivate,
            OldKeyAction::Delete,
            OldKeyAction::Grace,
        ] {
            assert_eq!(after(action, 1, None), Transition::Nothing, "{action:?}");
            assert_eq!(after(action, 167, None), Transition::Nothing, "{action:?}");
            assert_eq!(after(action, 168, None), retire_now, "{action:?}");
        }
        assert_eq!(after(OldKeyAction::Keep, 1000, None), Transition::Nothing);
        assert_eq!(after(OldKeyAction::Deactivate, 1, Some(0)), retire_now);
        assert_eq!(after(OldKeyAction::Delete, 1, Some(0)), Transition::Delete);
        assert_eq!(
            after(OldKeyAction::Keep, 1000, Some(900)),
            Transition::Nothing
        );
        // Grace counts from the delivery, and the maximum from the move.
        assert_eq!(
            after(OldKeyAction::Grace, 30, Some(23)),
            Transition::Nothing
        );
        assert_eq!(
            after(OldKeyAction::Grace, 30, Some(24)),
            Transition::DeactivateUnlessUsed { may_keep: true }
        );
        assert_eq!(after(OldKeyAction::Grace, 168, Some(1)), retire_now);
        // An Inactive key follows DELETE_AFTER_HOURS, delivered or not.
        let deleting = self::rules(24, 168, Some(48));
        for delivered in [None, Some(Duration::ZERO)] {
            assert_eq!(
                after_delivery(
                    false,
                    48 * HOUR,
                    delivered,
                    &deleting,
                    OldKeyAction::Grace,
                    None
                ),
                Transition::Delete
            );
        }
    }

    #[test]
    fn retire_when_switched_may_end_the_grace_one_sweep_interval_after_the_delivery() {
        let rules = rules(24, 168, None);
        let switch = |delivered: Duration| {
            after_delivery(
                true,
                delivered,
                Some(delivered),
                &rules,
                OldKeyAction::Grace,
                Some(HOUR),
            )
        };
        assert_eq!(switch(HOUR / 2), Transition::Nothing);
        assert_eq!(switch(HOUR), Transition::DeactivateIfSwitched);
        assert_eq!(
            switch(24 * HOUR),
            Transition::DeactivateUnlessUsed { may_keep: true }
        );
        assert_eq!(
            after_delivery(
                true,
                2 * HOUR,
                None,
                &rules,
                OldKeyAction::Grace,
                Some(HOUR)
            ),
            Transition::Nothing,
            "never before the delivery"
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
