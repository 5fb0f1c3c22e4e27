//! The GitHub client a delivery run writes with, built from the credentials
//! secret (`GITHUB_CREDENTIALS_SECRET_ARN`). A warm instance keeps its client
//! (the installation token, the targets' public keys) for as long as the
//! secret's `AWSCURRENT` version stays the same: each run reads the secret once,
//! at its first GitHub target, and builds a new client only when the version
//! changed (new credentials take effect at the next run, never mid-run).

use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use super::config::DeliveryConfig;
use crate::aws::Clients;
use crate::aws::secrets;
use crate::github::{GitHub, GitHubCredentials};

/// The process's client and the credentials version it was built from.
#[derive(Default)]
pub(super) struct GitHubSource {
    built: Mutex<Option<(String, Arc<GitHub>)>>,
}

/// One run's client: read once, at the first GitHub target; a failure fails
/// every GitHub target of the run with the same message.
pub(super) struct RunGitHub<'a> {
    source: &'a GitHubSource,
    client: OnceCell<Result<Arc<GitHub>, String>>,
}

impl GitHubSource {
    pub fn run(&self) -> RunGitHub<'_> {
        RunGitHub {
            source: self,
            client: OnceCell::new(),
        }
    }

    /// Every GitHub call the process made, for the figures.
    pub fn calls(&self) -> u64 {
        self.built
            .lock()
            .unwrap()
            .as_ref()
            .map_or(0, |(_, github)| github.calls())
    }
}

impl RunGitHub<'_> {
    pub async fn client(
        &self,
        clients: &Clients,
        config: &DeliveryConfig,
    ) -> Result<Arc<GitHub>, String> {
        self.client
            .get_or_init(|| self.build(clients, config))
            .await
            .clone()
    }

    async fn build(
        &self,
        clients: &Clients,
        config: &DeliveryConfig,
    ) -> Result<Arc<GitHub>, String> {
        let Some(arn) = &config.github_credentials else {
            return Err("no GitHub credentials: deploy the stack with GitHubCredentialsSecretArn (the function's GITHUB_CREDENTIALS_SECRET_ARN), a secret holding {\"token\": ...} or a GitHub App's app_id, installation_id and private_key".into());
        };
        let (version, text) = secrets::current_text(clients, arn)
            .await
            .map_err(|error| format!("could not read the GitHub credentials secret: {error}"))?;
        if let Some((built_from, github)) = self.source.built.lock().unwrap().as_ref()
            && *built_from == version
        {
            return Ok(github.clone());
        }
        let credentials = GitHubCredentials::from_json(text.expose()).map_err(|error| {
            format!("the GitHub credentials secret {arn} is not usable: {error}")
        })?;
        let github = Arc::new(GitHub::new(config.github_api.clone(), credentials));
        tracing::info!(
            credentials = %github.describe_credentials(),
            api = config.github_api.as_str(),
            "read the GitHub credentials"
        );
        *self.source.built.lock().unwrap() = Some((version, github.clone()));
        Ok(github)
    }
}
