//! OLD_KEY_ACTION=grace, the sweep and the lifecycle events, through the real
//! binary under the local Runtime API. Each test has a moto of its own: the
//! sweep visits every secret in the account, and must see only the test's.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use harness::event_queue::EventQueue;
use harness::fault_proxy::{FaultPlan, FaultProxy};
use harness::function::Function;
use harness::keyrot::keyrot;
use harness::runtime_api::Reply;
use harness::*;
use iam_key_rotation::{Config, OldKeyAction};
use serde_json::{Value, json};

/// Grace and deletion due at once: the first sweep deactivates, the second deletes.
const GRACE_NOW: [(&str, &str); 3] = [
    ("OLD_KEY_ACTION", "grace"),
    ("GRACE_HOURS", "0"),
    ("DELETE_AFTER_HOURS", "0"),
];

async fn sweeper(endpoint: &str, function_arn: &str, env: &[(&str, &str)]) -> Function {
    let function = Function::start(endpoint, env).await;
    function.set_function_arn(function_arn);
    function
}

fn ids(response: &Value, field: &str) -> Vec<String> {
    response[field]
        .as_array()
        .unwrap_or_else(|| panic!("{field} missing from {response}"))
        .iter()
        .map(|id| id.as_str().unwrap().to_string())
        .collect()
}

/// (Deactivated, Deleted, KeptInUse) of a sweep's response.
fn transitions(response: &Value) -> [Vec<String>; 3] {
    ["Deactivated", "Deleted", "KeptInUse"].map(|field| ids(response, field))
}

fn grace_config() -> Config {
    Config {
        old_key_action: OldKeyAction::Grace,
        ..Config::default()
    }
}

async fn keys(world: &World, fixture: &Fixture) -> BTreeMap<String, String> {
    world.snapshot(fixture).await.keys
}

fn none() -> Vec<String> {
    Vec::new()
}

