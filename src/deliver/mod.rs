//! The delivery job (SPEC 14): pushes a secret's current key to every target
//! its reserved tags name (GitHub Actions secrets, SSM parameters, copies in
//! other secrets), verifies each write, and records what reached where in the
//! reserved tag `iam-key-rotation:delivered`, which the sweep and createSecret
//! read before they retire the previous key.
//!
//! A run is `{"Action": "deliver", "SecretId": ARN}` (the EventBridge rule on
//! `Access Key Rotated` and `Access Key Rolled Back`) or `{"Action":
//! "deliver"}` (the schedule: every secret under `SECRET_NAME_PREFIX` with a
//! target). Each secret: read its description and tags, read `AWSCURRENT`
//! only if some target does not hold it yet, write and verify those targets,
//! put the events, then record (`secret.rs` has the order and why). Every
//! write is idempotent and a crash at any call leaves at most a target written
//! but not recorded, which the next run writes again; docs/design.md has the
//! crash table. The run stops starting work as the deadline nears and answers
//! with what it did.

mod config;
mod error;
mod github;
mod proof;
mod secret;
mod target;

use std::time::Instant;

use futures::stream::{self, StreamExt};
use serde::Serialize;
use serde_json::{Value, json};
use tracing::{Instrument, info, info_span, warn};

pub use config::{DEFAULT_DELIVERY_ROLE_NAME, DeliveryConfig};
pub use error::DeliverError;

use crate::aws::Clients;
use crate::aws::listing::SecretPages;
use crate::aws::secrets;
use crate::deadline::{Deadline, STEP_MARGIN, TARGET_START_MARGIN};
use crate::model::secret::Secret;
use crate::model::secret_value::json_type;
use github::{GitHubSource, RunGitHub};
use target::Sessions;

/// The `Action` of a delivery run.
pub const DELIVER: &str = "deliver";
/// Secrets delivered at once by a scheduled run: GitHub's and AWS's calls of
/// several secrets overlap, few enough to stay clear of GitHub's secondary
/// rate limits (which frown on many concurrent writes).
const CONCURRENCY: usize = 8;
/// Longest `SecretId` Secrets Manager accepts.
const MAX_SECRET_ID_LEN: usize = 2048;

/// What the function was invoked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Request {
    /// Every secret under the prefix with targets (the schedule).
    All,
    /// One secret (the rule on a rotation or a rollback, or by hand).
    One(String),
}

impl Request {
    fn from_payload(payload: Value) -> Result<Self, DeliverError> {
        let invalid = |reason: String| DeliverError::InvalidEvent { reason };
        let Value::Object(fields) = payload else {
            return Err(invalid(format!(
                "the payload is {}, not a JSON object",
                json_type(&payload)
            )));
        };
        match fields.get("Action") {
            Some(Value::String(action)) if action == DELIVER => {}
            Some(Value::String(_)) => {
                return Err(invalid("the only Action is \"deliver\"".into()));
            }
            Some(other) => {
                return Err(invalid(format!(
                    "field Action is {}, not a string",
                    json_type(other)
                )));
            }
            None => return Err(invalid("field Action is missing".into())),
        }
        if let Some(name) = fields
            .keys()
            .find(|key| !["Action", "SecretId"].contains(&key.as_str()))
        {
            return Err(invalid(format!(
                "unknown field {:?}",
                name.chars().take(40).collect::<String>()
            )));
        }
        match fields.get("SecretId") {
            None | Some(Value::Null) => Ok(Self::All),
            Some(Value::String(id))
                if !id.is_empty()
                    && id.len() <= MAX_SECRET_ID_LEN
                    && !id.chars().any(char::is_control) =>
            {
                Ok(Self::One(id.clone()))
            }
            Some(Value::String(_)) => Err(invalid(format!(
                "field SecretId must be a secret's ARN (1 to {MAX_SECRET_ID_LEN} characters)"
            ))),
            Some(other) => Err(invalid(format!(
                "field SecretId is {}, not a string",
                json_type(other)
            ))),
        }
    }
}

/// A target written and verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveredTarget {
    /// The secret's ARN.
    pub secret: String,
    /// The target's label.
    pub target: String,
    pub version: String,
}

/// A target that failed, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedTarget {
    pub secret: String,
    pub target: String,
    pub error: String,
}

/// What one run did: the response, the log line and the metrics.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DeliverReport {
    /// Secrets with targets the run examined.
    pub secrets: usize,
    pub delivered: Vec<DeliveredTarget>,
    pub failed: Vec<FailedTarget>,
    /// Secrets the run saw whose current version misses a target.
    pub undelivered_secrets: usize,
}

