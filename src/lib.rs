//! iam-key-rotation: the AWS Secrets Manager rotation function for IAM user access
//! keys, and the operator's tools around it.
//!
//! Jobs over one AWS layer over the model: `rotate/` (the four steps Secrets
//! Manager invokes) and `sweep/` (the hourly retirement of previous keys),
//! which [`Handler`] runs for the Lambda runtime; `report/` (`keyrot status`
//! and `audit`, and the daily audit), `ops/` (`keyrot enroll`, `rollback` and
//! `deliver`) and `deliver/` (the delivery function: the new key pushed to
//! GitHub Actions, SSM and other accounts before the old one retires). Every
//! AWS call goes through `aws/`, whose SDK clients no job sees; the records
//! they read and write are `model/`'s values, which call nothing.
//! docs/design.md draws the floors.
//!
//! Modules are private but for the jobs the binaries drive (`report`, `ops`,
//! `deliver`): the binaries and tests use the few items re-exported here, and
//! the compiler reports whatever else goes unused.

mod arn;
mod aws;
mod backoff;
mod clock;
mod config;
mod deadline;
pub mod deliver;
mod error;
mod event;
mod github;
mod handler;
mod key_proof;
pub mod logging;
mod metrics;
mod model;
pub mod ops;
pub mod report;
mod retire;
mod rotate;
mod sensitive;
mod smtp;
mod sweep;

pub use aws::setup::SetupError;
pub use aws::{Clients, RetryProfile, Settings};
pub use config::ConfigError;
pub use config::{Config, OldKeyAction, Retirement};
pub use error::RotationError;
pub use github::{
    ApiRoot, DEFAULT_API_URL, Delivered, GITHUB_API_URL, GitHub, GitHubCredentials, GitHubError,
};
pub use handler::{Handler, Invocation};
pub use metrics::{NAMESPACE as METRICS_NAMESPACE, describe as describe_metrics};
pub use model::delivered::{DELIVERED_TAG, DeliveredRecord, check_labels_fit};
pub use model::delivery_target::{
    DELIVER_TAG_PREFIX, DeliveryTag, GitHubScope, GitHubTarget, InvalidTarget, Label,
    SSM_ACCESS_KEY_ID, SSM_SECRET_ACCESS_KEY, SSM_SMTP_PASSWORD, SecretNames, SecretsManagerTarget,
    SsmTarget, Target, TargetKind, Visibility, delivery_tags,
};
pub use model::lifecycle::{Lifecycle, Retired, Subject};
pub use sensitive::Sensitive;
pub use smtp::smtp_password;
