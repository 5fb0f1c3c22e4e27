//! `keyrot man`: the man pages, made from the same clap definitions as the
//! parser (clap_mangen), with the sections a man page is expected to have and
//! clap does not know: EXAMPLES (the `--help` examples), EXIT STATUS,
//! ENVIRONMENT and SEE ALSO. `keyrot.1` on stdout, or one page per
//! subcommand into `--out DIR`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use roff::{Roff, bold, roman};

use crate::FAILURE;
use crate::output::Format;

pub const EXAMPLES: &str = "\
Examples:
  keyrot man --out /usr/local/share/man/man1   # keyrot.1, keyrot-enroll.1, ... then: man keyrot-enroll
  keyrot man | man -l -                        # read keyrot(1) without installing it";

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write keyrot.1 and one page per subcommand (keyrot-enroll.1, ...) into
    /// this directory instead of keyrot.1 on stdout.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    #[command(flatten)]
    unused: NoAws,
}

/// The exit codes, as SPEC 9 and 15 give them.
const EXIT_STATUS: [(&str, &str); 3] = [
    (
        "0",
        "Done: no findings (audit), every secret ok, rotating or rolled-back (status), enrolled or rolled back, or nothing to do.",
    ),
    (
        "1",
        "Findings (audit), a secret that needs a person (status), or a refusal that changed nothing (enroll, rollback).",
    ),
    (
        "2",
        "A usage error, a run that read nothing (no user, account or secret), access denied, or another AWS error.",
    ),
];

/// The environment keyrot reads, besides the AWS SDK's other settings.
const ENVIRONMENT: [(&str, &str); 8] = [
    (
        "AWS_PROFILE",
        "The profile of the AWS config files to use (--profile wins): static keys, IAM Identity Center (run aws sso login first), credential_process, assumed roles.",
    ),
    (
        "AWS_REGION",
        "The region (--region wins; else the profile's region).",
    ),
    (
        "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN",
        "Credentials, before any profile's.",
    ),
    (
        "AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE",
        "Where the profiles are (default ~/.aws/config and ~/.aws/credentials).",
    ),
    (
        "AWS_ENDPOINT_URL",
        "Another endpoint for every AWS service, such as a local emulator; a region is still needed.",
    ),
    (
        "AWS_MAX_ATTEMPTS, AWS_RETRY_MODE",
        "The SDK's retries, instead of keyrot's (standard mode, 12 attempts).",
    ),
    (
        "EVENT_BUS_NAME",
        "The bus keyrot rollback puts its event on (--event-bus wins).",
    ),
    (
        "RUST_LOG",
        "What -v logs, as tracing directives (for example debug).",
    ),
];

pub fn run(mut command: clap::Command, args: &ManArgs) -> ExitCode {
    command.build();
    let result = match &args.out {
        None => {
            let mut page = Vec::new();
            render(&command, &subcommand_names(&command), &mut page).map(|()| {
                crate::output::out(format_args!("{}", String::from_utf8_lossy(&page)));
            })
        }
        Some(dir) => write_pages(&command, dir),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            errln!("keyrot: could not write the man pages: {error}");
            ExitCode::from(FAILURE)
        }
    }
}

fn subcommand_names(command: &clap::Command) -> Vec<String> {
    command
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set() && sub.get_name() != "help")
        .map(|sub| format!("keyrot-{}", sub.get_name()))
        .collect()
}

/// keyrot.1 and keyrot-SUBCOMMAND.1 for each subcommand, in `dir`.
fn write_pages(command: &clap::Command, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let pages = subcommand_names(command);
    let mut written = Vec::new();
    let mut write = |name: &str, cmd: &clap::Command, see_also: &[String]| {
        let mut page = Vec::new();
        render(cmd, see_also, &mut page)?;
        let path = dir.join(format!("{name}.1"));
        std::fs::write(&path, page)?;
        written.push(path);
        std::io::Result::Ok(())
    };
    write("keyrot", command, &pages)?;
    for sub in command
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set() && sub.get_name() != "help")
    {
        let name = format!("keyrot-{}", sub.get_name());
        let sub = sub
            .clone()
            .display_name(name.clone())
            .bin_name(name.replace('-', " "));
        write(&name, &sub, &["keyrot".to_string()])?;
    }
    for path in written {
        errln!("wrote {}", path.display());
    }
    Ok(())
}

/// One page: clap_mangen's sections, then ours.
fn render(command: &clap::Command, see_also: &[String], w: &mut Vec<u8>) -> std::io::Result<()> {
    let man = clap_mangen::Man::new(command.clone());
    man.render_title(w)?;
    man.render_name_section(w)?;
    man.render_synopsis_section(w)?;
    man.render_description_section(w)?;
    if command.get_arguments().any(|arg| !arg.is_hide_set()) {
        man.render_options_section(w)?;
    }
    if command.has_subcommands() {
        man.render_subcommands_section(w)?;
    }
    let mut roff = Roff::new();
    if let Some(examples) = command.get_after_help() {
        roff.control("SH", ["EXAMPLES"]).control("nf", []);
        for line in examples.to_string().lines().skip(1) {
            roff.text([roman(line.strip_prefix("  ").unwrap_or(line))]);
        }
        roff.control("fi", []);
    }
    roff.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in EXIT_STATUS {
        roff.control("TP", [])
            .text([bold(code)])
            .text([roman(meaning)]);
    }
    roff.control("SH", ["ENVIRONMENT"]);
    for (name, meaning) in ENVIRONMENT {
        roff.control("TP", [])
            .text([bold(name)])
            .text([roman(meaning)]);
    }
    if !see_also.is_empty() {
        let refs: Vec<String> = see_also.iter().map(|page| format!("{page}(1)")).collect();
        roff.control("SH", ["SEE ALSO"])
            .text([roman(format!("{}, aws(1)", refs.join(", ")))]);
    }
    roff.to_writer(w)?;
    man.render_version_section(w)
}

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
