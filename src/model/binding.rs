//! The binding: the reserved user tag `iam-key-rotation:secret` whose value is
//! the one secret allowed to rotate the user's keys, by its full ARN (SPEC 4).
//! Written by an administrator (`keyrot enroll`, or the command below), never
//! by the function's role; read by every step that creates, judges or
//! retires keys, by the sweep, and by `keyrot`.
//!
//! A name is not an identity: it is freed when its secret is deleted and is
//! the same in every region and account, while the ARN's random suffix is
//! never reused. So a tag that holds a name is refused like a missing one.

use crate::model::user::IamUser;

/// The user tag that binds a user to the one secret allowed to rotate its keys.
pub const BINDING_TAG: &str = "iam-key-rotation:secret";

/// What a user's binding tag holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding<'a> {
    None,
    /// A secret's ARN.
    To(&'a str),
    /// Anything else: a name, as earlier versions accepted.
    ByName(&'a str),
}

/// Why a user is not bound to a secret, and what an administrator does about
/// it (the command included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotBound {
    pub detail: String,
    pub fix: String,
}

/// The one command that binds `user` to `secret_arn`.
pub fn bind_command(user: &str, secret_arn: &str) -> String {
    format!("aws iam tag-user --user-name {user} --tags Key={BINDING_TAG},Value={secret_arn}")
}

impl IamUser {
    /// What the user's binding tag holds.
    pub fn binding(&self) -> Binding<'_> {
        match self.tags.get(BINDING_TAG) {
            None => Binding::None,
            Some(value) if value.starts_with("arn:") => Binding::To(value),
            Some(value) => Binding::ByName(value),
        }
    }

    /// The user must carry the binding tag with the secret's full ARN.
    pub fn check_binding(&self, secret_arn: &str) -> Result<(), NotBound> {
        let retag = bind_command(&self.name, secret_arn);
        let (detail, fix) = match self.binding() {
            Binding::To(arn) if arn == secret_arn => return Ok(()),
            Binding::ByName(name) => (
                format!(
                    "its tag {BINDING_TAG} holds a name ({name}), not the secret's ARN; a name is not proof (a deleted secret's name can be taken by a new secret, and the same name exists in every region)"
                ),
                format!(
                    "an administrator who has checked that this secret is the one the tag meant (who created it, and when: CloudTrail CreateSecret) re-tags the user with its ARN: `{retag}`"
                ),
            ),
            Binding::To(other) => (
                format!("its tag {BINDING_TAG} names another secret ({other})"),
                format!(
                    "nothing, if that secret rotates the user; to move the user to this one, an administrator first checks who created this secret (CloudTrail CreateSecret), then re-tags: `{retag}`"
                ),
            ),
            Binding::None => (
                format!("it has no tag {BINDING_TAG}"),
                format!("an administrator binds it: `{retag}`"),
            ),
        };
        Err(NotBound { detail, fix })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::user::tagged_user as user;

    const ARN: &str = "arn:aws:secretsmanager:us-east-1:111122223333:secret:app-AbCdEf";

    #[test]
    fn binding_accepts_the_arn_and_nothing_else() {
        assert!(user(&[(BINDING_TAG, ARN)]).check_binding(ARN).is_ok());
        let by_name = user(&[(BINDING_TAG, "app")])
            .check_binding(ARN)
            .unwrap_err();
        assert!(by_name.detail.contains("holds a name (app)"), "{by_name:?}");
        assert!(
            by_name
                .fix
                .contains(&format!("Key=iam-key-rotation:secret,Value={ARN}")),
            "{by_name:?}"
        );
        let recreated = "arn:aws:secretsmanager:us-east-1:111122223333:secret:app-ZyXwVu";
        let other = user(&[(BINDING_TAG, recreated)])
            .check_binding(ARN)
            .unwrap_err();
        assert!(other.detail.contains("names another secret"));
        let missing = user(&[]).check_binding(ARN).unwrap_err();
        assert!(
            missing
                .detail
                .contains("has no tag iam-key-rotation:secret")
        );
    }
}
