//! `keyrot`, the real binary, against moto: enroll (fresh, idempotent, dry run,
//! every refusal with the state unchanged, cross-account), status (each state
//! staged for real) and audit (findings, exit codes, JSON schema, hostile names).

use std::collections::BTreeMap;

use harness::keyrot::{keyrot, register_function};
use harness::*;
use serde_json::{Value, json};

/// A rotation function moto knows, so that RotateSecret accepts it.
fn function_arn() -> String {
    static ARN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ARN.get_or_init(|| register_function(&moto().endpoint, "keyrot-rotation-target"))
        .clone()
}

async fn run(args: &[&str]) -> harness::keyrot::KeyrotRun {
    keyrot(&moto().endpoint, args).await
}

/// Everything enroll may touch, to prove a refusal or a dry run wrote nothing.
async fn account_state(
    world: &World,
    user: &str,
    secret_name: &str,
) -> (BTreeMap<String, String>, Option<Value>) {
    let tags = world
        .iam()
        .list_user_tags()
        .user_name(user)
        .send()
        .await
        .map(|out| {
            out.tags()
                .iter()
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let secret = world
        .secrets()
        .describe_secret()
        .secret_id(secret_name)
        .send()
        .await
        .ok()
        .map(|d| {
            json!({
                "rotation_enabled": d.rotation_enabled(),
                "function": d.rotation_lambda_arn(),
                "versions": d.version_ids_to_stages().map(|v| v.len()),
            })
        });
    (tags, secret)
}

#[tokio::test]
async fn enroll_creates_the_secret_binds_the_user_and_attaches_rotation_once() {
    let world = World::new().await;
    let user = unique("enrolled");
    world.create_user(&user, &[]).await;
    let function = function_arn();
    let args = [
        "enroll",
        &user,
        "--function-arn",
        &function,
        "--no-rotate-now",
        "--output",
        "json",
    ];

    let first = run(&args).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    let plan = first.json();
    let secret_name = format!("iam-keys/{user}");
    assert_eq!(plan["changed"], json!(true));
    assert_eq!(plan["secret_name"], json!(secret_name));
    assert_eq!(plan["actions"].as_array().unwrap().len(), 3, "{plan}");
    let secret_arn = plan["secret_arn"].as_str().unwrap().to_string();

    let fixture = Fixture {
        user: user.clone(),
        secret_name: secret_name.clone(),
        secret_arn: secret_arn.clone(),
    };
    assert_eq!(
        world.value(&fixture, "AWSCURRENT").await,
        Some(json!({"UserName": user}))
    );
    let (tags, secret) = account_state(&world, &user, &secret_name).await;
    assert_eq!(tags.get(BINDING_TAG), Some(&secret_arn), "bound by ARN");
    let secret = secret.unwrap();
    assert_eq!(secret["rotation_enabled"], json!(true));
    assert_eq!(secret["function"], json!(function));

    let before = account_state(&world, &user, &secret_name).await;
    let again = run(&args).await;
    assert_eq!(again.code, 0, "{}", again.stderr);
    let plan = again.json();
    assert_eq!(plan["changed"], json!(false), "{plan}");
    assert_eq!(plan["actions"], json!([]));
    assert_eq!(account_state(&world, &user, &secret_name).await, before);
    let table = run(&args[..5]).await;
    assert!(table.stdout.contains("Nothing to do"), "{}", table.stdout);
}

#[tokio::test]
async fn enroll_rotates_now_unless_told_not_to() {
    let world = World::new().await;
    let user = unique("rotated-now");
    world.create_user(&user, &[]).await;
    let run = run(&[
        "enroll",
        &user,
        "--function-arn",
        &function_arn(),
        "--every-days",
        "7",
    ])
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("and rotate now"), "{}", run.stdout);
    let described = world
        .secrets()
        .describe_secret()
        .secret_id(format!("iam-keys/{user}"))
        .send()
        .await
        .unwrap();
    assert!(
        described.last_rotated_date().is_some(),
        "no rotation was started"
    );
    assert_eq!(
        described
            .rotation_rules()
            .unwrap()
            .automatically_after_days(),
        Some(7)
    );
}

#[tokio::test]
async fn a_dry_run_prints_the_plan_and_writes_nothing() {
    let world = World::new().await;
    let user = unique("dry");
    world.create_user(&user, &[]).await;
    let secret_name = format!("iam-keys/{user}");
    let before = account_state(&world, &user, &secret_name).await;
    let run = run(&[
        "enroll",
        &user,
        "--function-arn",
        &function_arn(),
        "--dry-run",
        "--output",
        "json",
    ])
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let plan = run.json();
    assert_eq!(plan["changed"], json!(false));
    let actions = plan["actions"].to_string();
    for expected in ["create secret", "tag IAM user", "attach rotation"] {
        assert!(actions.contains(expected), "{actions}");
    }
    assert_eq!(account_state(&world, &user, &secret_name).await, before);
    assert!(before.1.is_none());
}

/// Runs an enroll that must be refused with exit code 1, changing nothing;
/// returns stderr.
async fn assert_enroll_refused(
    world: &World,
    user: &str,
    secret_name: &str,
    extra: &[&str],
) -> String {
    let before = account_state(world, user, secret_name).await;
    let function = function_arn();
    let mut args = vec![
        "enroll",
        user,
        "--function-arn",
        &function,
        "--secret-name",
        secret_name,
    ];
    args.extend_from_slice(extra);
    let run = run(&args).await;
    assert_eq!(
        run.code, 1,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(run.stderr.contains("nothing was changed"), "{}", run.stderr);
    assert_eq!(
        account_state(world, user, secret_name).await,
        before,
        "a refusal changed the state"
    );
    run.stderr
}

#[tokio::test]
async fn enroll_refuses_a_user_that_does_not_exist() {
    let world = World::new().await;
    let user = unique("ghost");
    let message = assert_enroll_refused(&world, &user, &format!("iam-keys/{user}"), &[]).await;
    assert!(
        message.contains(&user) && message.contains("does not exist"),
        "{message}"
    );
}

#[tokio::test]
async fn enroll_refuses_a_user_bound_to_another_secret() {
    let world = World::new().await;
    let user = unique("taken");
    world
        .create_user(&user, &[(BINDING_TAG, "iam-keys/someone-else")])
        .await;
    let message = assert_enroll_refused(&world, &user, &format!("iam-keys/{user}"), &[]).await;
    assert!(
        message.contains("bound to another secret (iam-keys/someone-else)"),
        "{message}"
    );
    assert!(message.contains("untag-user"), "{message}");
}

#[tokio::test]
async fn enroll_refuses_a_user_with_two_unmanaged_keys_and_names_the_one_to_delete() {
    let world = World::new().await;
    let user = unique("full");
    world.create_user(&user, &[]).await;
    let (active, _) = world.create_key(&user).await;
    let (inactive, _) = world.create_key(&user).await;
    world
        .set_key_status(&user, &inactive, aws_sdk_iam::types::StatusType::Inactive)
        .await;
    let message = assert_enroll_refused(&world, &user, &format!("iam-keys/{user}"), &[]).await;
    assert!(
        message.contains(&active) && message.contains(&inactive),
        "{message}"
    );
    assert!(
        message.contains(&format!("--access-key-id {inactive}")),
        "the Inactive key is the one to delete: {message}"
    );
}

#[tokio::test]
async fn enroll_refuses_a_secret_that_exists_for_another_user_or_function() {
    let world = World::new().await;
    let user = unique("wants");
    world.create_user(&user, &[]).await;
    let others = unique("secret-of-other");
    world
        .create_secret(&others, &json!({"UserName": "somebody-else"}))
        .await;
    let message = assert_enroll_refused(&world, &user, &others, &[]).await;
    assert!(
        message.contains("exists for IAM user somebody-else"),
        "{message}"
    );

    let not_ours = unique("plain-secret");
    world
        .create_secret(&not_ours, &json!("a database password"))
        .await;
    let message = assert_enroll_refused(&world, &user, &not_ours, &[]).await;
    assert!(
        message.contains("not an iam-key-rotation secret"),
        "{message}"
    );

    let elsewhere = world.bound_user().await;
    let other_function = register_function(&moto().endpoint, "keyrot-other-handler");
    world.start_rotation_by(&elsewhere, &other_function).await;
    let message = assert_enroll_refused(&world, &elsewhere.user, &elsewhere.secret_name, &[]).await;
    assert!(message.contains("rotated by another function"), "{message}");
}

#[tokio::test]
async fn enroll_rejects_invalid_input_as_a_usage_error() {
    for args in [
        vec![
            "enroll",
            "has spaces",
            "--function-arn",
            "arn:aws:lambda:us-east-1:1:function:f",
        ],
        vec!["enroll", "u", "--function-arn", "f", "--external-id", "x"],
        vec!["enroll", "u", "--function-arn", "f", "--every-days", "0"],
        vec![
            "enroll",
            "u",
            "--function-arn",
            "f",
            "--role-arn",
            "not-a-role",
        ],
        vec!["frobnicate"],
    ] {
        let run = run(&args).await;
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(!run.stderr.is_empty());
    }
}

#[tokio::test]
async fn enroll_binds_a_user_in_another_account_by_arn_through_the_role() {
    let world = World::new().await;
    let role = "arn:aws:iam::222222222222:role/keyrot-enroll";
    let other = world.iam_in_account(role).await;
    let user = unique("remote");
    other.create_user().user_name(&user).send().await.unwrap();
    let function = function_arn();
    let run = run(&[
        "enroll",
        &user,
        "--function-arn",
        &function,
        "--role-arn",
        role,
        "--external-id",
        "ext-123",
        "--no-rotate-now",
        "--output",
        "json",
    ])
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let plan = run.json();
    let arn = plan["secret_arn"].as_str().unwrap();
    let tags = other
        .list_user_tags()
        .user_name(&user)
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags.tags()
            .iter()
            .find(|t| t.key() == BINDING_TAG)
            .map(|t| t.value()),
        Some(arn),
        "the remote user carries the full ARN"
    );
    let fixture = Fixture {
        user: user.clone(),
        secret_name: format!("iam-keys/{user}"),
        secret_arn: arn.to_string(),
    };
    assert_eq!(
        world.value(&fixture, "AWSCURRENT").await,
        Some(json!({"UserName": user, "RoleArn": role, "ExternalId": "ext-123"}))
    );
}

/// `keyrot status --output json` over the secrets under `prefix`, by name,
/// which must exit with `code`.
async fn status_rows(prefix: &str, extra: &[&str], code: i32) -> BTreeMap<String, Value> {
    let mut args = vec!["status", "--prefix", prefix, "--output", "json"];
    args.extend_from_slice(extra);
    let run = run(&args).await;
    assert_eq!(run.code, code, "{}", run.stderr);
    run.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["secret_name"].as_str().unwrap().to_string(),
                row.clone(),
            )
        })
        .collect()
}

