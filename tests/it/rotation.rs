//! The four steps against moto through the real SDK clients: full rotations,
//! retries, adoption, retirement modes and SMTP passwords.

use harness::*;
use iam_key_rotation::OldKeyAction;
use serde_json::json;

#[tokio::test]
async fn a_first_rotation_replaces_an_existing_key_and_deactivates_it() {
    let world = World::new().await;
    let fixture = world.user_with_key().await;
    let old_key = world.current_key(&fixture).await.unwrap();

    let token = world.rotate_now(&fixture).await;

    let snapshot = world.snapshot(&fixture).await;
    let new_key = world.current_key(&fixture).await.unwrap();
    assert_ne!(new_key, old_key);
    assert_eq!(snapshot.versions[&token], vec!["AWSCURRENT"]);
    assert_eq!(snapshot.keys[&new_key], "Active");
    assert_eq!(snapshot.keys[&old_key], "Inactive");
    assert_eq!(
        world.value(&fixture, "AWSPREVIOUS").await.unwrap()["AccessKeyId"],
        json!(old_key)
    );
    assert!(snapshot.tags[&new_key].contains(&fixture.secret_arn));
    assert!(snapshot.tags[&new_key].contains(&token));
    world.assert_rotation_complete(&fixture, &[]).await;
}

#[tokio::test]
async fn adoption_creates_the_first_key_from_a_secret_with_only_a_user_name() {
    let world = World::new().await;
    let fixture = world.bound_user().await;

    world.rotate_now(&fixture).await;

    let current = world.value(&fixture, "AWSCURRENT").await.unwrap();
    let new_key = current["AccessKeyId"].as_str().unwrap();
    assert_eq!(current["UserName"], json!(fixture.user));
    let snapshot = world.snapshot(&fixture).await;
    assert_eq!(snapshot.keys.len(), 1);
    assert_eq!(snapshot.keys[new_key], "Active");
    world.assert_rotation_complete(&fixture, &[]).await;
}

#[tokio::test]
async fn a_second_rotation_makes_room_by_deleting_the_previous_key() {
    let world = World::new().await;
    let fixture = world.user_with_key().await;
    let first_key = world.current_key(&fixture).await.unwrap();

    world.rotate_now(&fixture).await;
    let second_key = world.current_key(&fixture).await.unwrap();
    world.rotate_now(&fixture).await;
    let third_key = world.current_key(&fixture).await.unwrap();

    let snapshot = world.snapshot(&fixture).await;
    assert!(!snapshot.keys.contains_key(&first_key), "{snapshot:?}");
    assert!(
        !snapshot.tags.contains_key(&first_key),
        "stale description: {snapshot:?}"
    );
    assert_eq!(snapshot.keys[&second_key], "Inactive");
    assert_eq!(snapshot.keys[&third_key], "Active");
    world.assert_rotation_complete(&fixture, &[]).await;
}

#[tokio::test]
async fn other_fields_of_the_secret_are_carried_into_the_new_version() {
    let world = World::new().await;
    let fixture = world.bound_user().await;
    let (id, secret) = world.create_key(&fixture.user).await;
    let value = json!({"UserName": fixture.user, "AccessKeyId": id, "SecretAccessKey": secret,
        "Consumer": "billing", "Nested": {"a": [1, 2]}});
    world.put_current(&fixture, &value).await;
    world.rotate_now(&fixture).await;

    let current = world.value(&fixture, "AWSCURRENT").await.unwrap();
    assert_eq!(current["Consumer"], json!("billing"));
    assert_eq!(current["Nested"], json!({"a": [1, 2]}));
}

#[tokio::test]
async fn old_key_action_delete_removes_the_key_and_its_description() {
    let world = World::new().await;
    let fixture = world.user_with_key().await;
    let handler = world.handler(config_with(OldKeyAction::Delete));
    // First rotation: the adopted key is deleted. Second: a key we made is deleted.
    for _ in 0..2 {
        let old_key = world.current_key(&fixture).await.unwrap();
        let token = world.start_rotation(&fixture).await;
        world.rotate(&handler, &fixture, &token).await.unwrap();
        let snapshot = world.snapshot(&fixture).await;
        assert_eq!(snapshot.keys.len(), 1, "{snapshot:?}");
        assert!(!snapshot.keys.contains_key(&old_key));
        assert!(!snapshot.tags.contains_key(&old_key), "{snapshot:?}");
        world.assert_rotation_complete(&fixture, &[]).await;
    }
}

#[tokio::test]
async fn old_key_action_keep_leaves_the_previous_key_active_until_the_next_rotation() {
    let world = World::new().await;
    let fixture = world.user_with_key().await;
    let first_key = world.current_key(&fixture).await.unwrap();
    let handler = world.handler(config_with(OldKeyAction::Keep));

    let token = world.start_rotation(&fixture).await;
    world.rotate(&handler, &fixture, &token).await.unwrap();
    let snapshot = world.snapshot(&fixture).await;
    assert_eq!(snapshot.keys[&first_key], "Active");
    assert_eq!(snapshot.keys.len(), 2);

    let token = world.start_rotation(&fixture).await;
    world.rotate(&handler, &fixture, &token).await.unwrap();
    let snapshot = world.snapshot(&fixture).await;
    assert!(!snapshot.keys.contains_key(&first_key), "{snapshot:?}");
    assert!(snapshot.keys.values().all(|status| status == "Active"));
    world.assert_rotation_complete(&fixture, &[]).await;
}

