//! `keyrot enroll`: bind a user to a new secret and attach rotation, the three
//! steps an operator otherwise takes by hand, in the one order that is safe to
//! repeat: the secret (the binding tag names its ARN), then the tag, then the
//! rotation (whose first run checks the tag). A second run finds everything in
//! place and changes nothing.
//!
//! Everything is checked before the first write, with `--dry-run` too (SPEC
//! 15): the schedule, the function (`function.rs`: where it is, that Secrets
//! Manager may invoke it for this secret, the stack's path and prefix from its
//! environment), the user and the secret. A write that fails after another
//! says what was written, the command that finishes the enrollment and the
//! commands that undo it.

use serde::Serialize;
use serde_json::{Value, json};

use super::OpsError;
use super::function::{RotationFunction, check_function, check_invocable};
use crate::arn::{account_of, name_of, partition_of, same_function};
use crate::aws::Clients;
use crate::aws::account::iam_for_user;
use crate::aws::iam::Iam;
use crate::aws::lambda;
use crate::aws::secrets::{self, SecretVersions};
use crate::model::binding::{BINDING_TAG, Binding};
use crate::model::schedule::check_expression;
use crate::model::secret::{AWSCURRENT, DEFAULT_NAME_PREFIX, Schedule, Secret};
use crate::model::secret_value::SecretValue;
use crate::model::user::{AccessKey, IamUser, is_valid_user_name};
use crate::sensitive::Sensitive;

#[derive(Debug, Clone)]
pub struct EnrollOptions {
    pub user: String,
    pub function_arn: String,
    pub secret_name: Option<String>,
    pub schedule: Schedule,
    pub rotate_now: bool,
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
    /// The secret an enrollment that stopped half-way created (the ARN it
    /// printed): bind the user to it. Only a secret the operator knows is
    /// theirs (SPEC 11, T1).
    pub existing_secret_arn: Option<String>,
    pub dry_run: bool,
    /// Delivery targets to tag the secret with (`--deliver LABEL=SPEC`).
    pub deliver: Vec<super::deliver::NewTarget>,
}

/// What enrolling did or, with `--dry-run`, would do (the JSON of
/// `keyrot enroll --output json`).
#[derive(Debug, Clone, Serialize)]
pub struct EnrollReport {
    pub user: String,
    pub secret_arn: Option<String>,
    pub secret_name: String,
    pub changed: bool,
    pub actions: Vec<String>,
    /// Advice that is not an action (a key that stays unmanaged), for stderr.
    #[serde(skip)]
    pub notes: Vec<String>,
}

/// The secret as it stands, if it exists, with its current value.
struct ExistingSecret {
    info: Secret,
    value: Option<SecretValue>,
}

/// Enrolls the user, or refuses (changing nothing) with what to do instead.
pub async fn enroll(clients: &Clients, options: &EnrollOptions) -> Result<EnrollReport, OpsError> {
    let value = initial_value(options)?;
    if let Schedule::Expression(expression) = &options.schedule {
        check_expression(expression)
            .map_err(|why| OpsError::Usage(format!("--schedule {why}; nothing was changed")))?;
    }
    let function = check_function(clients, &options.function_arn).await?;
    let mut notes = function.notes.clone();
    let secret_name = secret_name(options, &function)?;
    let existing = match &options.existing_secret_arn {
        Some(arn) => Some(read_named_secret(clients, arn, &secret_name).await?),
        None => read_secret(clients, &secret_name).await?,
    };
    check_invocable(
        clients,
        &function,
        &secret_arn_for_checks(clients, existing.as_ref(), &secret_name).await?,
        account_of(&function.arn).unwrap_or_default(),
    )
    .await?;
    let secret_id = existing.as_ref().map_or(&secret_name, |s| &s.info.arn);
    let iam = iam_for_user(clients, secret_id, &value)
        .await
        .map_err(OpsError::assume_role_failed)?;
    let Some((user, keys)) = iam.read_user_and_keys(&options.user).await? else {
        return Err(OpsError::Refused(format!(
            "IAM user {} does not exist{}: create it (under the path the rotation function may manage), or check the name; nothing was changed",
            options.user,
            options
                .role_arn
                .as_deref()
                .map(|role| format!(" in the account of {role}"))
                .unwrap_or_default()
        )));
    };
    check_user_path(&user, &function, options)?;
    if let Some(existing) = &existing {
        check_existing_secret(
            clients,
            existing,
            options,
            &function,
            &secret_name,
            &mut notes,
        )
        .await?;
    }
    check_binding_tag(
        &user,
        existing.as_ref().map(|s| &s.info),
        &secret_name,
        options,
    )?;
    check_room(&iam, &user, &keys, existing.as_ref(), options, &mut notes).await?;
    let targets = super::deliver::plan(existing.as_ref().map(|s| &s.info), &options.deliver)?;

    let mut plan = EnrollReport {
        user: options.user.clone(),
        secret_arn: existing.as_ref().map(|s| s.info.arn.clone()),
        secret_name,
        changed: false,
        actions: Vec::new(),
        notes,
    };
    // In the one order that is safe to repeat; every check is behind us.
    let mut written = Written::default();
    if existing.is_none() {
        create_secret(clients, options, &value, &mut plan).await?;
        written.secret = plan.secret_arn.clone().filter(|_| !options.dry_run);
    }
    bind_user(&iam, options, &user, &mut plan)
        .await
        .map_err(|error| written.explain(error, options, &function))?;
    written.tagged = !options.dry_run;
    // The targets before the rotation, whose end triggers the delivery.
    plan.actions
        .extend(targets.iter().map(super::deliver::describe));
    if !options.dry_run
        && let Some(arn) = &plan.secret_arn
    {
        super::deliver::write(clients, arn, &targets)
            .await
            .map_err(|error| written.explain(error, options, &function))?;
    }
    if let Some(action) = rotation_action(existing.as_ref(), options, &function) {
        attach_rotation(clients, options, &function, action, &mut plan)
            .await
            .map_err(|error| written.explain(error, options, &function))?;
    }
    plan.changed = !plan.actions.is_empty() && !options.dry_run;
    Ok(plan)
}