/// One secret in each state a rotation leaves behind, staged for real under
/// `prefix`: ok, rotating (pending), rotation-disabled, broken (its key made
/// Inactive) and unbound.
struct StagedStates {
    ok: Fixture,
    pending: Fixture,
    disabled: Fixture,
    broken: Fixture,
    unbound: Fixture,
}

async fn stage_each_state(world: &World, prefix: &str) -> StagedStates {
    let named = |state: &str| format!("{prefix}{state}");
    let ok = world.user_with_key_at("/", &named("ok")).await;
    world.rotate_now(&ok).await;
    let pending = world.user_with_key_at("/", &named("pending")).await;
    world.start_rotation(&pending).await;
    let disabled = world.user_with_key_at("/", &named("disabled")).await;
    let broken = world.user_with_key_at("/", &named("broken")).await;
    world.rotate_now(&broken).await;
    let current = world.current_key(&broken).await.unwrap();
    world
        .set_key_status(
            &broken.user,
            &current,
            aws_sdk_iam::types::StatusType::Inactive,
        )
        .await;
    let unbound = world.user_with_key_at("/", &named("unbound")).await;
    world.rotate_now(&unbound).await;
    world.unbind(&unbound.user).await;
    StagedStates {
        ok,
        pending,
        disabled,
        broken,
        unbound,
    }
}

