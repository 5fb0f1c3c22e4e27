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
mod cli;
mod deliver;
mod enroll;
mod failure;
mod man;
mod rollback;
mod status;

use std::process::ExitCode;

use clap::FromArgMatches;
use cli::{Cli, Command, command};
use iam_key_rotation::{Clients, RetryProfile, Settings};

pub use failure::{FAILURE, FINDINGS, Failure};

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
