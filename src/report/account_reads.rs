//! What `keyrot status` reads once for a whole account when it has many
//! secrets to show (SPEC 9, issue 31: at most 1.5 calls per secret): every
//! user with its tags, 1,000 at a time (`GetAccountAuthorizationDetails`), and
//! every key's last use (IAM's credential report). A row then costs one
//! `ListAccessKeys`, where alone it costs a `GetUser` and a
//! `GetAccessKeyLastUsed` besides. For a handful of secrets the per-secret
//! calls are cheaper than reading every user of the account, so these reads
//! are made only from [`ACCOUNT_READS_FROM`] secrets up.
//!
//! Either read may be refused (a narrower operator role) or slow (IAM makes
//! the report in seconds to minutes): status then reads each secret's user or
//! last use by itself, as it would for a few secrets, and says nothing of it.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_iam::primitives::DateTime;
use tracing::debug;

use crate::aws::Clients;
use crate::aws::credential_report::{CredentialReport, Fetched};
use crate::model::user::{AccessKey, IamUser};

/// From how many secrets of a listing's first page the account is read whole.
pub const ACCOUNT_READS_FROM: usize = 25;
/// How long status waits for IAM's credential report before it asks each key
/// instead: an operator at a terminal would rather not wait.
const REPORT_WAIT: Duration = Duration::from_secs(10);

/// The account's users (by name) and keys' last uses, as far as they could
/// be read.
#[derive(Debug, Default)]
pub struct AccountReads {
    users: Option<HashMap<String, IamUser>>,
    report: Option<CredentialReport>,
}

impl AccountReads {
    pub async fn fetch(clients: &Clients) -> Self {
        Self {
            users: every_user(clients).await,
            report: match CredentialReport::fetch(&clients.iam(), REPORT_WAIT).await {
                Ok(Fetched::Ready(report)) => Some(report),
                Ok(Fetched::NotReady { state }) => {
                    debug!(
                        state,
                        "the credential report is not ready: each key's last use is asked of IAM"
                    );
                    None
                }
                Err(error) => {
                    debug!(error = %error, "no credential report: each key's last use is asked of IAM");
                    None
                }
            },
        }
    }

    /// The user with its tags, if the account's users were read and it is
    /// one of them (a user made since is read by itself).
    pub fn user(&self, name: &str) -> Option<&IamUser> {
        self.users.as_ref()?.get(name)
    }

    /// The key's last use from the report (`Some(None)`: never used), or
    /// `None` when the report does not know the key (newer than the report).
    pub fn last_used(&self, user: &str, key: &AccessKey) -> Option<Option<DateTime>> {
        self.report.as_ref()?.last_used(user, key.created.as_ref()?)
    }
}

async fn every_user(clients: &Clients) -> Option<HashMap<String, IamUser>> {
    let mut users = HashMap::new();
    let mut pages = clients.iam().users("/");
    loop {
        match pages.next().await {
            Ok(Some(page)) => users.extend(page.into_iter().map(|user| (user.name.clone(), user))),
            Ok(None) => return Some(users),
            Err(error) => {
                debug!(error = %error, "the account's users could not be read at once: each secret's user is read by itself");
                return None;
            }
        }
    }
}
