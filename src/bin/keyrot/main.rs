//! `keyrot`: the operator's CLI for iam-key-rotation. Enroll a user in one
//! command, see the state of every rotated secret, and audit every access key of
//! the account. A thin front end: the work is the library's `fleet` module.
//!
//! Exit codes: 0 done (no findings), 1 findings (audit) or a refused enrollment,
//! 2 usage, access or AWS errors. JSON goes to stdout only; progress and logs go
//! to stderr.

mod render;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use iam_key_rotation::Clients;
use iam_key_rotation::fleet::{
    self, AccountOptions, AuditOptions, EnrollOptions, FleetError, RollbackOptions, Schedule,
    StatusOptions,
};

/// Operate IAM access key rotation across an account: enroll users, see every
/// rotated secret, audit every access key.
///
/// AWS settings come from the usual places (AWS_REGION, AWS_PROFILE, the
/// credentials chain, AWS_ENDPOINT_URL), or --region and --profile.
#[derive(Debug, Parser)]
#[command(name = "keyrot", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Output format: human tables, or JSON for scripts (on stdout only).
    #[arg(long, global = true, value_enum, default_value_t = Output::Table)]
    output: Output,
    /// AWS region (default: the SDK's, from AWS_REGION or the profile).
    #[arg(long, global = true)]
    region: Option<String>,
    /// AWS profile (default: AWS_PROFILE, or "default").
    #[arg(long, global = true)]
    profile: Option<String>,
    /// Log what keyrot does to stderr, with the AWS SDK's whole error chain of
    /// a failed call (RUST_LOG, if set, chooses instead).
    #[arg(short, long, global = true)]
    verbose: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Enroll an IAM user: create its secret, bind the user to it, attach rotation.
    ///
    /// Idempotent: a second run changes nothing and says so. Refuses, changing
    /// nothing, when the user does not exist, is bound to another secret, holds two
    /// keys no secret manages, or the secret exists for another user or function.
    Enroll(EnrollArgs),
    /// One row per rotated secret (under --prefix): schedule, last and next
    /// rotation, the current key's age and last use, its state and the fix.
    Status(StatusArgs),
    /// Every access key of every IAM user (under --path) with its age, status,
    /// last use and the secret managing it; exits 1 when there are findings.
    Audit(AuditArgs),
    /// Undo the last rotation of a secret while its previous key still exists:
    /// prove the previous key works (reactivating it if Inactive), move
    /// AWSCURRENT back to it, and leave the rolled-back key Active as
    /// AWSPREVIOUS. Refuses, changing nothing, during a rotation, without a
    /// previous key, for an unbound user, or when the previous key does not work.
    Rollback(RollbackArgs),
    /// Print shell completions: `keyrot completions bash > /etc/bash_completion.d/keyrot`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print keyrot's man page (roff): `keyrot man > /usr/local/share/man/man1/keyrot.1`.
    Man,
}

#[derive(Debug, Args)]
struct RollbackArgs {
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
}

#[derive(Debug, Args)]
struct EnrollArgs {
    /// The IAM user whose keys the secret will hold.
    user: String,
    /// The rotation function (the stack output RotationFunctionArn).
    #[arg(long)]
    function_arn: String,
    /// The secret's name [default: iam-keys/USER].
    #[arg(long)]
    secret_name: Option<String>,
    /// Rotate every N days.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(i64).range(1..=1000), conflicts_with = "schedule")]
    every_days: i64,
    /// Rotate on a Secrets Manager schedule expression, e.g. "rate(10 days)" or "cron(0 4 ? * MON *)".
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
    /// Print the plan; write nothing.
    #[arg(long)]
    dry_run: bool,
}

/// Which accounts to read (SPEC 12); none of these: the caller's account only.
#[derive(Debug, Args)]
struct AccountArgs {
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
    #[arg(long, default_value = fleet::DEFAULT_MEMBER_ROLE)]
    member_role_name: String,
    /// Accounts read at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    concurrency: u16,
}

impl AccountArgs {
    fn options(&self) -> AccountOptions {
        AccountOptions {
            org: self.org,
            accounts: self.accounts.clone(),
            exclude: self.exclude_accounts.clone(),
            member_role_name: self.member_role_name.clone(),
            concurrency: usize::from(self.concurrency),
        }
    }
}

