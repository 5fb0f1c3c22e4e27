//! What moto alone cannot show: crashes after every AWS call,
//! IAM's propagation delay, keys AWS would refuse, and throttling. A fault proxy
//! (`harness/src/fault_proxy.rs`) sits between the function and moto.

use std::time::{Duration, Instant};

use harness::fault_proxy::{FaultPlan, FaultProxy};
use harness::function::Function;
use harness::runtime_api::Reply;
use harness::*;
use iam_key_rotation::Config;
use serde_json::json;

fn realistic() -> FaultPlan {
    FaultPlan {
        reject_unusable_keys: true,
        ..FaultPlan::default()
    }
}

fn event(step: &str, fixture: &Fixture, token: &str) -> serde_json::Value {
    json!({"Step": step, "SecretId": fixture.secret_arn, "ClientRequestToken": token})
}

/// Runs `steps` in a fresh function process; each must succeed.
async fn run_steps(proxy: &FaultProxy, fixture: &Fixture, token: &str, steps: &[&str]) {
    let mut function = Function::start(&proxy.endpoint, &[]).await;
    for step in steps {
        match function.invoke(step, &fixture.secret_arn, token).await {
            Reply::Response(_) => {}
            Reply::Error(error) => {
                panic!("{step} failed: {error}\n{}", function.output().join("\n"))
            }
        }
    }
    function.stop().await;
}

/// Kills the function right after call `k` took effect, then re-runs as Secrets
/// Manager would, and checks invariants 1 to 4. Returns false once `k` is past
/// the last call of the rotation.
async fn crash_and_converge(world: &World, k: usize, rerun_whole_rotation: bool) -> bool {
    let fixture = world.user_with_key().await;
    let old_key = world.current_key(&fixture).await.unwrap();
    let token = world.start_rotation(&fixture).await;
    let proxy = FaultProxy::start(&moto().endpoint).await;
    let mut function = Function::start(&proxy.endpoint, &[]).await;
    proxy.set_plan(FaultPlan {
        crash_after_call: Some((k, function.pid())),
        ..realistic()
    });

    let mut crashed_in = None;
    for (index, step) in STEPS.iter().enumerate() {
        match function.try_invoke(event(step, &fixture, &token)).await {
            Some(Reply::Response(_)) => {}
            Some(Reply::Error(error)) => {
                panic!("k={k}: {step} failed instead of crashing: {error}")
            }
            None => {
                crashed_in = Some(index);
                break;
            }
        }
    }
    function.stop().await;
    let Some(crashed_in) = crashed_in else {
        return false;
    };
    let crashed_call = proxy.calls()[k - 1].clone();
    let context = format!(
        "crash after call {k} ({} {} in {})",
        crashed_call.service, crashed_call.operation, STEPS[crashed_in]
    );
    world.assert_current_key_works(&fixture, &context).await;

    proxy.set_plan(realistic());
    let from = if rerun_whole_rotation { 0 } else { crashed_in };
    run_steps(&proxy, &fixture, &token, &STEPS[from..]).await;

    world
        .assert_rotation_complete_issued(&fixture, &[], &|key| proxy.issued_secret(key))
        .await;
    // The same end state as a rotation that never crashed.
    let snapshot = world.snapshot(&fixture).await;
    let new_key = world.current_key(&fixture).await.unwrap();
    assert_eq!(snapshot.keys.len(), 2, "{context}: {snapshot:?}");
    assert_eq!(
        snapshot.keys[&old_key], "Inactive",
        "{context}: {snapshot:?}"
    );
    assert_eq!(snapshot.keys[&new_key], "Active", "{context}: {snapshot:?}");
    assert!(
        snapshot.tags[&new_key].contains(&token),
        "{context}: {snapshot:?}"
    );
    assert_eq!(snapshot.versions[&token], vec!["AWSCURRENT"], "{context}");
    true
}

/// Crashes after call 1, 2, ... until a rotation runs past the crash point, and
/// returns how many calls a rotation makes.
async fn crash_after_every_call(rerun_whole_rotation: bool) -> usize {
    let world = World::new().await;
    let mut k = 1;
    while crash_and_converge(&world, k, rerun_whole_rotation).await {
        k += 1;
    }
    let calls = k - 1;
    eprintln!(
        "crashed after each of the {calls} calls (whole rotation re-run: {rerun_whole_rotation})"
    );
    assert!(
        calls > 15,
        "a rotation makes more than 15 calls; crashed at only {calls}"
    );
    calls
}

