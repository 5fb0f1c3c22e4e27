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

mod checks;

use checks::{
    check_binding_tag, check_existing_secret, check_room, check_user_path, read_named_secret,
    read_secret, secret_arn_for_checks, secret_name,
};

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
