//! Which accounts `keyrot --org` / `--accounts` and the organization audit read,
//! and the clients that read each one (SPEC 12).
//!
//! The caller's own account is read with the caller's credentials; every other
//! account through `sts:AssumeRole` into its member role (deployed by
//! `deploy/member-account.yaml`). An account whose role cannot be assumed is not
//! an error of the run: it is a row (`unreachable`, with what to deploy) and an
//! `account-unreachable` finding, and the others are read.

use std::sync::Mutex;

use futures::{StreamExt, stream};
use serde::Serialize;

use super::FleetError;
use super::audit::{AuditOptions, AuditReport, Finding, FindingKind, KeyRow, audit};
use super::status::{StatusOptions, StatusRow, StatusSummary, status};
use crate::aws::Clients;
use crate::aws::account::Reader;
use crate::aws_error::AwsError;
use crate::model::user::is_name_char;

/// The member role's default name, as the member template creates it.
pub const DEFAULT_MEMBER_ROLE: &str = "iam-key-rotation-audit";
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
    /// Whether the run covers accounts rather than the caller's one account:
    /// only then do the outputs gain `account` fields and the accounts list.
    pub fn is_multi_account(&self) -> bool {
        self.org || !self.accounts.is_empty()
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
) -> Result<(Vec<Member>, Vec<AccountRow>), FleetError> {
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
        let mut pages = clients
            .organizations()
            .list_accounts()
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|error| AwsError::from_sdk("ListAccounts", "", &error))?;
            for account in page.accounts() {
                let Some(id) = account.id() else { continue };
                let name = account.name().map(str::to_string);
                let state = account.state().map(|s| s.as_str().to_string()).or_else(|| {
                    #[allow(deprecated)]
                    account.status().map(|s| s.as_str().to_string())
                });
                match state.as_deref() {
                    Some("ACTIVE") | None => members.push(Member {
                        account: id.to_string(),
                        name,
                    }),
                    Some(other) => skip(
                        id.to_string(),
                        name,
                        format!("the account is {}", other.to_lowercase()),
                    ),
                }
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
            "excluded (--exclude-accounts)".into(),
        );
    }
    Ok((kept, skipped))
}

/// Whose credentials the run holds: the caller's account and partition.
#[derive(Debug, Clone)]
pub struct Caller {
    pub account: String,
    pub partition: String,
}

pub async fn caller(clients: &Clients) -> Result<Caller, FleetError> {
    let identity = clients
        .sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|error| AwsError::from_sdk("GetCallerIdentity", "", &error))?;
    let arn = identity.arn().unwrap_or_default();
    Ok(Caller {
        account: identity.account().unwrap_or_default().to_string(),
        partition: arn.split(':').nth(1).unwrap_or("aws").to_string(),
    })
}

/// The clients that read `member`: the caller's own for its own account, else
/// a session of the member role. `Err` is the unreachable row's detail: what
/// failed and what to deploy.
pub async fn clients_for(
    clients: &Clients,
    caller: &Caller,
    member: &Member,
    role_name: &str,
) -> Result<Clients, String> {
    if member.account == caller.account {
        return Ok(clients.clone());
    }
    let role_arn = format!(
        "arn:{}:iam::{}:role/{role_name}",
        caller.partition, member.account
    );
    let session: String = format!("keyrot@{}", caller.account)
        .chars()
        .map(|c| if is_name_char(c) { c } else { '-' })
        .collect();
    let output = clients
        .sts
        .assume_role()
        .role_arn(&role_arn)
        .role_session_name(session)
        .duration_seconds(SESSION_SECONDS)
        .send()
        .await
        .map_err(|error| {
            let error = AwsError::from_sdk("AssumeRole", &role_arn, &error);
            format!(
                "could not assume {role_arn} ({}: {}): deploy deploy/member-account.yaml to this account (a StackSet over the organization does it for every account) with CentralAccountId {}, or pass --member-role-name if the role has another name",
                error.code,
                error.message,
                caller.account
            )
        })?;
    let Some(credentials) = output.credentials() else {
        return Err(format!(
            "AssumeRole into {role_arn} returned no credentials"
        ));
    };
    let credentials = aws_sdk_iam::config::Credentials::new(
        credentials.access_key_id(),
        credentials.secret_access_key(),
        Some(credentials.session_token().to_string()),
        std::time::SystemTime::try_from(*credentials.expiration()).ok(),
        "keyrot-member-role",
    );
    Ok(clients.in_account(&member.account, credentials))
}

/// What a run over several accounts found: the accounts, and the audit's
/// totals with every finding naming its account.
#[derive(Debug, Default)]
pub struct AccountsAudit {
    pub accounts: Vec<AccountRow>,
    pub report: AuditReport,
}

