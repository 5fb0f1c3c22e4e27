//! The one place a report branches on its scope: the caller's own account
//! (the outputs exactly as SPEC 9 has them), or several accounts (`--org`,
//! `--accounts`, the organization's daily audit: every row, key and finding
//! names its account, and the accounts are listed). `keyrot status`, `keyrot
//! audit` and the daily audit all go through [`audit_scope`] and
//! [`status_scope`].

use std::sync::Mutex;

use super::ReportError;
use super::accounts::{AccountOptions, AccountRow, Member, each_account, settle};
use super::audit::audit;
use super::findings::{AuditReport, Finding, FindingKind, KeyRow};
use super::reader::Reader;
use super::settings::{AuditOptions, StatusOptions};
use super::status::{StatusRow, StatusSummary, status};
use crate::aws::Clients;

/// Which accounts a run reads.
#[derive(Debug, Clone)]
pub enum Scope {
    /// The caller's own account, with the caller's credentials.
    Account,
    /// Several accounts, each through its member role (the caller's own with
    /// the caller's credentials).
    Accounts(AccountOptions),
}

impl Scope {
    /// Several accounts when the options name any (`--org` or `--accounts`),
    /// else the caller's own.
    pub fn of(options: AccountOptions) -> Self {
        if options.org || !options.accounts.is_empty() {
            Self::Accounts(options)
        } else {
            Self::Account
        }
    }

    /// How the run reads users that secrets name in other accounts: through
    /// their member role across accounts; through the secret's `RoleArn`, as
    /// the rotation does, in a single account.
    pub fn reader(&self) -> Option<Reader> {
        match self {
            Self::Account => None,
            Self::Accounts(options) => Some(options.reader()),
        }
    }

    /// Whether the outputs name each item's account and list the accounts.
    pub fn is_multi_account(&self) -> bool {
        matches!(self, Self::Accounts(_))
    }
}

/// Audits the scope; every key goes to `emit` as it is read, and `progress`
/// hears of every page of users read (and in which account, across several).
pub async fn audit_scope(
    clients: &Clients,
    scope: &Scope,
    options: &AuditOptions,
    mut emit: impl FnMut(KeyRow) + Send,
    progress: impl Fn(Option<&Member>, u64) + Send + Sync,
) -> Result<ScopeAudit, ReportError> {
    match scope {
        Scope::Account => Ok(ScopeAudit {
            report: audit(clients, options, &mut emit, |n| progress(None, n)).await?,
            accounts: Vec::new(),
        }),
        Scope::Accounts(accounts) => {
            audit_accounts(clients, accounts, options, emit, progress).await
        }
    }
}

/// Every secret's state in the scope, each row to `emit` as it is made.
pub async fn status_scope(
    clients: &Clients,
    scope: &Scope,
    options: &StatusOptions,
    mut emit: impl FnMut(StatusRow) + Send,
) -> Result<ScopeStatus, ReportError> {
    match scope {
        Scope::Account => Ok(ScopeStatus {
            summary: status(clients, options, &mut emit).await?,
            accounts: Vec::new(),
        }),
        Scope::Accounts(accounts) => status_accounts(clients, accounts, options, emit).await,
    }
}

/// What a run over several accounts found: the accounts, and the audit's
/// totals with every finding naming its account.
#[derive(Debug, Default)]
pub struct ScopeAudit {
    pub accounts: Vec<AccountRow>,
    pub report: AuditReport,
}

/// `keyrot audit --org` / `--accounts`: audits the accounts, `concurrency` at a
/// time, each through its own clients; every key goes to `emit` as it is read,
/// naming its account. An account that cannot be read is a row and an
/// `account-unreachable` finding, and the run goes on.
async fn audit_accounts(
    clients: &Clients,
    accounts: &AccountOptions,
    options: &AuditOptions,
    emit: impl FnMut(KeyRow) + Send,
    progress: impl Fn(Option<&Member>, u64) + Send + Sync,
) -> Result<ScopeAudit, ReportError> {
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
                |n| progress(Some(&member), n),
            )
            .await
        })
        .await?;
    let mut total = ScopeAudit {
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
pub struct ScopeStatus {
    pub accounts: Vec<AccountRow>,
    pub summary: StatusSummary,
}

/// `keyrot status --org` / `--accounts`: every account's secrets, as
/// [`audit_accounts`] reads the accounts.
async fn status_accounts(
    clients: &Clients,
    accounts: &AccountOptions,
    options: &StatusOptions,
    emit: impl FnMut(StatusRow) + Send,
) -> Result<ScopeStatus, ReportError> {
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
    let mut total = ScopeStatus {
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
