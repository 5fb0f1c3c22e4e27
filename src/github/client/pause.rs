//! The pause every call of a client shares: a rate limit is the credentials',
//! not the target's, so once GitHub says stop, no call goes out until the
//! time it gave, and a wait past the caller's deadline fails at once.

use std::time::{Duration, Instant, SystemTime};

use super::{Call, GitHub, epoch, rfc3339, secs_of};
use crate::github::error::GitHubError;
use crate::github::rate_limit::Limit;

/// `x-ratelimit-reset` is in whole seconds on GitHub's clock: a little more.
const RESET_MARGIN: Duration = Duration::from_secs(1);
/// The shortest pause after a limit, whatever a skewed clock says.
const MIN_PAUSE: Duration = Duration::from_secs(1);

impl GitHub {
    /// No call of this client until `limit` has passed.
    pub(super) fn pause(&self, limit: Limit) {
        let now = SystemTime::now();
        let until = match limit {
            Limit::Until(reset) => epoch(reset) + RESET_MARGIN,
            Limit::For(wait) => now + wait,
        }
        .max(now + MIN_PAUSE);
        let mut paused = self.paused_until.lock().unwrap();
        if paused.is_none_or(|paused| paused < until) {
            *paused = Some(until);
        }
    }

    /// Waits out the pause, or fails at once if it lasts past `stop_by`.
    pub(super) async fn wait_out_pause(
        &self,
        call: &Call<'_>,
        target: &str,
    ) -> Result<(), GitHubError> {
        while let Some(wait) = self.pause_left() {
            if call
                .stop_by
                .is_some_and(|stop_by| Instant::now() + wait > stop_by)
            {
                return Err(self.rate_limited(target));
            }
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }

    pub(super) fn pause_left(&self) -> Option<Duration> {
        let until = (*self.paused_until.lock().unwrap())?;
        until.duration_since(SystemTime::now()).ok()
    }

    pub(super) fn rate_limited(&self, target: &str) -> GitHubError {
        let until = (*self.paused_until.lock().unwrap()).unwrap_or_else(SystemTime::now);
        let wait = until.duration_since(SystemTime::now()).unwrap_or_default();
        GitHubError::RateLimited {
            target: target.to_string(),
            until: rfc3339(secs_of(until)),
            wait_secs: wait.as_secs_f64().ceil() as u64,
        }
    }
}
