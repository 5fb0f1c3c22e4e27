//! `keyrot audit`: every access key of every IAM user (under `--path`), the
//! secret that manages it, and the findings a compliance job fails on (SPEC
//! 9); across accounts with `--org` or `--accounts` (SPEC 12).

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use iam_key_rotation::Clients;
use iam_key_rotation::report::settings::{
    MAX_KEY_AGE_DAYS, REPORT_WAIT_AT_A_TERMINAL, SECRET_NAME_PREFIX, STUCK_AFTER_MINUTES,
    USER_PATH, grace_max_hours, parse_grace_max_hours, parse_secret_prefix, parse_user_path,
};
use iam_key_rotation::report::{
    AccountRow, AccountState, AuditOptions, AuditReport, KeyRow, Scope, audit_scope,
};
use serde_json::Value;

use crate::accounts::{AccountArgs, print_accounts, print_table};
use crate::output::{
    AccountProgress, Format, Progress, Streamed, days, print_csv_records, report_unreadable, when,
};
use crate::{FINDINGS, Failure};

pub const EXAMPLES: &str = "\
Examples:
  keyrot audit                                  # every key of every user; exit 1 on findings
  keyrot audit --path /rotated/ --max-age-days 90
  keyrot audit -o json | jq '.findings[] | select(.exempt | not)'
  keyrot audit -o csv > keys.csv                # one row per key, with its findings, for a spreadsheet
  keyrot audit --org --exclude-accounts 111122223333";

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    accounts: AccountArgs,
    /// An Active key older than this many days that no secret manages is a finding.
    #[arg(long, default_value_t = MAX_KEY_AGE_DAYS)]
    max_age_days: f64,
    /// Only users under this IAM path (it begins and ends with /).
    #[arg(long, default_value = USER_PATH, value_parser = parse_user_path)]
    path: String,
    /// Only secrets whose name starts with this manage keys (the stack's
    /// SecretNamePrefix); no other secret's value is read.
    #[arg(long, default_value = SECRET_NAME_PREFIX, value_parser = parse_secret_prefix)]
    prefix: String,
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
    let path = args.path.clone();
    let options = AuditOptions {
        max_age_days: args.max_age_days,
        path: args.path,
        prefix: args.prefix,
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
    read_something(&scope, &audited.report, &audited.accounts, &path)?;
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

/// An audit that read no user (a `--path` under which there is none, an
/// account list that left every account out) is no all-clear: exit 2.
fn read_something(
    scope: &Scope,
    report: &AuditReport,
    accounts: &[AccountRow],
    path: &str,
) -> Result<(), Failure> {
    if scope.is_multi_account()
        && !accounts
            .iter()
            .any(|account| account.state == AccountState::Read)
    {
        return Err(Failure::ReadNothing(format!(
            "read no account ({} listed, none read): check --accounts, --exclude-accounts and the accounts table above",
            accounts.len()
        )));
    }
    if report.users == 0 {
        return Err(Failure::ReadNothing(format!(
            "read no IAM user under path {path}: check --path (/ is every user) and the account your credentials are for (aws sts get-caller-identity)"
        )));
    }
    Ok(())
}

/// Keys streamed as JSON (findings, and the accounts, follow at the end), or
/// kept for a table or CSV.
struct AuditOutput {
    keys: Streamed<KeyRow>,
    format: Format,
    multi_account: bool,
}

impl AuditOutput {
    fn new(format: Format, scope: &Scope) -> Self {
        Self {
            keys: Streamed::new(format, "{\"keys\": ["),
            format,
            multi_account: scope.is_multi_account(),
        }
    }

    fn key(&mut self, key: KeyRow) {
        self.keys.push(key);
    }

    fn finish(self, report: &AuditReport, accounts: &[AccountRow]) {
        let findings = serde_json::to_string_pretty(&report.findings).expect("plain data");
        let Some(mut rows) = self.keys.finish() else {
            // One shape whatever the flags: `accounts` is null for one account.
            let accounts = if self.multi_account {
                serde_json::to_string_pretty(accounts).expect("plain data")
            } else {
                "null".into()
            };
            outln!(", \"findings\": {findings}, \"accounts\": {accounts}}}");
            return;
        };
        if self.format == Format::Csv {
            print_csv(&rows, &report.findings);
            return;
        }
        if self.multi_account {
            print_accounts(accounts);
            rows.sort_by(|a, b| a.account.cmp(&b.account));
        }
        print_keys(&rows, self.multi_account);
        outln!(
            "\n{} users, {} access keys, {} findings",
            report.users,
            report.keys,
            report.counted().count()
        );
        for finding in &report.findings {
            outln!(
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

/// The keys as CSV, one row per key with the findings that name it (`kind:
/// detail`, one per line of the cell), then one row per finding that names
/// no listed key (an account that could not be read, say): an auditor's
/// spreadsheet. The columns are every field of a key in its order, so a field
/// the audit gains shows up without a change here.
fn print_csv(rows: &[KeyRow], findings: &[impl serde::Serialize]) {
    let header = rows.first().map_or_else(
        || {
            ["account", "user", "access_key_id"]
                .map(String::from)
                .to_vec()
        },
        |row| csv_record(row).0,
    );
    let findings: Vec<Value> = findings
        .iter()
        .map(|finding| serde_json::to_value(finding).expect("plain data"))
        .collect();
    let mut placed = vec![false; findings.len()];
    let mut records = Vec::new();
    for row in rows {
        let key = serde_json::to_value(row).expect("plain data");
        let id = key["access_key_id"].as_str().unwrap_or_default();
        let mut cell = Vec::new();
        for (index, finding) in findings.iter().enumerate() {
            if names_key(finding, id) && finding["account"] == key["account"] {
                placed[index] = true;
                cell.push(finding_text(finding));
            }
        }
        let mut record = csv_record(row).1;
        record.push(cell.join("\n"));
        records.push(record);
    }
    for (finding, _) in findings.iter().zip(placed).filter(|(_, placed)| !placed) {
        let mut record: Vec<String> = header
            .iter()
            .map(|field| match field.as_str() {
                "account" | "user" | "access_key_id" => cell_text(&finding[field]),
                _ => String::new(),
            })
            .collect();
        record.push(finding_text(finding));
        records.push(record);
    }
    let mut columns: Vec<&str> = header.iter().map(String::as_str).collect();
    columns.push("findings");
    print_csv_records(&columns, records);
}

/// A row's CSV header and cells, as the csv crate writes them (the fields in
/// their declared order).
fn csv_record(row: &impl serde::Serialize) -> (Vec<String>, Vec<String>) {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.serialize(row).expect("a plain row");
    let bytes = writer.into_inner().expect("in memory");
    let mut reader = csv::ReaderBuilder::new().from_reader(bytes.as_slice());
    let header = reader
        .headers()
        .expect("the header just written")
        .iter()
        .map(str::to_string)
        .collect();
    let cells = reader
        .records()
        .next()
        .and_then(Result::ok)
        .map(|record| record.iter().map(str::to_string).collect())
        .unwrap_or_default();
    (header, cells)
}

/// Whether a finding names the key in any of its key id fields (one, or the
/// two of a two-key finding).
fn names_key(finding: &Value, id: &str) -> bool {
    finding.as_object().is_some_and(|fields| {
        fields
            .iter()
            .filter(|(name, _)| name.contains("access_key_id"))
            .any(|(_, value)| match value {
                Value::String(named) => named == id,
                Value::Array(named) => named.iter().any(|named| named == id),
                _ => false,
            })
    })
}

/// `kind: detail`, with `(exempt)` first and the fix after, when it has them.
fn finding_text(finding: &Value) -> String {
    let exempt = if finding["exempt"] == Value::Bool(true) {
        "(exempt) "
    } else {
        ""
    };
    let mut text = format!(
        "{exempt}{}: {}",
        cell_text(&finding["kind"]),
        cell_text(&finding["detail"])
    );
    if let Some(fix) = finding["fix"].as_str() {
        text.push_str(&format!(" Fix: {fix}"));
    }
    text
}

/// A JSON value as a spreadsheet cell: strings as they are, null as empty.
fn cell_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
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
