//! The GitHub Actions secrets client: writes a target's secrets sealed to its
//! public key and verifies that they took (SPEC 14).
//!
//! One delivery to one target is, per secret name, a `PUT .../secrets/{name}`
//! and a `GET .../secrets/{name}` (its `updated_at`), after one `GET
//! .../secrets/public-key` that later targets of the same repository,
//! environment or organization reuse for the life of the client; a write that
//! GitHub answers 422 (a key rotated since) fetches the key again, once. With
//! App credentials, one installation token serves every call until shortly
//! before it expires (or GitHub answers 401 to it).
//!
//! An organization secret is read first: a write never changes who may read
//! it (`visibility.rs`).
//!
//! Every call of the client shares one pause: a rate limit is the
//! credentials', not the target's, so once GitHub says stop, no call goes out
//! until the time it gave, and a wait that would run past the caller's
//! `stop_by` fails at once with `RateLimited` instead.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use serde_json::json;

use super::api_root::ApiRoot;
use super::credentials::{GitHubCredentials, Kind};
use super::error::{FIX_INSTALLATION, FIX_JWT, FIX_TOKEN, GitHubError};
use super::rate_limit::{self, Limit};
use super::sealed_box::PublicKey;
use super::transport::{Reply, Transport};
use crate::backoff::Backoff;
use crate::model::delivery_target::GitHubScope;
use crate::sensitive::Sensitive;

mod auth;
mod paths;
mod pause;
mod visibility;

use auth::Auth;
use paths::{secrets_path, segment};

/// Attempts of one call that GitHub answers 5xx or that cannot reach it.
const MAX_ATTEMPTS: u32 = 3;
/// Rate limits one call waits out before it gives up (when no deadline
/// bounds it first).
const MAX_LIMITS: u32 = 8;
/// How much earlier than the write GitHub's `updated_at` may read (SPEC 14).
const VERIFY_SKEW_SECS: i64 = 5;

/// One secret's write: its name, its value, the key it is sealed to, and the
/// repositories a `selected` organization secret keeps.
struct Sealed<'a> {
    name: &'a str,
    value: &'a Sensitive,
    key: &'a PublicKey,
    selected: Option<&'a [u64]>,
}

/// A client of GitHub's Actions secrets API, shared by every target of a run
/// (and of a warm instance's later runs: the token and keys stay useful).
pub struct GitHub {
    root: ApiRoot,
    auth: Auth,
    transport: Transport,
    /// No call before this moment: a rate limit of these credentials.
    paused_until: Mutex<Option<SystemTime>>,
    /// Public keys by secrets path.
    keys: Mutex<HashMap<String, PublicKey>>,
}

/// What one delivery took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// HTTP calls made for it: an installation token if one was bought, the
    /// public key unless reused, each write and verification, every retry.
    pub calls: u32,
    /// Each secret's `updated_at` on GitHub's clock (unix seconds), verified.
    pub updated_at: Vec<(String, i64)>,
}

/// The bounds and the count of one delivery's calls.
struct Call<'a> {
    stop_by: Option<Instant>,
    calls: &'a AtomicU32,
}

enum Put {
    Done,
    /// 422: a stale key id, or a value GitHub refuses.
    Unprocessable(String),
}

enum Failure {
    Transport(String),
    Server(u16),
}

impl std::fmt::Debug for GitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHub")
            .field("api", &self.root.as_str())
            .field("credentials", &self.describe_credentials())
            .field("calls", &self.calls())
            .finish()
    }
}