/// `keyrot audit --org` / `--accounts`: audits the accounts, `concurrency` at a
/// time, each through its own clients; every key goes to `emit` as it is read,
/// naming its account. An account that cannot be read is a row and an
/// `account-unreachable` finding, and the run goes on.
pub async fn audit_accounts(
    clients: &Clients,
    accounts: &AccountOptions,
    options: &AuditOptions,
    emit: impl FnMut(KeyRow) + Send,
    progress: impl Fn(&Member, u64) + Send + Sync,
) -> Result<AccountsAudit, FleetError> {
    let emit = Mutex::new(emit);
    let (emit, progress) = (&emit, &progress);
    let (skipped, audits) =
        each_account(clients, accounts, |member_clients, member, _| async move {
            audit(
                &member_clients,
                options,
                |mut key| {
                    key.account = Some(member.account.clone());
                    key.account_name = member.name.clone();
                    (emit.lock().expect("emit"))(key);
                },
                |n| progress(&member, n),
            )
            .await
        })
        .await?;
    let mut total = AccountsAudit {
        accounts: skipped,
        report: AuditReport::default(),
    };
    for (member, audited) in audits {
        let read = audited.map(|report| {
            total.report.users += report.users;
            total.report.keys += report.keys;
            total
                .report
                .findings
                .extend(report.findings.into_iter().map(|mut finding| {
                    finding.account = Some(member.account.clone());
                    finding
                }));
            report.unreadable
        });
        let row = settle(member, read, &mut total.report.unreadable, "users");
        if let Some(detail) = &row.detail {
            total.report.findings.push(Finding {
                account: Some(row.account.clone()),
                kind: FindingKind::AccountUnreachable,
                user: None,
                access_key_id: None,
                detail: detail.clone(),
                exempt: false,
            });
        }
        total.accounts.push(row);
    }
    total.accounts.sort_by(|a, b| a.account.cmp(&b.account));
    // Accounts finish in any order: list findings by account, as the tables are.
    total
        .report
        .findings
        .sort_by(|a, b| (&a.account, &a.user).cmp(&(&b.account, &b.user)));
    Ok(total)
}

/// What `keyrot status --org` / `--accounts` found besides its rows.
#[derive(Debug, Default)]
pub struct AccountsStatus {
    pub accounts: Vec<AccountRow>,
    pub summary: StatusSummary,
}

/// `keyrot status --org` / `--accounts`: every account's secrets, as
/// [`audit_accounts`] reads the accounts.
pub async fn status_accounts(
    clients: &Clients,
    accounts: &AccountOptions,
    options: &StatusOptions,
    emit: impl FnMut(StatusRow) + Send,
) -> Result<AccountsStatus, FleetError> {
    let emit = Mutex::new(emit);
    let emit = &emit;
    let (skipped, results) = each_account(
        clients,
        accounts,
        |member_clients, member, scope| async move {
            // Users of other accounts are read through their member role from the
            // caller's account only (a member's audit role may assume nothing, so
            // in a member account only its own users are read), and only in the
            // accounts the run reads: this run's, unless the caller named them
            // (the fan-out, which reads one account per invocation).
            let options = StatusOptions {
                reader: options.reader.as_ref().map(|reader| Reader {
                    accounts: if member.account != scope.caller {
                        Vec::new()
                    } else if reader.accounts.is_empty() {
                        scope.accounts.clone()
                    } else {
                        reader.accounts.clone()
                    },
                    ..reader.clone()
                }),
                ..options.clone()
            };
            status(&member_clients, &options, |mut row| {
                row.account = Some(member.account.clone());
                row.account_name = member.name.clone();
                (emit.lock().expect("emit"))(row);
            })
            .await
        },
    )
    .await?;
    let mut total = AccountsStatus {
        accounts: skipped,
        summary: StatusSummary::default(),
    };
    for (member, read) in results {
        let read = read.map(|summary| {
            total.summary.secrets += summary.secrets;
            summary.unreadable
        });
        let row = settle(member, read, &mut total.summary.unreadable, "secrets");
        total.accounts.push(row);
    }
    total.accounts.sort_by(|a, b| a.account.cmp(&b.account));
    Ok(total)
}

/// What every account's job of a run knows of the run: the caller's account,
/// and the accounts it reads.
#[derive(Debug)]
struct Scope {
    caller: String,
    accounts: Vec<String>,
}

/// Runs `job` over every account to read, `concurrency` at a time, each with
/// the clients that read it; returns the rows of the accounts not read
/// (skipped) and each account's outcome, an unreachable account's being the
/// detail of its row.
async fn each_account<T, Job, Fut>(
    clients: &Clients,
    accounts: &AccountOptions,
    job: Job,
) -> Result<(Vec<AccountRow>, Vec<(Member, Result<T, String>)>), FleetError>
where
    Job: Fn(Clients, Member, std::sync::Arc<Scope>) -> Fut,
    Fut: std::future::Future<Output = Result<T, FleetError>>,
{
    let caller = caller(clients).await?;
    let (members, skipped) = members(clients, accounts).await?;
    let scope = std::sync::Arc::new(Scope {
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
                format!("{error}: give the member role the read permissions of deploy/member-account.yaml")
            }),
            Err(detail) => Err(detail),
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
fn settle(
    member: Member,
    read: Result<Vec<String>, String>,
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
        Err(detail) => (AccountState::Unreachable, Some(detail)),
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