#[tokio::test]
async fn a_crash_after_any_aws_call_converges_when_the_step_is_retried() {
    crash_after_every_call(false).await;
}

#[tokio::test]
async fn a_crash_after_any_aws_call_converges_when_the_whole_rotation_is_rerun() {
    crash_after_every_call(true).await;
}

/// Runs testSecret while the new key propagates for `delay`, and returns how long
/// after the key became valid the step finished.
async fn overshoot_with_propagation_delay(delay: Duration) -> Duration {
    let proxy = FaultProxy::start(&moto().endpoint).await;
    let world = World::with_endpoint(&proxy.endpoint).await;
    let fixture = world.user_with_key().await;
    let token = world.start_rotation(&fixture).await;
    proxy.set_plan(FaultPlan {
        propagation_delay: delay,
        ..realistic()
    });
    world
        .step("createSecret", &fixture.secret_arn, &token)
        .await
        .unwrap();
    let valid_from = Instant::now() + delay;
    world
        .step("setSecret", &fixture.secret_arn, &token)
        .await
        .unwrap();
    world
        .step("testSecret", &fixture.secret_arn, &token)
        .await
        .unwrap();
    let finished = Instant::now();
    assert!(
        finished >= valid_from,
        "testSecret passed before the key was valid"
    );
    let refused = proxy
        .calls()
        .iter()
        .filter(|call| call.fault == Some("key refused"))
        .count();
    assert_eq!(
        refused > 0,
        delay > Duration::ZERO,
        "refusals seen: {refused}"
    );
    world
        .step("finishSecret", &fixture.secret_arn, &token)
        .await
        .unwrap();
    world.assert_rotation_complete(&fixture, &[]).await;
    finished - valid_from
}

/// The back-off is capped at 0.6 s; allow for calls to moto on a loaded machine.
const MAX_OVERSHOOT: Duration = Duration::from_millis(1000);

#[tokio::test]
async fn test_secret_passes_at_once_without_propagation_delay() {
    let overshoot = overshoot_with_propagation_delay(Duration::ZERO).await;
    assert!(overshoot < MAX_OVERSHOOT, "{overshoot:?}");
}

#[tokio::test]
async fn test_secret_waits_out_a_3_second_propagation_delay() {
    let overshoot = overshoot_with_propagation_delay(Duration::from_secs(3)).await;
    assert!(overshoot < MAX_OVERSHOOT, "{overshoot:?}");
}

#[tokio::test]
async fn test_secret_waits_out_an_8_second_propagation_delay() {
    let overshoot = overshoot_with_propagation_delay(Duration::from_secs(8)).await;
    assert!(overshoot < MAX_OVERSHOOT, "{overshoot:?}");
}

#[tokio::test]
async fn a_key_that_never_propagates_fails_within_the_budget_and_loses_nothing() {
    let proxy = FaultProxy::start(&moto().endpoint).await;
    let world = World::with_endpoint(&proxy.endpoint).await;
    let fixture = world.user_with_key().await;
    let old_key = world.current_key(&fixture).await.unwrap();
    let token = world.start_rotation(&fixture).await;
    let handler = world.handler(Config {
        propagation_timeout: Duration::from_secs(2),
        ..Config::default()
    });
    proxy.set_plan(FaultPlan {
        propagation_delay: Duration::from_secs(600),
        ..realistic()
    });
    world
        .invoke(&handler, "createSecret", &fixture.secret_arn, &token)
        .await
        .unwrap();
    world
        .invoke(&handler, "setSecret", &fixture.secret_arn, &token)
        .await
        .unwrap();
    let before = world.snapshot(&fixture).await;
    let started = Instant::now();
    let error = world
        .invoke(&handler, "testSecret", &fixture.secret_arn, &token)
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(error.kind(), "KeyNotPropagated");
    assert!(error.to_string().contains(&fixture.user), "{error}");
    assert!(
        elapsed >= Duration::from_secs(2) && elapsed < Duration::from_millis(3000),
        "{elapsed:?}"
    );
    assert_eq!(world.snapshot(&fixture).await, before);
    assert_eq!(world.current_key(&fixture).await, Some(old_key.clone()));
    world
        .assert_current_key_works(&fixture, "after KeyNotPropagated")
        .await;
}

