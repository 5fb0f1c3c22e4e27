//! GitHub's REST API for Actions secrets: an outward layer beside `aws/`, for
//! the delivery job (SPEC 14). It imports the value types it serves (the
//! target's scope, `Sensitive`) and no job.
//!
//! - `credentials`: the credentials document, and the App's JWT.
//! - `client`: the public key, the sealed write, its verification, installation
//!   tokens, rate limits, retries.
//! - `transport`: one HTTPS exchange over the SDK's own HTTP stack, counted.
//! - `rate_limit`, `sealed_box`, `api_root`: pure pieces, unit-tested.

mod api_root;
mod client;
mod credentials;
mod error;
mod rate_limit;
mod sealed_box;
mod transport;

pub use api_root::{ApiRoot, DEFAULT_API_URL, GITHUB_API_URL};
pub use client::{Delivered, GitHub};
pub use credentials::GitHubCredentials;
pub use error::GitHubError;
