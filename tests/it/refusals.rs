//! Every refusal (preconditions, binding, room for a key, errors) against moto: the right error
//! kind, a message that names the secret and the user and says what to do, and
//! the state proven unchanged afterwards.

use aws_sdk_iam::types::StatusType;
use harness::*;
use iam_key_rotation::Config;
use serde_json::{Value, json};

#[tokio::test]
async fn rotation_must_be_enabled() {
    let world = World::new().await;
    let fixture = world.user_with_key().await;
    let error = world
        .assert_refused(&fixture, "createSecret", &new_token(), "RotationNotEnabled")
        .await;
    assert!(error.to_string().contains(&fixture.secret_arn));
    assert!(error.to_string().contains("rotate-secret"));
}

#[tokio::test]
async fn the_token_must_be_a_pending_version_of_this_secret() {
    let world = World::new().await;
    let fixture = world.user_with_key().await;
    let other = world.user_with_key().await;
    let first = world.start_rotation(&fixture).await;
    let others_token = world.start_rotation(&other).await;
    for step in STEPS {
        world
            .assert_refused(&fixture, step, &new_token(), "VersionNotFound")
            .await;
        world
            .assert_refused(&fixture, step, &others_token, "VersionNotFound")
            .await;
    }
    world
        .rotate(&world.handler, &fixture, &first)
        .await
        .unwrap();
    let _second = world.start_rotation(&fixture).await;
    // `first` is AWSPREVIOUS now: no rotation of it is in progress.
    let previous = world
        .snapshot(&fixture)
        .await
        .versions
        .into_iter()
        .find(|(_, stages)| stages == &vec!["AWSPREVIOUS".to_string()])
        .unwrap()
        .0;
    for step in STEPS {
        world
            .assert_refused(&fixture, step, &previous, "VersionNotPending")
            .await;
    }
}