#[tokio::test]
async fn grace_leaves_the_old_key_active_and_sweeps_deactivate_then_delete_it_with_events() {
    let moto = Moto::start();
    let world = World::with_endpoint(&moto.endpoint).await;
    let arn = unique_function_arn();
    let fixture = world.user_with_key().await;
    let queue = EventQueue::subscribe(
        &moto.endpoint,
        &json!({"source": ["iam-key-rotation"], "detail": {"secretArn": [fixture.secret_arn]}}),
    )
    .await;
    let first_key = world.current_key(&fixture).await.unwrap();
    let mut function = sweeper(&moto.endpoint, &arn, &GRACE_NOW).await;

    let token = world.start_rotation_by(&fixture, &arn).await;
    function.rotate(&fixture.secret_arn, &token).await;
    let second_key = world.current_key(&fixture).await.unwrap();
    assert_eq!(
        keys(&world, &fixture).await[&first_key],
        "Active",
        "finishSecret leaves the old key Active in grace mode"
    );
    // keyrot audit reports the two Active keys, and says why they are.
    let audit = keyrot(
        &moto.endpoint,
        &["audit", "--prefix", "", "--output", "json"],
    )
    .await;
    let finding = audit.json()["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "two-active-keys" && f["user"] == fixture.user.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("no two-active-keys finding: {}", audit.stdout));
    let detail = finding["detail"].as_str().unwrap();
    assert!(
        detail.contains("grace period") && detail.contains(&fixture.secret_name),
        "{detail}"
    );

    let first = function.sweep().await;
    assert_eq!(first["Action"], "sweep");
    assert_eq!(first["Secrets"], 1, "{first}");
    assert_eq!(
        transitions(&first),
        [vec![first_key.clone()], none(), none()]
    );
    assert_eq!(keys(&world, &fixture).await[&first_key], "Inactive");
    assert_eq!(keys(&world, &fixture).await[&second_key], "Active");
    let second = function.sweep().await;
    assert_eq!(
        transitions(&second),
        [none(), vec![first_key.clone()], none()],
        "one transition per sweep: deleted only by the second"
    );
    assert!(!keys(&world, &fixture).await.contains_key(&first_key));
    let idle = function.sweep().await;
    assert_eq!(transitions(&idle), [none(), none(), none()]);

    // The second rotation's old key was made by the first and carries a
    // description tag, which is deleted with it.
    let token2 = world.start_rotation_by(&fixture, &arn).await;
    function.rotate(&fixture.secret_arn, &token2).await;
    let third_key = world.current_key(&fixture).await.unwrap();
    assert!(
        world
            .snapshot(&fixture)
            .await
            .tags
            .contains_key(&second_key)
    );
    assert_eq!(
        transitions(&function.sweep().await),
        [vec![second_key.clone()], none(), none()]
    );
    assert_eq!(
        transitions(&function.sweep().await),
        [none(), vec![second_key.clone()], none()]
    );
    let after = world.snapshot(&fixture).await;
    assert_eq!(
        after.keys,
        BTreeMap::from([(third_key.clone(), "Active".into())])
    );
    assert!(!after.tags.contains_key(&second_key), "{:?}", after.tags);
    world
        .assert_current_key_works(&fixture, "after the sweeps")
        .await;

    // Every change was announced once, with ids only.
    let events = queue.receive(6, Duration::from_secs(15)).await;
    let seen: BTreeSet<(String, String, String, String)> = events
        .iter()
        .map(|event| {
            assert_eq!(event["source"], "iam-key-rotation");
            let detail = &event["detail"];
            assert_eq!(detail["secretArn"], fixture.secret_arn.as_str());
            assert_eq!(detail["secretName"], fixture.secret_name.as_str());
            assert_eq!(detail["user"], fixture.user.as_str());
            assert_eq!(detail["account"], ACCOUNT);
            let key = |name: &str| detail[name].as_str().unwrap_or("-").to_string();
            match event["detail-type"].as_str().unwrap() {
                "Access Key Rotated" => (
                    "rotated".into(),
                    key("versionId"),
                    key("newAccessKeyId"),
                    key("oldAccessKeyId"),
                ),
                "Access Key Retired" => (
                    key("action"),
                    key("versionId"),
                    key("accessKeyId"),
                    "-".into(),
                ),
                other => panic!("unexpected event {other}: {event}"),
            }
        })
        .collect();
    let s = |text: &str| text.to_string();
    let expected = BTreeSet::from([
        (
            s("rotated"),
            token.clone(),
            second_key.clone(),
            first_key.clone(),
        ),
        (s("deactivated"), token.clone(), first_key.clone(), s("-")),
        (s("deleted"), token.clone(), first_key.clone(), s("-")),
        (
            s("rotated"),
            token2.clone(),
            third_key.clone(),
            second_key.clone(),
        ),
        (s("deactivated"), token2.clone(), second_key.clone(), s("-")),
        (s("deleted"), token2.clone(), second_key.clone(), s("-")),
    ]);
    assert_eq!(seen, expected, "{events:#?}");
    assert_eq!(events.len(), 6, "{events:#?}");
    let current = world.value(&fixture, "AWSCURRENT").await.unwrap();
    let text = serde_json::to_string(&events).unwrap();
    assert!(!text.contains(current["SecretAccessKey"].as_str().unwrap()));
    assert!(!text.contains("SecretAccessKey"));
    function.stop().await;
}

#[tokio::test]
async fn a_key_still_in_use_is_kept_until_the_maximum_and_named_in_the_response() {
    let moto = Moto::start();
    let world = World::with_endpoint(&moto.endpoint).await;
    let arn = unique_function_arn();
    let fixture = world.user_with_key().await;
    let first = world.value(&fixture, "AWSCURRENT").await.unwrap();
    let old_key = first["AccessKeyId"].as_str().unwrap().to_string();
    let mut grace = [("GRACE_MAX_HOURS", "1")].to_vec();
    grace.extend(GRACE_NOW);
    let mut function = sweeper(&moto.endpoint, &arn, &grace).await;
    let token = world.start_rotation_by(&fixture, &arn).await;
    function.rotate(&fixture.secret_arn, &token).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    use_key(
        &moto.endpoint,
        &old_key,
        first["SecretAccessKey"].as_str().unwrap(),
    )
    .await;

    let kept = function.sweep().await;
    assert_eq!(transitions(&kept), [none(), none(), vec![old_key.clone()]]);
    assert_eq!(keys(&world, &fixture).await[&old_key], "Active");
    let output = function.stop().await;
    assert!(
        output.iter().any(|line| line.contains("WARN")
            && line.contains(&old_key)
            && line.contains("about to be deactivated")),
        "{}",
        output.join("\n")
    );
    let sweep_record = output
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|record| record.get("_aws").is_some() && record["Step"] == "sweep")
        .expect("a metrics record for the sweep");
    assert_eq!(sweep_record["OldKeyInUse"][0], 1.0, "{sweep_record}");

    // Past GRACE_MAX_HOURS the key is deactivated even though it is in use.
    let mut past_maximum = sweeper(
        &moto.endpoint,
        &arn,
        &[
            ("OLD_KEY_ACTION", "grace"),
            ("GRACE_HOURS", "0"),
            ("GRACE_MAX_HOURS", "0"),
        ],
    )
    .await;
    let forced = past_maximum.sweep().await;
    assert_eq!(
        transitions(&forced),
        [vec![old_key.clone()], none(), none()]
    );
    assert_eq!(keys(&world, &fixture).await[&old_key], "Inactive");
    past_maximum.stop().await;
}

