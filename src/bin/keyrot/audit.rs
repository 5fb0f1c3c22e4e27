//! `keyrot audit`: every access key of every IAM user (under `--path`), the
//! secret that manages it, and the findings a compliance job fails on (SPEC
//! 9); across accounts with `--org` or `--accounts` (SPEC 12).

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use iam_key_rotation::Clients;
use iam_key_rotation::report::settings::{
    MAX_KEY_AGE_DAYS, REPORT_WAIT_AT_A_TERMINAL, STUCK_AFTER_MINUTES, USER_PATH, grace_max_hours,
    parse_grace_max_hours,
};
use iam_key_rotation::report::{AccountRow, AuditOptions, AuditReport, KeyRow, Scope, audit_scope};

use crate::accounts::{AccountArgs, print_accounts, print_table};
use crate::output::{AccountProgress, Format, Progress, Streamed, days, report_unreadable, when};
use crate::{FINDINGS, Failure};

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    accounts: AccountArgs,
    /// An Active key older than this many days that no secret manages is a finding.
    #[arg(long, default_value_t = MAX_KEY_AGE_DAYS)]
    max_age_days: f64,
    /// Only users under this IAM path.
    #[arg(long, default_value = USER_PATH)]
    path: String,
    /// A rotation pending for longer than this is stuck.
    #[arg(long, default_value_t = STUCK_AFTER_MINUTES)]
    stuck_after_minutes: u64,
    /// Two Active keys of one secret are a grace period (listed as exempt, not
    /// counted) until this many hours after AWSCURRENT moved: the function's
    /// GRACE_MAX_HOURS.
    #[arg(long, default_value_t = grace_max_hours(), value_parser = hours)]
    grace_max_hours: f64,
}

/// `--grace-max-hours`, read as the function reads its `GRACE_MAX_HOURS`.
fn hours(value: &str) -> Result<f64, String> {
    parse_grace_max_hours(value).map(|grace| grace.as_secs_f64() / 3600.0)
}

pub async fn run(clients: &Clients, args: AuditArgs, format: Format) -> Result<ExitCode, Failure> {
    let options = AuditOptions {
        max_age_days: args.max_age_days,
        path: args.path,
        stuck_after: Duration::from_secs(args.stuck_after_minutes * 60),
        report_wait: REPORT_WAIT_AT_A_TERMINAL,
        grace_max: Duration::from_secs_f64(args.grace_max_hours * 3600.0),
    };
    let scope = args.accounts.scope();
    let mut output = AuditOutput::new(format, &scope);
    let (users, accounts) = (
        Progress::new(
            format.shows_progress() && !scope.is_multi_account(),
            "users read",
        ),
        AccountProgress::new(format.shows_progress() && scope.is_multi_account()),
    );
    let audited = audit_scope(
        clients,
        &scope,
        &options,
        |key| output.key(key),
        |member, n| match member {
            Some(member) => accounts.inc(member, n),
            None => users.inc(n),
        },
    )
    .await?;
    users.finish();
    accounts.finish();
    output.finish(&audited.report, &audited.accounts);
    let code = report_unreadable("users", &audited.report.unreadable);
    if code != ExitCode::SUCCESS {
        return Ok(code);
    }
    Ok(if audited.report.counted().next().is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(FINDINGS)
    })
}

/// Keys streamed as JSON (findings, and across accounts the accounts, follow
/// at the end), or a table.
struct AuditOutput {
    keys: Streamed<KeyRow>,
    multi_account: bool,
}

impl AuditOutput {
    fn new(format: Format, scope: &Scope) -> Self {
        Self {
            keys: Streamed::new(format, "{\"keys\": ["),
            multi_account: scope.is_multi_account(),
        }
    }

    fn key(&mut self, key: KeyRow) {
        self.keys.push(key);
    }

    fn finish(self, report: &AuditReport, accounts: &[AccountRow]) {
        let findings = serde_json::to_string_pretty(&report.findings).expect("plain data");
        let Some(mut rows) = self.keys.finish() else {
            if self.multi_account {
                let accounts = serde_json::to_string_pretty(accounts).expect("plain data");
                println!(", \"findings\": {findings}, \"accounts\": {accounts}}}");
            } else {
                println!(", \"findings\": {findings}}}");
            }
            return;
        };
        if self.multi_account {
            print_accounts(accounts);
            rows.sort_by(|a, b| a.account.cmp(&b.account));
        }
        print_keys(&rows, self.multi_account);
        println!(
            "\n{} users, {} access keys, {} findings",
            report.users,
            report.keys,
            report.counted().count()
        );
        for finding in &report.findings {
            println!(
                "  {}{}{} {}{}: {}",
                if finding.exempt { "(exempt) " } else { "" },
                finding
                    .account
                    .as_deref()
                    .map(|account| format!("{account} "))
                    .unwrap_or_default(),
                finding.kind,
                finding.user.as_deref().unwrap_or("-"),
                finding
                    .access_key_id
                    .as_deref()
                    .map(|k| format!(" {k}"))
                    .unwrap_or_default(),
                finding.detail
            );
        }
    }
}

fn print_keys(rows: &[KeyRow], multi_account: bool) {
    print_table(
        &[
            "USER",
            "ACCESS KEY",
            "STATUS",
            "AGE (d)",
            "LAST USED",
            "MANAGED BY",
        ],
        rows,
        |key| {
            vec![
                key.user.clone(),
                key.access_key_id.clone(),
                key.status.to_string(),
                days(key.age_days),
                when(&key.last_used),
                key.managed_by.clone().unwrap_or_else(|| "-".into()),
            ]
        },
        multi_account.then_some(|key: &KeyRow| (&key.account, &key.account_name)),
    );
}
