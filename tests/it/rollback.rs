//! `keyrot rollback` (SPEC 13) through the real binary against moto: the way
//! back in every retirement mode, each refusal changing nothing, a crash after
//! every AWS call converging on a rerun, the event, and the sweep's grace clock
//! starting at the rollback (SPEC 11, T6).

use std::time::Duration;

use harness::event_queue::EventQueue;
use harness::fault_proxy::{FaultPlan, FaultProxy};
use harness::function::Function;
use harness::keyrot::{keyrot, spawn_keyrot};
use harness::*;
use iam_key_rotation::{Config, OldKeyAction, Retirement};
use serde_json::json;

fn key_of(value: &serde_json::Value) -> String {
    value["AccessKeyId"].as_str().unwrap().to_string()
}

async fn status_of(world: &World, fixture: &Fixture, key: &str) -> Option<String> {
    world.snapshot(fixture).await.keys.get(key).cloned()
}

#[tokio::test]
async fn a_rollback_restores_the_previous_key_announces_it_and_a_rerun_changes_nothing() {
    let world = World::new().await;
    let tag = unique("rollback");
    let path = format!("/{tag}/");
    let fixture = world.user_with_key_at(&path, &format!("{tag}/app")).await;
    let queue = EventQueue::subscribe(
        &moto().endpoint,
        &json!({"source": ["iam-key-rotation"], "detail-type": ["Access Key Rolled Back"],
                "detail": {"secretArn": [fixture.secret_arn]}}),
    )
    .await;
    world.rotate_now(&fixture).await;
    let first = key_of(&world.value(&fixture, "AWSPREVIOUS").await.unwrap());
    let second = world.current_key(&fixture).await.unwrap();
    assert_eq!(
        status_of(&world, &fixture, &first).await.as_deref(),
        Some("Inactive")
    );

    let run = keyrot(
        &moto().endpoint,
        &["rollback", &fixture.secret_name, "--output", "json"],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    assert_eq!(report["changed"], json!(true));
    assert_eq!(report["restored_access_key_id"], json!(first));
    assert_eq!(report["rolled_back_access_key_id"], json!(second));
    assert_eq!(report["secret_arn"], json!(fixture.secret_arn));
    assert_eq!(
        world.current_key(&fixture).await.as_deref(),
        Some(first.as_str())
    );
    assert_eq!(
        key_of(&world.value(&fixture, "AWSPREVIOUS").await.unwrap()),
        second
    );
    for key in [&first, &second] {
        assert_eq!(
            status_of(&world, &fixture, key).await.as_deref(),
            Some("Active")
        );
    }
    world
        .assert_current_key_works(&fixture, "after the rollback")
        .await;

    let events = queue.receive(1, Duration::from_secs(10)).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let detail = &events[0]["detail"];
    assert_eq!(detail["restoredAccessKeyId"], json!(first));
    assert_eq!(detail["rolledBackAccessKeyId"], json!(second));
    assert_eq!(detail["secretName"], json!(fixture.secret_name));
    assert_eq!(detail["user"], json!(fixture.user));

    let before = world.snapshot(&fixture).await;
    let again = keyrot(
        &moto().endpoint,
        &["rollback", &fixture.secret_name, "--output", "json"],
    )
    .await;
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(again.json()["changed"], json!(false));
    assert_eq!(
        world.snapshot(&fixture).await,
        before,
        "a rerun changed the state"
    );

    // status shows it, and the audit lists the pair as a grace period.
    let status = keyrot(
        &moto().endpoint,
        &[
            "status",
            "--prefix",
            &fixture.secret_name,
            "--output",
            "json",
        ],
    )
    .await;
    let row = &status.json()[0];
    assert_eq!(row["state"], json!("rolled-back"), "{row}");
    assert!(
        row["fix"].as_str().unwrap().contains("rotate again"),
        "{row}"
    );
    let audit = keyrot(
        &moto().endpoint,
        &["audit", "--prefix", "", "--path", &path, "--output", "json"],
    )
    .await;
    assert_eq!(
        audit.code, 0,
        "a rolled-back pair is no finding: {}",
        audit.stdout
    );
    let findings = audit.json()["findings"].clone();
    assert_eq!(findings[0]["kind"], json!("two-active-keys"), "{findings}");
    assert_eq!(findings[0]["exempt"], json!(true), "{findings}");
}

/// Runs `keyrot rollback` expecting a refusal (exit 1) that changes nothing.
async fn assert_rollback_refused(world: &World, fixture: &Fixture, endpoint: &str, says: &str) {
    let before = world.snapshot(fixture).await;
    let run = keyrot(
        endpoint,
        &[
            "rollback",
            &fixture.secret_name,
            "--propagation-timeout-seconds",
            "2",
        ],
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains(says), "no {says:?} in {}", run.stderr);
    assert!(run.stderr.contains("nothing was changed"), "{}", run.stderr);
    assert_eq!(
        world.snapshot(fixture).await,
        before,
        "a refused rollback changed the state"
    );
}

#[tokio::test]
async fn every_refusal_says_what_to_do_and_changes_nothing() {
    let world = World::new().await;
    let endpoint = &moto().endpoint;

    let never_rotated = world.user_with_key().await;
    assert_rollback_refused(&world, &never_rotated, endpoint, "rotate again instead").await;

    let rotating = world.user_with_key().await;
    world.rotate_now(&rotating).await;
    world.start_rotation(&rotating).await;
    assert_rollback_refused(&world, &rotating, endpoint, "a rotation is under way").await;

    let deleted = world.user_with_key().await;
    let token = world.start_rotation(&deleted).await;
    world
        .rotate(
            &world.handler(config_with(OldKeyAction::Delete)),
            &deleted,
            &token,
        )
        .await
        .unwrap();
    assert_rollback_refused(&world, &deleted, endpoint, "was deleted").await;

    let unbound = world.user_with_key().await;
    world.rotate_now(&unbound).await;
    world.unbind(&unbound.user).await;
    assert_rollback_refused(&world, &unbound, endpoint, "not bound").await;

    // The previous key does not authenticate: the proxy checks signatures and
    // does not know its secret. It is reactivated, refused, and put back.
    let broken = world.user_with_key().await;
    world.rotate_now(&broken).await;
    let proxy = FaultProxy::start(endpoint).await;
    proxy.set_plan(FaultPlan {
        verify_signatures: true,
        ..FaultPlan::default()
    });
    assert_rollback_refused(&world, &broken, &proxy.endpoint, "does not authenticate").await;
}

#[tokio::test]
async fn a_rollback_crashed_after_any_call_converges_when_run_again() {
    let world = World::new().await;
    let proxy = FaultProxy::start(&moto().endpoint).await;
    let mut crashes = 0;
    for k in 1.. {
        let fixture = world.user_with_key().await;
        world.rotate_now(&fixture).await;
        let first = key_of(&world.value(&fixture, "AWSPREVIOUS").await.unwrap());
        let second = world.current_key(&fixture).await.unwrap();
        proxy.clear_calls();
        let child = spawn_keyrot(
            &proxy.endpoint,
            &["rollback", &fixture.secret_name],
            Duration::from_millis(300),
        );
        proxy.set_plan(FaultPlan {
            crash_after_call: Some((k, child.id().unwrap())),
            ..FaultPlan::default()
        });
        let output = child.wait_with_output().await.unwrap();
        proxy.set_plan(FaultPlan::default());
        if output.status.success() {
            assert!(k > 6, "the rollback made only {} calls", k - 1);
            break;
        }
        crashes += 1;
        let call = proxy.calls()[k - 1].clone();
        let context = format!("crash after call {k} ({} {})", call.service, call.operation);
        // AWSCURRENT holds a working key at every crash point.
        world.assert_current_key_works(&fixture, &context).await;
        let rerun = keyrot(&moto().endpoint, &["rollback", &fixture.secret_name]).await;
        assert_eq!(rerun.code, 0, "{context}: {}", rerun.stderr);
        assert_eq!(
            world.current_key(&fixture).await.as_deref(),
            Some(first.as_str()),
            "{context}"
        );
        for key in [&first, &second] {
            assert_eq!(
                status_of(&world, &fixture, key).await.as_deref(),
                Some("Active"),
                "{context}"
            );
        }
        let tags = world.snapshot(&fixture).await.tags;
        let current_version = world
            .snapshot(&fixture)
            .await
            .versions
            .into_iter()
            .find(|(_, stages)| stages.iter().any(|s| s == "AWSCURRENT"))
            .unwrap()
            .0;
        assert!(
            tags.get("iam-key-rotation:current-since")
                .is_some_and(|since| since.starts_with(&current_version)),
            "{context}: the move is recorded: {tags:?}"
        );
    }
    assert!(crashes >= 6, "only {crashes} crash points");
}

fn grace(hours: f64) -> Config {
    let hours = Duration::from_secs_f64(hours * 3600.0);
    Config {
        old_key_action: OldKeyAction::Grace,
        retirement: Retirement {
            grace: hours,
            grace_max: hours,
            delete_after: None,
        },
        ..Config::default()
    }
}

#[tokio::test]
async fn in_grace_mode_the_grace_starts_again_at_a_rollback_or_a_stage_moved_by_hand() {
    // 0.002 hours: 7.2 seconds. Records and the sweep's clock are whole seconds,
    // so a wait of at least 8 s reads as at least 8 s, past the grace; 7.8 s
    // could read as 7 and leave a key that was due.
    const GRACE: &str = "0.002";
    const WAIT: Duration = Duration::from_millis(8_000);
    let moto = Moto::start();
    let world = World::with_endpoint(&moto.endpoint).await;
    let arn = unique_function_arn();
    let env = [
        ("OLD_KEY_ACTION", "grace"),
        ("GRACE_HOURS", GRACE),
        ("GRACE_MAX_HOURS", GRACE),
    ];
    let mut sweeper = Function::start(&moto.endpoint, &env).await;
    sweeper.set_function_arn(&arn);

    let by_keyrot = world.user_with_key().await;
    let by_hand = world.user_with_key().await;
    for fixture in [&by_keyrot, &by_hand] {
        world.rotate_as(grace(0.002), fixture, &arn).await;
    }
    // Both versions are now older than the grace: a clock started at the
    // version's creation would retire at once.
    tokio::time::sleep(WAIT).await;
    let pairs: Vec<(String, String)> = {
        let mut pairs = Vec::new();
        for fixture in [&by_keyrot, &by_hand] {
            let restored = key_of(&world.value(fixture, "AWSPREVIOUS").await.unwrap());
            let rolled_back = world.current_key(fixture).await.unwrap();
            pairs.push((restored, rolled_back));
        }
        pairs
    };
    let run = keyrot(&moto.endpoint, &["rollback", &by_keyrot.secret_name]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    move_current_back_by_hand(&world, &by_hand).await;

    let response = sweeper.sweep().await;
    assert_eq!(response["Deactivated"], json!([]), "{response}");
    for (fixture, (restored, rolled_back)) in [&by_keyrot, &by_hand].into_iter().zip(&pairs) {
        assert_eq!(world.current_key(fixture).await.as_ref(), Some(restored));
        for key in [restored, rolled_back] {
            assert_eq!(
                status_of(&world, fixture, key).await.as_deref(),
                Some("Active")
            );
        }
    }

    // GRACE_HOURS after the move, the usual rules retire the rolled-back key.
    tokio::time::sleep(WAIT).await;
    let response = sweeper.sweep().await;
    sweeper.stop().await;
    let mut deactivated: Vec<String> = response["Deactivated"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    deactivated.sort();
    let mut expected: Vec<String> = pairs
        .iter()
        .map(|(_, rolled_back)| rolled_back.clone())
        .collect();
    expected.sort();
    assert_eq!(deactivated, expected, "{response}");
}

/// What an operator does without keyrot: moves AWSCURRENT back by hand.
async fn move_current_back_by_hand(world: &World, fixture: &Fixture) {
    let versions = world.snapshot(fixture).await.versions;
    let with = |stage: &str| {
        versions
            .iter()
            .find(|(_, stages)| stages.iter().any(|s| s == stage))
            .unwrap()
            .0
            .clone()
    };
    world
        .secrets()
        .update_secret_version_stage()
        .secret_id(&fixture.secret_arn)
        .version_stage("AWSCURRENT")
        .move_to_version_id(with("AWSPREVIOUS"))
        .remove_from_version_id(with("AWSCURRENT"))
        .send()
        .await
        .unwrap();
}

/// T9, the rollback's side: a sweep deactivates the previous key after the
/// rollback proved it and before the move lands. The rollback looks at the
/// key right after its move, and makes it Active again.
#[tokio::test]
async fn a_key_deactivated_by_a_sweep_during_the_rollback_is_made_active_again() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint).await;
    let world = World::with_endpoint(&moto.endpoint).await;
    let fixture = world.user_with_key().await;
    world
        .rotate_as(
            iam_key_rotation::Config {
                old_key_action: OldKeyAction::Keep,
                ..Config::default()
            },
            &fixture,
            &unique_function_arn(),
        )
        .await;
    let restored = key_of(&world.value(&fixture, "AWSPREVIOUS").await.unwrap());
    proxy.set_plan(FaultPlan {
        delay_operation: Some(("UpdateSecretVersionStage", Duration::from_millis(1500))),
        ..FaultPlan::default()
    });
    let sweep_by_hand = async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        world
            .set_key_status(
                &fixture.user,
                &restored,
                aws_sdk_iam::types::StatusType::Inactive,
            )
            .await;
    };
    let args = ["rollback", fixture.secret_name.as_str(), "--output", "json"];
    let (run, ()) = tokio::join!(keyrot(&proxy.endpoint, &args), sweep_by_hand);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(world.current_key(&fixture).await.unwrap(), restored);
    assert_eq!(
        status_of(&world, &fixture, &restored).await.as_deref(),
        Some("Active"),
        "the restored key was left Inactive"
    );
    assert!(
        run.stdout
            .contains("a sweep deactivated it while the rollback ran"),
        "{}",
        run.stdout
    );
}

