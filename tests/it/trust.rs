//! SPEC 11, staged as attacks: each test does what the attacker of one promise
//! may do (create and rotate a secret under a reused name, tag a user, write a
//! secret value, make a key by hand while a rotation fails) and checks that
//! nothing changed that should not: the targeted key still exists and is
//! Active, no key was handed out, the audit still calls the key unmanaged.
//! T5 (logs at TRACE) is in lambda_binary.rs.

use std::collections::BTreeMap;
use std::time::Duration;

use harness::fault_proxy::{FaultPlan, FaultProxy};
use harness::function::Function;
use harness::keyrot::keyrot;
use harness::runtime_api::Reply;
use harness::*;
use iam_key_rotation::{Clients, Config, Handler, Invocation, OldKeyAction};
use serde_json::{Value, json};

const CREATING_TAG: &str = "iam-key-rotation:creating";

fn active(keys: &BTreeMap<String, String>, key: &str) -> bool {
    keys.get(key).map(String::as_str) == Some("Active")
}

/// createSecret through the real binary, expected to be refused with `kind`.
async fn refused_by_binary(fixture: &Fixture, token: &str, kind: &str) -> String {
    let mut function = Function::start(&moto().endpoint, &[]).await;
    let reply = function
        .invoke("createSecret", &fixture.secret_arn, token)
        .await;
    function.stop().await;
    let Reply::Error(error) = reply else {
        panic!("createSecret was not refused: {reply:?}");
    };
    assert_eq!(error["errorType"], json!(kind), "{error}");
    error["errorMessage"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn t1_a_user_bound_by_the_secret_name_gets_no_key_and_status_shows_the_re_tag() {
    let world = World::new().await;
    let fixture = world.bound_user().await;
    // The form earlier versions accepted: the secret's name.
    world
        .tag_user(&fixture.user, BINDING_TAG, &fixture.secret_name)
        .await;
    let token = world.start_rotation(&fixture).await;
    let before = world.snapshot(&fixture).await;

    let message = refused_by_binary(&fixture, &token, "UserNotBound").await;
    assert!(message.contains("holds a name"), "{message}");
    assert!(
        message.contains(&format!("Key={BINDING_TAG},Value={}", fixture.secret_arn)),
        "the fix binds by the ARN: {message}"
    );
    assert_eq!(world.snapshot(&fixture).await, before, "state changed");
    assert!(before.keys.is_empty(), "no key was handed out");

    // Beside it, rows the upgrade's one-pass must leave alone: a user with no
    // binding at all, and one whose tag holds another secret's name.
    for (suffix, tags) in [
        ("untagged", vec![]),
        ("other-name", vec![(BINDING_TAG, "iam-keys/another")]),
    ] {
        let user = unique("user");
        world.create_user(&user, &tags).await;
        world
            .create_secret(
                &format!("{}-{suffix}", fixture.secret_name),
                &json!({"UserName": user}),
            )
            .await;
    }
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
    let rows = status.json();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows.iter().all(|row| row["state"] == json!("unbound")));
    let row = rows
        .iter()
        .find(|row| row["secret_name"] == json!(fixture.secret_name))
        .unwrap();
    assert!(
        row["fix"]
            .as_str()
            .unwrap()
            .contains(&format!("Value={}", fixture.secret_arn)),
        "{row}"
    );
    // docs/operating.md's one-pass upgrade, as written there, turns this row
    // into the re-tag by ARN, after the secret's creation date.
    let retag = upgrade_one_pass(&status.stdout);
    assert_eq!(
        retag,
        format!(
            "# {}: created {}\naws iam tag-user --user-name '{}' --tags Key={BINDING_TAG},Value='{}'\n",
            fixture.secret_name,
            row["fix"]
                .as_str()
                .unwrap()
                .split("(created ")
                .nth(1)
                .and_then(|rest| rest.split(')').next())
                .unwrap(),
            fixture.user,
            fixture.secret_arn
        ),
        "{row}"
    );
}

/// The jq program of docs/operating.md's "Upgrading from a version that
/// accepted names", run over `keyrot status --output json`.
fn upgrade_one_pass(status_json: &str) -> String {
    let doc = std::fs::read_to_string(repo_root().join("docs/operating.md")).unwrap();
    let program = doc
        .split("jq -r '")
        .nth(1)
        .and_then(|rest| rest.split("' > retag.sh").next())
        .expect("the one-pass in docs/operating.md");
    let mut jq = std::process::Command::new("jq")
        .args(["-r", program])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("jq (scripts/setup-deploy-tools.sh installs it)");
    use std::io::Write;
    jq.stdin
        .take()
        .unwrap()
        .write_all(status_json.as_bytes())
        .unwrap();
    let output = jq.wait_with_output().unwrap();
    assert!(output.status.success(), "jq failed");
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn t1_a_secret_recreated_under_a_deleted_secrets_name_gets_no_key() {
    let world = World::new().await;
    let fixture = world.user_with_key().await;
    world.rotate_now(&fixture).await;
    let keys_before = access_keys(world.iam(), &fixture.user).await;
    // Whoever may create secrets under the prefix deletes the secret and makes
    // one of the same name, with the same user, rotated by the same function.
    world
        .secrets()
        .delete_secret()
        .secret_id(&fixture.secret_arn)
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    let recreated = Fixture {
        secret_arn: world
            .create_secret(&fixture.secret_name, &json!({"UserName": fixture.user}))
            .await,
        ..fixture.clone()
    };
    assert_ne!(recreated.secret_arn, fixture.secret_arn, "a new ARN suffix");
    let token = world.start_rotation(&recreated).await;

    let message = refused_by_binary(&recreated, &token, "UserNotBound").await;
    assert!(message.contains("names another secret"), "{message}");
    assert_eq!(access_keys(world.iam(), &fixture.user).await, keys_before);
    assert_eq!(
        world.value(&recreated, "AWSPENDING").await,
        None,
        "no key stored in the attacker's secret"
    );
}

#[tokio::test]
async fn t1_a_same_named_secret_in_another_region_gets_no_key() {
    let world = World::new().await;
    let fixture = world.user_with_key().await;
    world.rotate_now(&fixture).await;
    let keys_before = world.snapshot(&fixture).await.keys;
    // The same name in a second region's stack, rotated by that region's function.
    let region = "us-west-2";
    let in_region = |key: &'static str| {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(region)
            .endpoint_url(&moto().endpoint)
            .credentials_provider(aws_sdk_iam::config::Credentials::new(
                key, "testing", None, None, "tests",
            ))
            .load()
    };
    // The set-up as an administrator; the second region's function is another
    // deployment (another stack, another role), so its calls are not checked
    // against this one's policies.
    let admin = aws_sdk_secretsmanager::Client::new(&in_region("testing").await);
    let clients = Clients::new(&in_region("rotation-function-us-west-2").await);
    let elsewhere = admin
        .create_secret()
        .name(&fixture.secret_name)
        .secret_string(json!({"UserName": fixture.user}).to_string())
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_string();
    let function_arn = format!("arn:aws:lambda:{region}:{ACCOUNT}:function:iam-key-rotation");
    let token = new_token();
    let _ = admin
        .rotate_secret()
        .secret_id(&elsewhere)
        .client_request_token(&token)
        .rotation_lambda_arn(&function_arn)
        .rotation_rules(
            aws_sdk_secretsmanager::types::RotationRulesType::builder()
                .automatically_after_days(30)
                .build(),
        )
        .send()
        .await;
    let error = Handler::new(clients, Config::default())
        .handle(
            json!({"Step": "createSecret", "SecretId": elsewhere, "ClientRequestToken": token}),
            Invocation {
                function_arn: &function_arn,
                deadline: None,
            },
        )
        .await
        .expect_err("a same-named secret in another region got a key");
    assert_eq!(error.kind(), "UserNotBound", "{error}");
    assert_eq!(world.snapshot(&fixture).await.keys, keys_before);
}

#[tokio::test]
async fn t2_a_forged_description_gets_a_persons_key_neither_deleted_nor_hidden_from_the_audit() {
    let world = World::new().await;
    let tag = unique("forged");
    let path = format!("/{tag}/");
    let fixture = world.user_with_key_at(&path, &format!("{tag}/app")).await;
    world.rotate_now(&fixture).await;
    // Room for a person's key: the Inactive previous key is deleted by hand.
    let previous = world.value(&fixture, "AWSPREVIOUS").await.unwrap()["AccessKeyId"]
        .as_str()
        .unwrap()
        .to_string();
    world
        .iam()
        .delete_access_key()
        .user_name(&fixture.user)
        .access_key_id(&previous)
        .send()
        .await
        .unwrap();
    let (persons_key, _) = world.create_key(&fixture.user).await;
    // Another user's key, claimed for the same secret.
    let other_user = unique("person");
    world.create_user_at(&other_user, &path, &[]).await;
    let (other_key, _) = world.create_key(&other_user).await;
    // With iam:TagUser alone: descriptions that name the rotated secret.
    let forged = format!("iam-key-rotation {} forged", fixture.secret_arn);
    world.tag_user(&fixture.user, &persons_key, &forged).await;
    world.tag_user(&other_user, &other_key, &forged).await;

    let token = world.start_rotation(&fixture).await;
    let error = world
        .assert_refused(&fixture, "createSecret", &token, "UnmanagedKeyBlocks")
        .await;
    assert!(error.to_string().contains(&persons_key), "{error}");
    assert!(active(&world.snapshot(&fixture).await.keys, &persons_key));

    let audit = keyrot(
        &moto().endpoint,
        &[
            "audit",
            "--prefix",
            "",
            "--path",
            &path,
            "--max-age-days",
            "0",
            "--output",
            "json",
        ],
    )
    .await;
    assert_eq!(audit.code, 1, "findings: {}", audit.stderr);
    let report = audit.json();
    let managed_by = |key: &str| {
        report["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["access_key_id"] == json!(key))
            .map(|row| row["managed_by"].clone())
            .unwrap_or_else(|| panic!("{key} not listed: {report}"))
    };
    assert_eq!(managed_by(&persons_key), Value::Null, "{report}");
    assert_eq!(managed_by(&other_key), Value::Null, "{report}");
    let current = world.current_key(&fixture).await.unwrap();
    assert_eq!(managed_by(&current), json!(fixture.secret_name));
    for key in [&persons_key, &other_key] {
        assert!(
            report["findings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|finding| {
                    finding["kind"] == json!("unmanaged-old-key")
                        && finding["access_key_id"] == json!(key)
                }),
            "{key} is not reported: {report}"
        );
    }
}

#[tokio::test]
async fn t3_a_key_named_in_the_secret_without_its_secret_is_never_adopted_or_retired() {
    let proxy = FaultProxy::start(&moto().endpoint).await;
    proxy.set_plan(FaultPlan {
        verify_signatures: true,
        ..FaultPlan::default()
    });
    let world = World::with_endpoint(&proxy.endpoint).await;
    let delete = world.handler(config_with(OldKeyAction::Delete));
    let fixture = world.bound_user().await;
    let (persons_key, _) = world.create_key(&fixture.user).await;
    // Whoever may write the secret value names the person's key, with a
    // made-up secret.
    world
        .put_current(
            &fixture,
            &json!({"UserName": fixture.user, "AccessKeyId": persons_key,
                    "SecretAccessKey": "made-up-by-whoever-wrote-the-value"}),
        )
        .await;

    let token = world.start_rotation(&fixture).await;
    world.rotate(&delete, &fixture, &token).await.unwrap();
    let after_first = world.snapshot(&fixture).await;
    assert!(
        active(&after_first.keys, &persons_key),
        "finishSecret retired a key it never proved: {after_first:?}"
    );
    assert!(
        !after_first.tags.contains_key(&persons_key),
        "the key was adopted without proof"
    );
    // The next rotation finds it in AWSPREVIOUS: still not this secret's.
    let token = world.start_rotation(&fixture).await;
    let error = world
        .assert_refused(&fixture, "createSecret", &token, "UnmanagedKeyBlocks")
        .await;
    assert!(error.to_string().contains(&persons_key), "{error}");
    assert!(active(&world.snapshot(&fixture).await.keys, &persons_key));

    // The same through the same proxy with the key's true secret: adopted and,
    // in delete mode, deleted once replaced (the proof is real, not a denial
    // of every signature).
    let honest = world.bound_user().await;
    let (key, secret) = world.create_key(&honest.user).await;
    world
        .put_current(
            &honest,
            &json!({"UserName": honest.user, "AccessKeyId": key, "SecretAccessKey": secret}),
        )
        .await;
    let token = world.start_rotation(&honest).await;
    world.rotate(&delete, &honest, &token).await.unwrap();
    assert!(!world.snapshot(&honest).await.keys.contains_key(&key));
}

#[tokio::test]
async fn t4_a_key_made_by_hand_after_a_refused_create_access_key_survives_the_retry() {
    let proxy = FaultProxy::start(&moto().endpoint).await;
    let world = World::with_endpoint(&proxy.endpoint).await;
    let fixture = world.user_with_key().await;
    let token = world.start_rotation(&fixture).await;
    proxy.set_plan(FaultPlan {
        deny_operation: Some("CreateAccessKey"),
        ..FaultPlan::default()
    });
    // The real binary, as Secrets Manager runs it, through the proxy.
    let mut function = Function::start(&proxy.endpoint, &[]).await;
    let reply = function
        .invoke("createSecret", &fixture.secret_arn, &token)
        .await;
    let Reply::Error(error) = reply else {
        panic!("CreateAccessKey was denied, yet: {reply:?}");
    };
    assert!(
        error["errorMessage"]
            .as_str()
            .unwrap()
            .contains("AccessDenied"),
        "{error}"
    );
    assert!(
        !world
            .snapshot(&fixture)
            .await
            .tags
            .contains_key(CREATING_TAG),
        "the marker outlived a definite error"
    );
    proxy.set_plan(FaultPlan::default());
    // The operator, unblocking a consumer, makes a key by hand.
    let (by_hand, _) = world.create_key(&fixture.user).await;

    // Secrets Manager's retry of the same step, to the same process.
    let reply = function
        .invoke("createSecret", &fixture.secret_arn, &token)
        .await;
    function.stop().await;
    let Reply::Error(error) = reply else {
        panic!("the retry was not refused: {reply:?}");
    };
    assert_eq!(error["errorType"], json!("UnmanagedKeyBlocks"), "{error}");
    assert!(
        error["errorMessage"].as_str().unwrap().contains(&by_hand),
        "{error}"
    );
    assert!(active(&world.snapshot(&fixture).await.keys, &by_hand));
}

#[tokio::test]
async fn t4_a_marker_left_longer_ago_than_the_window_makes_no_later_key_an_orphan() {
    let world = World::new().await;
    let fixture = world.user_with_key().await;
    let current = world.current_key(&fixture).await.unwrap();
    let token = world.start_rotation(&fixture).await;
    // A crash after CreateAccessKey twenty minutes ago (its key since deleted),
    // then a key made by hand now.
    let twenty_minutes_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 20 * 60;
    world
        .tag_user(
            &fixture.user,
            CREATING_TAG,
            &format!("{token} {twenty_minutes_ago} {current}"),
        )
        .await;
    let (by_hand, _) = world.create_key(&fixture.user).await;

    let error = world
        .assert_refused(&fixture, "createSecret", &token, "UnmanagedKeyBlocks")
        .await;
    assert!(error.to_string().contains(&by_hand), "{error}");
}

#[tokio::test]
async fn t6_the_sweep_never_retires_a_previous_key_its_secret_does_not_manage() {
    let moto = Moto::start();
    let world = World::with_endpoint(&moto.endpoint).await;
    let arn = unique_function_arn();
    let fixture = world.user_with_key().await;
    world.rotate_as(Config::default(), &fixture, &arn).await;
    let current = world.value(&fixture, "AWSCURRENT").await.unwrap();
    let previous = world.value(&fixture, "AWSPREVIOUS").await.unwrap()["AccessKeyId"]
        .as_str()
        .unwrap()
        .to_string();
    world
        .iam()
        .delete_access_key()
        .user_name(&fixture.user)
        .access_key_id(&previous)
        .send()
        .await
        .unwrap();
    let (persons_key, _) = world.create_key(&fixture.user).await;
    // Two writes of the value put the person's key in AWSPREVIOUS.
    world
        .put_current(
            &fixture,
            &json!({"UserName": fixture.user, "AccessKeyId": persons_key, "SecretAccessKey": "x"}),
        )
        .await;
    world.put_current(&fixture, &current).await;

    let env = [
        ("OLD_KEY_ACTION", "grace"),
        ("GRACE_HOURS", "0"),
        ("DELETE_AFTER_HOURS", "0"),
    ];
    let mut sweeper = Function::start(&moto.endpoint, &env).await;
    sweeper.set_function_arn(&arn);
    for status in ["Active", "Inactive"] {
        if status == "Inactive" {
            world
                .set_key_status(
                    &fixture.user,
                    &persons_key,
                    aws_sdk_iam::types::StatusType::Inactive,
                )
                .await;
        }
        for _ in 0..2 {
            let response = sweeper.sweep().await;
            assert_eq!(response["Deactivated"], json!([]), "{response}");
            assert_eq!(response["Deleted"], json!([]), "{response}");
        }
        let keys = world.snapshot(&fixture).await.keys;
        assert_eq!(keys.get(&persons_key).map(String::as_str), Some(status));
    }
    let logged = sweeper.stop().await.join("\n");
    assert!(
        logged.contains("this secret does not manage it"),
        "the refusal names why"
    );
}

/// T8: whoever may write the value and kept an older pair of the secret's
/// (read before a rotation) stages it as `AWSCURRENT` again; the fresh key,
/// now `AWSPREVIOUS`, is the one consumers were moved to. The older key
/// authenticates (it is the user's, and Active), but its description names
/// the version the rotation stored it in, not the one it was staged in: the
/// sweep retires nothing.
#[tokio::test]
async fn t8_an_older_pair_staged_as_current_gets_the_fresh_key_neither_deactivated_nor_deleted() {
    let moto = Moto::start();
    let world = World::with_endpoint(&moto.endpoint).await;
    let arn = unique_function_arn();
    let fixture = world.user_with_key().await;
    world
        .rotate_as(config_with(OldKeyAction::Keep), &fixture, &arn)
        .await;
    let kept = world.value(&fixture, "AWSCURRENT").await.unwrap();
    world
        .rotate_as(config_with(OldKeyAction::Keep), &fixture, &arn)
        .await;
    let fresh = world.current_key(&fixture).await.unwrap();
    stage_as_current(&world, &fixture, &kept).await;
    assert_eq!(
        world.current_key(&fixture).await.unwrap(),
        kept["AccessKeyId"]
    );

    let env = [
        ("OLD_KEY_ACTION", "grace"),
        ("GRACE_HOURS", "0"),
        ("DELETE_AFTER_HOURS", "0"),
    ];
    let mut sweeper = Function::start(&moto.endpoint, &env).await;
    sweeper.set_function_arn(&arn);
    for _ in 0..3 {
        let response = sweeper.sweep().await;
        assert_eq!(response["Deactivated"], json!([]), "{response}");
        assert_eq!(response["Deleted"], json!([]), "{response}");
    }
    let keys = world.snapshot(&fixture).await.keys;
    assert_eq!(keys.get(&fresh).map(String::as_str), Some("Active"));
    let logged = sweeper.stop().await.join("\n");
    assert!(
        logged.contains("AWSCURRENT holds no key this secret manages"),
        "the refusal names why"
    );
}

/// T9: a sweep deactivating the previous key while a rollback by hand moves
/// `AWSCURRENT` back to it (between the sweep's last look and its write): the
/// sweep looks again right after the write, sees the move, and makes the key
/// Active again, so the secret's current key is never left Inactive.
#[tokio::test]
async fn t9_a_sweep_racing_a_rollback_never_leaves_the_current_key_inactive() {
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint).await;
    let world = World::with_endpoint(&moto.endpoint).await;
    let arn = unique_function_arn();
    let fixture = world.user_with_key().await;
    world
        .rotate_as(config_with(OldKeyAction::Keep), &fixture, &arn)
        .await;
    let restored = world.stage_version(&fixture, "AWSPREVIOUS").await;
    let rolled_back = world.stage_version(&fixture, "AWSCURRENT").await;
    let restored_key = world.value(&fixture, "AWSPREVIOUS").await.unwrap()["AccessKeyId"]
        .as_str()
        .unwrap()
        .to_string();
    proxy.set_plan(FaultPlan {
        delay_operation: Some(("UpdateAccessKey", Duration::from_millis(1500))),
        ..FaultPlan::default()
    });
    let env = [("OLD_KEY_ACTION", "grace"), ("GRACE_HOURS", "0")];
    let mut sweeper = Function::start(&proxy.endpoint, &env).await;
    sweeper.set_function_arn(&arn);
    let roll_back_by_hand = async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        world
            .secrets()
            .update_secret_version_stage()
            .secret_id(&fixture.secret_arn)
            .version_stage("AWSCURRENT")
            .move_to_version_id(&restored)
            .remove_from_version_id(&rolled_back)
            .send()
            .await
            .unwrap();
    };
    let (response, ()) = tokio::join!(sweeper.sweep(), roll_back_by_hand);
    assert_eq!(response["Deactivated"], json!([]), "{response}");
    assert_eq!(world.current_key(&fixture).await.unwrap(), restored_key);
    let keys = world.snapshot(&fixture).await.keys;
    assert_eq!(
        keys.get(&restored_key).map(String::as_str),
        Some("Active"),
        "the rollback's key was left Inactive"
    );
    let logged = sweeper.stop().await.join("\n");
    assert!(
        logged.contains("made the key Active again"),
        "the log says so"
    );
}