/// What an enrollment wrote before a later write failed.
#[derive(Debug, Default)]
struct Written {
    /// The ARN of the secret it created.
    secret: Option<String>,
    /// Whether the user is tagged (by this run or an earlier one).
    tagged: bool,
}

impl Written {
    /// The failure, with what was written, how to finish and how to undo.
    fn explain(
        &self,
        error: OpsError,
        options: &EnrollOptions,
        function: &RotationFunction,
    ) -> OpsError {
        let Some(arn) = &self.secret else {
            return error;
        };
        let user = &options.user;
        let mut done = vec![format!("created secret {arn}")];
        let mut undo = vec![format!(
            "aws secretsmanager delete-secret --secret-id {arn} --force-delete-without-recovery"
        )];
        if self.tagged {
            done.push(format!("tagged IAM user {user} with {BINDING_TAG}={arn}"));
            undo.insert(
                0,
                format!("aws iam untag-user --user-name {user} --tag-keys {BINDING_TAG}"),
            );
        }
        OpsError::PartlyDone(format!(
            "{error}. Written before that: {}. To finish once the cause is fixed: {}. To undo instead: {}",
            done.join(", "),
            rerun_command(options, function, arn),
            undo.join(" && ")
        ))
    }
}

/// The command that finishes an enrollment that created `secret_arn`.
fn rerun_command(options: &EnrollOptions, function: &RotationFunction, secret_arn: &str) -> String {
    let mut command = format!(
        "keyrot enroll {} --function-arn {} --existing-secret-arn {secret_arn}",
        options.user, function.arn
    );
    match &options.schedule {
        Schedule::EveryDays(days) => command.push_str(&format!(" --every-days {days}")),
        Schedule::Expression(expression) => {
            command.push_str(&format!(" --schedule '{}'", expression.replace('\'', "")))
        }
    }
    if !options.rotate_now {
        command.push_str(" --no-rotate-now");
    }
    if let Some(role) = &options.role_arn {
        command.push_str(&format!(" --role-arn {role}"));
    }
    if let Some(external_id) = &options.external_id {
        command.push_str(&format!(
            " --external-id '{}'",
            external_id.replace('\'', "")
        ));
    }
    command
}

