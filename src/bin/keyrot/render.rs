//! What `keyrot` prints: tables for people, JSON for scripts (streamed, so that
//! memory does not grow with the account), and a progress bar on a terminal.

use comfy_table::{Table, presets};
use iam_key_rotation::fleet::{
    AccountRow, AuditReport, EnrollReport, KeyRow, Member, RollbackReport, StatusRow,
};
use std::collections::HashMap;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde::Serialize;

pub fn print_json(value: &impl Serialize) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("plain data serializes")
    );
}

pub fn enroll(plan: &EnrollReport, dry_run: bool) {
    let secret = plan.secret_arn.as_deref().unwrap_or(&plan.secret_name);
    if plan.actions.is_empty() {
        println!(
            "Nothing to do: IAM user {} is enrolled with secret {secret}.",
            plan.user
        );
        return;
    }
    let verb = if dry_run { "Would enroll" } else { "Enrolled" };
    println!("{verb} IAM user {} with secret {secret}:", plan.user);
    for action in &plan.actions {
        println!("  - {action}");
    }
    if dry_run {
        println!("(dry run: nothing was written)");
    }
}

pub fn rollback(report: &RollbackReport, dry_run: bool) {
    if report.actions.is_empty() {
        println!(
            "Nothing to do: secret {} is already rolled back to key {} (user {}). Fix the consumer, then rotate again.",
            report.secret_name, report.restored_access_key_id, report.user
        );
        return;
    }
    let verb = if dry_run {
        "Would roll back"
    } else {
        "Rolled back"
    };
    println!(
        "{verb} secret {} (user {}) to key {}:",
        report.secret_name, report.user, report.restored_access_key_id
    );
    for action in &report.actions {
        println!("  - {action}");
    }
    if dry_run {
        println!("(dry run: nothing was written)");
    } else {
        println!(
            "Consumers reading AWSCURRENT now get key {}; key {} stays Active as AWSPREVIOUS until the usual retirement. Rotate again once the consumer is fixed.",
            report.restored_access_key_id,
            report.rolled_back_access_key_id.as_deref().unwrap_or("-")
        );
    }
}

/// A spinner with a count on stderr, or nothing.
pub struct Progress(Option<ProgressBar>);