#[tokio::test]
async fn the_sweep_touches_only_the_previous_key_of_a_bound_user_with_no_rotation_under_way() {
    let moto = Moto::start();
    let world = World::with_endpoint(&moto.endpoint).await;
    let arn = unique_function_arn();

    // Retired: the control.
    let retired = world.user_with_key().await;
    let retired_key = world.current_key(&retired).await.unwrap();
    world.rotate_as(grace_config(), &retired, &arn).await;
    // Its user lost the binding tag.
    let unbound = world.user_with_key().await;
    world.rotate_as(grace_config(), &unbound, &arn).await;
    world.unbind(&unbound.user).await;
    // A rotation is under way: createSecret made the pending key.
    let rotating = world.user_with_key().await;
    world.rotate_as(grace_config(), &rotating, &arn).await;
    let token = world.start_rotation_by(&rotating, &arn).await;
    world
        .handler(grace_config())
        .handle(
            json!({"Step": "createSecret", "SecretId": rotating.secret_arn, "ClientRequestToken": token}),
            iam_key_rotation::Invocation {
                function_arn: &arn,
                deadline: None,
            },
        )
        .await
        .unwrap();
    // The previous key is gone and the user holds a key no secret manages.
    let unmanaged = world.user_with_key().await;
    world
        .rotate_as(
            Config {
                old_key_action: OldKeyAction::Delete,
                ..Config::default()
            },
            &unmanaged,
            &arn,
        )
        .await;
    world.create_key(&unmanaged.user).await;
    // AWSPREVIOUS holds the current key (an operator stored the value again).
    let same_key = world.user_with_key().await;
    world.set_rotation_function(&same_key, &arn).await;
    let value = world.value(&same_key, "AWSCURRENT").await.unwrap();
    world.put_current(&same_key, &value).await;
    // Rotated by another function.
    let elsewhere = world.user_with_key().await;
    world
        .rotate_as(grace_config(), &elsewhere, &unique_function_arn())
        .await;

    // Not a value this function can read (not a JSON object), yet rotated by it.
    let name = unique("not-ours");
    let unreadable = Fixture {
        user: String::new(),
        secret_arn: world.create_secret(&name, &json!("a plain string")).await,
        secret_name: name,
    };
    world.set_rotation_function(&unreadable, &arn).await;
    world
        .put_current(&unreadable, &json!(["another", "one"]))
        .await;

    let untouched = [&unbound, &rotating, &unmanaged, &same_key, &elsewhere];
    let mut before = Vec::new();
    for fixture in untouched {
        before.push(world.snapshot(fixture).await);
    }
    let mut function = sweeper(&moto.endpoint, &arn, &GRACE_NOW).await;
    for round in 0..2 {
        let response = function.sweep().await;
        assert_eq!(response["Secrets"], 6, "{response}");
        assert_eq!(
            response["Skipped"], 2,
            "the unbound user and the unreadable value: {response}"
        );
        let expected = match round {
            0 => [vec![retired_key.clone()], none(), none()],
            _ => [none(), vec![retired_key.clone()], none()],
        };
        assert_eq!(transitions(&response), expected, "{response}");
        for (fixture, before) in untouched.iter().zip(&before) {
            assert_eq!(
                &world.snapshot(fixture).await,
                before,
                "{} changed",
                fixture.secret_name
            );
        }
    }
    let output = function.stop().await;
    assert!(
        output
            .iter()
            .any(|line| line.contains("WARN") && line.contains("UserNotBound")),
        "the skipped secret is named with the reason"
    );
    assert!(
        output.iter().any(|line| line.contains("WARN")
            && line.contains(&unreadable.secret_arn)
            && line.contains("could not be read")),
        "the unreadable secret is named"
    );
}

