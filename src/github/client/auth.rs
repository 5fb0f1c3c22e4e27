//! How the client authenticates: a fine-grained token as it is, or a GitHub
//! App's installation token, bought with the App's JWT and kept until shortly
//! before it expires (or GitHub refuses it).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;

use super::{Call, GitHub, epoch, unix_now};
use crate::github::credentials::App;
use crate::github::error::GitHubError;
use crate::sensitive::Sensitive;

/// An installation token (GitHub's last an hour) is renewed this long before
/// it expires, so none expires in the middle of a delivery.
const TOKEN_RENEW_MARGIN: Duration = Duration::from_secs(5 * 60);
pub(super) enum Auth {
    Token(Sensitive),
    App {
        app: App,
        token: tokio::sync::Mutex<Option<InstallationToken>>,
    },
}

pub(super) struct InstallationToken {
    value: Sensitive,
    renew_at: SystemTime,
}

impl GitHub {
    /// The Authorization bearer: the token, or the App's installation token,
    /// bought when there is none still good.
    pub(super) async fn bearer(&self, call: &Call<'_>) -> Result<Sensitive, GitHubError> {
        let (app, cached) = match &self.auth {
            Auth::Token(token) => return Ok(token.clone()),
            Auth::App { app, token } => (app, token),
        };
        let mut cached = cached.lock().await;
        if let Some(token) = cached.as_ref()
            && SystemTime::now() < token.renew_at
        {
            return Ok(token.value.clone());
        }
        let fresh = self.buy_installation_token(app, call).await?;
        let value = fresh.value.clone();
        *cached = Some(fresh);
        Ok(value)
    }

    /// `POST /app/installations/{id}/access_tokens`, as the App (its JWT),
    /// for the Actions secrets permissions only: a token the function holds
    /// can then write secrets and nothing else the App may do (its code, its
    /// issues), whatever else the App was granted.
    pub(super) async fn buy_installation_token(
        &self,
        app: &App,
        call: &Call<'_>,
    ) -> Result<InstallationToken, GitHubError> {
        let target = format!("an installation token of {}", app.describe());
        let jwt = app.jwt(unix_now())?;
        let installation = format!("/app/installations/{}", app.installation_id);
        // Boxed: these calls are inside `exchange_as`'s own future.
        let granted =
            Box::pin(self.exchange_as(call, &target, "GET", &installation, None, Some(&jwt)))
                .await?;
        if granted.status != 200 {
            return Err(self.refusal(&granted, target));
        }
        let permissions = secrets_permissions(&granted.json().unwrap_or_default()["permissions"])
            .ok_or_else(|| GitHubError::Credentials {
                detail: format!(
                    "{} may write no Actions secrets: grant the App the repository permission Secrets (and Environments for environment secrets, or the organization permission Secrets for organization secrets), read and write",
                    app.describe()
                ),
            })?;
        let body = serde_json::json!({ "permissions": permissions }).to_string();
        let path = format!("{installation}/access_tokens");
        let reply =
            Box::pin(self.exchange_as(call, &target, "POST", &path, Some(&body), Some(&jwt)))
                .await?;
        if !(200..=299).contains(&reply.status) {
            return Err(self.refusal(&reply, target));
        }
        let body = reply.json().unwrap_or_default();
        let token = body["token"]
            .as_str()
            .filter(|token| !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic()));
        let expires = body["expires_at"]
            .as_str()
            .and_then(|text| DateTime::from_str(text, Format::DateTime).ok());
        match (token, expires) {
            (Some(token), Some(expires)) => Ok(InstallationToken {
                value: Sensitive::new(token),
                renew_at: renew_at(expires.secs()),
            }),
            _ => Err(GitHubError::BadResponse {
                target,
                detail: "no token or no expires_at in the answer".into(),
            }),
        }
    }

    /// Drops the installation token GitHub just refused, unless another call
    /// already replaced it.
    pub(super) async fn forget_token(&self, refused: &Sensitive) {
        if let Auth::App { token, .. } = &self.auth {
            let mut cached = token.lock().await;
            if cached.as_ref().is_some_and(|token| token.value == *refused) {
                *cached = None;
            }
        }
    }
}

/// The permissions a delivery needs, each as the installation has it: write
/// on repository, environment and organization secrets, read of metadata
/// (which every token carries). `None` when it may write no secrets at all.
pub(super) fn secrets_permissions(
    granted: &serde_json::Value,
) -> Option<serde_json::Map<String, serde_json::Value>> {
    let level = |name: &str| granted.get(name).and_then(serde_json::Value::as_str);
    let mut wanted = serde_json::Map::new();
    for name in ["secrets", "environments", "organization_secrets"] {
        if matches!(level(name), Some("write" | "admin")) {
            wanted.insert(name.into(), "write".into());
        }
    }
    if wanted.is_empty() {
        return None;
    }
    if level("metadata").is_some() {
        wanted.insert("metadata".into(), "read".into());
    }
    Some(wanted)
}

/// When to renew a token that expires at `expires` (unix seconds).
pub(super) fn renew_at(expires: i64) -> SystemTime {
    epoch(expires)
        .checked_sub(TOKEN_RENEW_MARGIN)
        .unwrap_or(UNIX_EPOCH)
        .max(UNIX_EPOCH)
}
