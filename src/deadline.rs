//! The invocation's deadline, and every margin kept before it.
//!
//! Lambda kills a process at its timeout without a word; each margin here keeps
//! time free to say why a job stopped instead. They live together so that their
//! order is visible: a sweep stops starting secrets first, then a key probe
//! gives up, then a step stops, and the failure event goes out in what remains.

use std::future::Future;
use std::time::{Duration, Instant};

use tracing::warn;

/// No secret is started by the sweep this close to the deadline: the ones under
/// way finish, and the rest wait for the next sweep.
pub const SWEEP_START_MARGIN: Duration = Duration::from_secs(5);
/// No delivery target (or secret) is started this close to the deadline: the
/// next delivery run takes it up.
pub const TARGET_START_MARGIN: Duration = Duration::from_secs(5);
/// A target's write, and any wait for GitHub's rate limit, stops this long
/// before the deadline, leaving time to put the events and record what was
/// delivered.
pub const TARGET_WRITE_MARGIN: Duration = Duration::from_secs(2);
/// A key proof gives up this long before the deadline, to report the failure.
pub const PROOF_MARGIN: Duration = Duration::from_secs(1);
/// A step (or a secret's visit in the sweep) is stopped this long before the
/// deadline, to report that it ran out of time.
pub const STEP_MARGIN: Duration = Duration::from_millis(500);
/// Time kept free after a failure event, for the error to reach Lambda.
pub const EVENT_MARGIN: Duration = Duration::from_millis(250);
/// A deadline closer than this when the invocation starts cannot be Lambda's
/// (the template's shortest timeout is 30 s): it is an emulator's placeholder,
/// and bounding the step by it would fail every step at once.
const MIN_CREDIBLE: Duration = Duration::from_secs(2);

/// When the invocation will be stopped, if anyone said.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deadline(Option<Instant>);

impl Deadline {
    /// No deadline (a direct call, a test).
    pub const NONE: Self = Self(None);

    /// Lambda's deadline, unless it is too close (or past) at the start to be
    /// real.
    pub fn credible(at: Option<Instant>, started: Instant) -> Self {
        let Some(at) = at else { return Self::NONE };
        if at >= started + MIN_CREDIBLE {
            return Self(Some(at));
        }
        warn!(
            remaining_ms = at.saturating_duration_since(started).as_millis() as u64,
            "the invocation's deadline is already (nearly) past as it starts; running without one"
        );
        Self::NONE
    }

    /// The moment `margin` before the deadline (the deadline itself if it is
    /// nearer than that to the clock's origin).
    pub fn less(self, margin: Duration) -> Option<Instant> {
        self.0.map(|at| at.checked_sub(margin).unwrap_or(at))
    }

    /// The time left until `margin` before the deadline.
    pub fn remaining_less(self, margin: Duration) -> Option<Duration> {
        self.0.map(|at| {
            at.saturating_duration_since(Instant::now())
                .saturating_sub(margin)
        })
    }

    /// Runs `work` until `margin` before the deadline; `None` if it ran out of
    /// time (stopping between two AWS calls is as safe as a crash, which every
    /// job survives).
    pub async fn bound<F: Future>(self, margin: Duration, work: F) -> Option<F::Output> {
        match self.less(margin) {
            Some(stop_at) => tokio::time::timeout_at(stop_at.into(), work).await.ok(),
            None => Some(work.await),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_too_close_at_the_start_is_not_lambdas() {
        let started = Instant::now();
        assert_eq!(Deadline::credible(None, started), Deadline::NONE);
        assert_eq!(
            Deadline::credible(Some(started + Duration::from_millis(10)), started),
            Deadline::NONE
        );
        let real = started + Duration::from_secs(60);
        assert_eq!(
            Deadline::credible(Some(real), started).less(Duration::ZERO),
            Some(real)
        );
        assert_eq!(
            Deadline::credible(Some(real), started).less(STEP_MARGIN),
            Some(real - STEP_MARGIN)
        );
    }

    #[test]
    fn the_margins_stop_the_sweep_first_and_leave_the_event_for_last() {
        assert!(SWEEP_START_MARGIN >= TARGET_START_MARGIN);
        assert!(TARGET_START_MARGIN > TARGET_WRITE_MARGIN);
        assert!(TARGET_WRITE_MARGIN > PROOF_MARGIN);
        assert!(SWEEP_START_MARGIN > PROOF_MARGIN);
        assert!(PROOF_MARGIN > STEP_MARGIN);
        assert!(STEP_MARGIN > EVENT_MARGIN);
    }
}
