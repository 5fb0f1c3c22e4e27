//! The built function binary under a Lambda Runtime API, configured only through
//! the environment (`AWS_ENDPOINT_URL` points the SDK at moto), as Lambda and
//! `cargo lambda watch` run it.

use std::time::Duration;

use harness::function::Function;
use harness::runtime_api::Reply;
use harness::*;
use serde_json::{Value, json};

#[tokio::test]
async fn the_binary_completes_a_rotation_and_logs_json_without_secrets() {
    let world = World::new().await;
    let fixture = world.user_with_key().await;
    let old_key = world.current_key(&fixture).await.unwrap();
    let token = world.start_rotation(&fixture).await;
    let mut function = Function::start(&moto().endpoint, &[("OLD_KEY_ACTION", "delete")]).await;

    for (step, response) in STEPS
        .iter()
        .zip(function.rotate(&fixture.secret_arn, &token).await)
    {
        assert_eq!(response["Outcome"], json!("Done"), "{step}");
    }
    let new = world.value(&fixture, "AWSCURRENT").await.unwrap();
    let new_key = new["AccessKeyId"].as_str().unwrap().to_string();
    let snapshot = world.snapshot(&fixture).await;
    assert_eq!(
        snapshot.keys.keys().cloned().collect::<Vec<_>>(),
        vec![new_key.clone()]
    );
    assert!(!snapshot.keys.contains_key(&old_key));

    // 128 MB is the memory the template gives the function; stay well inside it.
    let peak = function
        .peak_rss_kib()
        .expect("the process is still running");
    eprintln!("peak RSS of the function across a rotation: {} KiB", peak);
    if !function.is_launched() {
        assert!(peak < 48 * 1024, "peak RSS {peak} KiB");
    }
    let output = function.stop().await;
    let logged = output.join("\n");
    for line in &output {
        serde_json::from_str::<Value>(line)
            .unwrap_or_else(|_| panic!("not a JSON log line: {line}"));
    }
    assert!(logged.contains(&new_key), "access key ids are logged");
    assert!(
        !logged.contains("about to be"),
        "no consumer used the old key"
    );
    let records = metric_records(&output);
    assert_eq!(records.len(), 4, "one metrics record per step: {records:?}");
    for (record, step) in records.iter().zip(STEPS) {
        let declared = &record["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(declared["Namespace"], json!("IamKeyRotation"));
        assert_eq!(declared["Dimensions"], json!([["Step", "Outcome"]]));
        assert_eq!(record["Step"], json!(step));
        assert_eq!(record["Outcome"], json!("Done"));
        assert!(record["Duration"][0].as_f64().unwrap() > 0.0);
    }
    let calls: f64 = records
        .iter()
        .map(|r| r["AwsCalls"][0].as_f64().unwrap())
        .sum();
    // A first rotation makes 28 calls (docs/performance.md): the proof that the
    // adopted key is the user's (GetCallerIdentity), the read of AWSPREVIOUS (the
    // fixture's first version, without a key) and the TagUser recording when
    // AWSCURRENT moved among them; OLD_KEY_ACTION=delete adds the UntagUser of
    // the old key's description.
    assert_eq!(
        calls, 29.0,
        "AWS calls of a first rotation with OLD_KEY_ACTION=delete"
    );
    assert!(logged.contains(&token), "the token is logged");
    let old_secret = world.value(&fixture, "AWSPREVIOUS").await.unwrap()["SecretAccessKey"].clone();
    for secret in [
        new["SecretAccessKey"].as_str().unwrap(),
        old_secret.as_str().unwrap(),
    ] {
        assert!(!logged.contains(secret), "a secret access key was logged");
    }
}

#[tokio::test]
async fn the_binary_reports_refusals_as_function_errors_with_their_kind() {
    let world = World::new().await;
    let fixture = world.user_with_key().await;
    let token = world.start_rotation(&fixture).await;
    world.unbind(&fixture.user).await;
    let mut function = Function::start(&moto().endpoint, &[]).await;

    let Reply::Error(error) = function
        .invoke("createSecret", &fixture.secret_arn, &token)
        .await
    else {
        panic!("createSecret should have failed");
    };
    assert_eq!(error["errorType"], json!("UserNotBound"));
    let records = metric_records(&function.output());
    assert_eq!(
        records.last().unwrap()["Outcome"],
        json!("Failed"),
        "{records:?}"
    );
    assert!(
        error["errorMessage"]
            .as_str()
            .unwrap()
            .contains(&fixture.user)
    );

    record_issued_secret("rotation-token-must-not-be-logged");
    let Reply::Error(error) = function
        .invoke_payload(
            json!({"Step": "rotate", "SecretId": "s", "ClientRequestToken": new_token(),
            "RotationToken": "rotation-token-must-not-be-logged"}),
        )
        .await
    else {
        panic!("an unknown step should have failed");
    };
    assert_eq!(error["errorType"], json!("InvalidEvent"));
    let logged = function.stop().await.join("\n");
    assert!(!logged.contains("rotation-token-must-not-be-logged"));
}

/// SPEC 11, T5: no log level shows a secret or the `RotationToken`. The runtime
/// crate logs each raw event at TRACE; the function caps it whatever the setting.
#[tokio::test]
async fn at_trace_level_no_line_shows_a_secret_or_the_rotation_token() {
    let world = World::new().await;
    let fixture = world.user_with_key().await;
    let token = world.start_rotation(&fixture).await;
    let rotation_token = format!("rotation-token-at-trace-{}", new_token());
    record_issued_secret(&rotation_token);
    let mut function = Function::start(
        &moto().endpoint,
        &[("AWS_LAMBDA_LOG_LEVEL", "TRACE"), ("RUST_LOG", "trace")],
    )
    .await;
    for step in STEPS {
        let reply = function
            .invoke_payload(json!({"Step": step, "SecretId": fixture.secret_arn,
                "ClientRequestToken": token, "RotationToken": rotation_token}))
            .await;
        let Reply::Response(_) = reply else {
            panic!("{step} failed: {reply:?}\n{}", function.output().join("\n"));
        };
    }
    let new = world.value(&fixture, "AWSCURRENT").await.unwrap();
    let new_secret = new["SecretAccessKey"].as_str().unwrap().to_string();
    let output = function.stop().await;
    let logged = output.join("\n");
    assert!(
        logged.contains("\"level\":\"DEBUG\""),
        "the level was raised: the SDK's DEBUG lines show"
    );
    assert!(
        !logged.contains(&rotation_token),
        "the RotationToken is logged"
    );
    assert!(
        !logged.contains(&new_secret),
        "the new secret access key is logged"
    );
    assert!(
        !logged.contains("\"SecretString\""),
        "a raw request or event is logged"
    );
}

#[tokio::test]
async fn an_invalid_setting_stops_the_function_at_initialisation() {
    let mut function = Function::start(&moto().endpoint, &[("OLD_KEY_ACTION", "shred")]).await;
    let status = function
        .wait_exit(Duration::from_secs(30))
        .await
        .expect("the function should exit");
    assert!(!status.success());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let logged = function.output().join("\n");
    assert!(
        logged.contains("OLD_KEY_ACTION") && logged.contains("deactivate, delete, keep"),
        "{logged}"
    );
}

/// The Embedded Metric Format records among the function's output lines.
fn metric_records(output: &[String]) -> Vec<Value> {
    output
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|value| value.get("_aws").is_some())
        .collect()
}

