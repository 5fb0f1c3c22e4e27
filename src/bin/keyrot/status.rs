//! `keyrot status`: one row per secret under the prefix, its state and the
//! fix (SPEC 9), as a check: exit 1 when any row needs a person; across
//! accounts with `--org` or `--accounts` (SPEC 12).

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use iam_key_rotation::Clients;
use iam_key_rotation::report::settings::{
    SECRET_NAME_PREFIX, STUCK_AFTER_MINUTES, parse_secret_prefix,
};
use iam_key_rotation::report::{
    AccountRow, AccountState, Scope, StatusOptions, StatusRow, management_account_warning,
    status_scope,
};

use crate::accounts::{AccountArgs, print_accounts, print_table};
use crate::output::{Format, Progress, Streamed, days, print_csv, report_unreadable, when};
use crate::{FINDINGS, Failure};

pub const EXAMPLES: &str = "\
Examples:
  keyrot status                                  # every secret under iam-keys/; exit 1 if one needs a person
  keyrot status -o json | jq -r '.[] | select(.state != \"ok\") | \"\\(.secret_name): \\(.fix)\"'
  keyrot status --prefix team-a/ -o csv > secrets.csv
  keyrot status --org                            # every account of the organization
  keyrot status > /dev/null || echo 'a secret needs a person'   # as a scheduled check";

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    accounts: AccountArgs,
    /// Only secrets whose name starts with this (the stack's SecretNamePrefix).
    #[arg(long, default_value = SECRET_NAME_PREFIX, value_parser = parse_secret_prefix)]
    prefix: String,
    /// Only secrets rotated by this function.
    #[arg(long)]
    function_arn: Option<String>,
    /// A rotation pending for longer than this is stuck.
    #[arg(long, default_value_t = STUCK_AFTER_MINUTES)]
    stuck_after_minutes: u64,
}

pub async fn run(clients: &Clients, args: StatusArgs, format: Format) -> Result<ExitCode, Failure> {
    let scope = args.accounts.scope();
    let prefix = args.prefix.clone();
    let filtered = args.function_arn.is_some();
    let options = StatusOptions {
        prefix: args.prefix,
        function_arn: args.function_arn,
        stuck_after: Duration::from_secs(args.stuck_after_minutes * 60),
        reader: scope.reader(),
        read_rotation_log: true,
    };
    let progress = Progress::new(format.shows_progress(), "secrets read");
    let mut output = StatusOutput::new(format, &scope);
    let mut needs_a_person = false;
    let read = status_scope(clients, &scope, &options, |row| {
        progress.inc(1);
        needs_a_person |= row.state.needs_a_person();
        output.row(row);
    })
    .await?;
    progress.finish();
    output.finish(&read.accounts);
    if scope.is_multi_account()
        && !read
            .accounts
            .iter()
            .any(|account| account.state == AccountState::Read)
    {
        return Err(Failure::ReadNothing(format!(
            "read no account ({} listed, none read): check --accounts, --exclude-accounts and the accounts table above",
            read.accounts.len()
        )));
    }
    if read.summary.secrets == 0 {
        let only = if filtered {
            " rotated by --function-arn"
        } else {
            ""
        };
        return Err(Failure::ReadNothing(format!(
            "read no secret under prefix {prefix:?}{only}: check --prefix (the stack's SecretNamePrefix), --region and the account your credentials are for (aws sts get-caller-identity)"
        )));
    }
    if let Some(warning) = management_account_warning(clients).await {
        errln!("keyrot: warning: {warning}");
    }
    let code = report_unreadable("secrets", &read.summary.unreadable);
    if code != ExitCode::SUCCESS {
        return Ok(code);
    }
    // An unreachable account's secrets are unknown: not a clean bill.
    let unreachable = read
        .accounts
        .iter()
        .any(|account| account.state == AccountState::Unreachable);
    Ok(if needs_a_person || unreachable {
        ExitCode::from(FINDINGS)
    } else {
        ExitCode::SUCCESS
    })
}

/// A JSON array (in an object with the accounts, across accounts), or a
/// table and the fixes, or CSV.
struct StatusOutput {
    rows: Streamed<StatusRow>,
    format: Format,
    multi_account: bool,
}

impl StatusOutput {
    fn new(format: Format, scope: &Scope) -> Self {
        let multi_account = scope.is_multi_account();
        let opening = if multi_account {
            "{\"secrets\": ["
        } else {
            "["
        };
        Self {
            rows: Streamed::new(format, opening),
            format,
            multi_account,
        }
    }

    fn row(&mut self, row: StatusRow) {
        self.rows.push(row);
    }

    fn finish(self, accounts: &[AccountRow]) {
        let Some(mut rows) = self.rows.finish() else {
            if self.multi_account {
                let accounts = serde_json::to_string_pretty(accounts).expect("plain data");
                outln!(", \"accounts\": {accounts}}}");
            } else {
                outln!();
            }
            return;
        };
        if self.multi_account {
            rows.sort_by(|a, b| a.account.cmp(&b.account));
        }
        if self.format == Format::Csv {
            print_csv(&rows);
            return;
        }
        if self.multi_account {
            print_accounts(accounts);
        }
        if rows.is_empty() {
            outln!("No secrets found.");
            return;
        }
        print_rows(&rows, self.multi_account);
        let fixes: Vec<&StatusRow> = rows.iter().filter(|r| r.fix.is_some()).collect();
        if !fixes.is_empty() {
            outln!("\nTo fix:");
            for row in fixes {
                outln!(
                    "  {} ({}): {}",
                    row.secret_name,
                    row.state,
                    row.fix.as_deref().unwrap_or_default()
                );
            }
        }
    }
}

fn print_rows(rows: &[StatusRow], multi_account: bool) {
    print_table(
        &[
            "SECRET",
            "USER",
            "SCHEDULE",
            "LAST ROTATED",
            "NEXT ROTATION",
            "CURRENT KEY",
            "AGE (d)",
            "LAST USED",
            "DELIVERY",
            "STATE",
        ],
        rows,
        |row| {
            vec![
                row.secret_name.clone(),
                row.user.clone().unwrap_or_else(|| "-".into()),
                row.schedule.clone(),
                when(&row.last_rotated),
                when(&row.next_rotation),
                row.current_key_id.clone().unwrap_or_else(|| "-".into()),
                days(row.current_key_age_days),
                when(&row.current_key_last_used),
                row.delivery
                    .as_ref()
                    .map_or_else(|| "-".into(), |delivery| delivery.summary()),
                row.state.to_string(),
            ]
        },
        multi_account.then_some(|row: &StatusRow| (&row.account, &row.account_name)),
    );
}