#[tokio::test]
async fn status_reports_each_state_staged_for_real_with_its_fix() {
    let world = World::new().await;
    let prefix = format!("{}/", unique("status"));
    let named = |state: &str| format!("{prefix}{state}");
    let StagedStates {
        ok,
        pending,
        disabled,
        broken,
        unbound,
    } = stage_each_state(&world, &prefix).await;
    world
        .create_secret(&named("not-a-key"), &json!("some other kind of secret"))
        .await;
    // A secret with no value at all: moto fails a whole BatchGetSecretValue for it.
    world
        .secrets()
        .create_secret()
        .name(named("no-value"))
        .send()
        .await
        .unwrap();

    let rows = status_rows(&prefix, &[], 1).await;
    let state = |fixture: &Fixture| {
        rows[&fixture.secret_name]["state"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        rows.len(),
        7,
        "every secret under the prefix has a row: {rows:?}"
    );
    for name in ["not-a-key", "no-value"] {
        let row = &rows[&named(name)];
        assert_eq!(row["state"], json!("invalid-value"), "{row}");
        assert_eq!(row["user"], Value::Null, "{row}");
        assert!(
            row["fix"].as_str().unwrap().contains("put-secret-value"),
            "{row}"
        );
    }
    assert_eq!(state(&ok), "ok");
    assert_eq!(state(&pending), "rotating");
    assert_eq!(state(&disabled), "rotation-disabled");
    assert_eq!(state(&broken), "broken");
    assert_eq!(state(&unbound), "unbound");
    let row = &rows[&ok.secret_name];
    assert_eq!(row["fix"], Value::Null);
    assert_eq!(row["user"], json!(ok.user));
    assert_eq!(
        row["current_key_id"],
        json!(world.current_key(&ok).await.unwrap())
    );
    assert!(row["current_key_age_days"].as_f64().unwrap() < 1.0);
    assert_eq!(row["schedule"], json!("every 30 days"));
    let fix = |fixture: &Fixture| {
        rows[&fixture.secret_name]["fix"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(fix(&unbound).contains(&format!("aws iam tag-user --user-name {}", unbound.user)));
    assert!(fix(&unbound).contains(&unbound.secret_arn));
    assert!(fix(&broken).contains("rotate-secret"));
    assert!(fix(&disabled).contains("--rotation-lambda-arn"));
    let fields: Vec<&String> = row.as_object().unwrap().keys().collect();
    assert_eq!(
        fields,
        [
            "account",
            "current_key_age_days",
            "current_key_id",
            "current_key_last_used",
            "delivery",
            "fix",
            "last_rotated",
            "next_rotation",
            "rotation_enabled",
            "schedule",
            "secret_arn",
            "secret_name",
            "state",
            "user"
        ]
    );

    // A pending version older than --stuck-after-minutes is stuck.
    let rows = status_rows(&prefix, &["--stuck-after-minutes", "0"], 1).await;
    assert_eq!(
        rows[&pending.secret_name]["state"],
        json!("stuck"),
        "{:?}",
        rows[&pending.secret_name]
    );
    assert!(
        rows[&pending.secret_name]["fix"]
            .as_str()
            .unwrap()
            .contains("--remove-from-version-id")
    );

    // --function-arn keeps only the secrets that function rotates: none here,
    // which reads nothing and says so.
    let rows = status_rows(
        &prefix,
        &[
            "--function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:another",
        ],
        2,
    )
    .await;
    assert!(rows.is_empty(), "{rows:?}");
    let table = run(&["status", "--prefix", &prefix]).await;
    assert!(
        table.stdout.contains("STATE") && table.stdout.contains("To fix:"),
        "{}",
        table.stdout
    );
}

/// `keyrot audit` over the users under `path`, with extra arguments.
async fn audit(path: &str, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["audit", "--prefix", "", "--path", path, "--output", "json"];
    args.extend_from_slice(extra);
    let run = run(&args).await;
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    (run.code, run.json())
}

#[tokio::test]
async fn audit_lists_every_key_with_its_manager_and_exits_1_on_findings() {
    let world = World::new().await;
    let path = format!("/{}/", unique("audit"));
    let managed = world
        .user_with_key_at(&path, &unique("audit-managed"))
        .await;
    world.rotate_now(&managed).await;
    let managed_key = world.current_key(&managed).await.unwrap();
    let stale = world.user_with_key_at(&path, &unique("audit-stale")).await;
    world.rotate_now(&stale).await;
    world
        .secrets()
        .cancel_rotate_secret()
        .secret_id(&stale.secret_arn)
        .send()
        .await
        .unwrap();
    let stale_key = world.current_key(&stale).await.unwrap();
    let loner = unique("loner");
    world.create_user_at(&loner, &path, &[]).await;
    let (first, _) = world.create_key(&loner).await;
    let (second, _) = world.create_key(&loner).await;
    let keyless = unique("keyless");
    world.create_user_at(&keyless, &path, &[]).await;

    let (code, report) = audit(&path, &["--max-age-days", "0"]).await;
    assert_eq!(code, 1, "findings exit 1: {report}");
    let keys: BTreeMap<String, Value> = report["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["access_key_id"].as_str().unwrap().to_string(), k.clone()))
        .collect();
    assert_eq!(keys[&managed_key]["managed_by"], json!(managed.secret_name));
    assert_eq!(keys[&managed_key]["status"], json!("Active"));
    assert_eq!(keys[&first]["managed_by"], Value::Null);
    assert_eq!(keys[&second]["user"], json!(loner));
    assert!(keys[&first]["age_days"].as_f64().unwrap() >= 0.0);
    assert_eq!(
        keys[&first].as_object().unwrap().keys().collect::<Vec<_>>(),
        [
            "access_key_id",
            "account",
            "age_days",
            "last_used",
            "managed_by",
            "status",
            "user"
        ]
    );
    assert_eq!(
        report["accounts"],
        Value::Null,
        "one shape: accounts is null for one account"
    );
    assert_eq!(
        keys.values()
            .filter(|k| k["user"] == json!(keyless))
            .count(),
        0
    );
    let findings: Vec<(String, String, Value)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert_eq!(f.as_object().unwrap().len(), 4, "{f}");
            (
                f["kind"].as_str().unwrap().into(),
                f["user"].as_str().unwrap().into(),
                f["access_key_id"].clone(),
            )
        })
        .collect();
    assert!(
        findings.contains(&("unmanaged-old-key".into(), loner.clone(), json!(first))),
        "{findings:?}"
    );
    assert!(
        findings.contains(&("two-active-keys".into(), loner.clone(), Value::Null)),
        "{findings:?}"
    );
    assert!(
        findings.contains(&(
            "managed-key-not-rotating".into(),
            stale.user.clone(),
            json!(stale_key)
        )),
        "{findings:?}"
    );
    // No key escapes the age limit (SPEC 9): the managed, rotating key is older
    // than a limit of 0 days, and that is a finding although a secret manages it.
    assert!(
        findings.contains(&(
            "managed-key-not-rotating".into(),
            managed.user.clone(),
            json!(managed_key)
        )),
        "an old managed key is a finding: {findings:?}"
    );
    let detail = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["access_key_id"] == json!(managed_key))
        .map(|f| f["detail"].as_str().unwrap().to_string())
        .unwrap();
    assert!(detail.contains("days old (limit 0)"), "{detail}");

    // Under the default limit the new unmanaged keys are fine; the other two remain.
    let (code, report) = audit(&path, &[]).await;
    assert_eq!(code, 1);
    assert!(
        !report["findings"].to_string().contains("unmanaged-old-key"),
        "{report}"
    );
    assert!(
        !report["findings"].to_string().contains(&managed_key),
        "a young managed key that rotates is no finding: {report}"
    );

    // A path with only healthy users: exit 0.
    let clean = format!("/{}/", unique("clean"));
    let fine = world.user_with_key_at(&clean, &unique("audit-fine")).await;
    world.rotate_now(&fine).await;
    let (code, report) = audit(&clean, &[]).await;
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["findings"], json!([]));
    assert_eq!(
        report["keys"].as_array().unwrap().len(),
        2,
        "current and previous key: {report}"
    );
}