#[tokio::test]
async fn a_consumer_still_using_the_old_key_is_named_before_the_key_is_retired_or_deleted() {
    let world = World::new().await;
    let fixture = world.user_with_key().await;
    let first = world.value(&fixture, "AWSCURRENT").await.unwrap();
    let (old_key, old_secret) = (
        first["AccessKeyId"].as_str().unwrap().to_string(),
        first["SecretAccessKey"].as_str().unwrap().to_string(),
    );
    let mut function = Function::start(&moto().endpoint, &[]).await;
    let warned = |output: &[String], action: &str| {
        output.iter().any(|line| {
            line.contains("WARN")
                && line.contains(&old_key)
                && line.contains(&format!("about to be {action} was used"))
                && line.contains("\"service\":\"sts\"")
        })
    };

    // Used while the rotation runs: finishSecret warns before deactivating it.
    let token = world.start_rotation(&fixture).await;
    for step in &STEPS[..3] {
        function.invoke(step, &fixture.secret_arn, &token).await;
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    use_key(&moto().endpoint, &old_key, &old_secret).await;
    function
        .invoke("finishSecret", &fixture.secret_arn, &token)
        .await;
    assert!(
        warned(&function.output(), "deactivated"),
        "{}",
        function.output().join("\n")
    );

    // Still used after the rotation: the next createSecret warns before deleting it.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    use_key(&moto().endpoint, &old_key, &old_secret).await;
    let token = world.start_rotation(&fixture).await;
    let Reply::Response(_) = function
        .invoke("createSecret", &fixture.secret_arn, &token)
        .await
    else {
        panic!("createSecret failed");
    };
    let output = function.stop().await;
    assert!(warned(&output, "deleted"), "{}", output.join("\n"));
    // Each warning is also the OldKeyInUse metric of its step, 0 elsewhere.
    let in_use: Vec<(String, f64)> = metric_records(&output)
        .iter()
        .map(|r| {
            (
                r["Step"].as_str().unwrap().to_string(),
                r["OldKeyInUse"][0].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        in_use,
        [
            ("createSecret".to_string(), 0.0),
            ("setSecret".to_string(), 0.0),
            ("testSecret".to_string(), 0.0),
            ("finishSecret".to_string(), 1.0),
            ("createSecret".to_string(), 1.0),
        ]
    );
    assert!(
        !world.snapshot(&fixture).await.keys.contains_key(&old_key),
        "the warning never blocks"
    );
}

#[tokio::test]
async fn the_binary_refuses_a_secret_set_up_for_another_rotation_function() {
    let world = World::new().await;
    let fixture = world.user_with_key().await;
    let other_function = "arn:aws:lambda:us-east-1:123456789012:function:someone-elses-rotation";
    let token = world.start_rotation_by(&fixture, other_function).await;
    let before = world.snapshot(&fixture).await;
    let mut function = Function::start(&moto().endpoint, &[]).await;

    for step in STEPS {
        let Reply::Error(error) = function.invoke(step, &fixture.secret_arn, &token).await else {
            panic!("{step} ran for a secret another function rotates");
        };
        assert_eq!(
            error["errorType"],
            json!("RotationFunctionMismatch"),
            "{step}"
        );
        let message = error["errorMessage"].as_str().unwrap();
        for what in [
            &fixture.secret_arn,
            other_function,
            FUNCTION_ARN,
            "--rotation-lambda-arn",
        ] {
            assert!(
                message.contains(what),
                "{step}: {what} missing from: {message}"
            );
        }
    }
    function.stop().await;
    assert_eq!(world.snapshot(&fixture).await, before, "state changed");
}

/// Over TLS, as on AWS (an endpoint per service, a CA the function trusts only
/// through `SSL_CERT_FILE`): the rotation completes, and the process makes one
/// connection per service however many clients it builds (the key proofs and
/// the events have clients of their own), since every handshake costs tens of
/// milliseconds at the 128 MB CPU share.
#[tokio::test]
async fn over_tls_a_rotation_makes_one_connection_per_service() {
    let proxy = harness::fault_proxy::FaultProxy::start(&moto().endpoint).await;
    let front = harness::tls_front::TlsFront::start(&proxy.endpoint).await;
    let world = World::new().await;
    let fixture = world.user_with_key().await;
    let old_key = world.current_key(&fixture).await;
    let token = world.start_rotation(&fixture).await;
    let bundle = front.ca_bundle.display().to_string();
    let mut env: Vec<(&str, &str)> = front
        .service_endpoints
        .iter()
        .map(|(name, url)| (name.as_str(), url.as_str()))
        .collect();
    env.push(("SSL_CERT_FILE", &bundle));
    let mut function = Function::start(&front.endpoint, &env).await;

    let responses = function.rotate(&fixture.secret_arn, &token).await;
    assert!(responses.iter().all(|r| r["Outcome"] == json!("Done")));
    let new_key = world.current_key(&fixture).await.unwrap();
    assert_ne!(Some(&new_key), old_key.as_ref(), "AWSCURRENT moved");
    assert!(
        access_keys(world.iam(), &fixture.user)
            .await
            .get(&new_key)
            .is_some_and(|status| status == "Active"),
        "the new key is in IAM"
    );
    assert_eq!(
        front.handshakes(),
        harness::tls_front::SERVICES.len(),
        "one handshake per service endpoint; the function logged:\n{}",
        function.output().join("\n")
    );
    function.stop().await;
}
