//! Where a scope's secrets live in GitHub's REST API.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::model::delivery_target::GitHubScope;

/// Characters left as they are in a path segment: RFC 3986's unreserved.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The secrets path of a scope (its public key and each secret are below).
pub(super) fn secrets_path(scope: &GitHubScope) -> String {
    match scope {
        GitHubScope::Repository { owner, repo } => {
            format!(
                "/repos/{}/{}/actions/secrets",
                segment(owner),
                segment(repo)
            )
        }
        GitHubScope::Environment {
            owner,
            repo,
            environment,
        } => format!(
            "/repos/{}/{}/environments/{}/secrets",
            segment(owner),
            segment(repo),
            segment(environment)
        ),
        GitHubScope::Organization { org, .. } => {
            format!("/orgs/{}/actions/secrets", segment(org))
        }
    }
}

/// One path segment, percent-encoded (an environment name may hold `/` or a
/// space; GitHub wants them encoded).
pub(super) fn segment(text: &str) -> String {
    utf8_percent_encode(text, SEGMENT).to_string()
}
