//! Users in another account (`RoleArn` and `ExternalId` in the secret): every
//! IAM call goes through the assumed role, the binding tag is read in the user's
//! account, and the new key must authenticate in that account.

use harness::fault_proxy::{FaultPlan, FaultProxy};
use harness::function::Function;
use harness::runtime_api::Reply;
use harness::*;

use serde_json::{Value, json};

const OTHER_ACCOUNT: &str = "222222222222";

fn role_arn() -> String {
    format!("arn:aws:iam::{OTHER_ACCOUNT}:role/iam-key-rotation-target")
}

/// A user in the other account with a first key, and a decoy of the same name in
/// the function's own account, which must never be touched.
async fn cross_account_fixture(world: &World) -> (Fixture, aws_sdk_iam::Client, Value) {
    let other = world.iam_in_account(&role_arn()).await;
    let user = unique("remote");
    let secret_name = unique("secret");
    other.create_user().user_name(&user).send().await.unwrap();
    let key = other
        .create_access_key()
        .user_name(&user)
        .send()
        .await
        .unwrap();
    let key = key.access_key().unwrap();
    world
        .create_user(&user, &[(BINDING_TAG, &secret_name)])
        .await;
    world.create_key(&user).await;
    let value = json!({
        "UserName": user,
        "AccessKeyId": key.access_key_id(),
        "SecretAccessKey": key.secret_access_key(),
        "RoleArn": role_arn(),
        "ExternalId": "rotation-external-id",
    });
    let secret_arn = world.create_secret(&secret_name, &value).await;
    // A user in another account is bound by the secret's full ARN, not its name.
    tag_binding(&other, &user, &secret_arn).await;
    (
        Fixture {
            user,
            secret_name,
            secret_arn,
        },
        other,
        value,
    )
}

async fn tag_binding(iam: &aws_sdk_iam::Client, user: &str, value: &str) {
    let tag = aws_sdk_iam::types::Tag::builder()
        .key(BINDING_TAG)
        .value(value)
        .build()
        .unwrap();
    iam.tag_user()
        .user_name(user)
        .tags(tag)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_user_in_another_account_is_rotated_through_the_assumed_role() {
    let world = World::new().await;
    let (fixture, other, first) = cross_account_fixture(&world).await;
    let decoy_keys = access_keys(world.iam(), &fixture.user).await;
    let old_key = first["AccessKeyId"].as_str().unwrap().to_string();

    world.rotate_now(&fixture).await;

    let current = world.value(&fixture, "AWSCURRENT").await.unwrap();
    let new_key = current["AccessKeyId"].as_str().unwrap();
    assert_eq!(current["RoleArn"], first["RoleArn"]);
    assert_eq!(current["ExternalId"], first["ExternalId"]);
    assert_eq!(
        current["SecretAccessKey"].as_str(),
        world.ledger.secret_of(new_key).as_deref(),
        "invariant 3"
    );
    let remote = access_keys(&other, &fixture.user).await;
    assert_eq!(remote.len(), 2, "{remote:?}");
    assert_eq!(remote[new_key], "Active");
    assert_eq!(remote[&old_key], "Inactive");
    assert_eq!(
        access_keys(world.iam(), &fixture.user).await,
        decoy_keys,
        "the decoy in the function's account was touched"
    );
}

#[tokio::test]
async fn the_binding_tag_is_read_in_the_users_account() {
    let world = World::new().await;
    let (fixture, other, _) = cross_account_fixture(&world).await;
    other
        .untag_user()
        .user_name(&fixture.user)
        .tag_keys(BINDING_TAG)
        .send()
        .await
        .unwrap();
    let remote = access_keys(&other, &fixture.user).await;
    let token = world.start_rotation(&fixture).await;
    let error = world
        .step("createSecret", &fixture.secret_arn, &token)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), "UserNotBound");
    assert_eq!(access_keys(&other, &fixture.user).await, remote);
}