impl DeliverReport {
    /// The response (SPEC 14).
    pub fn to_json(&self) -> Value {
        json!({
            "Action": DELIVER,
            "Secrets": self.secrets,
            "Delivered": self.delivered,
            "Failed": self.failed,
        })
    }

    /// The run's metrics (namespace `IamKeyRotation`, no dimension), recorded
    /// through the `metrics` facade; the binary flushes them as EMF.
    pub fn record_metrics(&self) {
        metrics::gauge!("Deliveries").set(self.delivered.len() as f64);
        metrics::gauge!("DeliveryFailures").set(self.failed.len() as f64);
        metrics::gauge!("UndeliveredSecrets").set(self.undelivered_secrets as f64);
    }

    fn add(&mut self, secret: secret::SecretResult) {
        self.secrets += 1;
        self.undelivered_secrets += usize::from(secret.undelivered);
        self.delivered.extend(secret.delivered);
        self.failed.extend(secret.failed);
    }
}

/// Declares the delivery metrics' units, once, when the recorder is installed.
pub fn describe_metrics() {
    metrics::describe_gauge!(
        "Deliveries",
        metrics::Unit::Count,
        "targets written and verified by the run"
    );
    metrics::describe_gauge!(
        "DeliveryFailures",
        metrics::Unit::Count,
        "targets the run could not write or verify"
    );
    metrics::describe_gauge!(
        "UndeliveredSecrets",
        metrics::Unit::Count,
        "secrets the run saw whose current version misses a target"
    );
}

/// The delivery function: its clients, settings and GitHub client, shared by
/// every invocation of a warm instance.
pub struct Deliverer {
    clients: Clients,
    config: DeliveryConfig,
    github: GitHubSource,
}

impl std::fmt::Debug for Deliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliverer")
            .field("config", &self.config)
            .finish()
    }
}

/// One run: what every secret's delivery shares.
pub(crate) struct Run<'a> {
    clients: &'a Clients,
    config: &'a DeliveryConfig,
    github: RunGitHub<'a>,
    sessions: Sessions,
    deadline: Deadline,
}

impl Deliverer {
    pub fn new(clients: Clients, config: DeliveryConfig) -> Self {
        Self {
            clients,
            config,
            github: GitHubSource::default(),
        }
    }

    /// Every GitHub call this instance made (for the figures).
    pub fn github_calls(&self) -> u64 {
        self.github.calls()
    }

    /// One invocation: a scheduled run or one secret's; `deadline` is when
    /// Lambda stops the invocation.
    pub async fn handle(
        &self,
        payload: Value,
        deadline: Option<Instant>,
    ) -> Result<DeliverReport, DeliverError> {
        let request = Request::from_payload(payload).inspect_err(|error| {
            warn!(error_type = error.kind(), error = %error, "rejected the event");
        })?;
        let started = Instant::now();
        let run = Run {
            clients: &self.clients,
            config: &self.config,
            github: self.github.run(),
            sessions: Sessions::default(),
            deadline: Deadline::credible(deadline, started),
        };
        let span = match &request {
            Request::All => info_span!("delivery", run = "scheduled"),
            Request::One(secret) => info_span!("delivery", secret = %secret),
        };
        // Boxed: the run's futures are deep, and the compiler's layout of the
        // runtime's future must not nest them all.
        let work: std::pin::Pin<Box<dyn Future<Output = _> + Send + '_>> = Box::pin(async {
            match &request {
                Request::All => run.all().await,
                Request::One(secret_id) => run.one(secret_id).await,
            }
        });
        let result = work.instrument(span).await;
        match &result {
            Ok(report) => {
                report.record_metrics();
                info!(
                    secrets = report.secrets,
                    delivered = report.delivered.len(),
                    failed = report.failed.len(),
                    undelivered_secrets = report.undelivered_secrets,
                    duration_ms = started.elapsed().as_millis() as u64,
                    "delivery run complete"
                );
            }
            Err(error) => warn!(error_type = error.kind(), error = %error, "delivery run failed"),
        }
        result
    }
}

