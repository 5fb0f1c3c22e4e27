//! iam-key-rotation: the AWS Secrets Manager rotation function for IAM user access
//! keys, and the operator's tools around it.
//!
//! Three jobs over one AWS layer: `rotate/` (the four steps Secrets Manager
//! invokes), `sweep/` (the hourly retirement of previous keys) and `fleet/`
//! (`keyrot` and the daily audit), all calling AWS through `aws/`, over value
//! types that call nothing (configuration, events, the secret value, key tags,
//! ARNs, errors). [`Handler`] is what the Lambda runtime calls. docs/design.md
//! draws the layers.
//!
//! Modules are private: the binaries and tests use the few items re-exported
//! here, and the compiler reports whatever else goes unused.

mod arn;
mod aws;
mod aws_error;
mod backoff;
mod clock;
mod config;
mod deadline;
mod error;
mod event;
pub mod fleet;
mod handler;
pub mod logging;
mod model;
mod retire;
mod rotate;
mod sensitive;
mod smtp;
mod sweep;

pub use aws::Clients;
pub use aws::http::shared_https_client;
pub use aws::metrics::{NAMESPACE as METRICS_NAMESPACE, describe as describe_metrics};
pub use aws::retry::{cli_retry_config, sdk_retry_config};
pub use config::{Config, OldKeyAction, Retirement};
pub use error::{ConfigError, RotationError};
pub use handler::{Handler, Invocation};
pub use model::lifecycle::{Lifecycle, Retired, Subject};
pub use sensitive::Sensitive;
pub use smtp::smtp_password;