#[tokio::test]
async fn every_step_run_twice_converges_to_the_same_end_state() {
    let world = World::new().await;
    let fixture = world.user_with_key().await;
    let token = world.start_rotation(&fixture).await;
    for step in STEPS {
        world.step(step, &fixture.secret_arn, &token).await.unwrap();
        let after_first = world.snapshot(&fixture).await;
        world.step(step, &fixture.secret_arn, &token).await.unwrap();
        assert_eq!(
            world.snapshot(&fixture).await,
            after_first,
            "{step} run twice changed the state"
        );
    }
    world.assert_rotation_complete(&fixture, &[]).await;
}

#[tokio::test]
async fn a_finished_rotation_run_again_changes_nothing() {
    let world = World::new().await;
    let fixture = world.user_with_key().await;
    let token = world.rotate_now(&fixture).await;
    let finished = world.snapshot(&fixture).await;
    let outcomes = {
        let mut outcomes = Vec::new();
        for step in STEPS {
            let response = world.step(step, &fixture.secret_arn, &token).await.unwrap();
            outcomes.push(response["Outcome"].as_str().unwrap().to_string());
        }
        outcomes
    };
    assert_eq!(outcomes, vec!["AlreadyCurrent"; 4]);
    assert_eq!(world.snapshot(&fixture).await, finished);
}

#[tokio::test]
async fn finish_retried_after_the_label_moved_still_retires_the_old_key() {
    let world = World::new().await;
    let fixture = world.user_with_key().await;
    let old_key = world.current_key(&fixture).await.unwrap();
    let token = world.start_rotation(&fixture).await;
    for step in &STEPS[..3] {
        world.step(step, &fixture.secret_arn, &token).await.unwrap();
    }
    // A finishSecret that died right after moving AWSCURRENT.
    let previous_version = world
        .snapshot(&fixture)
        .await
        .versions
        .into_iter()
        .find(|(_, stages)| stages.contains(&"AWSCURRENT".to_string()))
        .unwrap()
        .0;
    world
        .secrets()
        .update_secret_version_stage()
        .secret_id(&fixture.secret_arn)
        .version_stage("AWSCURRENT")
        .move_to_version_id(&token)
        .remove_from_version_id(previous_version)
        .send()
        .await
        .unwrap();
    assert_eq!(world.snapshot(&fixture).await.keys[&old_key], "Active");

    world
        .step("finishSecret", &fixture.secret_arn, &token)
        .await
        .unwrap();
    assert_eq!(world.snapshot(&fixture).await.keys[&old_key], "Inactive");
    world.assert_rotation_complete(&fixture, &[]).await;
}

#[tokio::test]
async fn the_secret_may_be_named_instead_of_given_by_arn() {
    let world = World::new().await;
    let fixture = world.user_with_key().await;
    let token = world.start_rotation(&fixture).await;
    for step in STEPS {
        let response = world
            .step(step, &fixture.secret_name, &token)
            .await
            .unwrap();
        assert_eq!(response["SecretArn"], json!(fixture.secret_arn));
    }
    world.assert_rotation_complete(&fixture, &[]).await;
}

#[tokio::test]
async fn the_configuration_test_checks_the_current_key_and_changes_nothing() {
    let world = World::new().await;
    let fixture = world.user_with_key().await;
    let token = world.start_rotation(&fixture).await;
    let before = world.snapshot(&fixture).await;
    let response = world
        .step("testSecret", &fixture.secret_arn, &token)
        .await
        .unwrap();
    assert_eq!(response["Outcome"], json!("ConfigurationTested"));
    assert_eq!(world.snapshot(&fixture).await, before);

    // The configuration test still refuses an unbound user.
    world.unbind(&fixture.user).await;
    let error = world
        .step("testSecret", &fixture.secret_arn, &token)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), "UserNotBound");
}

#[tokio::test]
async fn an_orphan_key_left_by_a_crash_after_create_access_key_is_deleted_on_retry() {
    let world = World::new().await;
    let fixture = world.user_with_key().await;
    let current_key = world.current_key(&fixture).await.unwrap();
    let token = world.start_rotation(&fixture).await;
    // What createSecret leaves when it dies right after CreateAccessKey: the marker
    // naming the keys that existed, and an untagged new key.
    world
        .iam()
        .tag_user()
        .user_name(&fixture.user)
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key("iam-key-rotation:creating")
                // token, written at, the invocation's end, the key (not yet
                // known: "-"), the keys that existed.
                .value(format!(
                    "{token} {} {} - {current_key}",
                    unix_now(),
                    unix_now() + 120
                ))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let (orphan, _) = world.create_key(&fixture.user).await;

    world
        .rotate(&world.handler, &fixture, &token)
        .await
        .unwrap();
    let snapshot = world.snapshot(&fixture).await;
    assert!(!snapshot.keys.contains_key(&orphan), "{snapshot:?}");
    assert_eq!(snapshot.keys.len(), 2);
    world.assert_rotation_complete(&fixture, &[]).await;
}

#[tokio::test]
async fn a_secret_with_smtp_region_carries_the_ses_smtp_password_of_the_new_key() {
    let world = World::new().await;
    let fixture = world.bound_user().await;
    world
        .put_current(
            &fixture,
            &json!({"UserName": fixture.user, "SmtpRegion": "eu-west-1"}),
        )
        .await;
    for _ in 0..2 {
        world.rotate_now(&fixture).await;
        let current = world.value(&fixture, "AWSCURRENT").await.unwrap();
        let key = current["AccessKeyId"].as_str().unwrap();
        let issued = world.ledger.secret_of(key).unwrap();
        let expected =
            iam_key_rotation::smtp_password(&iam_key_rotation::Sensitive::new(issued), "eu-west-1");
        record_issued_secret(expected.expose());
        assert_eq!(current["SmtpPassword"], json!(expected.expose()));
        assert_eq!(current["SmtpRegion"], json!("eu-west-1"));
        world.assert_rotation_complete(&fixture, &[]).await;
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