impl Run<'_> {
    /// Every secret under the prefix with a target, `CONCURRENCY` at a time,
    /// from a random point of the list (so runs cut short by the deadline do
    /// not always leave the same secrets for later).
    async fn all(&self) -> Result<DeliverReport, DeliverError> {
        let prefix = Some(self.config.secret_name_prefix.as_str()).filter(|p| !p.is_empty());
        let listing = async {
            let mut pages = SecretPages::new(self.clients, prefix);
            let mut found = Vec::new();
            while let Some(page) = pages.next().await? {
                found.extend(page.into_iter().filter(|s| s.delivery.has_targets()));
            }
            Ok::<_, DeliverError>(found)
        };
        let mut found: Vec<Secret> = self.deadline.bound(STEP_MARGIN, listing).await.ok_or(
            DeliverError::DeadlineReached {
                detail: "listing the secrets",
            },
        )??;
        if !found.is_empty() {
            found.sort_by(|a, b| a.arn.cmp(&b.arn));
            let start = fastrand::usize(..found.len());
            found.rotate_left(start);
        }
        let deliveries: Vec<_> = found
            .iter()
            .map(|secret| self.deliver_bounded(secret))
            .collect();
        let results = stream::iter(deliveries)
            .buffer_unordered(CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        let mut report = DeliverReport::default();
        for result in results {
            report.add(result);
        }
        report
            .delivered
            .sort_by(|a, b| (&a.secret, &a.target).cmp(&(&b.secret, &b.target)));
        report
            .failed
            .sort_by(|a, b| (&a.secret, &a.target).cmp(&(&b.secret, &b.target)));
        Ok(report)
    }

    /// One secret, by ARN (or name), which must be under the prefix.
    async fn one(&self, secret_id: &str) -> Result<DeliverReport, DeliverError> {
        let found = self
            .deadline
            .bound(STEP_MARGIN, secrets::find(self.clients, secret_id))
            .await
            .ok_or(DeliverError::DeadlineReached {
                detail: "describing the secret",
            })??;
        let Some(secret) = found else {
            return Err(DeliverError::SecretNotFound {
                secret: secret_id.to_string(),
            });
        };
        let prefix = &self.config.secret_name_prefix;
        if !secret.name.starts_with(prefix.as_str()) {
            return Err(DeliverError::OutsidePrefix {
                secret: secret.arn,
                prefix: prefix.clone(),
            });
        }
        let mut report = DeliverReport::default();
        if secret.delivery.has_targets() {
            report.add(self.deliver_bounded(&secret).await);
        } else {
            info!(secret = %secret.arn, "the secret has no delivery targets");
        }
        Ok(report)
    }

    /// A secret's delivery, not started this close to the deadline and stopped
    /// just before it (its targets are then left to the next run).
    async fn deliver_bounded(&self, secret: &Secret) -> secret::SecretResult {
        if self
            .deadline
            .less(TARGET_START_MARGIN)
            .is_some_and(|at| Instant::now() >= at)
        {
            return secret::SecretResult::unfinished(secret);
        }
        let work: std::pin::Pin<Box<dyn Future<Output = _> + Send + '_>> =
            Box::pin(secret::deliver(self, secret));
        self.deadline
            .bound(STEP_MARGIN, work)
            .await
            .unwrap_or_else(|| secret::SecretResult::unfinished(secret))
    }

    /// Whether a target may still start.
    fn may_start(&self) -> bool {
        self.deadline
            .less(TARGET_START_MARGIN)
            .is_none_or(|at| Instant::now() < at)
    }

    /// When a target's writes and waits must stop.
    fn stop_by(&self) -> Option<Instant> {
        self.deadline.less(crate::deadline::TARGET_WRITE_MARGIN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_is_a_run_of_every_secret_or_of_one() {
        assert_eq!(
            Request::from_payload(json!({"Action": "deliver"})).unwrap(),
            Request::All
        );
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:iam-keys/app-AbCdEf";
        assert_eq!(
            Request::from_payload(json!({"Action": "deliver", "SecretId": arn})).unwrap(),
            Request::One(arn.into())
        );
        for bad in [
            json!({}),
            json!({"Action": "sweep"}),
            json!({"Action": 1}),
            json!({"Action": "deliver", "SecretId": ""}),
            json!({"Action": "deliver", "SecretId": 7}),
            json!({"Action": "deliver", "Target": "github:evil/repo"}),
            json!("deliver"),
        ] {
            let error = Request::from_payload(bad.clone()).unwrap_err();
            assert_eq!(error.kind(), "InvalidEvent", "{bad}");
            assert!(!error.to_string().contains("evil"), "{error}");
        }
    }

    #[test]
    fn the_response_has_the_documented_shape() {
        let report = DeliverReport {
            secrets: 2,
            delivered: vec![DeliveredTarget {
                secret: "s".into(),
                target: "ci".into(),
                version: "v2".into(),
            }],
            failed: vec![FailedTarget {
                secret: "s".into(),
                target: "ops".into(),
                error: "invalid target spec: x".into(),
            }],
            undelivered_secrets: 1,
        };
        assert_eq!(
            report.to_json(),
            json!({"Action": "deliver", "Secrets": 2,
                "Delivered": [{"secret": "s", "target": "ci", "version": "v2"}],
                "Failed": [{"secret": "s", "target": "ops", "error": "invalid target spec: x"}]})
        );
    }
}
