//! `keyrot`: the operator's CLI for iam-key-rotation. Enroll a user in one
//! command, see the state of every rotated secret, audit every access key of
//! the account, roll a rotation back. A thin front end: one module per
//! command (its arguments, its run, its table), one output module, and the
//! work in the library's `report` (reads) and `ops` (writes).
//!
//! Exit codes: 0 done (no findings), 1 findings (audit, status) or a refused
//! enrollment, 2 usage, access or AWS errors. JSON and CSV go to stdout only;
//! progress and logs go to stderr.

#[macro_use]
mod output;
mod accounts;
mod audit;
mod deliver;
mod enroll;
mod man;
mod rollback;
mod status;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use iam_key_rotation::SetupError;
use iam_key_rotation::ops::OpsError;
use iam_key_rotation::report::ReportError;
use iam_key_rotation::{Clients, RetryProfile, Settings};
use output::Format;

/// Operate IAM access key rotation across an account: enroll users, see every
/// rotated secret, audit every access key.
///
/// AWS settings come from where the AWS CLI finds them: --profile or
/// AWS_PROFILE (IAM Identity Center, credential_process, assumed roles),
/// the environment, container and instance credentials; --region,
/// AWS_REGION or the profile's region; AWS_ENDPOINT_URL for an emulator.
#[derive(Debug, Parser)]
#[command(
    name = "keyrot",
    version,
    propagate_version = true,
    disable_help_subcommand = true,
    after_help = MAIN_EXAMPLES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Output format: human tables, JSON for scripts, CSV for a spreadsheet
    /// (on stdout only).
    #[arg(short, long, global = true, value_enum, default_value_t = Format::Table)]
    output: Format,
    /// AWS region (default: AWS_REGION, or the profile's region).
    #[arg(long, global = true)]
    region: Option<String>,
    /// AWS profile (default: AWS_PROFILE, or "default").
    #[arg(long, global = true)]
    profile: Option<String>,
    /// Log each AWS call (operation, endpoint, status, time) and the SDK's
    /// whole error chain of a failed call to stderr (RUST_LOG, if set,
    /// chooses instead).
    #[arg(short, long, global = true)]
    verbose: bool,
}

const MAIN_EXAMPLES: &str = "\
Examples:
  keyrot enroll app-deployer --function-arn \"$FUNCTION_ARN\"   # secret iam-keys/app-deployer, bound, rotated now
  keyrot status                                              # every secret under iam-keys/; exit 1 if one needs a person
  keyrot audit --max-age-days 90                             # every key of every user; exit 1 on findings
  keyrot audit -o csv > keys.csv                             # the same, for a spreadsheet
  keyrot rollback iam-keys/app-deployer                      # undo the last rotation

Exit status: 0 done, no findings; 1 findings, a row that needs a person, or a
refusal; 2 usage, access or AWS errors. `keyrot man --out DIR` writes the man pages.";

#[derive(Debug, Subcommand)]
enum Command {
    /// Enroll an IAM user: create its secret, bind the user to it, attach rotation.
    ///
    /// Everything is checked before anything is written (the function, its
    /// region and account, the schedule, the stack's ManagedUserPath and
    /// SecretNamePrefix), with --dry-run too. Idempotent: a second run changes
    /// nothing and says so; a run that stopped half-way says what it wrote,
    /// and running it again finishes it. Refuses, changing nothing, when the
    /// user does not exist, is bound to another secret, holds two keys no
    /// secret manages, or the secret exists for another user or function.
    #[command(after_help = enroll::EXAMPLES)]
    Enroll(enroll::EnrollArgs),
    /// One row per secret under --prefix: schedule, last and next rotation,
    /// the current key's age and last use, its state and the fix. Exit 1 when
    /// any row needs a person (anything but ok, rotating or rolled-back).
    #[command(after_help = status::EXAMPLES)]
    Status(status::StatusArgs),
    /// Every access key of every IAM user (under --path) with its age, status,
    /// last use and the secret managing it; exits 1 when there are findings.
    #[command(after_help = audit::EXAMPLES)]
    Audit(audit::AuditArgs),
    /// Undo the last rotation of a secret while its previous key still exists:
    /// prove the previous key works (reactivating it if Inactive), move
    /// AWSCURRENT back to it, and leave the rolled-back key Active as
    /// AWSPREVIOUS. Refuses, changing nothing, during a rotation, without a
    /// previous key, for an unbound user, or when the previous key does not work.
    #[command(after_help = rollback::EXAMPLES)]
    Rollback(rollback::RollbackArgs),
    /// A secret's delivery targets: add, list or remove where the delivery
    /// function pushes its current key (GitHub Actions, SSM, another secret).
    #[command(after_help = deliver::EXAMPLES)]
    Deliver(deliver::DeliverArgs),
    /// Print shell completions for bash, zsh, fish, elvish or PowerShell.
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
        #[command(flatten)]
        unused: NoAws,
    },
    /// Write keyrot's man pages: keyrot.1 on stdout, or one page per
    /// subcommand (keyrot.1, keyrot-enroll.1, ...) into --out DIR.
    #[command(after_help = man::EXAMPLES)]
    Man(man::ManArgs),
}

