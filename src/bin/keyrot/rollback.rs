//! `keyrot rollback SECRET`: undo the last rotation while its previous key
//! still exists (SPEC 13).

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use iam_key_rotation::Clients;
use iam_key_rotation::ops::{self, RollbackOptions, RollbackReport};

use crate::Failure;
use crate::output::{Format, print_csv_records, print_json};

pub const EXAMPLES: &str = "\
Examples:
  keyrot rollback iam-keys/app-deployer --dry-run   # what would be done, nothing written
  keyrot rollback iam-keys/app-deployer             # back to the key the last rotation replaced
  keyrot rollback iam-keys/app-deployer -o json | jq -r .restored_access_key_id
  keyrot rollback iam-keys/app-deployer --force     # the previous key was deactivated by hand: reactivate it anyway";

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The secret's name or ARN.
    secret: String,
    /// Print the plan; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// The EventBridge bus for the Access Key Rolled Back event (the stack's
    /// EventBusName).
    #[arg(long, env = "EVENT_BUS_NAME", default_value = "default")]
    event_bus: String,
    /// Longest wait, in seconds, for the previous key to authenticate.
    #[arg(long, default_value_t = 60)]
    propagation_timeout_seconds: u64,
    /// Reactivate the previous key even though this function did not
    /// deactivate it (someone else did: an incident responder, perhaps, on
    /// purpose). Check CloudTrail's UpdateAccessKey for it first.
    #[arg(long)]
    force: bool,
}

pub async fn run(
    clients: &Clients,
    args: RollbackArgs,
    format: Format,
) -> Result<ExitCode, Failure> {
    let options = RollbackOptions {
        secret: args.secret,
        dry_run: args.dry_run,
        force: args.force,
        event_bus: args.event_bus,
        propagation_timeout: Duration::from_secs(args.propagation_timeout_seconds),
    };
    let report = ops::rollback(clients, &options).await?;
    match format {
        Format::Json => print_json(&report),
        Format::Csv => print_csv_records(
            &[
                "secret_arn",
                "secret_name",
                "user",
                "changed",
                "restored_access_key_id",
                "rolled_back_access_key_id",
                "actions",
            ],
            [vec![
                report.secret_arn.clone(),
                report.secret_name.clone(),
                report.user.clone(),
                report.changed.to_string(),
                report.restored_access_key_id.clone(),
                report.rolled_back_access_key_id.clone().unwrap_or_default(),
                report.actions.join("\n"),
            ]],
        ),
        Format::Table => print_table(&report, options.dry_run),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(report: &RollbackReport, dry_run: bool) {
    if report.actions.is_empty() {
        outln!(
            "Nothing to do: secret {} is already rolled back to key {} (user {}). Fix the consumer, then rotate again.",
            report.secret_name,
            report.restored_access_key_id,
            report.user
        );
        return;
    }
    let verb = if dry_run {
        "Would roll back"
    } else {
        "Rolled back"
    };
    outln!(
        "{verb} secret {} (user {}) to key {}:",
        report.secret_name,
        report.user,
        report.restored_access_key_id
    );
    for action in &report.actions {
        outln!("  - {action}");
    }
    if dry_run {
        outln!("(dry run: nothing was written)");
    } else {
        outln!(
            "Consumers reading AWSCURRENT now get key {}; key {} stays Active as AWSPREVIOUS until the usual retirement. Rotate again once the consumer is fixed.",
            report.restored_access_key_id,
            report.rolled_back_access_key_id.as_deref().unwrap_or("-")
        );
    }
}