#[tokio::test]
async fn test_secret_rejects_a_pending_key_that_aws_would_refuse() {
    let proxy = FaultProxy::start(&moto().endpoint).await;
    let world = World::with_endpoint(&proxy.endpoint).await;
    let fixture = world.user_with_key().await;
    let token = world.start_rotation(&fixture).await;
    let handler = world.handler(Config {
        propagation_timeout: Duration::from_secs(1),
        ..Config::default()
    });
    proxy.set_plan(realistic());
    world
        .invoke(&handler, "createSecret", &fixture.secret_arn, &token)
        .await
        .unwrap();
    let pending = world.value(&fixture, "AWSPENDING").await.unwrap();
    let pending_key = pending["AccessKeyId"].as_str().unwrap();
    // moto's STS would accept an Inactive key; AWS (and the proxy) do not.
    world
        .set_key_status(
            &fixture.user,
            pending_key,
            aws_sdk_iam::types::StatusType::Inactive,
        )
        .await;
    let error = world
        .invoke(&handler, "testSecret", &fixture.secret_arn, &token)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), "KeyNotPropagated");
    world
        .assert_current_key_works(&fixture, "after a refused pending key")
        .await;
}

#[tokio::test]
async fn throttling_on_a_third_of_the_calls_and_server_errors_still_converge() {
    let proxy = FaultProxy::start(&moto().endpoint).await;
    let world = World::with_endpoint(&proxy.endpoint).await;
    let fixture = world.user_with_key().await;
    let token = world.start_rotation(&fixture).await;
    proxy.set_plan(FaultPlan {
        throttle_every: Some(3),
        server_error_every: Some(7),
        ..realistic()
    });
    for step in STEPS {
        // Secrets Manager retries a failed step; the SDK's retries usually suffice.
        let mut attempts = 0;
        loop {
            attempts += 1;
            match world.step(step, &fixture.secret_arn, &token).await {
                Ok(_) => break,
                Err(error) if attempts < 5 => eprintln!("{step} attempt {attempts}: {error}"),
                Err(error) => panic!("{step} did not converge: {error}"),
            }
        }
        world.assert_current_key_works(&fixture, step).await;
    }
    proxy.set_plan(FaultPlan::default());
    world.assert_rotation_complete(&fixture, &[]).await;
    let calls = proxy.calls();
    let throttled = calls
        .iter()
        .filter(|c| c.fault == Some("throttled"))
        .count();
    let failed = calls
        .iter()
        .filter(|c| c.fault == Some("server error"))
        .count();
    assert!(
        throttled >= calls.len() / 4,
        "{throttled} of {} calls throttled",
        calls.len()
    );
    assert!(failed >= 2, "{failed} server errors");
}

/// Runs createSecret and setSecret in the real binary behind the proxy, and
/// returns the function (still running) for the test's next step.
async fn create_and_set(
    proxy: &FaultProxy,
    fixture: &Fixture,
    token: &str,
    env: &[(&str, &str)],
) -> Function {
    let mut function = Function::start(&proxy.endpoint, env).await;
    for step in ["createSecret", "setSecret"] {
        let reply = function.invoke(step, &fixture.secret_arn, token).await;
        assert!(matches!(reply, Reply::Response(_)), "{step}: {reply:?}");
    }
    function
}

