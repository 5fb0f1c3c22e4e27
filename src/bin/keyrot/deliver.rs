//! `keyrot deliver add|list|remove`: a secret's delivery targets (SPEC 14), the
//! reserved tags `iam-key-rotation:deliver:<label>` the delivery function
//! pushes the current key to. Each spec is checked before anything is written.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use iam_key_rotation::Clients;
use iam_key_rotation::ops::deliver::{self, NewTarget, TargetChange};
use iam_key_rotation::report::settings::SECRET_NAME_PREFIX;
use iam_key_rotation::report::{TargetRow, list_targets};

use crate::Failure;
use crate::output::{Format, print_csv, print_csv_records, print_json, table};

pub const EXAMPLES: &str = "\
Examples:
  keyrot deliver add iam-keys/ci-deployer ci github:acme/app      # a repository's Actions secrets
  keyrot deliver list                                             # every target, delivered or not
  keyrot deliver list -o json | jq -r '.[] | select(.delivered | not) | .secret_name'
  keyrot deliver remove iam-keys/ci-deployer ci                   # stop delivering there";

#[derive(Debug, Args)]
pub struct DeliverArgs {
    #[command(subcommand)]
    command: DeliverCommand,
}

#[derive(Debug, Subcommand)]
enum DeliverCommand {
    /// Deliver the secret's key to a target too. SPEC is one of
    /// github:OWNER/REPO[:env=ENVIRONMENT], github-org:ORG[:visibility=all],
    /// each with an optional :names=ID_NAME,SECRET_NAME[,SMTP_NAME];
    /// ssm:[ACCOUNT:]REGION:/PATH; secretsmanager:ARN (a full ARN).
    ///
    /// Examples:
    ///   keyrot deliver add iam-keys/ci-deployer ci github:acme/app
    ///   keyrot deliver add iam-keys/ci-deployer prod github:acme/app:env=production
    ///   keyrot deliver add iam-keys/mailer mail ssm:eu-west-1:/mail/ses
    #[command(verbatim_doc_comment)]
    Add {
        /// The secret's name or ARN.
        secret: String,
        /// The target's label: 1-64 of A-Z a-z 0-9 _ . -
        label: String,
        /// Where the key goes.
        spec: String,
    },
    /// The targets of one secret, or of every secret under --prefix, and
    /// whether each holds the current version.
    List {
        /// The secret's name or ARN (default: every secret under --prefix).
        secret: Option<String>,
        /// Secrets whose name starts with this.
        #[arg(long, default_value = SECRET_NAME_PREFIX)]
        prefix: String,
    },
    /// Stop delivering the secret's key to a target (what it holds stays).
    Remove {
        /// The secret's name or ARN.
        secret: String,
        label: String,
    },
}

pub async fn run(
    clients: &Clients,
    args: DeliverArgs,
    format: Format,
) -> Result<ExitCode, Failure> {
    match args.command {
        DeliverCommand::Add {
            secret,
            label,
            spec,
        } => {
            let target = NewTarget::parse(&label, &spec)?;
            let change = deliver::add(clients, &secret, target).await?;
            print_change(&change, format, "Nothing to do: it already delivers to");
        }
        DeliverCommand::Remove { secret, label } => {
            let change = deliver::remove(clients, &secret, &label).await?;
            print_change(&change, format, "Nothing to do: no target");
        }
        DeliverCommand::List { secret, prefix } => {
            let rows = list_targets(clients, secret.as_deref(), &prefix).await?;
            match format {
                Format::Json => print_json(&rows),
                Format::Csv => print_csv(&rows),
                Format::Table => print_rows(&rows),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_change(change: &TargetChange, format: Format, unchanged: &str) {
    match format {
        Format::Json => return print_json(change),
        Format::Csv => {
            return print_csv_records(
                &[
                    "secret_arn",
                    "secret_name",
                    "label",
                    "spec",
                    "changed",
                    "actions",
                ],
                [vec![
                    change.secret_arn.clone(),
                    change.secret_name.clone(),
                    change.label.clone(),
                    change.spec.clone().unwrap_or_default(),
                    change.changed.to_string(),
                    change.actions.join("; "),
                ]],
            );
        }
        Format::Table => {}
    }
    if !change.changed {
        outln!(
            "{unchanged} {} on secret {}.",
            change.label,
            change.secret_name
        );
        return;
    }
    outln!("Secret {}:", change.secret_name);
    for action in &change.actions {
        outln!("  - {action}");
    }
}

fn print_rows(rows: &[TargetRow]) {
    if rows.is_empty() {
        outln!("No delivery targets found.");
        return;
    }
    let mut table = table(&["SECRET", "LABEL", "TARGET", "KIND", "CURRENT VERSION"]);
    for row in rows {
        table.add_row(vec![
            row.secret_name.clone(),
            row.label.clone(),
            row.spec.clone(),
            row.kind.unwrap_or("-").to_string(),
            match (&row.invalid, row.delivered) {
                (Some(invalid), _) => invalid.clone(),
                (None, true) => "delivered".into(),
                (None, false) => "not yet".into(),
            },
        ]);
    }
    outln!("{table}");
}