/// A twelve-digit account id.
fn account_id(value: &str) -> Result<String, String> {
    fleet::parse_account_ids(value)?
        .pop()
        .ok_or_else(|| "an empty account id".to_string())
}

#[derive(Debug, Args)]
struct StatusArgs {
    #[command(flatten)]
    accounts: AccountArgs,
    /// Only secrets whose name starts with this.
    #[arg(long, default_value = "iam-keys/")]
    prefix: String,
    /// Only secrets rotated by this function.
    #[arg(long)]
    function_arn: Option<String>,
    /// A rotation pending for longer than this is stuck.
    #[arg(long, default_value_t = 15)]
    stuck_after_minutes: u64,
}

#[derive(Debug, Args)]
struct AuditArgs {
    #[command(flatten)]
    accounts: AccountArgs,
    /// An Active key older than this many days that no secret manages is a finding.
    #[arg(long, default_value_t = 90.0)]
    max_age_days: f64,
    /// Only users under this IAM path.
    #[arg(long, default_value = "/")]
    path: String,
    /// A rotation pending for longer than this is stuck.
    #[arg(long, default_value_t = 15)]
    stuck_after_minutes: u64,
    /// Two Active keys of one secret are a grace period (listed as exempt, not
    /// counted) until this many hours after AWSCURRENT moved: the function's
    /// GRACE_MAX_HOURS.
    #[arg(long, default_value_t = 168.0, value_parser = hours)]
    grace_max_hours: f64,
}

/// A number of hours, 0 or more.
fn hours(value: &str) -> Result<f64, String> {
    value
        .parse::<f64>()
        .ok()
        .filter(|hours| hours.is_finite() && (0.0..=87_600.0).contains(hours))
        .ok_or_else(|| format!("{value:?} is not a number of hours from 0 to 87600"))
}

/// Exit codes (the contract CI jobs act on).
const FINDINGS: u8 = 1;
const FAILURE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Command::Completions { shell } => return print_completions(*shell),
        Command::Man => return print_man_page(),
        _ => {}
    }
    iam_key_rotation::logging::init_cli(env!("CARGO_CRATE_NAME"), cli.verbose);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("keyrot: {error}");
            ExitCode::from(match error {
                FleetError::Refused(_) => FINDINGS,
                _ => FAILURE,
            })
        }
    }
}

/// Completions generated from the same clap definitions as the parser, so
/// they cannot drift from it.
fn print_completions(shell: clap_complete::Shell) -> ExitCode {
    clap_complete::generate(shell, &mut Cli::command(), "keyrot", &mut std::io::stdout());
    ExitCode::SUCCESS
}

/// The man page, from the clap definitions too.
fn print_man_page() -> ExitCode {
    match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("keyrot: could not write the man page: {error}");
            ExitCode::from(FAILURE)
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode, FleetError> {
    let clients = clients(&cli).await;
    let json = cli.output == Output::Json;
    match cli.command {
        Command::Enroll(args) => enroll(&clients, args, json).await,
        Command::Status(args) => status(&clients, args, json).await,
        Command::Audit(args) => audit(&clients, args, json).await,
        Command::Rollback(args) => rollback(&clients, args, json).await,
        Command::Completions { .. } | Command::Man => unreachable!("answered before AWS is set up"),
    }
}

async fn clients(cli: &Cli) -> Clients {
    let mut loader = aws_config::from_env().http_client(iam_key_rotation::shared_https_client());
    if let Some(region) = &cli.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    if let Some(profile) = &cli.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(retry) = iam_key_rotation::cli_retry_config(|name| std::env::var(name).ok()) {
        loader = loader.retry_config(retry);
    }
    Clients::new(&loader.load().await)
}

async fn enroll(clients: &Clients, args: EnrollArgs, json: bool) -> Result<ExitCode, FleetError> {
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
        dry_run: args.dry_run,
    };
    let plan = fleet::enroll(clients, &options).await?;
    for note in &plan.notes {
        eprintln!("note: {note}");
    }
    if json {
        render::print_json(&plan);
    } else {
        render::enroll(&plan, options.dry_run);
    }
    Ok(ExitCode::SUCCESS)
}

