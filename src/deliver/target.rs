//! Writing one target and seeing that the write took (SPEC 14): GitHub Actions
//! secrets sealed to the target's public key and verified by their
//! `updated_at`; SSM SecureString parameters, overwritten and verified by
//! their version (read without decryption); a copy in another Secrets Manager
//! secret, written as the version with the source's id (a retry is the same
//! version) and verified by its `AWSCURRENT` label. Every write is idempotent,
//! so a run that dies after any call is repaired by writing again.
//!
//! A target in another account is reached through that account's delivery
//! role (`DELIVERY_ROLE_NAME`), assumed at most once per account per run.

use std::collections::HashMap;
use std::time::Instant;

use tokio::sync::Mutex;

use super::Run;
use crate::aws::Session;
use crate::aws::error::AwsError;
use crate::aws::secrets::SecretCopies;
use crate::aws::ssm::Ssm;
use crate::aws::sts::{RoleSession, delivery_session};
use crate::model::delivery_target::{
    GitHubTarget, SSM_ACCESS_KEY_ID, SSM_SECRET_ACCESS_KEY, SSM_SMTP_PASSWORD,
    SecretsManagerTarget, SsmTarget, Target,
};
use crate::model::secret::Secret;
use crate::model::secret_value::SecretValue;
use crate::sensitive::Sensitive;

/// STS's shortest session: a run lasts minutes at most.
const SESSION_SECONDS: i32 = 900;

/// What a target receives: the current version's key (and SMTP password), and
/// the whole value for a copy.
pub(super) struct Payload<'a> {
    pub version: &'a str,
    pub value: &'a SecretValue,
    pub key_id: &'a str,
    pub secret_access_key: Sensitive,
    pub smtp_password: Option<Sensitive>,
}

/// Sessions of other accounts' delivery roles, one per account per run (a
/// refusal too, so a missing role costs one `AssumeRole`, not one per target).
#[derive(Default)]
pub(super) struct Sessions(Mutex<HashMap<String, Result<Session, String>>>);

/// Writes `target` and verifies it, stopping its waits at `stop_by`.
pub(super) async fn write(
    run: &Run<'_>,
    secret: &Secret,
    target: &Target,
    payload: &Payload<'_>,
    stop_by: Option<Instant>,
) -> Result<(), String> {
    match target {
        Target::GitHub(github) => write_github(run, github, payload, stop_by).await,
        Target::Ssm(ssm) => write_ssm(run, secret, ssm, payload).await,
        Target::SecretsManager(copy) => write_copy(run, secret, copy, payload).await,
    }
}

async fn write_github(
    run: &Run<'_>,
    target: &GitHubTarget,
    payload: &Payload<'_>,
    stop_by: Option<Instant>,
) -> Result<(), String> {
    let github = run.github.client(run.clients, run.config).await?;
    let key_id = Sensitive::new(payload.key_id);
    let mut secrets = vec![
        (target.names.access_key_id.as_str(), &key_id),
        (
            target.names.secret_access_key.as_str(),
            &payload.secret_access_key,
        ),
    ];
    if let (Some(name), Some(password)) = (
        target.names.smtp_password(payload.smtp_password.is_some()),
        &payload.smtp_password,
    ) {
        secrets.push((name, password));
    }
    let delivered = github
        .deliver(&target.scope, &secrets, stop_by)
        .await
        .map_err(|error| error.to_string())?;
    tracing::debug!(calls = delivered.calls, "GitHub calls for the target");
    Ok(())
}

async fn write_ssm(
    run: &Run<'_>,
    secret: &Secret,
    target: &SsmTarget,
    payload: &Payload<'_>,
) -> Result<(), String> {
    let session = run.session(secret, target.account.as_deref()).await?;
    let ssm = Ssm::new(run.clients, &target.region, session.as_ref());
    let key_id = Sensitive::new(payload.key_id);
    let mut parameters = vec![
        (target.parameter(SSM_ACCESS_KEY_ID), &key_id),
        (
            target.parameter(SSM_SECRET_ACCESS_KEY),
            &payload.secret_access_key,
        ),
    ];
    if let Some(password) = &payload.smtp_password {
        parameters.push((target.parameter(SSM_SMTP_PASSWORD), password));
    }
    let mut written = Vec::new();
    for (name, value) in &parameters {
        let version = ssm.put_secure(name, value).await.map_err(aws_failure)?;
        written.push((name, version));
    }
    for (name, version) in written {
        match ssm.version(name).await.map_err(aws_failure)? {
            Some(seen) if seen == version => {}
            seen => {
                return Err(format!(
                    "parameter {name} was written as version {version} but reads as {}: something else writes it too; the next run writes it again",
                    seen.map_or("missing".to_string(), |seen| format!("version {seen}"))
                ));
            }
        }
    }
    Ok(())
}