/// Crashes a sweep right after each of its calls in turn (a fresh secret each
/// time) and checks that later sweeps converge: the previous key deleted with
/// its description tag, the current key untouched and working.
async fn crash_after_every_call_of_a_sweep(previous_inactive: bool) {
    let moto = Moto::start();
    let world = World::with_endpoint(&moto.endpoint).await;
    let mut crashes = 0;
    for k in 1.. {
        let arn = unique_function_arn();
        let fixture = world.user_with_key().await;
        world.rotate_as(Config::default(), &fixture, &arn).await;
        world.rotate_as(grace_config(), &fixture, &arn).await;
        let previous = world.value(&fixture, "AWSPREVIOUS").await.unwrap()["AccessKeyId"]
            .as_str()
            .unwrap()
            .to_string();
        let current = world.current_key(&fixture).await.unwrap();
        if previous_inactive {
            world
                .set_key_status(
                    &fixture.user,
                    &previous,
                    aws_sdk_iam::types::StatusType::Inactive,
                )
                .await;
        }
        let proxy = FaultProxy::start(&moto.endpoint).await;
        let mut function = sweeper(&proxy.endpoint, &arn, &GRACE_NOW).await;
        proxy.set_plan(FaultPlan {
            crash_after_call: Some((k, function.pid())),
            ..FaultPlan::default()
        });
        let reply = function.try_invoke(json!({"Action": "sweep"})).await;
        function.stop().await;
        if reply.is_some() {
            assert!(k > 5, "the sweep made only {} calls", k - 1);
            break;
        }
        crashes += 1;
        let call = proxy.calls()[k - 1].clone();
        proxy.set_plan(FaultPlan::default());
        let mut recovery = sweeper(&proxy.endpoint, &arn, &GRACE_NOW).await;
        for _ in 0..2 {
            recovery.sweep().await;
        }
        recovery.stop().await;
        let after = world.snapshot(&fixture).await;
        let context = format!("crash after call {k} ({} {})", call.service, call.operation);
        assert_eq!(
            after.keys,
            BTreeMap::from([(current.clone(), "Active".into())]),
            "{context}"
        );
        // The description goes after the key (retire.rs): a crash between the
        // two leaves it on a key that is gone, and the next createSecret tidies it.
        assert!(
            !after.tags.contains_key(&previous) || !after.keys.contains_key(&previous),
            "{context}: {:?}",
            after.tags
        );
        world.assert_current_key_works(&fixture, &context).await;
    }
    assert!(crashes >= 6, "only {crashes} crash points");
}

#[tokio::test]
async fn a_sweep_crashed_after_any_call_while_deactivating_converges_on_the_next() {
    crash_after_every_call_of_a_sweep(false).await;
}

#[tokio::test]
async fn a_sweep_crashed_after_any_call_while_deleting_converges_on_the_next() {
    crash_after_every_call_of_a_sweep(true).await;
}