/// Puts `value` in a new version and makes it `AWSCURRENT`, the version it
/// replaced `AWSPREVIOUS`, as Secrets Manager's PutSecretValue does (moto
/// leaves two versions AWSCURRENT): what a principal who may write the value
/// can do. Returns the new version's id.
async fn stage_as_current(world: &World, fixture: &Fixture, value: &Value) -> String {
    let fresh_version = world.stage_version(fixture, "AWSCURRENT").await;
    let staged = new_token();
    world
        .secrets()
        .put_secret_value()
        .secret_id(&fixture.secret_arn)
        .client_request_token(&staged)
        .secret_string(value.to_string())
        .version_stages("STAGED")
        .send()
        .await
        .unwrap();
    for (stage, to, from) in [
        (
            "AWSPREVIOUS",
            fresh_version.clone(),
            world.stage_version(fixture, "AWSPREVIOUS").await,
        ),
        ("AWSCURRENT", staged.clone(), fresh_version.clone()),
    ] {
        world
            .secrets()
            .update_secret_version_stage()
            .secret_id(&fixture.secret_arn)
            .version_stage(stage)
            .move_to_version_id(to)
            .remove_from_version_id(from)
            .send()
            .await
            .unwrap();
    }
    staged
}

/// T3 and T8 through finishSecret: whoever may write the value and invoke the
/// function stages a made-up pair as `AWSCURRENT` and invokes finishSecret for
/// that version, as a retry after the move would be; the fresh key, now
/// `AWSPREVIOUS`, is what consumers use: it is not retired, since the current
/// key is no key this rotation made and proved.
#[tokio::test]
async fn t8_a_finish_secret_for_a_staged_version_retires_nothing() {
    let world = World::new().await;
    let fixture = world.user_with_key().await;
    world.rotate_now(&fixture).await;
    let fresh = world.current_key(&fixture).await.unwrap();
    let staged = stage_as_current(
        &world,
        &fixture,
        &json!({"UserName": fixture.user, "AccessKeyId": "AKIAMADEUPMADEUP0001",
                "SecretAccessKey": "made-up"}),
    )
    .await;
    world
        .step("finishSecret", &fixture.secret_arn, &staged)
        .await
        .unwrap();
    let keys = world.snapshot(&fixture).await.keys;
    assert_eq!(keys.get(&fresh).map(String::as_str), Some("Active"));
}