/// T8: whoever may invoke the function cannot undo a rollback. A finishSecret
/// for the version the rollback made current (a "retry" by hand) retires
/// nothing and leaves the record of when `AWSCURRENT` moved back as it was.
#[tokio::test]
async fn a_finish_secret_by_hand_after_a_rollback_retires_nothing() {
    let world = World::new().await;
    let fixture = world.user_with_key().await;
    world.rotate_now(&fixture).await;
    let run = keyrot(
        &moto().endpoint,
        &["rollback", &fixture.secret_name, "--output", "json"],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rolled_back = key_of(&world.value(&fixture, "AWSPREVIOUS").await.unwrap());
    let restored_version = world.stage_version(&fixture, "AWSCURRENT").await;
    let before = world.snapshot(&fixture).await;
    assert_eq!(before.keys[&rolled_back], "Active");

    let response = world
        .step("finishSecret", &fixture.secret_arn, &restored_version)
        .await
        .unwrap();
    assert_eq!(
        world.snapshot(&fixture).await,
        before,
        "the finishSecret undid part of the rollback: {response}"
    );
}

/// T6: a current-since record older than the `AWSPREVIOUS` version (a later
/// move's record write failed, then `AWSCURRENT` was moved back by hand to the
/// version the record names) is stale: trusted, it would date the move two
/// hours back and have the sweep retire the key rolled back from at once.
#[tokio::test]
async fn a_stale_current_since_record_never_shortens_the_grace() {
    let moto = Moto::start();
    let world = World::with_endpoint(&moto.endpoint).await;
    let arn = unique_function_arn();
    let fixture = world.user_with_key().await;
    let first_version = world.stage_version(&fixture, "AWSCURRENT").await;
    world.rotate_as(grace(0.002), &fixture, &arn).await;
    let rolled_back = world.current_key(&fixture).await.unwrap();
    // Both versions older than the grace (7.2 s), as they would be hours
    // after a rotation: only the record can say when AWSCURRENT moved.
    tokio::time::sleep(Duration::from_millis(8_000)).await;
    let two_hours_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 7200;
    world
        .iam()
        .tag_user()
        .user_name(&fixture.user)
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key("iam-key-rotation:current-since")
                .value(format!("{first_version} {two_hours_ago}"))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    move_current_back_by_hand(&world, &fixture).await;
    assert_eq!(
        world.stage_version(&fixture, "AWSCURRENT").await,
        first_version
    );

    let env = [
        ("OLD_KEY_ACTION", "grace"),
        ("GRACE_HOURS", "0.002"),
        ("GRACE_MAX_HOURS", "0.002"),
    ];
    let mut sweeper = Function::start(&moto.endpoint, &env).await;
    sweeper.set_function_arn(&arn);
    let response = sweeper.sweep().await;
    sweeper.stop().await;
    assert_eq!(response["Deactivated"], json!([]), "{response}");
    assert_eq!(
        status_of(&world, &fixture, &rolled_back).await.as_deref(),
        Some("Active")
    );
}

/// A previous key someone deactivated by hand (an incident responder
/// containing a leak, say) is not reactivated on the rollback's own say-so:
/// the function records each key it deactivates, and for one it did not,
/// `keyrot rollback` refuses, changing nothing, until `--force`.
#[tokio::test]
async fn a_key_deactivated_by_someone_else_is_reactivated_only_with_force() {
    let world = World::new().await;
    let fixture = world.user_with_key().await;
    world
        .rotate_as(
            Config {
                old_key_action: OldKeyAction::Keep,
                ..Config::default()
            },
            &fixture,
            &unique_function_arn(),
        )
        .await;
    let previous = key_of(&world.value(&fixture, "AWSPREVIOUS").await.unwrap());
    world
        .set_key_status(
            &fixture.user,
            &previous,
            aws_sdk_iam::types::StatusType::Inactive,
        )
        .await;
    let before = world.snapshot(&fixture).await;

    let refused = keyrot(&moto().endpoint, &["rollback", &fixture.secret_name]).await;
    assert_ne!(refused.code, 0, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("not by this function")
            && refused.stderr.contains("--force")
            && refused.stderr.contains(&previous),
        "{}",
        refused.stderr
    );
    assert_eq!(
        world.snapshot(&fixture).await,
        before,
        "a refusal changed something"
    );

    let forced = keyrot(
        &moto().endpoint,
        &[
            "rollback",
            &fixture.secret_name,
            "--force",
            "--output",
            "json",
        ],
    )
    .await;
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    assert_eq!(world.current_key(&fixture).await.unwrap(), previous);
    assert_eq!(
        status_of(&world, &fixture, &previous).await.as_deref(),
        Some("Active")
    );
}