impl GitHub {
    pub fn new(root: ApiRoot, credentials: GitHubCredentials) -> Self {
        let auth = match credentials.0 {
            Kind::Token(token) => Auth::Token(token),
            Kind::App(app) => Auth::App {
                app,
                token: tokio::sync::Mutex::new(None),
            },
        };
        Self {
            root,
            auth,
            transport: Transport::new(),
            paused_until: Mutex::new(None),
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// Every HTTP call this client made.
    pub fn calls(&self) -> u64 {
        self.transport.calls()
    }

    /// `a token`, or `App 123, installation 456`: for log lines.
    pub fn describe_credentials(&self) -> String {
        match &self.auth {
            Auth::Token(_) => "a token".into(),
            Auth::App { app, .. } => app.describe(),
        }
    }

    /// Writes `secrets` (name, value) into `scope`'s Actions secrets and
    /// verifies each, making no call and waiting for no limit past `stop_by`.
    /// Writing again is harmless: each write replaces the secret.
    pub async fn deliver(
        &self,
        scope: &GitHubScope,
        secrets: &[(&str, &Sensitive)],
        stop_by: Option<Instant>,
    ) -> Result<Delivered, GitHubError> {
        let calls = AtomicU32::new(0);
        let call = Call {
            stop_by,
            calls: &calls,
        };
        let base = secrets_path(scope);
        let mut updated_at = Vec::new();
        if secrets.is_empty() {
            return Ok(Delivered {
                calls: 0,
                updated_at,
            });
        }
        let mut key = self.public_key(scope, &base, &call, false).await?;
        let mut refetched = false;
        for (name, value) in secrets {
            let target = format!("{scope}, secret {name}");
            let selected = self
                .keep_visibility(scope, &base, name, &target, &call)
                .await?;
            let began = loop {
                let began = unix_now();
                let sealed = Sealed {
                    name,
                    value,
                    key: &key,
                    selected: selected.as_deref(),
                };
                match self
                    .put_secret(scope, &base, &sealed, &target, &call)
                    .await?
                {
                    Put::Done => break began,
                    Put::Unprocessable(message) => {
                        let fresh = match refetched {
                            false => self.public_key(scope, &base, &call, true).await?,
                            true => key.clone(),
                        };
                        refetched = true;
                        if fresh.key_id == key.key_id {
                            return Err(GitHubError::Rejected {
                                target,
                                status: 422,
                                message,
                            });
                        }
                        key = fresh;
                    }
                }
            };
            let updated = self.verify(&base, name, began, &target, &call).await?;
            updated_at.push((name.to_string(), updated));
        }
        Ok(Delivered {
            calls: calls.into_inner(),
            updated_at,
        })
    }

    /// The scope's public key: the one fetched before, unless `refresh`.
    async fn public_key(
        &self,
        scope: &GitHubScope,
        base: &str,
        call: &Call<'_>,
        refresh: bool,
    ) -> Result<PublicKey, GitHubError> {
        if !refresh && let Some(key) = self.keys.lock().unwrap().get(base) {
            return Ok(key.clone());
        }
        let target = format!("{scope} (its public key)");
        let path = format!("{base}/public-key");
        let reply = self.exchange(call, &target, "GET", &path, None).await?;
        if reply.status != 200 {
            return Err(self.refusal(&reply, target));
        }
        let body = reply.json().unwrap_or_default();
        let key = body["key_id"]
            .as_str()
            .zip(body["key"].as_str())
            .and_then(|(key_id, key)| PublicKey::parse(key_id, key))
            .ok_or_else(|| GitHubError::BadResponse {
                target,
                detail: "no key_id, or a key that is not 32 bytes of base64".into(),
            })?;
        self.keys
            .lock()
            .unwrap()
            .insert(base.to_string(), key.clone());
        Ok(key)
    }

    async fn put_secret(
        &self,
        scope: &GitHubScope,
        base: &str,
        sealed: &Sealed<'_>,
        target: &str,
        call: &Call<'_>,
    ) -> Result<Put, GitHubError> {
        let key = sealed.key;
        let encrypted_value = key
            .seal(sealed.value)
            .map_err(|_| GitHubError::BadResponse {
                target: target.to_string(),
                detail: "its public key cannot seal a value".into(),
            })?;
        let mut body = json!({"encrypted_value": encrypted_value, "key_id": key.key_id});
        if let GitHubScope::Organization { visibility, .. } = scope {
            body["visibility"] = json!(visibility.as_str());
        }
        if let Some(ids) = sealed.selected {
            body["selected_repository_ids"] = json!(ids);
        }
        let path = format!("{base}/{}", segment(sealed.name));
        let reply = self
            .exchange(call, target, "PUT", &path, Some(&body.to_string()))
            .await?;
        match reply.status {
            200..=299 => Ok(Put::Done),
            422 => Ok(Put::Unprocessable(reply.message())),
            _ => Err(self.refusal(&reply, target.to_string())),
        }
    }

    /// The secret's `updated_at` (GitHub's clock, whole seconds), which must
    /// not be earlier than the write that began at `began` less the skew.
    async fn verify(
        &self,
        base: &str,
        name: &str,
        began: i64,
        target: &str,
        call: &Call<'_>,
    ) -> Result<i64, GitHubError> {
        let path = format!("{base}/{}", segment(name));
        let reply = self.exchange(call, target, "GET", &path, None).await?;
        let unverified = |detail: String| GitHubError::Unverified {
            target: target.to_string(),
            detail,
        };
        match reply.status {
            200 => {}
            404 => {
                return Err(unverified(
                    "GitHub does not show the secret right after writing it".into(),
                ));
            }
            _ => return Err(self.refusal(&reply, target.to_string())),
        }
        let updated = reply
            .json()
            .and_then(|body| body["updated_at"].as_str().map(str::to_string))
            .and_then(|text| DateTime::from_str(&text, Format::DateTime).ok())
            .ok_or_else(|| GitHubError::BadResponse {
                target: target.to_string(),
                detail: "the secret has no updated_at date".into(),
            })?
            .secs();
        if updated < began - VERIFY_SKEW_SECS {
            return Err(unverified(format!(
                "GitHub shows it updated at {}, earlier than the write that began at {} (5 s of clock skew allowed)",
                rfc3339(updated),
                rfc3339(began)
            )));
        }
        Ok(updated)
    }

    /// One call with the token (or an installation token), its rate limits,
    /// retries and renewals handled: any other answer is the caller's.
    async fn exchange(
        &self,
        call: &Call<'_>,
        target: &str,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<Reply, GitHubError> {
        self.exchange_as(call, target, method, path, body, None)
            .await
    }

    /// [`Self::exchange`], authenticated by `jwt` (as the App itself) when given.
    async fn exchange_as(
        &self,
        call: &Call<'_>,
        target: &str,
        method: &str,
        path: &str,
        body: Option<&str>,
        jwt: Option<&Sensitive>,
    ) -> Result<Reply, GitHubError> {
        let url = self.root.url(path);
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(4));
        let (mut failures, mut limits, mut renewed) = (0, 0, false);
        loop {
            self.wait_out_pause(call, target).await?;
            let authorization = match jwt {
                Some(jwt) => jwt.clone(),
                None => self.bearer(call).await?,
            };
            if call
                .stop_by
                .is_some_and(|stop_by| Instant::now() >= stop_by)
            {
                return Err(GitHubError::DeadlineReached {
                    target: target.to_string(),
                });
            }
            call.calls.fetch_add(1, Ordering::Relaxed);
            let sent = bounded(
                call.stop_by,
                self.transport.send(method, &url, &authorization, body),
            )
            .await
            .ok_or_else(|| GitHubError::DeadlineReached {
                target: target.to_string(),
            })?;
            let failure = match sent {
                Err(detail) => Failure::Transport(detail),
                Ok(reply) => {
                    if let Some(reset) = rate_limit::exhausted(&reply.rate) {
                        self.pause(Limit::Until(reset));
                    }
                    if let Some(limit) =
                        rate_limit::limit(reply.status, &reply.rate, &reply.message(), limits)
                    {
                        limits += 1;
                        self.pause(limit);
                        if limits >= MAX_LIMITS {
                            return Err(self.rate_limited(target));
                        }
                        continue;
                    }
                    match reply.status {
                        401 if jwt.is_none()
                            && !renewed
                            && matches!(self.auth, Auth::App { .. }) =>
                        {
                            self.forget_token(&authorization).await;
                            renewed = true;
                            continue;
                        }
                        401 => {
                            return Err(GitHubError::Unauthorized {
                                target: target.to_string(),
                                message: reply.message(),
                                fix: match (&self.auth, jwt) {
                                    (_, Some(_)) => FIX_JWT,
                                    (Auth::Token(_), None) => FIX_TOKEN,
                                    (Auth::App { .. }, None) => FIX_INSTALLATION,
                                },
                            });
                        }
                        500..=599 => Failure::Server(reply.status),
                        _ => return Ok(reply),
                    }
                }
            };
            failures += 1;
            if failures >= MAX_ATTEMPTS || !sleep_within(call.stop_by, backoff.next_pause()).await {
                return Err(match failure {
                    Failure::Transport(detail) => GitHubError::Transport {
                        target: target.to_string(),
                        url,
                        detail,
                        attempts: failures,
                    },
                    Failure::Server(status) => GitHubError::Server {
                        target: target.to_string(),
                        status,
                        attempts: failures,
                    },
                });
            }
        }
    }

    /// A refusal in words, by status.
    fn refusal(&self, reply: &Reply, target: String) -> GitHubError {
        match reply.status {
            404 => GitHubError::NotFound { target },
            403 => GitHubError::Forbidden {
                target,
                message: reply.message(),
            },
            status => GitHubError::Rejected {
                target,
                status,
                message: reply.message(),
            },
        }
    }
}

/// Runs `work` until `stop_by`; `None` if that came first.
async fn bounded<F: Future>(stop_by: Option<Instant>, work: F) -> Option<F::Output> {
    match stop_by {
        Some(stop_by) => tokio::time::timeout_at(stop_by.into(), work).await.ok(),
        None => Some(work.await),
    }
}

/// Sleeps `pause` unless that would pass `stop_by`.
async fn sleep_within(stop_by: Option<Instant>, pause: Duration) -> bool {
    if stop_by.is_some_and(|stop_by| Instant::now() + pause > stop_by) {
        return false;
    }
    tokio::time::sleep(pause).await;
    true
}

fn epoch(secs: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64)
}

fn secs_of(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() as i64)
}

fn unix_now() -> i64 {
    secs_of(SystemTime::now())
}

fn rfc3339(secs: i64) -> String {
    DateTime::from_secs(secs)
        .fmt(Format::DateTime)
        .unwrap_or_else(|_| secs.to_string())
}

#[cfg(test)]
mod tests;
