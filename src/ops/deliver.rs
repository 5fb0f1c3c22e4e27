//! `keyrot deliver add|remove` and `keyrot enroll --deliver`: a secret's
//! delivery targets, the reserved tags `iam-key-rotation:deliver:<label>`
//! (SPEC 14). Each spec is checked by the delivery job's own parser before
//! anything is written, and a label the record `iam-key-rotation:delivered`
//! could not hold is refused, so keyrot and the function always agree. Only
//! administrators may write these tags (the SCP reserves `iam-key-rotation:*`):
//! keyrot runs with the operator's own credentials.

use serde::Serialize;

use super::OpsError;
use crate::aws::Clients;
use crate::aws::secrets;
use crate::model::delivered::{DELIVERED_TAG, check_labels_fit};
use crate::model::delivery_target::{Label, Target};
use crate::model::secret::Secret;

/// A target to write: its label and its spec, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTarget {
    pub label: Label,
    pub target: Target,
}

impl NewTarget {
    /// `LABEL` and `SPEC`, checked as the delivery function reads them.
    pub fn parse(label: &str, spec: &str) -> Result<Self, OpsError> {
        let usage = |error: crate::model::delivery_target::InvalidTarget| {
            OpsError::Usage(format!(
                "{error}; nothing was changed (keyrot deliver add --help shows the forms)"
            ))
        };
        Ok(Self {
            label: Label::parse(label).map_err(usage)?,
            target: Target::parse(spec).map_err(usage)?,
        })
    }

    /// `LABEL=SPEC`, as `keyrot enroll --deliver` takes it.
    pub fn parse_assignment(assignment: &str) -> Result<Self, OpsError> {
        let Some((label, spec)) = assignment.split_once('=') else {
            return Err(OpsError::Usage(format!(
                "--deliver {assignment:?} must be LABEL=SPEC, such as ci=github:acme/app; nothing was changed"
            )));
        };
        Self::parse(label, spec)
    }

    /// The tag key.
    pub fn key(&self) -> String {
        self.label.tag_key()
    }

    /// The tag value: the spec in the form `keyrot deliver list` prints.
    pub fn value(&self) -> String {
        self.target.to_string()
    }
}

/// What `keyrot deliver add` or `remove` did (its JSON).
#[derive(Debug, Clone, Serialize)]
pub struct TargetChange {
    pub secret_arn: String,
    pub secret_name: String,
    pub label: String,
    pub spec: Option<String>,
    pub changed: bool,
    pub actions: Vec<String>,
}

/// The tags to write for `targets` on `secret` (none yet, for a secret
/// `enroll` is about to create), refusing, before anything is written, a label
/// the secret holds with another spec, a copy into the secret itself, and
/// labels the delivered record could not hold.
pub fn plan(secret: Option<&Secret>, targets: &[NewTarget]) -> Result<Vec<NewTarget>, OpsError> {
    let existing = secret
        .map(|secret| secret.delivery.targets.as_slice())
        .unwrap_or_default();
    let name = secret.map_or("the secret", |secret| secret.name.as_str());
    let mut writes = Vec::new();
    for (i, new) in targets.iter().enumerate() {
        if targets[..i]
            .iter()
            .any(|earlier| earlier.label == new.label)
        {
            return Err(OpsError::Usage(format!(
                "label {} is given twice; nothing was changed",
                new.label
            )));
        }
        if let (Target::SecretsManager(copy), Some(secret)) = (&new.target, secret)
            && copy.arn == secret.arn
        {
            return Err(OpsError::Refused(format!(
                "target {} would copy {name} into itself: name another secret; nothing was changed",
                new.label
            )));
        }
        let recorded = secret.is_some_and(|secret| {
            secret
                .delivery
                .delivered
                .as_ref()
                .is_some_and(|record| record.holds(secret.current_version(), &new.label))
        });
        match existing.iter().find(|tag| tag.label == new.label.as_str()) {
            // The record says the label holds the current version: of the
            // target it had before, which the new one would be taken for.
            None if recorded => {
                return Err(OpsError::Refused(format!(
                    "{name} delivered its current version to another target under the label {}: give this target another label (the record names labels, not targets, so the new one would count as delivered); nothing was changed",
                    new.label
                )));
            }
            Some(tag) if tag.spec == new.value() => {}
            Some(tag) => {
                return Err(OpsError::Refused(format!(
                    "{name} already delivers to {} ({}): remove it first (keyrot deliver remove {name} {}); nothing was changed",
                    new.label, tag.spec, new.label
                )));
            }
            None => writes.push(new.clone()),
        }
    }
    let labels: Vec<Label> = existing
        .iter()
        .filter_map(|tag| tag.target.as_ref().ok().map(|(label, _)| label.clone()))
        .chain(targets.iter().map(|new| new.label.clone()))
        .collect();
    check_labels_fit(labels.iter()).map_err(|too_long| {
        OpsError::Refused(format!(
            "{name} cannot take these targets: {too_long}; nothing was changed"
        ))
    })?;
    Ok(writes)
}

/// Writes the planned target tags on the secret, in one call.
pub(crate) async fn write(
    clients: &Clients,
    secret_arn: &str,
    targets: &[NewTarget],
) -> Result<(), OpsError> {
    if targets.is_empty() {
        return Ok(());
    }
    let tags: Vec<(String, String)> = targets.iter().map(|new| (new.key(), new.value())).collect();
    let pairs: Vec<(&str, &str)> = tags
        .iter()
        .map(|(key, value)| (key.as_str(), value.as_str()))
        .collect();
    secrets::tag(clients, secret_arn, &pairs).await?;
    Ok(())
}