#[tokio::test]
async fn t3_a_made_up_current_key_gets_the_working_key_neither_deleted_nor_deactivated() {
    // Through a proxy that checks signatures: moto would accept the junk secret.
    let moto = Moto::start();
    let proxy = FaultProxy::start(&moto.endpoint).await;
    proxy.set_plan(FaultPlan {
        verify_signatures: true,
        ..FaultPlan::default()
    });
    let world = World::with_endpoint(&proxy.endpoint).await;
    let arn = unique_function_arn();
    let env = [
        ("OLD_KEY_ACTION", "grace"),
        ("GRACE_HOURS", "0"),
        ("DELETE_AFTER_HOURS", "0"),
    ];
    let mut sweeper = Function::start(&proxy.endpoint, &env).await;
    sweeper.set_function_arn(&arn);
    // Whoever may write the value (but not read it) pushes the working key to
    // AWSPREVIOUS with a made-up key, or with an older key of the secret's
    // (still described, for its own version), each with a made-up secret.
    for attack in ["made-up key", "older key of the secret"] {
        let fixture = world.user_with_key().await;
        let first = world.current_key(&fixture).await.unwrap();
        world
            .rotate_as(config_with(OldKeyAction::Keep), &fixture, &arn)
            .await;
        let working = world.value(&fixture, "AWSCURRENT").await.unwrap();
        let working_key = working["AccessKeyId"].as_str().unwrap().to_string();
        let named = match attack {
            "made-up key" => "AKIAMADEUPMADEUP0001".to_string(),
            _ => first.clone(),
        };
        world
            .put_current(
                &fixture,
                &json!({"UserName": fixture.user, "AccessKeyId": named,
                        "SecretAccessKey": "made-up"}),
            )
            .await;
        let response = sweeper.sweep().await;
        assert_eq!(response["Deactivated"], json!([]), "{attack}: {response}");
        assert!(
            active(&world.snapshot(&fixture).await.keys, &working_key),
            "{attack}"
        );

        let token = world.start_rotation_by(&fixture, &arn).await;
        let error = world
            .handler(Config::default())
            .handle(
                json!({"Step": "createSecret", "SecretId": fixture.secret_arn, "ClientRequestToken": token}),
                Invocation {
                    function_arn: &arn,
                    deadline: None,
                },
            )
            .await;
        if let Err(error) = &error {
            assert_eq!(error.kind(), "UnmanagedKeyBlocks", "{attack}: {error}");
        }
        assert!(
            active(&world.snapshot(&fixture).await.keys, &working_key),
            "{attack}: createSecret deleted the key consumers used"
        );
    }
    sweeper.stop().await;
}

