//! The Lambda functions' logging: Lambda's usual set-up (JSON lines when
//! `AWS_LAMBDA_LOG_FORMAT=JSON`, the level from `AWS_LAMBDA_LOG_LEVEL`, else
//! `RUST_LOG`, else INFO) with one difference that no setting undoes: other
//! crates never log below a cap (SPEC 11, T5). `lambda_runtime` logs each raw
//! event, `RotationToken` included, at TRACE and DEBUG, so it is held to INFO;
//! every other crate (the SDK, hyper, rustls) to DEBUG, which the tests' TRACE
//! run scans and finds clean. This crate's own lines are written to be safe at
//! every level.

use lambda_runtime::tracing::subscriber::filter::{EnvFilter, LevelFilter, filter_fn};
use lambda_runtime::tracing::subscriber::prelude::*;
use lambda_runtime::tracing::subscriber::{self, Layer};
use lambda_runtime::tracing::{Level, Metadata};

/// Crates whose lines may show at any level: the library and its binaries.
const OWN_TARGETS: [&str; 3] = ["iam_key_rotation", "iam_key_audit", "keyrot"];

/// Installs the subscriber; call once, first thing in `main`.
pub fn init_lambda() {
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
                .with_filter(filter_fn(within_cap))
                .with_filter(env_filter),
        )
        .init();
}

/// `keyrot`'s logging: none unless `-v` or `RUST_LOG` asks (its errors are
/// printed by `main`), then to stderr, with the same caps. `-v` shows this
/// crate's DEBUG lines, which include the SDK's whole error chain of a failed
/// call.
pub fn init_cli(verbose: bool) {
    let rust_log = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let directives = match (&rust_log, verbose) {
        (Some(directives), _) => directives.clone(),
        (None, true) => "warn,iam_key_rotation=debug,keyrot=debug".to_string(),
        (None, false) => return,
    };
    let format = subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time();
    subscriber::registry()
        .with(
            format
                .with_filter(filter_fn(within_cap))
                .with_filter(EnvFilter::new(directives)),
        )
        .init();
}

/// Whether a line is at or above its crate's cap.
fn within_cap(metadata: &Metadata<'_>) -> bool {
    cap(metadata.target()).is_none_or(|cap| *metadata.level() <= cap)
}

/// The most verbose level a target may log at; `None`: no cap.
fn cap(target: &str) -> Option<Level> {
    let crate_name = target.split("::").next().unwrap_or(target);
    if OWN_TARGETS.contains(&crate_name) {
        None
    } else if crate_name.starts_with("lambda_runtime") {
        Some(Level::INFO)
    } else {
        Some(Level::DEBUG)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_is_held_to_info_and_other_crates_to_debug() {
        assert_eq!(cap("lambda_runtime::layers::trace"), Some(Level::INFO));
        assert_eq!(cap("lambda_runtime_api_client"), Some(Level::INFO));
        assert_eq!(cap("aws_smithy_runtime::client"), Some(Level::DEBUG));
        assert_eq!(cap("iam_key_rotation::steps"), None);
        assert!(
            Level::TRACE > Level::INFO,
            "tracing orders TRACE as the most verbose"
        );
    }
}
