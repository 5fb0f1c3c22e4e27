//! Delivery fixtures (SPEC 14): target tags on a secret, as an administrator
//! writes them; GitHub credentials in a secret of their own; the delivery
//! function's environment; and what a consumer reads back from each kind of
//! target (GitHub's runners through the stand-in, SSM decrypted, a copy).

use aws_sdk_secretsmanager::types::Tag;
use serde_json::Value;

use crate::github_standin::GitHubStandIn;
use crate::world::{World, unique};
use crate::{REGION, record_issued_secret};

impl World {
    /// Sets tags on a secret, as an administrator (or, for a key that is not
    /// reserved, anyone who may tag it) would.
    pub async fn tag_secret(&self, secret_arn: &str, tags: &[(&str, &str)]) {
        let tags: Vec<Tag> = tags
            .iter()
            .map(|(key, value)| Tag::builder().key(*key).value(*value).build())
            .collect();
        self.secrets()
            .tag_resource()
            .secret_id(secret_arn)
            .set_tags(Some(tags))
            .send()
            .await
            .unwrap();
    }

    /// The secret's tags.
    pub async fn secret_tags(&self, secret_arn: &str) -> Vec<(String, String)> {
        self.secrets()
            .describe_secret()
            .secret_id(secret_arn)
            .send()
            .await
            .unwrap()
            .tags()
            .iter()
            .map(|tag| {
                (
                    tag.key().unwrap_or_default().to_string(),
                    tag.value().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    /// The value of one of the secret's tags.
    pub async fn secret_tag(&self, secret_arn: &str, key: &str) -> Option<String> {
        self.secret_tags(secret_arn)
            .await
            .into_iter()
            .find(|(found, _)| found == key)
            .map(|(_, value)| value)
    }

    /// A secret holding GitHub credentials (`{"token": ...}` or an App's
    /// document), outside any rotated prefix; its ARN. The token and key are
    /// recorded for the secret scan.
    pub async fn github_credentials(&self, document: &Value) -> String {
        for field in ["token", "private_key"] {
            if let Some(secret) = document[field].as_str() {
                record_issued_secret(secret);
            }
        }
        self.create_secret(&unique("github/credentials"), document)
            .await
    }

    /// An SSM parameter decrypted, as a consumer reads it; `None` if absent.
    pub async fn parameter(&self, name: &str) -> Option<String> {
        self.clients
            .ssm
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
            .ok()?
            .parameter()?
            .value()
            .map(str::to_string)
    }

    /// The `AWSCURRENT` value of a secret and its version id.
    pub async fn current_value(&self, secret_arn: &str) -> (String, Value) {
        let output = self
            .secrets()
            .get_secret_value()
            .secret_id(secret_arn)
            .version_stage("AWSCURRENT")
            .send()
            .await
            .unwrap();
        (
            output.version_id().unwrap().to_string(),
            serde_json::from_str(output.secret_string().unwrap()).unwrap(),
        )
    }
}

/// The delivery function's environment for a stand-in and a credentials
/// secret (and a prefix: the scheduled run examines only it).
pub fn deliver_env(
    github: &GitHubStandIn,
    credentials_arn: &str,
    prefix: &str,
) -> Vec<(String, String)> {
    vec![
        ("GITHUB_API_URL".into(), github.api_url()),
        (
            "GITHUB_CREDENTIALS_SECRET_ARN".into(),
            credentials_arn.into(),
        ),
        ("SECRET_NAME_PREFIX".into(), prefix.into()),
        ("AWS_REGION".into(), REGION.into()),
    ]
}

/// `(&str, &str)` pairs of an owned environment, for `Function::start_*`.
pub fn env_pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter()
        .map(|(key, value)| (key.as_str(), value.as_str()))
        .collect()
}
