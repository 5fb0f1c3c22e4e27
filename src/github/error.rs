//! What went wrong with GitHub, worded for the delivery function's log: which
//! target (repository, environment or organization, and secret name), what
//! GitHub said, and what the operator does about it.
//!
//! Never in a message: the token, the App's JWT or private key, a secret value,
//! or a response body other than GitHub's own `message` field of an error
//! (which names no secret). The fields hold nothing else, so `Debug` is as safe
//! as `Display`.

use thiserror::Error;

/// What the operator does about refused credentials.
pub(super) const FIX_TOKEN: &str = "the fine-grained token expired, was revoked or is mistyped: create one with the permission Secrets (read and write) on the target and store it in the GitHub credentials secret";
pub(super) const FIX_INSTALLATION: &str = "a fresh installation token was refused too: check that the App is still installed on the target's account and not suspended";
pub(super) const FIX_JWT: &str = "GitHub refused the App's JWT: check app_id (or client_id) and that private_key is a current key of that App (GitHub App settings, Private keys); a clock more than a minute off also does it";

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GitHubError {
    #[error(
        "the GitHub credentials are not usable: {detail}. Store {{\"token\": \"<fine-grained token>\"}}, or a GitHub App's {{\"app_id\" (or \"client_id\"), \"installation_id\", \"private_key\"}}, in the secret GITHUB_CREDENTIALS_SECRET_ARN names"
    )]
    Credentials { detail: String },

    #[error("GITHUB_API_URL {url} is not usable: {detail}")]
    ApiUrl { url: String, detail: String },

    #[error("GitHub refused the credentials for {target} (401: {message}): {fix}")]
    Unauthorized {
        target: String,
        message: String,
        fix: &'static str,
    },

    #[error(
        "GitHub answered 404 for {target}: it does not exist, or the token (or the App's installation) cannot see it; check the target spec, and give the token or the installation access to it with the permission Secrets (read and write)"
    )]
    NotFound { target: String },

    #[error(
        "GitHub refused {target} (403: {message}): give the token or the App the permission Secrets (read and write) there (organization secrets need the organization permission Secrets), or lift the organization's policy that blocks it"
    )]
    Forbidden { target: String, message: String },

    #[error(
        "GitHub refused {target} ({status}: {message}); the target spec may name something GitHub does not accept"
    )]
    Rejected {
        target: String,
        status: u16,
        message: String,
    },

    #[error(
        "GitHub rate-limits these credentials until {until} ({wait_secs} s from now), past this run's deadline: {target} is left for the next run"
    )]
    RateLimited {
        target: String,
        until: String,
        wait_secs: u64,
    },

    #[error("GitHub failed {target} with {status} {attempts} times in a row; the next run retries")]
    Server {
        target: String,
        status: u16,
        attempts: u32,
    },

    #[error(
        "cannot reach GitHub at {url} for {target} ({detail}) {attempts} times in a row; check GITHUB_API_URL, the function's network path to it (a function in a VPC needs a NAT gateway or a proxy) and SSL_CERT_FILE"
    )]
    Transport {
        target: String,
        url: String,
        detail: String,
        attempts: u32,
    },

    #[error("the run's deadline came before GitHub answered for {target}; the next run retries")]
    DeadlineReached { target: String },

    #[error("{target}: the write did not take ({detail}); the next run writes it again")]
    Unverified { target: String, detail: String },

    #[error(
        "{target} has visibility {found} in GitHub and the target spec says {wanted}: a write would change which repositories may read it, so nothing was written. Put :visibility={found} in the spec (keyrot deliver remove, then add), or change the secret's visibility in GitHub"
    )]
    Visibility {
        target: String,
        found: String,
        wanted: &'static str,
    },

    #[error("GitHub's answer for {target} is not what its API documents: {detail}")]
    BadResponse { target: String, detail: String },
}