async fn rollback(
    clients: &Clients,
    args: RollbackArgs,
    json: bool,
) -> Result<ExitCode, FleetError> {
    let options = RollbackOptions {
        secret: args.secret,
        dry_run: args.dry_run,
        event_bus: args.event_bus,
        propagation_timeout: Duration::from_secs(args.propagation_timeout_seconds),
    };
    let report = fleet::rollback(clients, &options).await?;
    if json {
        render::print_json(&report);
    } else {
        render::rollback(&report, options.dry_run);
    }
    Ok(ExitCode::SUCCESS)
}

async fn status(clients: &Clients, args: StatusArgs, json: bool) -> Result<ExitCode, FleetError> {
    let accounts = args.accounts.options();
    let multi_account = accounts.is_multi_account();
    let options = StatusOptions {
        prefix: args.prefix,
        function_arn: args.function_arn,
        stuck_after: Duration::from_secs(args.stuck_after_minutes * 60),
        reader: multi_account.then(|| iam_key_rotation::fleet::Reader {
            role_name: accounts.member_role_name.clone(),
            accounts: Vec::new(),
        }),
    };
    let progress = render::Progress::new(show_progress(json), "secrets read");
    let mut output = render::StatusOutput::new(json, multi_account);
    let (summary, accounts) = if multi_account {
        let read = fleet::status_accounts(clients, &accounts, &options, |row| {
            progress.inc(1);
            output.row(row);
        })
        .await?;
        (read.summary, read.accounts)
    } else {
        let summary = fleet::status(clients, &options, |row| {
            progress.inc(1);
            output.row(row);
        })
        .await?;
        (summary, Vec::new())
    };
    progress.finish();
    output.finish(&accounts);
    let code = report_unreadable("secrets", &summary.unreadable)?;
    if code != ExitCode::SUCCESS {
        return Ok(code);
    }
    Ok(
        if accounts
            .iter()
            .any(|a| a.state == fleet::AccountState::Unreachable)
        {
            ExitCode::from(FINDINGS)
        } else {
            ExitCode::SUCCESS
        },
    )
}

async fn audit(clients: &Clients, args: AuditArgs, json: bool) -> Result<ExitCode, FleetError> {
    let options = AuditOptions {
        max_age_days: args.max_age_days,
        path: args.path,
        stuck_after: Duration::from_secs(args.stuck_after_minutes * 60),
        report_wait: Duration::from_secs(300),
        grace_max: Duration::from_secs_f64(args.grace_max_hours * 3600.0),
    };
    let accounts = args.accounts.options();
    let multi_account = accounts.is_multi_account();
    let mut output = render::AuditOutput::new(json, multi_account);
    let (report, accounts) = if multi_account {
        let progress = render::AccountProgress::new(show_progress(json));
        let audited = fleet::audit_accounts(
            clients,
            &accounts,
            &options,
            |key| output.key(key),
            |member, n| progress.inc(member, n),
        )
        .await?;
        progress.finish();
        (audited.report, audited.accounts)
    } else {
        let progress = render::Progress::new(show_progress(json), "users read");
        let report = fleet::audit(
            clients,
            &options,
            |key| output.key(key),
            |n| progress.inc(n),
        )
        .await?;
        progress.finish();
        (report, Vec::new())
    };
    output.finish(&report, &accounts);
    let code = report_unreadable("users", &report.unreadable)?;
    if code != ExitCode::SUCCESS {
        return Ok(code);
    }
    Ok(if report.counted().next().is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(FINDINGS)
    })
}

/// A progress bar only for a person watching tables on a terminal.
fn show_progress(json: bool) -> bool {
    !json && std::io::stdout().is_terminal() && std::io::stderr().is_terminal()
}

/// Names on stderr what could not be read; an access error is exit code 2.
fn report_unreadable(what: &str, unreadable: &[String]) -> Result<ExitCode, FleetError> {
    if unreadable.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "keyrot: {} {what} could not be read and are left out:",
        unreadable.len()
    );
    for line in unreadable {
        eprintln!("  {line}");
    }
    Ok(ExitCode::from(FAILURE))
}