impl Progress {
    pub fn new(show: bool, what: &'static str) -> Self {
        Self(show.then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {pos} {msg} ({elapsed})")
                    .expect("a valid template"),
            );
            bar.set_message(what);
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        }))
    }

    pub fn inc(&self, n: u64) {
        if let Some(bar) = &self.0 {
            bar.inc(n);
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

/// One spinner per account on stderr (`keyrot audit --org`), or nothing.
pub struct AccountProgress {
    bars: Option<(MultiProgress, Mutex<HashMap<String, ProgressBar>>)>,
}

impl AccountProgress {
    pub fn new(show: bool) -> Self {
        Self {
            bars: show.then(|| (MultiProgress::new(), Mutex::new(HashMap::new()))),
        }
    }

    pub fn inc(&self, member: &Member, n: u64) {
        let Some((multi, bars)) = &self.bars else {
            return;
        };
        let mut bars = bars.lock().expect("progress");
        let bar = bars.entry(member.account.clone()).or_insert_with(|| {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix}: {pos} users read ({elapsed})")
                    .expect("a valid template"),
            );
            bar.set_prefix(match &member.name {
                Some(name) => format!("{} ({name})", member.account),
                None => member.account.clone(),
            });
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        bar.inc(n);
    }

    pub fn finish(&self) {
        if let Some((multi, _)) = &self.bars {
            let _ = multi.clear();
        }
    }
}

fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_style(presets::NOTHING)
        .set_header(header.to_vec());
    table
}

/// `2026-11-29T01:02:03Z` as `2026-11-29 01:02`, and `-` for none.
fn when(time: &Option<String>) -> String {
    match time {
        Some(time) => time.get(..16).unwrap_or(time).replace('T', " "),
        None => "-".to_string(),
    }
}

fn days(age: Option<f64>) -> String {
    age.map(|d| format!("{d:.1}")).unwrap_or_else(|| "-".into())
}

/// Items printed as the elements of a JSON array as they come, so that memory
/// does not grow with the account, or kept for a table printed at the end.
struct Streamed<T> {
    json: bool,
    first: bool,
    rows: Vec<T>,
}

impl<T: Serialize> Streamed<T> {
    /// Prints `opening` (which ends with the array's `[`) in JSON mode.
    fn new(json: bool, opening: &str) -> Self {
        if json {
            print!("{opening}");
        }
        Self {
            json,
            first: true,
            rows: Vec::new(),
        }
    }

    fn push(&mut self, item: T) {
        if !self.json {
            self.rows.push(item);
            return;
        }
        let separator = if self.first { "\n  " } else { ",\n  " };
        print!(
            "{separator}{}",
            serde_json::to_string(&item).expect("plain data")
        );
        self.first = false;
    }

    /// Closes the JSON array; the caller prints what follows it.
    fn end_array(&self) {
        print!("{}]", if self.first { "" } else { "\n" });
    }
}

/// `keyrot status`: a JSON array (in an object with the accounts, across
/// accounts), or a table and the fixes.
pub struct StatusOutput {
    rows: Streamed<StatusRow>,
    multi_account: bool,
}

impl StatusOutput {
    pub fn new(json: bool, multi_account: bool) -> Self {
        let opening = if multi_account {
            "{\"secrets\": ["
        } else {
            "["
        };
        Self {
            rows: Streamed::new(json, opening),
            multi_account,
        }
    }

    pub fn row(&mut self, row: StatusRow) {
        self.rows.push(row);
    }

    pub fn finish(self, accounts: &[AccountRow]) {
        let Self {
            rows,
            multi_account,
        } = self;
        if rows.json {
            rows.end_array();
            if multi_account {
                let accounts = serde_json::to_string_pretty(accounts).expect("plain data");
                println!(", \"accounts\": {accounts}}}");
            } else {
                println!();
            }
            return;
        }
        let mut rows = rows.rows;
        if multi_account {
            print_accounts(accounts);
            rows.sort_by(|a, b| a.account.cmp(&b.account));
        }
        if rows.is_empty() {
            println!("No rotated secrets found.");
            return;
        }
        let mut header = vec![
            "SECRET",
            "USER",
            "SCHEDULE",
            "LAST ROTATED",
            "NEXT ROTATION",
            "CURRENT KEY",
            "AGE (d)",
            "LAST USED",
            "STATE",
        ];
        if multi_account {
            header.insert(0, "ACCOUNT");
        }
        let mut table = table(&header);
        for row in &rows {
            let mut cells = vec![
                row.secret_name.clone(),
                row.user.clone(),
                row.schedule.clone(),
                when(&row.last_rotated),
                when(&row.next_rotation),
                row.current_key_id.clone().unwrap_or_else(|| "-".into()),
                days(row.current_key_age_days),
                when(&row.current_key_last_used),
                row.state.to_string(),
            ];
            if multi_account {
                cells.insert(0, account_cell(&row.account, &row.account_name));
            }
            table.add_row(cells);
        }
        println!("{table}");
        let fixes: Vec<&StatusRow> = rows.iter().filter(|r| r.fix.is_some()).collect();
        if !fixes.is_empty() {
            println!("\nTo fix:");
            for row in fixes {
                println!(
                    "  {} ({}): {}",
                    row.secret_name,
                    row.state,
                    row.fix.as_deref().unwrap_or_default()
                );
            }
        }
    }
}

/// `keyrot audit`: keys streamed as JSON (findings, and across accounts the
/// accounts, follow at the end), or a table.
pub struct AuditOutput {
    keys: Streamed<KeyRow>,
    multi_account: bool,
}

impl AuditOutput {
    pub fn new(json: bool, multi_account: bool) -> Self {
        Self {
            keys: Streamed::new(json, "{\"keys\": ["),
            multi_account,
        }
    }

    pub fn key(&mut self, key: KeyRow) {
        self.keys.push(key);
    }

    pub fn finish(self, report: &AuditReport, accounts: &[AccountRow]) {
        let Self {
            keys,
            multi_account,
        } = self;
        if keys.json {
            let findings = serde_json::to_string_pretty(&report.findings).expect("plain data");
            keys.end_array();
            if multi_account {
                let accounts = serde_json::to_string_pretty(accounts).expect("plain data");
                println!(", \"findings\": {findings}, \"accounts\": {accounts}}}");
            } else {
                println!(", \"findings\": {findings}}}");
            }
            return;
        }
        let mut rows = keys.rows;
        if multi_account {
            print_accounts(accounts);
            rows.sort_by(|a, b| a.account.cmp(&b.account));
        }
        let mut header = vec![
            "USER",
            "ACCESS KEY",
            "STATUS",
            "AGE (d)",
            "LAST USED",
            "MANAGED BY",
        ];
        if multi_account {
            header.insert(0, "ACCOUNT");
        }
        let mut table = table(&header);
        for key in &rows {
            let mut cells = vec![
                key.user.clone(),
                key.access_key_id.clone(),
                key.status.to_string(),
                days(key.age_days),
                when(&key.last_used),
                key.managed_by.clone().unwrap_or_else(|| "-".into()),
            ];
            if multi_account {
                cells.insert(0, account_cell(&key.account, &key.account_name));
            }
            table.add_row(cells);
        }
        println!("{table}");
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

/// `111122223333 (prod)`, or the id alone.
fn account_cell(account: &Option<String>, name: &Option<String>) -> String {
    match (account, name) {
        (Some(account), Some(name)) => format!("{account} ({name})"),
        (Some(account), None) => account.clone(),
        (None, _) => "-".into(),
    }
}

/// The accounts a run covered, before its table.
fn print_accounts(accounts: &[AccountRow]) {
    let mut table = table(&["ACCOUNT", "NAME", "STATE", "DETAIL"]);
    for account in accounts {
        table.add_row(vec![
            account.account.clone(),
            account.name.clone().unwrap_or_else(|| "-".into()),
            account.state.as_str().to_string(),
            account.detail.clone().unwrap_or_default(),
        ]);
    }
    println!("{table}\n");
}