/// The action line of a target written.
pub(crate) fn describe(new: &NewTarget) -> String {
    format!("tag the secret with {}={}", new.key(), new.value())
}

/// `keyrot deliver add SECRET LABEL SPEC`.
pub async fn add(
    clients: &Clients,
    secret_id: &str,
    new: NewTarget,
) -> Result<TargetChange, OpsError> {
    let secret = find(clients, secret_id).await?;
    let writes = plan(Some(&secret), std::slice::from_ref(&new))?;
    write(clients, &secret.arn, &writes).await?;
    Ok(TargetChange {
        secret_arn: secret.arn,
        secret_name: secret.name,
        label: new.label.to_string(),
        spec: Some(new.value()),
        changed: !writes.is_empty(),
        actions: writes.iter().map(describe).collect(),
    })
}

/// `keyrot deliver remove SECRET LABEL`: the target's tag, then the label in
/// the delivery record, so that a target added later under the same label is
/// not taken for delivered.
pub async fn remove(
    clients: &Clients,
    secret_id: &str,
    label: &str,
) -> Result<TargetChange, OpsError> {
    let secret = find(clients, secret_id).await?;
    let Some(tag) = secret
        .delivery
        .targets
        .iter()
        .find(|tag| tag.label == label)
    else {
        return Ok(TargetChange {
            secret_arn: secret.arn,
            secret_name: secret.name,
            label: label.to_string(),
            spec: None,
            changed: false,
            actions: Vec::new(),
        });
    };
    let key = format!(
        "{}{label}",
        crate::model::delivery_target::DELIVER_TAG_PREFIX
    );
    secrets::untag(clients, &secret.arn, &[key.as_str()]).await?;
    let mut actions = vec![format!("remove the tag {key} ({})", tag.spec)];
    let shorter = Label::parse(label).ok().and_then(|label| {
        secret
            .delivery
            .delivered
            .as_ref()
            .and_then(|record| record.without(&label))
    });
    if let Some(record) = shorter {
        let value = record.to_tag_value();
        secrets::tag(clients, &secret.arn, &[(DELIVERED_TAG, value.as_str())]).await?;
        actions.push(format!(
            "take {label} out of the delivery record ({DELIVERED_TAG})"
        ));
    }
    Ok(TargetChange {
        secret_arn: secret.arn,
        secret_name: secret.name,
        label: label.to_string(),
        spec: Some(tag.spec.clone()),
        changed: true,
        actions,
    })
}

async fn find(clients: &Clients, secret_id: &str) -> Result<Secret, OpsError> {
    secrets::find(clients, secret_id)
        .await?
        .ok_or_else(|| OpsError::secret_not_found(secret_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::delivery::SecretDelivery;

    fn secret(tags: &[(&str, &str)]) -> Secret {
        Secret {
            arn: "arn:aws:secretsmanager:us-east-1:111122223333:secret:iam-keys/app-AbCdEf".into(),
            name: "iam-keys/app".into(),
            delivery: SecretDelivery::from_tags(tags.iter().copied()),
            ..Secret::default()
        }
    }

    fn new(label: &str, spec: &str) -> NewTarget {
        NewTarget::parse(label, spec).unwrap()
    }

    #[test]
    fn specs_and_labels_are_checked_by_the_functions_parser() {
        let usage = |error: OpsError| matches!(error, OpsError::Usage(_));
        assert!(usage(NewTarget::parse("ci", "ftp:x").unwrap_err()));
        assert!(usage(NewTarget::parse("c i", "github:o/r").unwrap_err()));
        assert!(usage(
            NewTarget::parse_assignment("github:o/r").unwrap_err()
        ));
        let parsed = NewTarget::parse_assignment("ci=github:o/r:names=A,B:env=prod").unwrap();
        assert_eq!(parsed.key(), "iam-key-rotation:deliver:ci");
        assert_eq!(parsed.value(), "github:o/r:env=prod:names=A,B");
    }

    #[test]
    fn a_conflicting_label_a_copy_into_itself_and_a_record_too_long_are_refused() {
        let existing = secret(&[("iam-key-rotation:deliver:ci", "github:o/r")]);
        assert_eq!(
            plan(Some(&existing), &[new("ci", "github:o/r")]).unwrap(),
            []
        );
        let refused = |error: OpsError| matches!(error, OpsError::Refused(_));
        assert!(refused(
            plan(Some(&existing), &[new("ci", "github:o/other")]).unwrap_err()
        ));
        let itself = format!("secretsmanager:{}", existing.arn);
        assert!(refused(
            plan(Some(&existing), &[new("copy", &itself)]).unwrap_err()
        ));
        let long: Vec<NewTarget> = (0..4)
            .map(|i| new(&format!("{i}{}", "l".repeat(60)), "github:o/r"))
            .collect();
        let error = plan(Some(&existing), &long).unwrap_err().to_string();
        assert!(error.contains("record too long"), "{error}");
        let mut removed = secret(&[("iam-key-rotation:delivered", "v2 1700000000 ci")]);
        removed.versions = [("v2".to_string(), vec!["AWSCURRENT".to_string()])]
            .into_iter()
            .collect();
        let error = plan(Some(&removed), &[new("ci", "github:o/other")]).unwrap_err();
        assert!(error.to_string().contains("another label"), "{error}");
        assert!(refused(error));
        assert_eq!(
            plan(Some(&removed), &[new("ci2", "github:o/other")])
                .unwrap()
                .len(),
            1
        );
        assert_eq!(plan(None, &long[..2]).unwrap().len(), 2);
    }
}