#[tokio::test]
async fn a_role_that_cannot_be_assumed_is_named_with_the_trust_policy_it_needs() {
    let proxy = FaultProxy::start(&moto().endpoint).await;
    let world = World::with_endpoint(&proxy.endpoint).await;
    let (fixture, other, _) = cross_account_fixture(&world).await;
    let remote = access_keys(&other, &fixture.user).await;
    let token = world.start_rotation(&fixture).await;
    proxy.set_plan(FaultPlan {
        deny_operation: Some("AssumeRole"),
        ..FaultPlan::default()
    });
    let error = world
        .step("createSecret", &fixture.secret_arn, &token)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), "AssumeRoleFailed");
    let message = error.to_string();
    assert!(
        message.contains(&role_arn()) && message.contains(&fixture.secret_arn),
        "{message}"
    );
    assert!(
        message.contains("trust policy") && message.contains("sts:ExternalId"),
        "{message}"
    );
    proxy.set_plan(FaultPlan::default());
    assert_eq!(access_keys(&other, &fixture.user).await, remote);
    let assumed: Vec<_> = proxy
        .calls()
        .into_iter()
        .filter(|call| call.operation == "AssumeRole")
        .collect();
    assert!(!assumed.is_empty());
}

#[tokio::test]
async fn a_user_in_another_account_bound_by_the_secret_name_is_refused() {
    let world = World::new().await;
    let (fixture, other, _) = cross_account_fixture(&world).await;
    // The same name could be a secret in any account whose function may assume
    // the role: only the full ARN identifies this one.
    tag_binding(&other, &fixture.user, &fixture.secret_name).await;
    let remote_keys = access_keys(&other, &fixture.user).await;
    let token = world.start_rotation(&fixture).await;
    let before = world.snapshot(&fixture).await;

    let mut function = Function::start(&moto().endpoint, &[]).await;
    let reply = function
        .invoke("createSecret", &fixture.secret_arn, &token)
        .await;
    function.stop().await;

    let Reply::Error(error) = reply else {
        panic!("a name binding across accounts was accepted: {reply:?}");
    };
    assert_eq!(error["errorType"], "UserNotBound", "{error}");
    let message = error["errorMessage"].as_str().unwrap();
    assert!(message.contains("not the secret's ARN"), "{message}");
    assert!(
        message.contains(&format!("Key={BINDING_TAG},Value={}", fixture.secret_arn)),
        "the message gives the tag with the ARN: {message}"
    );
    assert_eq!(access_keys(&other, &fixture.user).await, remote_keys);
    assert_eq!(world.snapshot(&fixture).await, before, "state changed");
}

#[tokio::test]
async fn the_sweep_retires_a_previous_key_in_another_account_through_the_role() {
    // A moto of its own: the sweep lists every secret in the account.
    let moto = Moto::start();
    let world = World::with_endpoint(&moto.endpoint).await;
    let function_arn = unique_function_arn();
    let (fixture, other, first) = cross_account_fixture(&world).await;
    let decoy_keys = access_keys(world.iam(), &fixture.user).await;
    let old_key = first["AccessKeyId"].as_str().unwrap().to_string();
    let grace = iam_key_rotation::Config {
        old_key_action: iam_key_rotation::OldKeyAction::Grace,
        ..iam_key_rotation::Config::default()
    };
    world.rotate_as(grace, &fixture, &function_arn).await;
    assert_eq!(access_keys(&other, &fixture.user).await[&old_key], "Active");

    let mut function = Function::start(
        &moto.endpoint,
        &[
            ("OLD_KEY_ACTION", "grace"),
            ("GRACE_HOURS", "0"),
            ("DELETE_AFTER_HOURS", "0"),
        ],
    )
    .await;
    function.set_function_arn(&function_arn);
    let first_sweep = function.sweep().await;
    assert_eq!(
        first_sweep["Deactivated"],
        json!([old_key]),
        "{first_sweep}"
    );
    assert_eq!(
        access_keys(&other, &fixture.user).await[&old_key],
        "Inactive"
    );
    let second_sweep = function.sweep().await;
    assert_eq!(second_sweep["Deleted"], json!([old_key]), "{second_sweep}");
    let remote_keys = access_keys(&other, &fixture.user).await;
    assert!(!remote_keys.contains_key(&old_key), "{remote_keys:?}");
    assert_eq!(remote_keys.len(), 1);
    assert_eq!(
        access_keys(world.iam(), &fixture.user).await,
        decoy_keys,
        "the same-named user in the function's own account was touched"
    );
    function.stop().await;
}
