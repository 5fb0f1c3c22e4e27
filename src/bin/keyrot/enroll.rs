//! `keyrot enroll USER --function-arn ARN`: the user's secret, binding tag and
//! rotation, in one idempotent command (SPEC 9).

use std::process::ExitCode;

use clap::Args;
use iam_key_rotation::Clients;
use iam_key_rotation::ops::deliver::NewTarget;
use iam_key_rotation::ops::{self, EnrollOptions, EnrollReport, Schedule};

use crate::Failure;
use crate::output::{Format, print_csv_records, print_json};

pub const EXAMPLES: &str = "\
Examples:
  # Secret iam-keys/app-deployer, the user bound to it, rotated now and every 30 days
  keyrot enroll app-deployer --function-arn arn:aws:lambda:us-east-1:111122223333:function:iam-key-rotation
  # What would be done, every check made, nothing written
  keyrot enroll app-deployer --function-arn \"$FUNCTION_ARN\" --dry-run
  # Every Monday at 04:00 UTC, the first rotation then
  keyrot enroll app-deployer --function-arn \"$FUNCTION_ARN\" --schedule 'cron(0 4 ? * MON *)' --no-rotate-now
  # A user in another account, through a role there
  keyrot enroll ci-bot --function-arn \"$FUNCTION_ARN\" --role-arn arn:aws:iam::444455556666:role/iam-key-rotation-target";

#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// The IAM user whose keys the secret will hold.
    user: String,
    /// The rotation function (the stack output RotationFunctionArn).
    #[arg(long)]
    function_arn: String,
    /// The secret's name [default: the stack's SecretNamePrefix and USER,
    /// iam-keys/USER].
    #[arg(long)]
    secret_name: Option<String>,
    /// Rotate every N days.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(i64).range(1..=1000), conflicts_with = "schedule")]
    every_days: i64,
    /// Rotate on a Secrets Manager schedule expression, e.g. "rate(10 days)",
    /// "rate(12 hours)" or "cron(0 4 ? * MON *)" (checked before any write).
    #[arg(long)]
    schedule: Option<String>,
    /// Attach rotation without rotating now (the first rotation waits for the schedule).
    #[arg(long)]
    no_rotate_now: bool,
    /// The user lives in another account: the role to assume there.
    #[arg(long)]
    role_arn: Option<String>,
    /// The external id the role's trust policy requires.
    #[arg(long, requires = "role_arn")]
    external_id: Option<String>,
    /// Finish an enrollment that stopped after creating this secret (the ARN
    /// it printed): bind the user to it. Only for a secret you created.
    #[arg(long, value_name = "ARN")]
    existing_secret_arn: Option<String>,
    /// Make every check and print the plan; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Deliver the key to this target too, as LABEL=SPEC (repeatable), such as
    /// ci=github:acme/app or params=ssm:us-east-1:/apps/app (keyrot deliver add --help).
    #[arg(long = "deliver", value_name = "LABEL=SPEC")]
    deliver: Vec<String>,
}

pub async fn run(clients: &Clients, args: EnrollArgs, format: Format) -> Result<ExitCode, Failure> {
    let deliver = args
        .deliver
        .iter()
        .map(|assignment| NewTarget::parse_assignment(assignment))
        .collect::<Result<Vec<_>, _>>()?;
    let options = EnrollOptions {
        user: args.user,
        function_arn: args.function_arn,
        secret_name: args.secret_name,
        schedule: match args.schedule {
            Some(expression) => Schedule::Expression(expression),
            None => Schedule::EveryDays(args.every_days),
        },
        rotate_now: !args.no_rotate_now,
        role_arn: args.role_arn,
        external_id: args.external_id,
        existing_secret_arn: args.existing_secret_arn,
        dry_run: args.dry_run,
        deliver,
    };
    let plan = ops::enroll(clients, &options).await?;
    for note in &plan.notes {
        errln!("note: {note}");
    }
    match format {
        Format::Json => print_json(&plan),
        Format::Csv => print_csv_records(
            &["user", "secret_arn", "secret_name", "changed", "actions"],
            [vec![
                plan.user.clone(),
                plan.secret_arn.clone().unwrap_or_default(),
                plan.secret_name.clone(),
                plan.changed.to_string(),
                plan.actions.join("\n"),
            ]],
        ),
        Format::Table => print_table(&plan, options.dry_run),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(plan: &EnrollReport, dry_run: bool) {
    let secret = plan.secret_arn.as_deref().unwrap_or(&plan.secret_name);
    if plan.actions.is_empty() {
        outln!(
            "Nothing to do: IAM user {} is enrolled with secret {secret}.",
            plan.user
        );
        return;
    }
    let verb = if dry_run { "Would enroll" } else { "Enrolled" };
    outln!("{verb} IAM user {} with secret {secret}:", plan.user);
    for action in &plan.actions {
        outln!("  - {action}");
    }
    if dry_run {
        outln!("(dry run: nothing was written)");
    }
}