#[tokio::test]
async fn invalid_secret_values_are_refused_without_being_quoted() {
    let world = World::new().await;
    let values = [
        Value::String("not json hunter2".into()),
        json!(["hunter2"]),
        json!({"AccessKeyId": "AKIA", "SecretAccessKey": "hunter2"}),
        json!({"UserName": 7, "SecretAccessKey": "hunter2"}),
        json!({"UserName": {"nested": "hunter2"}}),
        json!({"UserName": "has spaces hunter2"}),
    ];
    for value in values {
        let fixture = world.bound_user().await;
        let text = match &value {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        world
            .secrets()
            .put_secret_value()
            .secret_id(&fixture.secret_arn)
            .secret_string(text)
            .send()
            .await
            .unwrap();
        let token = world.start_rotation(&fixture).await;
        for step in ["createSecret", "testSecret"] {
            let error = world
                .assert_refused(&fixture, step, &token, "InvalidSecretValue")
                .await;
            let message = error.to_string();
            assert!(message.contains(&fixture.secret_arn), "{message}");
            assert!(!message.contains("hunter2"), "{message}");
        }
    }
}

#[tokio::test]
async fn the_user_must_be_bound_to_the_secret() {
    let world = World::new().await;
    let fixture = world.user_with_key().await;
    let token = world.start_rotation(&fixture).await;
    world.unbind(&fixture.user).await;
    let error = world
        .assert_refused(&fixture, "createSecret", &token, "UserNotBound")
        .await;
    let message = error.to_string();
    assert!(
        message.contains(&fixture.user) && message.contains(&fixture.secret_arn),
        "{message}"
    );
    assert!(message.contains("aws iam tag-user"), "{message}");

    world
        .iam()
        .tag_user()
        .user_name(&fixture.user)
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key(BINDING_TAG)
                .value("some-other-secret")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let error = world
        .assert_refused(&fixture, "createSecret", &token, "UserNotBound")
        .await;
    assert!(error.to_string().contains("some-other-secret"));

    // finishSecret retires keys, so it checks the binding too.
    let unchecked = Config {
        require_user_tag: false,
        ..Config::default()
    };
    for step in &STEPS[..3] {
        world
            .invoke(
                &world.handler(unchecked.clone()),
                step,
                &fixture.secret_arn,
                &token,
            )
            .await
            .unwrap();
    }
    world
        .assert_refused(&fixture, "finishSecret", &token, "UserNotBound")
        .await;

    // REQUIRE_USER_TAG=false turns the check off.
    world
        .invoke(
            &world.handler(unchecked),
            "finishSecret",
            &fixture.secret_arn,
            &token,
        )
        .await
        .unwrap();
    world.assert_rotation_complete(&fixture, &[]).await;
}

#[tokio::test]
async fn the_user_must_exist() {
    let world = World::new().await;
    let fixture = world.bound_user().await;
    world
        .put_current(&fixture, &json!({"UserName": "nobody-by-this-name"}))
        .await;
    let token = world.start_rotation(&fixture).await;
    let error = world
        .assert_refused(&fixture, "createSecret", &token, "UserNotFound")
        .await;
    assert!(error.to_string().contains("nobody-by-this-name"));
}

#[tokio::test]
async fn an_unmanaged_second_key_blocks_creation_and_is_left_untouched() {
    let world = World::new().await;
    let fixture = world.user_with_key().await;
    let (laptop_key, _) = world.create_key(&fixture.user).await;
    let token = world.start_rotation(&fixture).await;
    let error = world
        .assert_refused(&fixture, "createSecret", &token, "UnmanagedKeyBlocks")
        .await;
    let message = error.to_string();
    assert!(
        message.contains(&laptop_key) && message.contains(&fixture.user),
        "{message}"
    );
    assert!(message.contains("delete-access-key"), "{message}");
    // Still blocked when the unmanaged key is Inactive: it is not ours to delete.
    world
        .set_key_status(&fixture.user, &laptop_key, StatusType::Inactive)
        .await;
    world
        .assert_refused(&fixture, "createSecret", &token, "UnmanagedKeyBlocks")
        .await;
}

#[tokio::test]
async fn one_unmanaged_key_beside_an_adopted_secret_leaves_room_and_survives() {
    let world = World::new().await;
    let fixture = world.bound_user().await;
    let (laptop_key, _) = world.create_key(&fixture.user).await;
    world.rotate_now(&fixture).await;
    let snapshot = world.snapshot(&fixture).await;
    assert_eq!(snapshot.keys[&laptop_key], "Active");
    assert!(!snapshot.tags.contains_key(&laptop_key));
    world
        .assert_rotation_complete(&fixture, &[&laptop_key])
        .await;

    // The next rotation needs room and may not take it from the unmanaged key.
    let token = world.start_rotation(&fixture).await;
    world
        .assert_refused(&fixture, "createSecret", &token, "UnmanagedKeyBlocks")
        .await;
}

#[tokio::test]
async fn set_secret_refuses_a_pending_key_that_is_inactive_or_gone() {
    let world = World::new().await;
    let fixture = world.user_with_key().await;
    let token = world.start_rotation(&fixture).await;
    world
        .step("createSecret", &fixture.secret_arn, &token)
        .await
        .unwrap();
    let pending = world.value(&fixture, "AWSPENDING").await.unwrap();
    let pending_key = pending["AccessKeyId"].as_str().unwrap();

    world
        .set_key_status(&fixture.user, pending_key, StatusType::Inactive)
        .await;
    let error = world
        .assert_refused(&fixture, "setSecret", &token, "PendingKeyUnusable")
        .await;
    assert!(error.to_string().contains("is Inactive"));

    world
        .iam()
        .delete_access_key()
        .user_name(&fixture.user)
        .access_key_id(pending_key)
        .send()
        .await
        .unwrap();
    let error = world
        .assert_refused(&fixture, "setSecret", &token, "PendingKeyUnusable")
        .await;
    assert!(error.to_string().contains("does not exist"));
    assert!(error.to_string().contains("cancel-rotate-secret"));
}

#[tokio::test]
async fn test_secret_refuses_a_key_of_another_user() {
    let world = World::new().await;
    let fixture = world.user_with_key().await;
    let stranger = world.bound_user().await;
    let (stranger_key, stranger_secret) = world.create_key(&stranger.user).await;
    let token = world.start_rotation(&fixture).await;
    // moto lets PutSecretValue fill the staged version; AWS would too before createSecret.
    world.secrets().put_secret_value().secret_id(&fixture.secret_arn).client_request_token(&token)
        .secret_string(json!({"UserName": fixture.user, "AccessKeyId": stranger_key, "SecretAccessKey": stranger_secret}).to_string())
        .version_stages("AWSPENDING").send().await.unwrap();
    let error = world
        .assert_refused(&fixture, "testSecret", &token, "KeyIdentityMismatch")
        .await;
    let message = error.to_string();
    assert!(
        message.contains(&stranger.user) && !message.contains(&stranger_secret),
        "{message}"
    );
    world
        .assert_refused(&fixture, "setSecret", &token, "PendingKeyUnusable")
        .await;
}

#[tokio::test]
async fn steps_after_create_need_its_value() {
    let world = World::new().await;
    let fixture = world.user_with_key().await;
    let token = world.start_rotation(&fixture).await;
    for step in ["setSecret", "finishSecret"] {
        world
            .assert_refused(&fixture, step, &token, "PendingValueMissing")
            .await;
    }
}

#[tokio::test]
async fn an_unknown_secret_is_named_in_the_error() {
    let world = World::new().await;
    let error = world
        .step("createSecret", "no-such-secret", &new_token())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), "SecretNotFound");
    assert!(error.to_string().contains("no-such-secret"));
}