#[tokio::test]
async fn finish_without_test_waits_until_the_new_key_works_before_moving_the_label() {
    let world = World::new().await;
    let fixture = world.user_with_key().await;
    let old_key = world.current_key(&fixture).await.unwrap();
    let token = world.start_rotation(&fixture).await;
    let proxy = FaultProxy::start(&moto().endpoint).await;
    let delay = Duration::from_secs(3);
    proxy.set_plan(FaultPlan {
        propagation_delay: delay,
        ..realistic()
    });
    let mut function = create_and_set(&proxy, &fixture, &token, &[]).await;
    let new_key = world.value(&fixture, "AWSPENDING").await.unwrap()["AccessKeyId"]
        .as_str()
        .unwrap()
        .to_string();

    // An operator skips testSecret while IAM still refuses the new key.
    let reply = function
        .invoke("finishSecret", &fixture.secret_arn, &token)
        .await;
    function.stop().await;
    assert!(matches!(reply, Reply::Response(_)), "{reply:?}");

    let calls = proxy.calls();
    let probes: Vec<_> = calls
        .iter()
        .filter(|c| c.operation == "GetCallerIdentity" && c.access_key_id == new_key)
        .collect();
    let accepted = probes
        .iter()
        .find(|c| c.fault.is_none())
        .expect("the new key was accepted in the end");
    assert!(
        probes.iter().any(|c| c.fault == Some("key refused")),
        "finishSecret probed while the key was still refused: {probes:?}"
    );
    let valid_from = proxy.created_at(&new_key).unwrap() + delay;
    assert!(
        accepted.at >= valid_from,
        "accepted before the key was valid"
    );
    let label_moved = calls
        .iter()
        .find(|c| c.operation == "UpdateSecretVersionStage")
        .expect("AWSCURRENT moved");
    assert!(
        label_moved.at > accepted.at,
        "AWSCURRENT moved before the new key authenticated"
    );
    let retired = calls
        .iter()
        .find(|c| c.operation == "UpdateAccessKey")
        .expect("the old key was deactivated");
    assert!(
        retired.at > label_moved.at,
        "the old key was retired before the label moved"
    );
    world
        .assert_rotation_complete_issued(&fixture, &[], &|key| proxy.issued_secret(key))
        .await;
    assert_eq!(world.snapshot(&fixture).await.keys[&old_key], "Inactive");

    // A retry after the label moved does not wait for the key again: one
    // proof of possession only, before it retires anything (SPEC 11, T8).
    proxy.clear_calls();
    let mut function = Function::start(&proxy.endpoint, &[]).await;
    let reply = function
        .invoke("finishSecret", &fixture.secret_arn, &token)
        .await;
    function.stop().await;
    assert!(
        matches!(reply, Reply::Response(ref r) if r["Outcome"] == "AlreadyCurrent"),
        "{reply:?}"
    );
    assert_eq!(
        proxy
            .calls()
            .iter()
            .filter(|c| c.operation == "GetCallerIdentity")
            .count(),
        1,
        "{:?}",
        proxy.calls()
    );
}

#[tokio::test]
async fn finish_without_test_on_a_key_that_never_works_fails_within_budget_and_changes_nothing() {
    let world = World::new().await;
    let fixture = world.user_with_key().await;
    let old_key = world.current_key(&fixture).await.unwrap();
    let token = world.start_rotation(&fixture).await;
    let proxy = FaultProxy::start(&moto().endpoint).await;
    proxy.set_plan(FaultPlan {
        propagation_delay: Duration::from_secs(600),
        ..realistic()
    });
    let env = [("PROPAGATION_TIMEOUT_SECONDS", "2")];
    let mut function = create_and_set(&proxy, &fixture, &token, &env).await;
    let before = world.snapshot(&fixture).await;

    let started = Instant::now();
    let reply = function
        .invoke("finishSecret", &fixture.secret_arn, &token)
        .await;
    let elapsed = started.elapsed();
    function.stop().await;
    let Reply::Error(error) = reply else {
        panic!("finishSecret moved AWSCURRENT to a key AWS refuses: {reply:?}");
    };
    assert_eq!(error["errorType"], json!("KeyNotPropagated"), "{error}");
    assert!(
        error["errorMessage"]
            .as_str()
            .unwrap()
            .contains(&fixture.user),
        "{error}"
    );
    assert!(
        elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(4),
        "{elapsed:?}"
    );
    assert_eq!(world.snapshot(&fixture).await, before, "state changed");
    assert_eq!(world.current_key(&fixture).await, Some(old_key));
    world
        .assert_current_key_works(&fixture, "after finishSecret refused the new key")
        .await;
}

