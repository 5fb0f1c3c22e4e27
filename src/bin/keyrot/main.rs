//! `keyrot`: the operator's CLI for iam-key-rotation. Enroll a user in one
//! command, see the state of every rotated secret, audit every access key of
//! the account, roll a rotation back. A thin front end: one module per
//! command (its arguments, its run, its table), one output module, and the
//! work in the library's `report` (reads) and `ops` (writes).
//!
//! Exit codes: 0 done (no findings), 1 findings (audit) or a refused enrollment,
//! 2 usage, access or AWS errors. JSON goes to stdout only; progress and logs go
//! to stderr.

mod accounts;
mod audit;
mod deliver;
mod enroll;
mod output;
mod rollback;
mod status;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use iam_key_rotation::ops::OpsError;
use iam_key_rotation::report::ReportError;
use iam_key_rotation::{Clients, RetryProfile, Settings};
use output::Format;

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
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    output: Format,
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

#[derive(Debug, Subcommand)]
enum Command {
    /// Enroll an IAM user: create its secret, bind the user to it, attach rotation.
    ///
    /// Idempotent: a second run changes nothing and says so. Refuses, changing
    /// nothing, when the user does not exist, is bound to another secret, holds two
    /// keys no secret manages, or the secret exists for another user or function.
    Enroll(enroll::EnrollArgs),
    /// One row per rotated secret (under --prefix): schedule, last and next
    /// rotation, the current key's age and last use, its state and the fix.
    Status(status::StatusArgs),
    /// Every access key of every IAM user (under --path) with its age, status,
    /// last use and the secret managing it; exits 1 when there are findings.
    Audit(audit::AuditArgs),
    /// Undo the last rotation of a secret while its previous key still exists:
    /// prove the previous key works (reactivating it if Inactive), move
    /// AWSCURRENT back to it, and leave the rolled-back key Active as
    /// AWSPREVIOUS. Refuses, changing nothing, during a rotation, without a
    /// previous key, for an unbound user, or when the previous key does not work.
    Rollback(rollback::RollbackArgs),
    /// A secret's delivery targets: add, list or remove where the delivery
    /// function pushes its current key (GitHub Actions, SSM, another secret).
    Deliver(deliver::DeliverArgs),
    /// Print shell completions: `keyrot completions bash > /etc/bash_completion.d/keyrot`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print keyrot's man page (roff): `keyrot man > /usr/local/share/man/man1/keyrot.1`.
    Man,
}

/// Exit codes (the contract CI jobs act on).
const FINDINGS: u8 = 1;
const FAILURE: u8 = 2;

/// Why a command could not do its job, from the library's writes or reads.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Ops(#[from] OpsError),
    #[error(transparent)]
    Report(#[from] ReportError),
}

impl Failure {
    /// A refusal is exit 1, like a finding; everything else is exit 2.
    fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Self::Ops(OpsError::Refused(_)) => FINDINGS,
            _ => FAILURE,
        })
    }
}

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
            error.exit_code()
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

async fn run(cli: Cli) -> Result<ExitCode, Failure> {
    let clients = Clients::load(Settings {
        retries: RetryProfile::Fleet,
        region: cli.region.as_deref(),
        profile: cli.profile.as_deref(),
    })
    .await;
    let format = cli.output;
    match cli.command {
        Command::Enroll(args) => enroll::run(&clients, args, format).await,
        Command::Status(args) => status::run(&clients, args, format).await,
        Command::Audit(args) => audit::run(&clients, args, format).await,
        Command::Rollback(args) => rollback::run(&clients, args, format).await,
        Command::Deliver(args) => deliver::run(&clients, args, format).await,
        Command::Completions { .. } | Command::Man => unreachable!("answered before AWS is set up"),
    }
}
