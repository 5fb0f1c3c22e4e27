//! What enroll checks before its first write (SPEC 15): the secret's name and
//! the user against the stack's prefix and path, the secret that may already
//! exist, the user's binding, and room for the first rotation's key.

use super::*;

/// The secret's name: `--secret-name`, the name in `--existing-secret-arn`,
/// or the stack's prefix (the function's `SECRET_NAME_PREFIX`, else
/// `iam-keys/`) and the user's name; refused outside the stack's prefix,
/// where the function may not read it.
pub(super) fn secret_name(
    options: &EnrollOptions,
    function: &RotationFunction,
) -> Result<String, OpsError> {
    let prefix = function
        .secret_name_prefix
        .as_deref()
        .unwrap_or(DEFAULT_NAME_PREFIX);
    let name = options
        .secret_name
        .clone()
        .or_else(|| {
            options
                .existing_secret_arn
                .as_deref()
                .map(|arn| name_of(arn).to_string())
        })
        .unwrap_or_else(|| format!("{prefix}{}", options.user));
    match &function.secret_name_prefix {
        Some(prefix) if !name.starts_with(prefix.as_str()) => Err(OpsError::Refused(format!(
            "secret name {name} is outside the stack's SecretNamePrefix {prefix} (the SECRET_NAME_PREFIX of {}), so the function may not read it and every rotation would fail: use --secret-name {prefix}{}, or leave --secret-name out; nothing was changed",
            function.arn, options.user
        ))),
        _ => Ok(name),
    }
}

/// The user must be under the stack's `ManagedUserPath` (the function's
/// `MANAGED_USER_PATH`), where the function's policy reaches: checked for a
/// user of the function's own account (another account's rotation role has
/// a path of its own, in deploy/member-account.yaml).
pub(super) fn check_user_path(
    user: &IamUser,
    function: &RotationFunction,
    options: &EnrollOptions,
) -> Result<(), OpsError> {
    let own_account = options
        .role_arn
        .as_deref()
        .is_none_or(|role| account_of(role) == account_of(&function.arn));
    match &function.managed_user_path {
        Some(path) if own_account && !user.path.starts_with(path.as_str()) => {
            Err(OpsError::Refused(format!(
                "IAM user {} is at path {}, outside the stack's ManagedUserPath {path} (the MANAGED_USER_PATH of {}), so the function may not touch its keys and every rotation would fail: move the user (aws iam update-user --user-name {} --new-path {path}), then enroll again; nothing was changed",
                user.name, user.path, function.arn, user.name
            )))
        }
        _ => Ok(()),
    }
}

/// The secret's ARN, or the ARN it would have (its suffix is chosen by
/// Secrets Manager), for the function's policy check.
pub(super) async fn secret_arn_for_checks(
    clients: &Clients,
    existing: Option<&ExistingSecret>,
    name: &str,
) -> Result<String, OpsError> {
    if let Some(existing) = existing {
        return Ok(existing.info.arn.clone());
    }
    let caller = crate::aws::sts::caller(clients).await?;
    Ok(format!(
        "arn:{}:secretsmanager:{}:{}:secret:{name}-AbCdEf",
        caller.partition,
        clients.region().unwrap_or_default(),
        caller.account
    ))
}

/// The secret `--existing-secret-arn` names, which must exist and be `name`.
pub(super) async fn read_named_secret(
    clients: &Clients,
    arn: &str,
    name: &str,
) -> Result<ExistingSecret, OpsError> {
    let Some(existing) = read_secret(clients, arn).await? else {
        return Err(OpsError::secret_not_found(arn));
    };
    if existing.info.name != name || partition_of(arn).is_none() {
        return Err(OpsError::Usage(format!(
            "--existing-secret-arn {arn} is secret {}, not {name}: give the secret's full ARN, and the same --secret-name or none; nothing was changed",
            existing.info.name
        )));
    }
    Ok(existing)
}

pub(super) async fn read_secret(
    clients: &Clients,
    name: &str,
) -> Result<Option<ExistingSecret>, OpsError> {
    let Some(info) = secrets::find(clients, name).await? else {
        return Ok(None);
    };
    let value = SecretVersions::new(clients, &info.arn)
        .value(None, AWSCURRENT)
        .await
        .ok()
        .flatten();
    Ok(Some(ExistingSecret { info, value }))
}

/// An existing secret of that name must be this user's, in this account (or
/// role), and rotated by this function, by none, or by a function that does
/// not exist (a typo an earlier keyrot attached before it checked the
/// function): replacing that one takes nothing from anyone.
pub(super) async fn check_existing_secret(
    clients: &Clients,
    existing: &ExistingSecret,
    options: &EnrollOptions,
    function: &RotationFunction,
    name: &str,
    notes: &mut Vec<String>,
) -> Result<(), OpsError> {
    let choose = "choose another --secret-name; nothing was changed";
    let Some(value) = &existing.value else {
        return Err(OpsError::Refused(format!(
            "secret {name} exists but is not an iam-key-rotation secret (its value is not a JSON object with a UserName): {choose}"
        )));
    };
    if value.user_name() != options.user || value.role_arn() != options.role_arn.as_deref() {
        return Err(OpsError::Refused(format!(
            "secret {name} exists for IAM user {}{}: {choose}",
            value.user_name(),
            value
                .role_arn()
                .map(|role| format!(" (through {role})"))
                .unwrap_or_default()
        )));
    }
    if let Some(other) = &existing.info.rotation_lambda_arn
        && !other.is_empty()
        && !same_function(other, &function.arn)
    {
        if lambda::configuration(clients, other).await?.is_none() {
            notes.push(format!(
                "secret {name} named rotation function {other}, which does not exist: it is replaced by {}",
                function.arn
            ));
            return Ok(());
        }
        return Err(OpsError::Refused(format!(
            "secret {name} is rotated by another function ({other}): enroll with --function-arn {other}, or {choose}"
        )));
    }
    Ok(())
}