async fn write_copy(
    run: &Run<'_>,
    secret: &Secret,
    target: &SecretsManagerTarget,
    payload: &Payload<'_>,
) -> Result<(), String> {
    if target.arn == secret.arn {
        return Err("the target is the secret itself: a copy must go to another secret".into());
    }
    let prefix = &run.config.secret_name_prefix;
    if Some(target.account.as_str()) == secret.account_id()
        && !prefix.is_empty()
        && crate::arn::name_of(&target.arn).starts_with(prefix.as_str())
    {
        return Err(format!(
            "the target is a secret under SECRET_NAME_PREFIX {prefix:?}, which this stack rotates: a copy never overwrites a rotated secret; copy into one under DeliverySecretPrefix"
        ));
    }
    let session = run.session(secret, Some(&target.account)).await?;
    let copies = SecretCopies::new(run.clients, &target.region, session.as_ref());
    // With no SECRET_NAME_PREFIX every secret of the account may be a rotated
    // one, whatever DeliverySecretPrefix says: ask the target itself.
    if prefix.is_empty()
        && Some(target.account.as_str()) == secret.account_id()
        && copies.is_rotated(&target.arn).await.map_err(aws_failure)?
    {
        return Err(
            "the target is a secret a rotation function rotates: a copy never overwrites a rotated secret; copy into one under DeliverySecretPrefix that nothing rotates".into(),
        );
    }
    copies
        .put(
            &target.arn,
            payload.version,
            &payload.value.to_secret_string(),
        )
        .await
        .map_err(aws_failure)?;
    match copies
        .current_version(&target.arn)
        .await
        .map_err(aws_failure)?
    {
        Some(current) if current == payload.version => Ok(()),
        current => Err(format!(
            "the copy's AWSCURRENT is {} rather than version {} just written: someone moved its label, or a version of that id was there before with another value; move AWSCURRENT of {} to {} by hand or delete that version",
            current.unwrap_or_else(|| "on no version".into()),
            payload.version,
            target.arn,
            payload.version
        )),
    }
}

fn aws_failure(error: AwsError) -> String {
    error.to_string()
}

impl Run<'_> {
    /// The session to act in `account` with: none for the secret's own account
    /// (the function's), else one of the account's delivery role.
    async fn session(
        &self,
        secret: &Secret,
        account: Option<&str>,
    ) -> Result<Option<Session>, String> {
        let Some(account) = account.filter(|account| Some(*account) != secret.account_id()) else {
            return Ok(None);
        };
        let mut sessions = self.sessions.0.lock().await;
        if let Some(known) = sessions.get(account) {
            return known.clone().map(Some);
        }
        let partition = crate::arn::partition_of(&secret.arn).unwrap_or("aws");
        let role_arn = format!(
            "arn:{partition}:iam::{account}:role/{}",
            self.config.delivery_role_name
        );
        let session = delivery_session(
            self.clients,
            &RoleSession::new(&role_arn, "iam-key-deliver", SESSION_SECONDS),
        )
        .await
        .map_err(|error| {
            format!(
                "could not assume the delivery role {role_arn} ({}: {}): deploy deploy/member-account.yaml in account {account} with CreateDeliveryRole=true and DeliveryFunctionRoleArn set to this stack's DeliveryFunctionRoleArn output (the role's name is DELIVERY_ROLE_NAME, the template's DeliveryRoleName)",
                error.code, error.message
            )
        });
        sessions.insert(account.to_string(), session.clone());
        session.map(Some)
    }
}