#[tokio::test]
async fn malformed_events_are_refused_before_any_aws_call() {
    let world = World::new().await;
    for payload in [
        json!({}),
        json!({"Step": "deleteSecret", "SecretId": "s", "ClientRequestToken": new_token()}),
        json!(42),
    ] {
        let error = world
            .handler
            .handle(payload, invocation())
            .await
            .unwrap_err();
        assert_eq!(error.kind(), "InvalidEvent");
    }
}

#[tokio::test]
async fn hostile_events_are_answered_clearly_and_change_nothing() {
    let world = World::new().await;
    let fixture = world.user_with_key().await;
    let other = world.user_with_key().await;
    let token = world.start_rotation(&fixture).await;
    let others_token = world.start_rotation(&other).await;
    let huge = "A".repeat(1 << 20);
    let arn = fixture.secret_arn.as_str();
    let cases = [
        (
            json!({"Step": ["createSecret"], "SecretId": arn, "ClientRequestToken": token}),
            "InvalidEvent",
        ),
        (
            json!({"Step": "createSecret", "SecretId": 12, "ClientRequestToken": token}),
            "InvalidEvent",
        ),
        (
            json!({"Step": "createSecret", "SecretId": arn, "ClientRequestToken": null}),
            "InvalidEvent",
        ),
        (
            json!({"Step": "createSecret", "SecretId": arn, "ClientRequestToken": ""}),
            "InvalidEvent",
        ),
        (
            json!({"Step": "createSecret", "SecretId": arn, "ClientRequestToken": "   "}),
            "InvalidEvent",
        ),
        (
            json!({"Step": "createSecret", "SecretId": arn, "ClientRequestToken": huge}),
            "InvalidEvent",
        ),
        (
            json!({"Step": huge, "SecretId": arn, "ClientRequestToken": token}),
            "InvalidEvent",
        ),
        (
            json!({"Step": "CreateSecret", "SecretId": arn, "ClientRequestToken": token}),
            "InvalidEvent",
        ),
        (
            json!({"Step": "createSecret", "SecretId": huge, "ClientRequestToken": token}),
            "InvalidEvent",
        ),
        (
            json!({"Step": "createSecret", "SecretId": arn, "ClientRequestToken": others_token}),
            "VersionNotFound",
        ),
        (
            json!({"Step": "createSecret", "SecretId": format!("{arn}-nope"), "ClientRequestToken": token}),
            "SecretNotFound",
        ),
        (json!("createSecret"), "InvalidEvent"),
    ];
    let before = world.snapshot(&fixture).await;
    for (payload, kind) in cases {
        let error = world
            .handler
            .handle(payload, invocation())
            .await
            .unwrap_err();
        assert_eq!(error.kind(), kind, "{error}");
        let message = error.to_string();
        assert!(message.len() < 1000, "a {} byte message", message.len());
        assert!(
            !message.contains(&"A".repeat(100)),
            "the message echoes the payload"
        );
    }
    assert_eq!(world.snapshot(&fixture).await, before);
}

#[tokio::test]
async fn an_invalid_smtp_region_is_refused_before_any_key_is_created() {
    let world = World::new().await;
    let fixture = world.bound_user().await;
    world
        .put_current(
            &fixture,
            &json!({"UserName": fixture.user, "SmtpRegion": "mars-north"}),
        )
        .await;
    let token = world.start_rotation(&fixture).await;
    let error = world
        .assert_refused(&fixture, "createSecret", &token, "InvalidSecretValue")
        .await;
    assert!(error.to_string().contains("SmtpRegion"), "{error}");
    assert!(world.snapshot(&fixture).await.keys.is_empty());
}
