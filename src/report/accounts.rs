//! Which accounts `keyrot --org` / `--accounts` and the organization audit read,
//! the clients that read each one, and a job run over each (SPEC 12).
//!
//! The caller's own account is read with the caller's credentials; every other
//! account through `sts:AssumeRole` into its member role (deployed by
//! `deploy/member-account.yaml`). An account whose role cannot be assumed is not
//! an error of the run: it is a row (`unreachable`, with what to deploy) and an
//! `account-unreachable` finding, and the others are read.

use futures::{StreamExt, stream};
use serde::Serialize;

use super::ReportError;
use super::reader::Reader;
use crate::aws::Clients;
use crate::aws::organizations::list_accounts;
use crate::aws::sts::{Caller, RoleSession, caller, clients_as};

/// Each member session's length: an hour covers the audit of a large account.
const SESSION_SECONDS: i32 = 3600;

/// Which accounts to read.
#[derive(Debug, Clone)]
pub struct AccountOptions {
    /// Every `ACTIVE` account of the organization (`organizations:ListAccounts`).
    pub org: bool,
    /// These accounts (no Organizations call).
    pub accounts: Vec<String>,
    pub exclude: Vec<String>,
    pub member_role_name: String,
    /// Accounts read at once.
    pub concurrency: usize,
}

impl AccountOptions {
    /// How a run over these accounts reads users that secrets name in other
    /// accounts: through the same member role (the accounts the run reads are
    /// filled in as it runs).
    pub fn reader(&self) -> Reader {
        Reader {
            role_name: self.member_role_name.clone(),
            accounts: Vec::new(),
        }
    }
}

/// What became of one account (the `accounts` list of the JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AccountState {
    Read,
    /// The role could not be assumed, or a read was refused.
    Unreachable,
    /// Suspended, closed or excluded.
    Skipped,
}

impl AccountState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Unreachable => "unreachable",
            Self::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AccountRow {
    pub account: String,
    pub name: Option<String>,
    pub state: AccountState,
    pub detail: Option<String>,
}

/// One account to read.
#[derive(Debug, Clone)]
pub struct Member {
    pub account: String,
    pub name: Option<String>,
}

/// The accounts to read, and the rows of those that will not be (skipped).
/// Listing the organization failing is the run's error (exit 2).
pub async fn members(
    clients: &Clients,
    options: &AccountOptions,
) -> Result<(Vec<Member>, Vec<AccountRow>), ReportError> {
    let mut members = Vec::new();
    let mut skipped = Vec::new();
    let mut skip = |account: String, name: Option<String>, why: String| {
        skipped.push(AccountRow {
            account,
            name,
            state: AccountState::Skipped,
            detail: Some(why),
        })
    };
    if options.org {
        for account in list_accounts(clients).await? {
            match account.state.as_deref() {
                Some("ACTIVE") | None => members.push(Member {
                    account: account.id,
                    name: account.name,
                }),
                Some(other) => skip(
                    account.id,
                    account.name,
                    format!("the account is {}", other.to_lowercase()),
                ),
            }
        }
    } else {
        for id in &options.accounts {
            members.push(Member {
                account: id.clone(),
                name: None,
            });
        }
    }
    let (excluded, kept): (Vec<Member>, Vec<Member>) = members
        .into_iter()
        .partition(|member| options.exclude.contains(&member.account));
    for member in excluded {
        skip(
            member.account,
            member.name,
            "excluded (--exclude-accounts, or the function's EXCLUDE_ACCOUNTS)".into(),
        );
    }
    Ok((kept, skipped))
}

/// Why an account could not be read: its row's detail, with what to deploy
/// or grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreachable(pub String);

/// The clients that read `member`: the caller's own for its own account, else
/// a session of the member role.
pub async fn clients_for(
    clients: &Clients,
    caller: &Caller,
    member: &Member,
    role_name: &str,
) -> Result<Clients, Unreachable> {
    if member.account == caller.account {
        return Ok(clients.clone());
    }
    let role_arn = format!(
        "arn:{}:iam::{}:role/{role_name}",
        caller.partition, member.account
    );
    let session = RoleSession::new(
        &role_arn,
        &format!("keyrot@{}", caller.account),
        SESSION_SECONDS,
    );
    clients_as(clients, &member.account, &session)
        .await
        .map_err(|error| {
            Unreachable(format!(
                "could not assume {role_arn} ({}: {}): deploy deploy/member-account.yaml to this account (a StackSet over the organization does it for every account) with CentralAccountId {}, or name the role (--member-role-name, or the function's MEMBER_ROLE_NAME) if it has another name",
                error.code, error.message, caller.account
            ))
        })
}

