//! Exponential back-off with jitter, for the waits the code runs itself rather
//! than the SDK: a new key's propagation (the key proof), IAM's
//! `ConcurrentModification` on tag writes, and the credential report's
//! generation. (Throttling, `CreateAccessKey`'s included, backs off as
//! `aws/retry.rs` says.)

use std::time::Duration;

/// Pauses that start at `first`, double up to `cap`, and are each jittered
/// between half and all of the current interval, so that many instances backing
/// off together spread out instead of retrying in step.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    cap: Duration,
}

impl Backoff {
    pub fn new(first: Duration, cap: Duration) -> Self {
        Self { next: first, cap }
    }

    /// The next pause, with fresh randomness.
    pub fn next_pause(&mut self) -> Duration {
        self.next_delay(fastrand::f64())
    }

    /// The next pause: between half and all of the current interval (`unit` in
    /// [0, 1) picks where), then the interval doubles up to the cap.
    pub fn next_delay(&mut self, unit: f64) -> Duration {
        let interval = self.next;
        self.next = (interval * 2).min(self.cap);
        interval / 2 + interval.mul_f64(unit.clamp(0.0, 1.0) / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_starts_short_grows_and_is_capped() {
        let new = || Backoff::new(Duration::from_millis(250), Duration::from_millis(600));
        let mut backoff = new();
        let lows: Vec<u128> = (0..6)
            .map(|_| backoff.next_delay(0.0).as_millis())
            .collect();
        assert_eq!(lows, vec![125, 250, 300, 300, 300, 300]);
        let mut backoff = new();
        let highs: Vec<u128> = (0..5)
            .map(|_| backoff.next_delay(0.999_999).as_millis())
            .collect();
        assert_eq!(highs, vec![249, 499, 599, 599, 599]);
    }
}