/// The secret's name: `--secret-name`, the name in `--existing-secret-arn`,
/// or the stack's prefix (the function's `SECRET_NAME_PREFIX`, else
/// `iam-keys/`) and the user's name; refused outside the stack's prefix,
/// where the function may not read it.
fn secret_name(options: &EnrollOptions, function: &RotationFunction) -> Result<String, OpsError> {
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
fn check_user_path(
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
async fn secret_arn_for_checks(
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
async fn read_named_secret(
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

/// First the secret, holding the user's name (and the role to assume).
async fn create_secret(
    clients: &Clients,
    options: &EnrollOptions,
    value: &SecretValue,
    plan: &mut EnrollReport,
) -> Result<(), OpsError> {
    plan.actions.push(format!(
        "create secret {} holding {{\"UserName\": \"{}\"}}{}",
        plan.secret_name,
        options.user,
        if options.role_arn.is_some() {
            " and the role to assume"
        } else {
            ""
        }
    ));
    if !options.dry_run {
        let description = format!(
            "Access key of IAM user {}, rotated by iam-key-rotation",
            options.user
        );
        plan.secret_arn =
            Some(secrets::create(clients, &plan.secret_name, &description, value).await?);
    }
    Ok(())
}

/// Then the binding tag, by ARN only: a user bound by name (as earlier
/// versions allowed) is re-tagged, which is how an account bound by name
/// migrates.
async fn bind_user(
    iam: &Iam,
    options: &EnrollOptions,
    user: &IamUser,
    plan: &mut EnrollReport,
) -> Result<(), OpsError> {
    let arn_for_tag = plan
        .secret_arn
        .clone()
        .unwrap_or_else(|| format!("<ARN of {}>", plan.secret_name));
    if user
        .tags
        .get(BINDING_TAG)
        .is_some_and(|tag| *tag == arn_for_tag)
    {
        return Ok(());
    }
    plan.actions.push(format!(
        "tag IAM user {} with {BINDING_TAG}={arn_for_tag}",
        options.user
    ));
    if !options.dry_run {
        iam.user(&arn_for_tag, &options.user)
            .tag(&[(BINDING_TAG, &arn_for_tag)])
            .await?;
    }
    Ok(())
}

/// Last rotation, whose first run checks the tag.
async fn attach_rotation(
    clients: &Clients,
    options: &EnrollOptions,
    function: &RotationFunction,
    action: RotationAction,
    plan: &mut EnrollReport,
) -> Result<(), OpsError> {
    plan.actions.push(action.describe(options, function));
    if !options.dry_run {
        let arn = plan.secret_arn.clone().unwrap_or_default();
        secrets::attach_rotation(
            clients,
            &arn,
            &function.arn,
            &options.schedule,
            action.rotate_now,
        )
        .await?;
    }
    Ok(())
}

/// The new secret's value; checked by the rotation's own parser, so that enroll
/// accepts exactly what the function will.
fn initial_value(options: &EnrollOptions) -> Result<SecretValue, OpsError> {
    if !is_valid_user_name(&options.user) {
        return Err(OpsError::Usage(format!(
            "{:?} is not a valid IAM user name (1-64 characters of letters, digits and +=,.@_-)",
            options.user.chars().take(80).collect::<String>()
        )));
    }
    if options.external_id.is_some() && options.role_arn.is_none() {
        return Err(OpsError::Usage("--external-id needs --role-arn".into()));
    }
    let mut value = json!({ "UserName": options.user });
    if let Some(role_arn) = &options.role_arn {
        value["RoleArn"] = Value::String(role_arn.clone());
    }
    if let Some(external_id) = &options.external_id {
        value["ExternalId"] = Value::String(external_id.clone());
    }
    SecretValue::parse(&Sensitive::new(value.to_string()))
        .map_err(|reason| OpsError::Usage(format!("the secret's value would be invalid: {reason}")))
}

async fn read_secret(clients: &Clients, name: &str) -> Result<Option<ExistingSecret>, OpsError> {
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
async fn check_existing_secret(
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
fn check_binding_tag(
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
async fn check_room(
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

/// What to do about rotation, if anything.
struct RotationAction {
    rotate_now: bool,
    change_only: bool,
}

impl RotationAction {
    fn describe(&self, options: &EnrollOptions, function: &RotationFunction) -> String {
        if self.change_only {
            return format!(
                "change the rotation schedule to {}",
                options.schedule.describe()
            );
        }
        format!(
            "attach rotation by {}, {}{}",
            function.arn,
            options.schedule.describe(),
            if self.rotate_now {
                ", and rotate now"
            } else {
                ""
            }
        )
    }
}

fn rotation_action(
    existing: Option<&ExistingSecret>,
    options: &EnrollOptions,
    function: &RotationFunction,
) -> Option<RotationAction> {
    let attached = existing.is_some_and(|s| {
        s.info.rotation_enabled
            && s.info
                .rotation_lambda_arn
                .as_deref()
                .is_some_and(|f| same_function(f, &function.arn))
    });
    if !attached {
        return Some(RotationAction {
            rotate_now: options.rotate_now,
            change_only: false,
        });
    }
    let existing = existing?;
    let same_schedule = options.schedule.matches(&existing.info);
    (!same_schedule).then_some(RotationAction {
        rotate_now: false,
        change_only: true,
    })
}