/// The user may carry no binding tag while there is no secret yet, or one that
/// already names this very secret by ARN (a rerun). keyrot never binds a user
/// to a secret it did not create in this run: whoever may create secrets under
/// the prefix could have made that one, waiting for an administrator to bind
/// it (SPEC 11, T1). Nor does it re-tag a user bound by name.
pub(super) fn check_binding_tag(
    user: &IamUser,
    existing: Option<&Secret>,
    name: &str,
    options: &EnrollOptions,
) -> Result<(), OpsError> {
    let who = &options.user;
    let verify = |arn: &str| {
        format!(
            "check who created it and when (CloudTrail CreateSecret for {arn}); if it is yours (an enrollment that stopped half-way, say), bind the user by hand and run enroll again: aws iam tag-user --user-name {who} --tags Key={BINDING_TAG},Value={arn}; otherwise delete the secret or choose another --secret-name. Nothing was changed"
        )
    };
    match (user.binding(), existing) {
        (Binding::To(arn), Some(secret)) if arn == secret.arn => Ok(()),
        (Binding::None, None) => Ok(()),
        // The operator names the secret an earlier run of theirs created.
        (Binding::None, Some(secret))
            if options.existing_secret_arn.as_deref() == Some(secret.arn.as_str()) =>
        {
            Ok(())
        }
        (Binding::None, Some(secret)) => Err(OpsError::Refused(format!(
            "secret {name} already exists and IAM user {who} is not bound to it: keyrot binds a user only to a secret it creates itself. {}",
            verify(&secret.arn)
        ))),
        (Binding::ByName(tag), Some(secret)) if tag == name => Err(OpsError::Refused(format!(
            "IAM user {who} is bound by the secret's name ({tag}), which earlier versions accepted and this one refuses (a name can be taken by a new secret). {}",
            verify(&secret.arn)
        ))),
        (Binding::ByName(tag), None) if tag == name => Ok(()),
        (Binding::ByName(tag) | Binding::To(tag), _) => Err(OpsError::Refused(format!(
            "IAM user {who} is bound to another secret ({tag}): one secret per user. Enroll under that secret's name (--secret-name), or, to move the user, remove the old secret's rotation and the tag first (aws iam untag-user --user-name {who} --tag-keys {BINDING_TAG}); nothing was changed"
        ))),
    }
}

/// IAM allows two keys per user, and the first rotation needs one free slot or
/// a key of this secret's to replace: two keys the secret does not manage leave
/// no room. Says which one to delete: an Inactive one, else the one unused longest.
pub(super) async fn check_room(
    iam: &Iam,
    user: &IamUser,
    keys: &[AccessKey],
    existing: Option<&ExistingSecret>,
    options: &EnrollOptions,
    notes: &mut Vec<String>,
) -> Result<(), OpsError> {
    let current_key = existing.and_then(|s| s.value.as_ref()?.access_key_id().map(str::to_string));
    let unmanaged: Vec<&AccessKey> = keys
        .iter()
        .filter(|key| {
            let managed = existing.is_some_and(|s| user.describes(&key.id, &s.info.arn));
            !managed && current_key.as_deref() != Some(key.id.as_str())
        })
        .collect();
    match unmanaged.as_slice() {
        [] => Ok(()),
        [key] => {
            notes.push(format!(
                "key {} of {} is not managed by the secret and stays as it is: once its consumers read the secret, delete it (aws iam delete-access-key --user-name {} --access-key-id {})",
                key.id, options.user, options.user, key.id
            ));
            Ok(())
        }
        [first, second, ..] => {
            let delete = key_to_delete(iam, first, second).await?;
            Err(OpsError::Refused(format!(
                "IAM user {} holds two access keys ({} and {}) that no secret manages, so the first rotation has no room for a new key: delete {} ({}) with `aws iam delete-access-key --user-name {} --access-key-id {}` once nothing uses it, then enroll again; nothing was changed",
                options.user, first.id, second.id, delete.0.id, delete.1, options.user, delete.0.id
            )))
        }
    }
}

async fn key_to_delete<'k>(
    iam: &Iam,
    first: &'k AccessKey,
    second: &'k AccessKey,
) -> Result<(&'k AccessKey, &'static str), OpsError> {
    match (first.active, second.active) {
        (false, _) => return Ok((first, "it is Inactive")),
        (_, false) => return Ok((second, "it is Inactive")),
        _ => {}
    }
    let first_used = iam.read_last_used(&first.id).await?.map(|t| t.secs());
    let second_used = iam.read_last_used(&second.id).await?.map(|t| t.secs());
    // Never used sorts first (None < Some), then the use longest ago.
    Ok(if first_used <= second_used {
        (first, "it was used least recently")
    } else {
        (second, "it was used least recently")
    })
}
