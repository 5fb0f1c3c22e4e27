//! keyrot's command line as clap parses it: the global flags, one subcommand
//! per module, and the examples at the end of `--help`. Completions and man
//! pages are made from it too, so they cannot drift from the parser.

use clap::{CommandFactory, Parser, Subcommand};

use crate::output::Format;
use crate::{audit, deliver, enroll, man, rollback, status};

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
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Output format: human tables, JSON for scripts, CSV for a spreadsheet
    /// (on stdout only).
    #[arg(short, long, global = true, value_enum, default_value_t = Format::Table)]
    pub output: Format,
    /// AWS region (default: AWS_REGION, or the profile's region).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// AWS profile (default: AWS_PROFILE, or "default").
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// Log each AWS call (operation, endpoint, status, time) and the SDK's
    /// whole error chain of a failed call to stderr (RUST_LOG, if set,
    /// chooses instead).
    #[arg(short, long, global = true)]
    pub verbose: bool,
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
pub enum Command {
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
        unused: man::NoAws,
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

/// The command line as clap parses it; completions and man pages are made
/// from it too, so they cannot drift from the parser.
pub fn command() -> clap::Command {
    Cli::command()
}
