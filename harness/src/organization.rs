//! moto's (one, shared) AWS Organization for the tests and the benchmark: member
//! accounts, and users made inside them through the member role (moto lets any
//! role be assumed, and maps its session to the role's account).

use crate::{World, moto, sdk_config};

/// The member audit role's name, as `deploy/member-account.yaml` creates it.
pub const MEMBER_ROLE: &str = "iam-key-rotation-audit";

pub fn member_role(account: &str) -> String {
    format!("arn:aws:iam::{account}:role/{MEMBER_ROLE}")
}

/// Makes sure the organization exists (another test may have made it), and adds
/// an account named `name`; returns its id.
pub async fn new_member_account(name: &str) -> String {
    let organizations = organizations().await;
    let _ = organizations
        .create_organization()
        .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
        .send()
        .await;
    organizations
        .create_account()
        .account_name(name)
        .email(format!("{name}@example.com"))
        .send()
        .await
        .unwrap()
        .create_account_status()
        .and_then(|status| status.account_id())
        .unwrap()
        .to_string()
}

pub async fn close_account(id: &str) {
    organizations()
        .await
        .close_account()
        .account_id(id)
        .send()
        .await
        .unwrap();
}

async fn organizations() -> aws_sdk_organizations::Client {
    aws_sdk_organizations::Client::new(&sdk_config(&moto().endpoint).await)
}

/// Creates user `name` under `path` in the IAM of `iam` (an account's client),
/// with `tags` and one Active key.
pub async fn user_with_one_key(
    iam: &aws_sdk_iam::Client,
    name: &str,
    path: &str,
    tags: &[(&str, &str)],
) {
    crate::world::create_user_with(iam, name, path, tags).await;
    iam.create_access_key()
        .user_name(name)
        .send()
        .await
        .unwrap();
}

/// The IAM client of a member account, through its member role.
pub async fn member_iam(world: &World, account: &str) -> aws_sdk_iam::Client {
    world.iam_in_account(&member_role(account)).await
}