#[tokio::test]
async fn t4_a_key_made_by_hand_after_a_create_access_key_that_failed_without_effect_survives() {
    let proxy = FaultProxy::start(&moto().endpoint).await;
    let world = World::with_endpoint(&proxy.endpoint).await;
    let fixture = world.user_with_key().await;
    let token = world.start_rotation(&fixture).await;
    // A 5xx: AWS may or may not have made the key; the function looks.
    proxy.set_plan(FaultPlan {
        fail_operation: Some("CreateAccessKey"),
        ..FaultPlan::default()
    });
    world
        .step("createSecret", &fixture.secret_arn, &token)
        .await
        .expect_err("CreateAccessKey failed");
    proxy.set_plan(FaultPlan::default());
    assert!(
        !world
            .snapshot(&fixture)
            .await
            .tags
            .contains_key(CREATING_TAG),
        "no key was made, yet the marker stayed"
    );
    let (by_hand, _) = world.create_key(&fixture.user).await;
    let error = world
        .assert_refused(&fixture, "createSecret", &token, "UnmanagedKeyBlocks")
        .await;
    assert!(error.to_string().contains(&by_hand), "{error}");
}

#[tokio::test]
async fn t1_enroll_never_binds_a_user_to_a_secret_someone_else_created_first() {
    let world = World::new().await;
    let user = unique("victim");
    world.create_user(&user, &[]).await;
    // Whoever may create secrets under the prefix gets there first, with the
    // name enroll would use.
    let planted = world
        .create_secret(&format!("iam-keys/{user}"), &json!({"UserName": user}))
        .await;
    let function = harness::keyrot::register_function(&moto().endpoint, "trust-enroll-target");
    let run = keyrot(
        &moto().endpoint,
        &["enroll", &user, "--function-arn", &function],
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("already exists"), "{}", run.stderr);
    assert!(run.stderr.contains(&planted), "{}", run.stderr);
    let tags = world
        .iam()
        .list_user_tags()
        .user_name(&user)
        .send()
        .await
        .unwrap();
    assert!(tags.tags().is_empty(), "the user was bound");
    assert!(access_keys(world.iam(), &user).await.is_empty());
}

#[tokio::test]
async fn t1_status_never_offers_to_move_a_user_bound_to_another_secret() {
    let world = World::new().await;
    let owner = world.user_with_key().await;
    let intruder = Fixture {
        secret_arn: world
            .create_secret(&unique("intruder"), &json!({"UserName": owner.user}))
            .await,
        ..owner.clone()
    };
    let name = iam_key_rotation_name(&intruder.secret_arn);
    let status = keyrot(
        &moto().endpoint,
        &["status", "--prefix", &name, "--output", "json"],
    )
    .await;
    let rows = status.json();
    let row = &rows.as_array().unwrap()[0];
    assert_eq!(row["state"], json!("unbound"), "{rows}");
    let fix = row["fix"].as_str().unwrap();
    assert!(fix.contains("bound to another secret"), "{fix}");
    assert!(!fix.contains("aws iam tag-user"), "{fix}");
}

/// A secret's name from its ARN (`...:secret:NAME-AbCdEf`).
fn iam_key_rotation_name(arn: &str) -> String {
    let name_and_suffix = arn.split(":secret:").nth(1).unwrap();
    name_and_suffix[..name_and_suffix.len() - 7].to_string()
}
