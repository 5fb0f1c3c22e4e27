//! STS: whose credentials these are (`GetCallerIdentity`), whether an access
//! key authenticates and as whom, and sessions of another account's role
//! (`AssumeRole`), for the rotation's users of other accounts and for
//! `keyrot --org`'s member accounts alike.

use aws_sdk_iam::config::Credentials;
use aws_sdk_sts::error::ProvideErrorMetadata;

use super::error::{AwsError, is_credentials_rejected};
use super::iam::Iam;
use super::{Clients, Session};
use crate::model::user::is_name_char;
use crate::sensitive::Sensitive;

/// STS's longest session name.
const MAX_SESSION_NAME_LEN: usize = 64;

/// What AWS said of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The key works and belongs to this ARN.
    Authenticated { arn: String },
    /// AWS does not (yet) accept the key: what it answers while a new key
    /// propagates, and for an Inactive or deleted key.
    Rejected { code: String },
}

/// Calls `GetCallerIdentity` signed with the key: a successful call needs no
/// permission, so it shows the key is valid, and the ARN it returns shows
/// whose it is. The client is derived from the process's own STS client so it
/// keeps the region, endpoint and retry settings (and its connection), with
/// only the credentials replaced. A failure names `secret_arn` and `user`.
pub async fn authenticate(
    clients: &Clients,
    key_id: &str,
    secret_access_key: &Sensitive,
    secret_arn: &str,
    user: &str,
) -> Result<Verdict, AwsError> {
    let credentials = Credentials::new(
        key_id,
        secret_access_key.expose(),
        None,
        None,
        "iam-key-rotation-key-under-test",
    );
    let config = clients
        .sts
        .config()
        .to_builder()
        .credentials_provider(credentials)
        .build();
    let result = aws_sdk_sts::Client::from_conf(config)
        .get_caller_identity()
        .send()
        .await;
    match result {
        Ok(output) => Ok(Verdict::Authenticated {
            arn: output.arn().unwrap_or_default().to_string(),
        }),
        Err(error) => match error.code() {
            Some(code) if is_credentials_rejected(code) => Ok(Verdict::Rejected {
                code: code.to_string(),
            }),
            _ => Err(AwsError::from_sdk("GetCallerIdentity", key_id, &error)
                .about(secret_arn, Some(user))),
        },
    }
}

/// Whose credentials the clients hold: the caller's account and partition.
#[derive(Debug, Clone)]
pub struct Caller {
    pub account: String,
    pub partition: String,
}

pub async fn caller(clients: &Clients) -> Result<Caller, AwsError> {
    let identity = clients
        .sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|error| AwsError::from_sdk("GetCallerIdentity", "", &error))?;
    let arn = identity.arn().unwrap_or_default();
    Ok(Caller {
        account: identity.account().unwrap_or_default().to_string(),
        partition: crate::arn::partition_of(arn).unwrap_or("aws").to_string(),
    })
}

/// A session of a role: its ARN, the session's name (as CloudTrail shows it
/// in the role's account), its length, and the external id the role's trust
/// policy may require.
#[derive(Debug, Clone)]
pub struct RoleSession<'a> {
    pub role_arn: &'a str,
    pub name: String,
    pub seconds: i32,
    pub external_id: Option<&'a str>,
}

impl<'a> RoleSession<'a> {
    /// A session named `name` (cut to the characters and length STS accepts).
    pub fn new(role_arn: &'a str, name: &str, seconds: i32) -> Self {
        Self {
            role_arn,
            name: session_name(name),
            seconds,
            external_id: None,
        }
    }

    pub fn with_external_id(self, external_id: Option<&'a str>) -> Self {
        Self {
            external_id,
            ..self
        }
    }
}

/// `name` in the characters and length STS accepts for a session name.
fn session_name(name: &str) -> String {
    name.chars()
        .map(|c| if is_name_char(c) { c } else { '-' })
        .take(MAX_SESSION_NAME_LEN)
        .collect()
}

/// The one `sts:AssumeRole`: credentials of a session of the role. A failure's
/// context is the role.
async fn assume_role(
    clients: &Clients,
    session: &RoleSession<'_>,
) -> Result<Credentials, AwsError> {
    let output = clients
        .sts
        .assume_role()
        .role_arn(session.role_arn)
        .role_session_name(&session.name)
        .duration_seconds(session.seconds)
        .set_external_id(session.external_id.map(str::to_string))
        .send()
        .await
        .map_err(|error| AwsError::from_sdk_unadvised("AssumeRole", session.role_arn, &error))?;
    let Some(credentials) = output.credentials() else {
        return Err(AwsError::new(
            "AssumeRole",
            session.role_arn,
            "InvalidResponse",
            "the response holds no credentials".into(),
        ));
    };
    Ok(Credentials::new(
        credentials.access_key_id(),
        credentials.secret_access_key(),
        Some(credentials.session_token().to_string()),
        std::time::SystemTime::try_from(*credentials.expiration()).ok(),
        "iam-key-rotation-assumed-role",
    ))
}

/// IAM acting as a session of the role: derived from the clients' own IAM
/// client, so it keeps its settings (and any interceptor).
pub async fn iam_as(clients: &Clients, session: &RoleSession<'_>) -> Result<Iam, AwsError> {
    let credentials = assume_role(clients, session).await?;
    let config = clients
        .iam
        .config()
        .to_builder()
        .credentials_provider(credentials)
        .build();
    Ok(Iam(aws_sdk_iam::Client::from_conf(config)))
}

/// A session of another account's delivery role, for the delivery's clients
/// there (`ssm::Ssm`, `secrets::SecretCopies`). A failure's context is the role,
/// unadvised: the delivery job says what to deploy.
pub async fn delivery_session(
    clients: &Clients,
    session: &RoleSession<'_>,
) -> Result<Session, AwsError> {
    Ok(Session(assume_role(clients, session).await?))
}

/// Every client acting as a session of the role, in `account`.
pub async fn clients_as(
    clients: &Clients,
    account: &str,
    session: &RoleSession<'_>,
) -> Result<Clients, AwsError> {
    let credentials = assume_role(clients, session).await?;
    Ok(clients.in_account(account, credentials))
}
