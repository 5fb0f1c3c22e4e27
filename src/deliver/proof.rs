//! Whether the current version's key is one to deliver. Whoever may write a
//! secret's value could otherwise put any pair there (a key of an account they
//! control, say) and have the delivery function push it into every target's
//! CI or servers, places the value writer may have no other way to reach. So a
//! key is delivered only when the rotation's own rules vouch for it (SPEC 11):
//!
//! - the value's user is bound to this secret (`iam-key-rotation:secret`, a
//!   reserved tag; unless `REQUIRE_USER_TAG=false`), and the stored pair
//!   authenticates as that user (T3: possession). The key's description is
//!   not enough: its tag key is the access key id, which no SCP can reserve,
//!   so whoever may tag the user and write the value could describe a key of
//!   an account of their own for the version they wrote;
//! - a user of another account (`RoleArn`) cannot be read without a role that
//!   may write keys, which the delivery role never assumes: the `RoleArn` must
//!   be one of the stack's `AssumableRoleArns` (so the value writer cannot point
//!   at an account of their own) and the pair must authenticate as the user
//!   there.
//!
//! One `GetUser` and one `GetCallerIdentity` per delivered version.

use super::Run;
use crate::key_proof::{Proof, StoredKey};
use crate::model::secret::Secret;
use crate::model::secret_value::SecretValue;

/// `Ok` when the key of `value` (the current version of `secret`) may be
/// delivered; else why not, for every target's failure.
pub(super) async fn vouch(
    run: &Run<'_>,
    secret: &Secret,
    value: &SecretValue,
) -> Result<(), String> {
    let Some(key) = StoredKey::of(secret, value) else {
        return Err("the current version holds no key pair".into());
    };
    let refuse = |why: String| {
        format!(
            "not delivered: the current version's key {} is not one this secret vouches for ({why}). A value written by hand is never delivered: rotate the secret (aws secretsmanager rotate-secret --secret-id {}) and the new key is",
            key.id, secret.arn
        )
    };
    match value.role_arn() {
        None => {
            let user = run
                .clients
                .iam()
                .read_user(value.user_name())
                .await
                .map_err(|error| {
                    format!("could not read the secret's user to vouch for its key: {error}")
                })?
                .ok_or_else(|| refuse(format!("IAM user {} does not exist", value.user_name())))?;
            if run.config.require_user_tag
                && let Err(why) = user.check_binding(&secret.arn)
            {
                return Err(refuse(format!(
                    "IAM user {} is not bound to the secret: {}",
                    user.name, why.detail
                )));
            }
        }
        Some(role_arn) => {
            if !run
                .config
                .assumable_role_arns
                .iter()
                .any(|allowed| allowed == role_arn)
            {
                return Err(refuse(format!(
                    "its RoleArn {role_arn} is not one of the stack's AssumableRoleArns"
                )));
            }
        }
    }
    match key.prove(run.clients).await {
        Ok(Proof::User) => Ok(()),
        Ok(Proof::OtherIdentity { arn }) => Err(refuse(format!("it authenticates as {arn}"))),
        Ok(Proof::Rejected { code }) => Err(refuse(format!("AWS rejects it ({code})"))),
        Err(error) => Err(format!("could not prove the current key: {error}")),
    }
}