#[tokio::test]
async fn a_failed_step_is_announced_and_a_failing_put_events_fails_nothing() {
    let moto = Moto::start();
    let world = World::with_endpoint(&moto.endpoint).await;
    let arn = unique_function_arn();
    let refused = world.user_with_key().await;
    let finished = world.user_with_key().await;
    let queue = EventQueue::subscribe(
        &moto.endpoint,
        &json!({"source": ["iam-key-rotation"], "detail": {"secretArn": [refused.secret_arn, finished.secret_arn]}}),
    )
    .await;

    // A refused step: "Rotation Step Failed" with its step and errorType.
    let mut function = sweeper(&moto.endpoint, &arn, &[]).await;
    let token = world.start_rotation_by(&refused, &arn).await;
    world.unbind(&refused.user).await;
    let reply = function
        .invoke("createSecret", &refused.secret_arn, &token)
        .await;
    assert!(matches!(reply, Reply::Error(_)), "{reply:?}");
    // OLD_KEY_ACTION=deactivate: Rotated and Retired together from finishSecret.
    let old_key = world.current_key(&finished).await.unwrap();
    let token2 = world.start_rotation_by(&finished, &arn).await;
    function.rotate(&finished.secret_arn, &token2).await;
    function.stop().await;
    let events = queue.receive(3, Duration::from_secs(15)).await;
    let failed = events
        .iter()
        .find(|e| e["detail-type"] == "Rotation Step Failed")
        .unwrap_or_else(|| panic!("{events:#?}"));
    assert_eq!(
        failed["detail"],
        json!({
            "secretArn": refused.secret_arn,
            "secretName": refused.secret_name,
            "user": refused.user,
            "account": ACCOUNT,
            "versionId": token,
            "step": "createSecret",
            "errorType": "UserNotBound",
        })
    );
    let retired = events
        .iter()
        .find(|e| e["detail-type"] == "Access Key Retired")
        .unwrap_or_else(|| panic!("{events:#?}"));
    assert_eq!(retired["detail"]["accessKeyId"], old_key.as_str());
    assert_eq!(retired["detail"]["action"], "deactivated");
    assert!(
        events
            .iter()
            .any(|e| e["detail-type"] == "Access Key Rotated"
                && e["detail"]["versionId"] == token2.as_str())
    );

    // EventBridge refuses every PutEvents: the rotation completes all the same.
    let proxy = FaultProxy::start(&moto.endpoint).await;
    proxy.set_plan(FaultPlan {
        deny_operation: Some("PutEvents"),
        ..FaultPlan::default()
    });
    let mut denied = sweeper(&proxy.endpoint, &arn, &[]).await;
    let token3 = world.start_rotation_by(&finished, &arn).await;
    denied.rotate(&finished.secret_arn, &token3).await;
    world
        .assert_rotation_complete_issued(&finished, &[], &|key| proxy.issued_secret(key))
        .await;
    let output = denied.stop().await;
    assert!(
        proxy
            .calls()
            .iter()
            .any(|call| call.operation == "PutEvents"),
        "the function tried to put the events"
    );
    assert!(
        output.iter().any(
            |line| line.contains("WARN") && line.contains("could not put the lifecycle events")
        ),
        "{}",
        output.join("\n")
    );
}

#[tokio::test]
async fn a_sweep_under_iam_throttling_retires_every_key_and_skips_none() {
    let moto = Moto::start();
    let world = World::with_endpoint(&moto.endpoint).await;
    let arn = unique_function_arn();
    let mut old_keys = Vec::new();
    for _ in 0..16 {
        let fixture = world.user_with_key().await;
        old_keys.push(world.current_key(&fixture).await.unwrap());
        world.rotate_as(grace_config(), &fixture, &arn).await;
    }
    old_keys.sort();
    // IAM answers 8 calls a second for the whole account; the rest are throttled.
    let proxy = FaultProxy::start(&moto.endpoint).await;
    proxy.set_plan(FaultPlan {
        rate_limits: vec![("iam", 8.0)],
        ..FaultPlan::default()
    });
    let mut function = sweeper(&proxy.endpoint, &arn, &GRACE_NOW).await;
    let response = function.sweep().await;
    function.stop().await;
    let throttled = proxy
        .calls()
        .iter()
        .filter(|call| call.fault.is_some())
        .count();
    assert!(
        throttled > 0,
        "IAM never throttled: the test proves nothing"
    );
    assert_eq!(response["Skipped"], 0, "{response}");
    assert_eq!(response["Unfinished"], 0, "{response}");
    assert_eq!(ids(&response, "Deactivated"), old_keys, "{response}");
}