const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  keyrot completions bash > /etc/bash_completion.d/keyrot
  keyrot completions zsh > \"${fpath[1]}/_keyrot\"
  keyrot completions fish > ~/.config/fish/completions/keyrot.fish";

/// The global flags that only the commands calling AWS use, declared again,
/// hidden, by `completions` and `man`, where they do nothing: clap does not
/// propagate a global flag to a subcommand that has its own of that name, so
/// they stay out of those commands' help, completions and man pages.
#[derive(Debug, clap::Args)]
pub struct NoAws {
    #[arg(short, long, hide = true, value_enum, default_value_t = Format::Table)]
    output: Format,
    #[arg(long, hide = true)]
    region: Option<String>,
    #[arg(long, hide = true)]
    profile: Option<String>,
    #[arg(short, long, hide = true)]
    verbose: bool,
}

/// The command line as clap parses it; completions and man pages are made
/// from it too, so they cannot drift from the parser.
fn command() -> clap::Command {
    Cli::command()
}

/// Exit codes (the contract CI jobs act on).
const FINDINGS: u8 = 1;
const FAILURE: u8 = 2;

/// Why a command could not do its job: the AWS set-up, the library's writes
/// or reads, or a run that read nothing.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error(transparent)]
    Ops(#[from] OpsError),
    #[error(transparent)]
    Report(#[from] ReportError),
    /// The run read nothing to judge (no user, no account, no secret): a typo
    /// in a flag must not pass for an all-clear.
    #[error("{0}")]
    ReadNothing(String),
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
    let matches = command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    let code = match &cli.command {
        Command::Completions { shell, .. } => print_completions(*shell),
        Command::Man(args) => man::run(command(), args),
        _ => run_aws_command(cli),
    };
    output::flush();
    code
}

fn run_aws_command(cli: Cli) -> ExitCode {
    iam_key_rotation::logging::init_cli(env!("CARGO_CRATE_NAME"), cli.verbose);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            output::flush();
            errln!("keyrot: {error}");
            error.exit_code()
        }
    }
}

/// Completions generated from the same clap definitions as the parser, so
/// they cannot drift from it.
fn print_completions(shell: clap_complete::Shell) -> ExitCode {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command(), "keyrot", &mut script);
    output::out(format_args!("{}", String::from_utf8_lossy(&script)));
    ExitCode::SUCCESS
}

async fn run(cli: Cli) -> Result<ExitCode, Failure> {
    let clients = Clients::load_checked(Settings {
        retries: RetryProfile::Fleet,
        region: cli.region.as_deref(),
        profile: cli.profile.as_deref(),
    })
    .await?;
    let format = cli.output;
    match cli.command {
        Command::Enroll(args) => enroll::run(&clients, args, format).await,
        Command::Status(args) => status::run(&clients, args, format).await,
        Command::Audit(args) => audit::run(&clients, args, format).await,
        Command::Rollback(args) => rollback::run(&clients, args, format).await,
        Command::Deliver(args) => deliver::run(&clients, args, format).await,
        Command::Completions { .. } | Command::Man(_) => {
            unreachable!("answered before AWS is set up")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn every_subcommand_ends_its_help_with_examples() {
        for sub in command()
            .get_subcommands()
            .filter(|s| s.get_name() != "help")
        {
            let help = sub
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            assert!(
                help.starts_with("Examples:\n") && help.contains("keyrot "),
                "{} has no examples",
                sub.get_name()
            );
        }
    }
}