/// Invokes `step` in process with a deadline `after` from now.
async fn invoke_with_deadline(
    world: &World,
    step: &str,
    fixture: &Fixture,
    token: &str,
    after: Duration,
) -> Result<serde_json::Value, iam_key_rotation::RotationError> {
    let invocation = iam_key_rotation::Invocation {
        deadline: Some(Instant::now() + after),
        ..invocation()
    };
    world
        .handler
        .handle(event(step, fixture, token), invocation)
        .await
}

#[tokio::test]
async fn a_slow_step_stops_before_the_deadline_and_its_retry_converges() {
    let proxy = FaultProxy::start(&moto().endpoint).await;
    let world = World::with_endpoint(&proxy.endpoint).await;
    let fixture = world.user_with_key().await;
    let token = world.start_rotation(&fixture).await;
    // Every call takes 1.5 s: createSecret's nine calls would need 13 s.
    proxy.set_plan(FaultPlan {
        latency: Duration::from_millis(1500),
        ..realistic()
    });
    let started = Instant::now();
    let error = invoke_with_deadline(
        &world,
        "createSecret",
        &fixture,
        &token,
        Duration::from_secs(4),
    )
    .await
    .unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(error.kind(), "DeadlineReached", "{error}");
    assert!(error.to_string().contains("createSecret"), "{error}");
    assert!(
        elapsed >= Duration::from_millis(3400) && elapsed < Duration::from_millis(3900),
        "stopped {elapsed:?} after the start, for a deadline 4 s away"
    );
    world
        .assert_current_key_works(&fixture, "after a step ran out of time")
        .await;
    proxy.set_plan(realistic());
    world
        .rotate(&world.handler, &fixture, &token)
        .await
        .unwrap();
    world
        .assert_rotation_complete_issued(&fixture, &[], &|key| {
            proxy
                .issued_secret(key)
                .or_else(|| world.ledger.secret_of(key))
        })
        .await;
}

#[tokio::test]
async fn a_deadline_already_past_as_the_step_starts_is_an_emulators_and_is_ignored() {
    let world = World::new().await;
    let fixture = world.user_with_key().await;
    let token = world.start_rotation(&fixture).await;
    for step in STEPS {
        let response = invoke_with_deadline(&world, step, &fixture, &token, Duration::ZERO)
            .await
            .unwrap_or_else(|error| panic!("{step}: {error}"));
        assert_eq!(response["Outcome"], "Done", "{step}");
    }
    world.assert_rotation_complete(&fixture, &[]).await;
}

/// Two createSecret invocations of one token at once (one by hand overlapping
/// Secrets Manager's): the second looked for the token's `AWSPENDING` value a
/// moment before the first stored it, then found the first's new key named by
/// the creation marker. Deleting it as an orphan would leave `AWSPENDING`
/// naming a deleted key, which no retry mends; the second reads the value
/// again first, finds it, and leaves the key alone.
#[tokio::test]
async fn a_create_secret_overlapping_another_of_its_token_leaves_the_others_key_alone() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint).await;
    let world = World::with_endpoint(&proxy.endpoint).await;
    let fixture = world.user_with_key().await;
    let token = world.start_rotation(&fixture).await;
    world
        .step("createSecret", &fixture.secret_arn, &token)
        .await
        .unwrap();
    let pending = world.value(&fixture, "AWSPENDING").await.unwrap();
    let made = pending["AccessKeyId"].as_str().unwrap().to_string();
    let before = world.snapshot(&fixture).await;

    // What the second saw at its start: no value for the token yet.
    proxy.clear_calls();
    proxy.set_plan(FaultPlan {
        answer_first: Some(("GetSecretValue", "ResourceNotFoundException", 1)),
        ..FaultPlan::default()
    });
    world
        .step("createSecret", &fixture.secret_arn, &token)
        .await
        .unwrap();
    proxy.set_plan(FaultPlan::default());
    assert_eq!(
        world.snapshot(&fixture).await,
        before,
        "the second changed something"
    );
    assert_eq!(world.snapshot(&fixture).await.keys[&made], "Active");
    for step in ["setSecret", "testSecret", "finishSecret"] {
        world
            .step(step, &fixture.secret_arn, &token)
            .await
            .unwrap_or_else(|error| panic!("{step}: {error}"));
    }
    assert_eq!(world.current_key(&fixture).await.unwrap(), made);
}
