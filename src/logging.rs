//! The Lambda functions' logging: Lambda's usual set-up (JSON lines when
//! `AWS_LAMBDA_LOG_FORMAT=JSON`, the level from `AWS_LAMBDA_LOG_LEVEL`, else
//! `RUST_LOG`, else INFO) with one difference that no setting undoes: other
//! crates never log below INFO (SPEC 11, T5 and T10). `lambda_runtime` logs
//! each raw event, `RotationToken` included, at TRACE and DEBUG; the SDK's
//! DEBUG lines may carry a response's raw body when it fails to read it (a
//! new `SecretAccessKey`, a secret's value), and hyper's and rustls' have
//! nothing an operator needs. This crate's own lines are written to be safe at
//! every level, and carry each failed call's error chain.

use lambda_runtime::tracing::subscriber::filter::{EnvFilter, LevelFilter, filter_fn};
use lambda_runtime::tracing::subscriber::prelude::*;
use lambda_runtime::tracing::subscriber::{self, Layer};
use lambda_runtime::tracing::{Level, Metadata};

/// The library's own crate: its lines may show at any level.
const LIBRARY: &str = env!("CARGO_CRATE_NAME");

/// Installs the subscriber; call once, first thing in `main`, with the
/// binary's own crate name (`env!("CARGO_CRATE_NAME")`), whose lines, like
/// the library's, are never capped. A binary is a crate of its own: a list of
/// names here would cap every new one without a word.
pub fn init_lambda(binary: &'static str) {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|value| value.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let env_filter = EnvFilter::builder()
        .with_default_directive(level.into())
        .from_env_lossy();
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let format = subscriber::fmt::layer().with_target(false).without_time();
    let format = if json {
        format.json().boxed()
    } else {
        format.boxed()
    };
    subscriber::registry()
        .with(
            format
                .with_filter(filter_fn(move |metadata| within_cap(metadata, binary)))
                .with_filter(env_filter),
        )
        .init();
}

/// `keyrot`'s logging: none unless `-v` or `RUST_LOG` asks (its errors are
/// printed by `main`), then to stderr, with the same caps. `-v` shows this
/// crate's DEBUG lines and the binary's (`binary`, its crate name), which
/// include the SDK's error chain of a failed call.
pub fn init_cli(binary: &'static str, verbose: bool) {
    let rust_log = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let directives = match (&rust_log, verbose) {
        (Some(directives), _) => directives.clone(),
        (None, true) => format!("warn,{LIBRARY}=debug,{binary}=debug"),
        (None, false) => return,
    };
    let format = subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time();
    subscriber::registry()
        .with(
            format
                .with_filter(filter_fn(move |metadata| within_cap(metadata, binary)))
                .with_filter(EnvFilter::new(directives)),
        )
        .init();
}

/// Whether a line is at or above its crate's cap.
fn within_cap(metadata: &Metadata<'_>, binary: &str) -> bool {
    cap(metadata.target(), binary).is_none_or(|cap| *metadata.level() <= cap)
}

/// The most verbose level a target may log at, in a process whose binary is
/// the crate `binary`; `None`: no cap.
fn cap(target: &str, binary: &str) -> Option<Level> {
    let crate_name = target.split("::").next().unwrap_or(target);
    if crate_name == LIBRARY || crate_name == binary {
        None
    } else {
        Some(Level::INFO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_other_crate_is_held_to_info() {
        let cap = |target| cap(target, "iam_key_audit");
        assert_eq!(cap("lambda_runtime::layers::trace"), Some(Level::INFO));
        assert_eq!(cap("lambda_runtime_api_client"), Some(Level::INFO));
        for sdk in [
            "aws_smithy_runtime::client::orchestrator",
            "aws_smithy_http_client",
            "aws_sdk_iam",
            "aws_config",
            "hyper_util::client",
            "rustls::client",
        ] {
            assert_eq!(cap(sdk), Some(Level::INFO), "{sdk}");
            assert!(Level::DEBUG > Level::INFO, "DEBUG is more verbose: cut");
        }
        assert_eq!(cap("iam_key_rotation::steps"), None);
        assert!(
            Level::TRACE > Level::INFO,
            "tracing orders TRACE as the most verbose"
        );
    }

    #[test]
    fn any_binary_that_names_itself_is_uncapped_without_a_list_to_update() {
        assert_eq!(LIBRARY, "iam_key_rotation");
        assert_eq!(cap("iam_key_deliver", "iam_key_deliver"), None);
        assert_eq!(cap("iam_key_deliver::run", "iam_key_deliver"), None);
        assert_eq!(cap("keyrot", "iam_key_deliver"), Some(Level::INFO));
    }
}
