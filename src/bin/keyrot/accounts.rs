//! The flags that widen `keyrot status` and `keyrot audit` from the caller's
//! account to several (SPEC 12), and the accounts table both print first.

use clap::Args;
use iam_key_rotation::report::settings::{ACCOUNT_CONCURRENCY, MEMBER_ROLE};
use iam_key_rotation::report::{AccountOptions, AccountRow, Scope, parse_account_ids};

use crate::output::table;

/// Which accounts to read; none of these: the caller's account only.
#[derive(Debug, Args)]
pub struct AccountArgs {
    /// Every ACTIVE account of the AWS Organization (the caller must be the
    /// management account or a delegated administrator).
    #[arg(long, conflicts_with = "accounts")]
    org: bool,
    /// These accounts (comma-separated ids), without asking Organizations.
    #[arg(long, value_delimiter = ',', value_parser = account_id)]
    accounts: Vec<String>,
    /// Leave these accounts out (comma-separated ids).
    #[arg(long, value_delimiter = ',', value_parser = account_id)]
    exclude_accounts: Vec<String>,
    /// The role each account is read through (deploy/member-account.yaml creates it).
    #[arg(long, default_value = MEMBER_ROLE)]
    member_role_name: String,
    /// Accounts read at once.
    #[arg(long, default_value_t = ACCOUNT_CONCURRENCY, value_parser = clap::value_parser!(u16).range(1..=64))]
    concurrency: u16,
}

impl AccountArgs {
    pub fn scope(&self) -> Scope {
        Scope::of(AccountOptions {
            org: self.org,
            accounts: self.accounts.clone(),
            exclude: self.exclude_accounts.clone(),
            member_role_name: self.member_role_name.clone(),
            concurrency: usize::from(self.concurrency),
        })
    }
}

/// A twelve-digit account id.
fn account_id(value: &str) -> Result<String, String> {
    parse_account_ids(value)?
        .pop()
        .ok_or_else(|| "an empty account id".to_string())
}

/// A row's account id and name, when the run covered several accounts.
pub type AccountOf<T> = fn(&T) -> (&Option<String>, &Option<String>);

/// A table of `rows` under `header`, led by an ACCOUNT column when the run
/// covered several accounts (`account` then names each row's).
pub fn print_table<T>(
    header: &[&str],
    rows: &[T],
    cells: impl Fn(&T) -> Vec<String>,
    account: Option<AccountOf<T>>,
) {
    let mut header = header.to_vec();
    if account.is_some() {
        header.insert(0, "ACCOUNT");
    }
    let mut table = table(&header);
    for row in rows {
        let mut row_cells = cells(row);
        if let Some(account) = account {
            let (id, name) = account(row);
            row_cells.insert(0, account_cell(id, name));
        }
        table.add_row(row_cells);
    }
    outln!("{table}");
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
pub fn print_accounts(accounts: &[AccountRow]) {
    let mut table = table(&["ACCOUNT", "NAME", "STATE", "DETAIL"]);
    for account in accounts {
        table.add_row(vec![
            account.account.clone(),
            account.name.clone().unwrap_or_else(|| "-".into()),
            account.state.as_str().to_string(),
            account.detail.clone().unwrap_or_default(),
        ]);
    }
    outln!("{table}\n");
}