#[tokio::test]
async fn audit_reads_users_with_every_character_iam_allows_in_a_name() {
    let world = World::new().await;
    let path = format!("/{}/", unique("hostile"));
    let names = [
        format!("a+b=c,d.e@f_g-h{}", fastrand::u32(..)),
        format!(",,,{}", fastrand::u32(..)),
        format!("{}@", fastrand::u32(..)),
    ];
    let mut expected = BTreeMap::new();
    for name in &names {
        world.create_user_at(name, &path, &[]).await;
        expected.insert(world.create_key(name).await.0, name.clone());
    }
    let (_, report) = audit(&path, &[]).await;
    let seen: BTreeMap<String, String> = report["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["access_key_id"].as_str().unwrap().into(),
                k["user"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(seen, expected);
    assert!(
        report["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["last_used"].is_null()),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_of_1000_users_is_complete_while_iam_throttles() {
    let world = World::new().await;
    let tag = unique("thousand");
    let (path, prefix) = (format!("/{tag}/"), format!("{tag}/"));
    let members = harness::population::populate(&world, &path, &prefix, 1000, 4).await;
    let started = std::time::Instant::now();
    let proxy = harness::fault_proxy::FaultProxy::start(&moto().endpoint).await;
    // An account-wide limit, and a throttle on every twentieth call on top, so that
    // retries are certain whatever the machine's speed.
    proxy.set_plan(harness::fault_proxy::FaultPlan {
        rate_limits: vec![("iam", 150.0)],
        throttle_every: Some(20),
        ..Default::default()
    });

    let audit = keyrot(
        &proxy.endpoint,
        &["audit", "--prefix", "", "--path", &path, "--output", "json"],
    )
    .await;
    // Every managed key's secret has rotation off: a finding each, so exit 1.
    assert_eq!(audit.code, 1, "{}", audit.stderr);
    let report = audit.json();
    let managers: BTreeMap<String, Value> = report["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["access_key_id"].as_str().unwrap().to_string(),
                k["managed_by"].clone(),
            )
        })
        .collect();
    assert_eq!(managers.len(), members.len(), "every key is reported once");
    for member in &members {
        assert_eq!(
            managers[&member.access_key_id],
            json!(member.secret_name),
            "{member:?}"
        );
    }
    let throttled = proxy
        .calls()
        .iter()
        .filter(|c| c.fault == Some("throttled"))
        .count();
    assert!(
        throttled > 0,
        "IAM never throttled: the test proved nothing"
    );
    eprintln!(
        "audit of 1000 users: {} calls, {throttled} throttled, {:.1} s",
        proxy.calls().len(),
        started.elapsed().as_secs_f64()
    );
}

/// Runs an enroll that must fail before any write with `code`; returns stderr.
async fn assert_enroll_checked_first(
    world: &World,
    user: &str,
    secret_name: &str,
    args: &[&str],
    code: i32,
) -> String {
    let before = account_state(world, user, secret_name).await;
    for dry_run in [true, false] {
        let mut args = args.to_vec();
        if dry_run {
            args.push("--dry-run");
        }
        let run = run(&args).await;
        assert_eq!(run.code, code, "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{}", run.stdout);
        assert!(run.stderr.contains("nothing was changed"), "{}", run.stderr);
        assert_eq!(account_state(world, user, secret_name).await, before);
        if !dry_run {
            return run.stderr;
        }
    }
    unreachable!()
}

#[tokio::test]
async fn enroll_checks_the_function_and_the_schedule_before_any_write_dry_run_too() {
    let world = World::new().await;
    let user = unique("checked");
    world.create_user(&user, &[]).await;
    let secret = format!("iam-keys/{user}");
    let typo = assert_enroll_checked_first(
        &world,
        &user,
        &secret,
        &["enroll", &user, "--function-arn", "f"],
        2,
    )
    .await;
    assert!(typo.contains("no Lambda function f in account"), "{typo}");
    assert!(typo.contains("RotationFunctionArn"), "{typo}");
    let elsewhere = "arn:aws:lambda:eu-west-1:123456789012:function:keyrot-rotation-target";
    let region = assert_enroll_checked_first(
        &world,
        &user,
        &secret,
        &["enroll", &user, "--function-arn", elsewhere],
        2,
    )
    .await;
    assert!(region.contains("region eu-west-1"), "{region}");
    assert!(region.contains("--region eu-west-1"), "{region}");
    let function = function_arn();
    for (schedule, why) in [
        ("rate(10)", "a number and a unit"),
        ("cron(0 4 * * MON)", "6 fields"),
        ("every monday", "rate(...) or cron(...)"),
    ] {
        let message = assert_enroll_checked_first(
            &world,
            &user,
            &secret,
            &[
                "enroll",
                &user,
                "--function-arn",
                &function,
                "--schedule",
                schedule,
            ],
            2,
        )
        .await;
        assert!(message.contains(why), "{message}");
    }
    // A function Secrets Manager may not invoke is no rotation function.
    let plain = harness::keyrot::register_function_of_stack(
        &moto().endpoint,
        "keyrot-not-a-rotator",
        "/",
        "",
        "none",
    );
    let message = assert_enroll_checked_first(
        &world,
        &user,
        &secret,
        &["enroll", &user, "--function-arn", &plain],
        1,
    )
    .await;
    assert!(message.contains("no resource policy"), "{message}");
}

#[tokio::test]
async fn enroll_refuses_a_user_outside_the_stacks_path_and_a_name_outside_its_prefix() {
    let world = World::new().await;
    let function = harness::keyrot::register_function_of_stack(
        &moto().endpoint,
        "keyrot-stack-rotation",
        "/rotated/",
        "iam-keys/",
        "secretsmanager",
    );
    let outside = unique("outside");
    world.create_user_at(&outside, "/", &[]).await;
    let message = assert_enroll_checked_first(
        &world,
        &outside,
        &format!("iam-keys/{outside}"),
        &["enroll", &outside, "--function-arn", &function],
        1,
    )
    .await;
    assert!(
        message.contains("outside the stack's ManagedUserPath /rotated/"),
        "{message}"
    );
    assert!(message.contains("--new-path /rotated/"), "{message}");

    let inside = unique("inside");
    world.create_user_at(&inside, "/rotated/", &[]).await;
    let name = format!("team/{inside}");
    let message = assert_enroll_checked_first(
        &world,
        &inside,
        &name,
        &[
            "enroll",
            &inside,
            "--function-arn",
            &function,
            "--secret-name",
            &name,
        ],
        1,
    )
    .await;
    assert!(
        message.contains("outside the stack's SecretNamePrefix iam-keys/"),
        "{message}"
    );
    let run = run(&[
        "enroll",
        &inside,
        "--function-arn",
        &function,
        "--no-rotate-now",
    ])
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains(&format!("iam-keys/{inside}")),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn a_partial_enrollment_says_what_it_wrote_and_its_rerun_finishes_it() {
    let proxy = harness::fault_proxy::FaultProxy::start(&moto().endpoint).await;
    let world = World::new().await;
    let user = unique("partial");
    world.create_user(&user, &[]).await;
    let function = function_arn();
    proxy.set_plan(harness::fault_proxy::FaultPlan {
        deny_operation: Some("TagUser"),
        ..Default::default()
    });
    let args = [
        "enroll",
        &user,
        "--function-arn",
        &function,
        "--no-rotate-now",
    ];
    let failed = keyrot(&proxy.endpoint, &args).await;
    proxy.set_plan(Default::default());
    assert_eq!(failed.code, 2, "{}", failed.stderr);
    let message = failed.stderr.trim();
    assert!(
        message.contains("Written before that: created secret arn:"),
        "{message}"
    );
    assert!(message.contains("delete-secret"), "{message}");
    let finish = message
        .split("To finish once the cause is fixed: ")
        .nth(1)
        .and_then(|rest| rest.split(". To undo").next())
        .expect("the command that finishes it");
    assert!(finish.contains("--existing-secret-arn"), "{finish}");
    // The same command without the flag is refused: keyrot binds a user only to
    // a secret it knows was created for it (SPEC 11, T1).
    assert_eq!(run(&args).await.code, 1);
    let words: Vec<&str> = finish.split_whitespace().skip(1).collect();
    let rerun = run(&words).await;
    assert_eq!(rerun.code, 0, "{}", rerun.stderr);
    let (tags, secret) = account_state(&world, &user, &format!("iam-keys/{user}")).await;
    assert!(
        tags.get(BINDING_TAG)
            .is_some_and(|arn| finish.contains(arn.as_str()))
    );
    assert_eq!(secret.unwrap()["rotation_enabled"], json!(true));
}

#[tokio::test]
async fn a_secret_left_naming_a_function_that_does_not_exist_is_re_attached() {
    let world = World::new().await;
    let fixture = world.bound_user().await;
    world
        .start_rotation_by(&fixture, "arn:aws:lambda:us-east-1:123456789012:function:f")
        .await;
    let run = run(&[
        "enroll",
        &fixture.user,
        "--function-arn",
        &function_arn(),
        "--secret-name",
        &fixture.secret_name,
        "--no-rotate-now",
    ])
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("which does not exist"),
        "{}",
        run.stderr
    );
    let (_, secret) = account_state(&world, &fixture.user, &fixture.secret_name).await;
    assert_eq!(secret.unwrap()["function"], json!(function_arn()));
}

#[tokio::test]
async fn status_exits_0_only_when_every_row_is_ok_rotating_or_rolled_back() {
    let world = World::new().await;
    let prefix = format!("{}/", unique("check"));
    let ok = world.user_with_key_at("/", &format!("{prefix}ok")).await;
    world.rotate_now(&ok).await;
    let pending = world
        .user_with_key_at("/", &format!("{prefix}pending"))
        .await;
    world.start_rotation(&pending).await;
    assert_eq!(status_rows(&prefix, &[], 0).await.len(), 2);

    // Another key of the user beside the current one blocks the next rotation.
    let blocked = world
        .user_with_key_at("/", &format!("{prefix}blocked"))
        .await;
    let (extra, _) = world.create_key(&blocked.user).await;
    let rows = status_rows(&prefix, &[], 1).await;
    let row = &rows[&blocked.secret_name];
    assert_eq!(row["state"], json!("blocked"), "{row}");
    assert!(
        row["fix"]
            .as_str()
            .unwrap()
            .contains(&format!("--access-key-id {extra}"))
    );

    // A user keyrot may not read is an unreadable row naming the call.
    let proxy = harness::fault_proxy::FaultProxy::start(&moto().endpoint).await;
    proxy.set_plan(harness::fault_proxy::FaultPlan {
        deny_operation: Some("GetUser"),
        ..Default::default()
    });
    let denied = keyrot(
        &proxy.endpoint,
        &["status", "--prefix", &prefix, "-o", "json"],
    )
    .await;
    assert_eq!(denied.code, 1, "{}", denied.stderr);
    let json = denied.json();
    let states: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["unreadable"; 3], "{json}");
    assert!(
        json[0]["fix"]
            .as_str()
            .unwrap()
            .contains("GetUser was refused"),
        "{json}"
    );
}

#[tokio::test]
async fn a_failed_rotation_shows_its_error_type_and_the_command_that_reads_the_log() {
    let world = World::new().await;
    let prefix = format!("{}/", unique("failed"));
    let function = register_function(&moto().endpoint, &unique("failing-rotator"));
    let fixture = world.user_with_key_at("/", &format!("{prefix}app")).await;
    world.start_rotation_by(&fixture, &function).await;
    // The line the function logs for a failed step (handler.rs), in the
    // template's JSON log format, in its log group.
    let logs = aws_sdk_cloudwatchlogs::Client::new(&harness::sdk_config(&moto().endpoint).await);
    let group = format!("/aws/lambda/{}", function.rsplit(':').next().unwrap());
    logs.create_log_group()
        .log_group_name(&group)
        .send()
        .await
        .unwrap();
    logs.create_log_stream()
        .log_group_name(&group)
        .log_stream_name("s")
        .send()
        .await
        .unwrap();
    let line = json!({
        "level": "WARN",
        "fields": {"message": "step failed", "error_type": "UnmanagedKeyBlocks", "error": "..."},
        "span": {"step": "createSecret", "secret": fixture.secret_arn, "name": "rotation"}
    });
    logs.put_log_events()
        .log_group_name(&group)
        .log_stream_name("s")
        .log_events(
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(chrono_now_ms())
                .message(line.to_string())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let rows = status_rows(&prefix, &[], 1).await;
    let row = &rows[&fixture.secret_name];
    assert_eq!(row["state"], json!("stuck"), "not rotating... wait: {row}");
    let fix = row["fix"].as_str().unwrap();
    assert!(
        fix.contains("createSecret failed with UnmanagedKeyBlocks"),
        "{fix}"
    );
    assert!(
        fix.contains(&format!(
            "aws logs filter-log-events --log-group-name {group}"
        )),
        "{fix}"
    );
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn csv_and_json_keep_one_shape_for_a_spreadsheet_and_a_script() {
    let world = World::new().await;
    let path = format!("/{}/", unique("csv"));
    let loner = unique("csv-loner");
    world.create_user_at(&loner, &path, &[]).await;
    let (key, _) = world.create_key(&loner).await;
    let csv = run(&[
        "audit",
        "--prefix",
        "",
        "--path",
        &path,
        "--max-age-days",
        "0",
        "-o",
        "csv",
    ])
    .await;
    assert_eq!(csv.code, 1, "{}", csv.stderr);
    let mut lines = csv.stdout.lines();
    assert_eq!(
        lines.next(),
        Some("account,user,access_key_id,status,age_days,last_used,managed_by,findings")
    );
    let row = lines.next().unwrap();
    assert!(row.starts_with(&format!(",{loner},{key},Active,")), "{row}");
    assert!(row.contains("unmanaged-old-key: "), "{row}");
}

/// SPEC 9 `--prefix`: the audit reads the values of the secrets under the
/// prefix only, and a secret there whose value it may not read is an
/// `unreadable-secret` finding (exit 1), never silently skipped. Staged: every
/// value read is refused, so each secret the audit asked for becomes a finding,
/// and the secret outside the prefix, never asked for, does not.
#[tokio::test]
async fn the_audit_reads_only_secrets_under_the_prefix_and_reports_those_it_cannot_read() {
    let world = World::new().await;
    let path = format!("/{}/", unique("prefixed"));
    let prefix = format!("{}/", unique("audited"));
    let inside = world
        .user_with_key_at(&path, &format!("{prefix}inside"))
        .await;
    world.rotate_now(&inside).await;
    let outside = world
        .user_with_key_at(&path, &unique("unrelated-secret"))
        .await;
    let proxy = harness::fault_proxy::FaultProxy::start(&moto().endpoint).await;
    proxy.set_plan(harness::fault_proxy::FaultPlan {
        deny_operations: vec!["BatchGetSecretValue", "GetSecretValue"],
        ..Default::default()
    });

    let run = keyrot(
        &proxy.endpoint,
        &["audit", "--path", &path, "--prefix", &prefix, "-o", "json"],
    )
    .await;
    assert_eq!(run.code, 1, "a finding: {}", run.stderr);
    let report = run.json();
    let unreadable: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == json!("unreadable-secret"))
        .map(|f| f["detail"].as_str().unwrap())
        .collect();
    assert_eq!(unreadable.len(), 1, "{report}");
    assert!(unreadable[0].contains(&inside.secret_name), "{report}");
    assert!(unreadable[0].contains("GetSecretValue"), "{report}");
    assert!(
        !report.to_string().contains(&outside.secret_name),
        "the secret outside the prefix is never read: {report}"
    );
}

/// SPEC 9: every detail matches the state. A key that the secret its user is
/// bound to holds by hand (enrolled, not rotated yet) is not "no secret
/// manages it: enroll the user": the finding names the secret and the
/// rotation that adopts the key.
#[tokio::test]
async fn an_old_key_a_bound_secret_holds_by_hand_is_told_to_rotate_not_to_enroll() {
    let world = World::new().await;
    let path = format!("/{}/", unique("byhand"));
    let enrolled = world
        .user_with_key_at(&path, &unique("byhand-secret"))
        .await;
    let key = world.current_key(&enrolled).await.unwrap();

    let (code, report) = audit(&path, &["--max-age-days", "0"]).await;
    assert_eq!(code, 1, "{report}");
    let finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["access_key_id"] == json!(key))
        .unwrap_or_else(|| panic!("the old key is a finding: {report}"));
    assert_eq!(finding["kind"], json!("unmanaged-old-key"));
    let detail = finding["detail"].as_str().unwrap();
    assert!(
        detail.contains(&enrolled.secret_name)
            && detail.contains("aws secretsmanager rotate-secret --secret-id")
            && !detail.contains("enroll"),
        "{detail}"
    );
}

/// At fleet scale (SPEC 9, issue 31) status reads the account's users and
/// last uses once, and each secret costs one `ListAccessKeys`: at most 1.5
/// calls per secret, counted by the fault proxy. Every state is judged as it
/// is for the secret alone (a listing of one, read secret by secret): each
/// staged secret's row is the same either way.
#[tokio::test]
async fn status_at_fleet_scale_costs_one_call_a_secret_and_judges_each_as_alone() {
    let world = World::new().await;
    let prefix = format!("{}/", unique("fleet-status"));
    let named = |state: &str| format!("{prefix}{state}");
    let StagedStates {
        ok,
        pending,
        disabled,
        broken,
        unbound,
    } = stage_each_state(&world, &prefix).await;
    let rolled_back = world.user_with_key_at("/", &named("rolled-back")).await;
    world.rotate_now(&rolled_back).await;
    let run = run(&["rollback", &rolled_back.secret_name]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    world
        .create_secret(&named("not-a-key"), &json!("some other kind of secret"))
        .await;
    let staged = [
        &ok.secret_name,
        &pending.secret_name,
        &disabled.secret_name,
        &broken.secret_name,
        &unbound.secret_name,
        &rolled_back.secret_name,
        &named("not-a-key"),
    ];
    let fillers = harness::population::populate(&world, "/", &prefix, 40, usize::MAX).await;
    let secrets = staged.len() + fillers.iter().filter(|m| m.secret_name.is_some()).count();

    let proxy = harness::fault_proxy::FaultProxy::start(&moto().endpoint).await;
    let measured = harness::keyrot::measure_keyrot(
        &proxy,
        &["status", "--prefix", &prefix, "--output", "json"],
    )
    .await;
    let per_secret = measured.calls as f64 / secrets as f64;
    eprintln!("status: {} calls for {secrets} secrets", measured.calls);
    assert!(
        per_secret <= 1.5,
        "{} calls for {secrets} secrets: {per_secret:.2} a secret",
        measured.calls
    );
    let rows = status_rows(&prefix, &[], 1).await;
    assert_eq!(rows.len(), secrets);
    let expected = [
        "ok",
        "rotating",
        "rotation-disabled",
        "broken",
        "unbound",
        "rolled-back",
        "invalid-value",
    ];
    for (name, state) in staged.iter().zip(expected) {
        let calm = ["ok", "rotating", "rolled-back"].contains(&state);
        let alone = status_rows(name, &[], if calm { 0 } else { 1 }).await;
        assert_eq!(rows[*name]["state"], json!(state), "{}", rows[*name]);
        assert_eq!(
            comparable(&alone[*name]),
            comparable(&rows[*name]),
            "{name} differs when read alone"
        );
    }
}

/// A row as two reads a moment apart agree on: the key's age moves on, and
/// the credential report is a snapshot (AWS makes one at most every four
/// hours), so of the last use only whether there is one.
fn comparable(row: &Value) -> Value {
    let mut row = row.clone();
    row.as_object_mut().unwrap().remove("current_key_age_days");
    // moto dates a pending version "now" at every ListSecretVersionIds
    // (../shared/EMULATOR-NOTES.md), which moves the log command's start.
    if let Some(fix) = row["fix"].as_str() {
        let words: Vec<&str> = fix.split(' ').collect();
        let kept: Vec<&str> = words
            .iter()
            .enumerate()
            .filter(|(i, _)| *i == 0 || words[i - 1] != "--start-time")
            .map(|(_, word)| *word)
            .collect();
        row["fix"] = json!(kept.join(" "));
    }
    let used = !row["current_key_last_used"].is_null();
    row["current_key_last_used"] = json!(used);
    row
}