/// What every account's job of a run knows of the run: the caller's account,
/// and the accounts it reads.
#[derive(Debug)]
pub(super) struct RunAccounts {
    pub caller: String,
    pub accounts: Vec<String>,
}

/// Runs `job` over every account to read, `concurrency` at a time, each with
/// the clients that read it; returns the rows of the accounts not read
/// (skipped) and each account's outcome.
pub(super) async fn each_account<T, Job, Fut>(
    clients: &Clients,
    accounts: &AccountOptions,
    job: Job,
) -> Result<(Vec<AccountRow>, Vec<(Member, Result<T, Unreachable>)>), ReportError>
where
    Job: Fn(Clients, Member, std::sync::Arc<RunAccounts>) -> Fut,
    Fut: std::future::Future<Output = Result<T, ReportError>>,
{
    let caller = caller(clients).await?;
    let (members, skipped) = members(clients, accounts).await?;
    let scope = std::sync::Arc::new(RunAccounts {
        caller: caller.account.clone(),
        accounts: members
            .iter()
            .map(|member| member.account.clone())
            .collect(),
    });
    let (job, caller, scope) = (&job, &caller, &scope);
    let outcomes = stream::iter(members.into_iter().map(|member| async move {
        let outcome = match clients_for(clients, caller, &member, &accounts.member_role_name).await
        {
            Ok(member_clients) => job(member_clients, member.clone(), scope.clone()).await.map_err(|error| {
                Unreachable(format!("{error}: give the member role the read permissions of deploy/member-account.yaml"))
            }),
            Err(unreachable) => Err(unreachable),
        };
        (member, outcome)
    }))
    .buffer_unordered(accounts.concurrency.max(1))
    .collect::<Vec<_>>()
    .await;
    Ok((skipped, outcomes))
}

/// An account's row from what reading it gave: the items it could not read
/// (kept in `unreadable`, naming the account), or why it could not be read.
pub(super) fn settle(
    member: Member,
    read: Result<Vec<String>, Unreachable>,
    unreadable: &mut Vec<String>,
    what: &str,
) -> AccountRow {
    let (state, detail) = match read {
        Ok(lines) => {
            let refused = partly_unreadable(&lines, what);
            unreadable.extend(
                lines
                    .into_iter()
                    .map(|line| format!("account {}: {line}", member.account)),
            );
            match refused {
                None => (AccountState::Read, None),
                Some(detail) => (AccountState::Unreachable, Some(detail)),
            }
        }
        Err(Unreachable(detail)) => (AccountState::Unreachable, Some(detail)),
    };
    AccountRow {
        account: member.account,
        name: member.name,
        state,
        detail,
    }
}

/// An account where some reads were refused is not "read" (SPEC 12): whoever
/// may deny the member role a read (a policy on the role, a permissions
/// boundary) could otherwise hide a user's keys from the audit while the
/// account looked covered. The detail names the first failure.
fn partly_unreadable(unreadable: &[String], what: &str) -> Option<String> {
    let first = unreadable.first()?;
    Some(format!(
        "{} {what} could not be read (first: {first}): give the member role the read permissions of deploy/member-account.yaml, and check no policy or permissions boundary denies them",
        unreadable.len()
    ))
}

/// `ID[,ID...]`: twelve digits each.
pub fn parse_account_ids(text: &str) -> Result<Vec<String>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(|id| {
            if id.len() == 12 && id.chars().all(|c| c.is_ascii_digit()) {
                Ok(id.to_string())
            } else {
                Err(format!("{id:?} is not an AWS account id (twelve digits)"))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_are_twelve_digits() {
        assert_eq!(
            parse_account_ids("111122223333, 444455556666").unwrap(),
            vec!["111122223333", "444455556666"]
        );
        assert!(parse_account_ids("1111").is_err());
        assert!(parse_account_ids("11112222333x").is_err());
    }
}
