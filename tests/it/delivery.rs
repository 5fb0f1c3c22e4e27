//! Delivery (SPEC 14) through the real delivery binary (`iam-key-deliver`)
//! against moto and the GitHub stand-in: the new key reaches GitHub Actions,
//! SSM and copies in other secrets (in this account and another), is verified
//! and recorded, and only then does the sweep retire the previous key; while a
//! target fails, createSecret keeps the previous key and fails `Undelivered`.
//! Targets are trusted only in reserved secret tags, byte for byte. Each test
//! has its own secrets under a prefix of its own, its own rotation function
//! ARN (the sweep visits only that function's secrets) and its own stand-in.

use std::time::Duration;

use harness::delivery::{deliver_env, env_pairs};
use harness::function::Function;
use harness::github_standin::GitHubStandIn;
use harness::*;
use iam_key_rotation::{Config, OldKeyAction};
use serde_json::{Value, json};

const DELIVERED: &str = "iam-key-rotation:delivered";
const LAST_ERROR: &str = "iam-key-rotation:delivery-error";

/// One test's world: moto, a stand-in with a repository, a token for it, the
/// credentials secret, a prefix, a rotation function ARN and a secret whose
/// user holds a first key.
struct Setup {
    world: World,
    github: GitHubStandIn,
    credentials: String,
    prefix: String,
    function_arn: String,
    fixture: Fixture,
    owner: String,
}

impl Setup {
    async fn new() -> Self {
        let world = World::new().await;
        let github = GitHubStandIn::start();
        let owner = unique("acme").replace('-', "");
        github.repository(&owner, "app", &["production"]).await;
        let token = github.token(&["*"]).await;
        let credentials = world.github_credentials(&json!({ "token": token })).await;
        let prefix = format!("{}/", unique("delivered"));
        let fixture = world.user_with_key_at("/", &format!("{prefix}app")).await;
        Self {
            world,
            github,
            credentials,
            prefix,
            function_arn: unique_function_arn(),
            fixture,
            owner,
        }
    }

    fn env(&self) -> Vec<(String, String)> {
        deliver_env(&self.github, &self.credentials, &self.prefix)
    }

    async fn deliverer(&self) -> Function {
        self.deliverer_at(&moto().endpoint).await
    }

    async fn deliverer_at(&self, endpoint: &str) -> Function {
        let env = self.env();
        Function::start_deliver(endpoint, &env_pairs(&env)).await
    }

    /// Rotates the secret in-process as its own rotation function.
    async fn rotate(&self, config: Config) -> String {
        self.world
            .rotate_as(config, &self.fixture, &self.function_arn)
            .await
    }

    /// One sweep by the secret's rotation function.
    async fn sweep(&self, config: Config) -> Value {
        self.world
            .handler(config)
            .handle(
                json!({"Action": "sweep"}),
                iam_key_rotation::Invocation {
                    function_arn: &self.function_arn,
                    deadline: None,
                },
            )
            .await
            .unwrap()
    }

    async fn keys(&self) -> std::collections::BTreeMap<String, String> {
        self.world.snapshot(&self.fixture).await.keys
    }

    fn repo_holder(&self) -> String {
        format!("repos/{}/app", self.owner)
    }

    fn repo_spec(&self) -> String {
        format!("github:{}/app", self.owner)
    }
}

fn labels_of(response: &Value, list: &str) -> Vec<String> {
    let mut labels: Vec<String> = response[list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list} in {response}"))
        .iter()
        .map(|entry| entry["target"].as_str().unwrap().to_string())
        .collect();
    labels.sort();
    labels
}

#[tokio::test]
async fn a_rotation_reaches_github_ssm_and_a_copy_and_the_old_key_retires_only_after() {
    let setup = Setup::new().await;
    let world = &setup.world;
    let path = format!("/{}", unique("apps").replace('-', "_"));
    let copy = world
        .create_secret(&unique("copies/app"), &json!({"placeholder": true}))
        .await;
    world
        .tag_secret(
            &setup.fixture.secret_arn,
            &[
                ("iam-key-rotation:deliver:ci", &setup.repo_spec()),
                (
                    "iam-key-rotation:deliver:prod",
                    &format!("{}:env=production", setup.repo_spec()),
                ),
                (
                    "iam-key-rotation:deliver:params",
                    &format!("ssm:{REGION}:{path}"),
                ),
                (
                    "iam-key-rotation:deliver:copy",
                    &format!("secretsmanager:{copy}"),
                ),
            ],
        )
        .await;
    let old_key = world.current_key(&setup.fixture).await.unwrap();

    let token = setup.rotate(Config::default()).await;
    let new_key = world.current_key(&setup.fixture).await.unwrap();
    assert_ne!(new_key, old_key);
    // OLD_KEY_ACTION=deactivate, but the secret has targets.
    assert_eq!(setup.keys().await[&old_key], "Active");
    let swept = setup.sweep(Config::default()).await;
    assert_eq!(swept["Deactivated"], json!([]), "{swept}");
    assert_eq!(
        setup.keys().await[&old_key],
        "Active",
        "swept before delivery"
    );

    let mut deliverer = setup.deliverer().await;
    let response = deliverer.deliver(Some(&setup.fixture.secret_arn)).await;
    assert_eq!(response["Action"], "deliver");
    assert_eq!(response["Secrets"], 1);
    assert_eq!(
        labels_of(&response, "Delivered"),
        ["ci", "copy", "params", "prod"],
        "{response}"
    );
    assert_eq!(response["Failed"], json!([]));
    for entry in response["Delivered"].as_array().unwrap() {
        assert_eq!(entry["version"], token.as_str());
        assert_eq!(entry["secret"], setup.fixture.secret_arn.as_str());
    }

    // Each consumer reads the new pair, as it would.
    let secret = world
        .ledger
        .secret_of(&new_key)
        .expect("the new key's secret, as IAM issued it");
    for holder in [
        setup.repo_holder(),
        format!("{}/environments/production", setup.repo_holder()),
    ] {
        let id = setup
            .github
            .secret(&holder, "AWS_ACCESS_KEY_ID")
            .await
            .unwrap();
        let secret_read = setup
            .github
            .secret(&holder, "AWS_SECRET_ACCESS_KEY")
            .await
            .unwrap();
        assert_eq!(id.value, new_key, "{holder}");
        assert_eq!(secret_read.value, secret, "{holder}");
    }
    assert_eq!(
        world
            .parameter(&format!("{path}/AccessKeyId"))
            .await
            .as_deref(),
        Some(new_key.as_str())
    );
    assert_eq!(
        world
            .parameter(&format!("{path}/SecretAccessKey"))
            .await
            .as_deref(),
        Some(secret.as_str())
    );
    let (copy_version, copy_value) = world.current_value(&copy).await;
    assert_eq!(copy_version, token, "the copy's version is the source's");
    assert_eq!(copy_value["AccessKeyId"], new_key.as_str());
    assert_eq!(copy_value["SecretAccessKey"], secret.as_str());

    let record = world
        .secret_tag(&setup.fixture.secret_arn, DELIVERED)
        .await
        .unwrap();
    let words: Vec<&str> = record.split(' ').collect();
    assert_eq!(words[0], token);
    assert_eq!(&words[2..], ["ci", "copy", "params", "prod"], "{record}");

    // Delivered everywhere: the sweep applies OLD_KEY_ACTION now.
    let swept = setup.sweep(Config::default()).await;
    assert_eq!(swept["Deactivated"], json!([old_key]), "{swept}");
    assert_eq!(setup.keys().await[&old_key], "Inactive");
    assert_eq!(setup.keys().await[&new_key], "Active");

    // A second run writes nothing: every target holds the version.
    let writes = setup.github.calls().await.len();
    let again = deliverer.deliver(Some(&setup.fixture.secret_arn)).await;
    assert_eq!(again["Delivered"], json!([]), "{again}");
    assert_eq!(again["Failed"], json!([]), "{again}");
    assert_eq!(setup.github.calls().await.len(), writes);
    let output = deliverer.stop().await;
    let metrics = harness::function::emf_record(&output);
    assert_eq!(metrics["Deliveries"], json!(4.0), "{metrics}");
    assert_eq!(metrics["DeliveryFailures"], json!(0.0), "{metrics}");
    assert_eq!(metrics["UndeliveredSecrets"], json!(0.0), "{metrics}");
}

/// Targets anyone but an administrator can write are nobody's targets: in the
/// secret's value, in a tag that is not reserved (or differs in case), in a
/// tag of the IAM user. None is written, and the secret is treated as having
/// no targets: its previous key retires at finishSecret as usual.
#[tokio::test]
async fn a_target_anywhere_but_a_reserved_secret_tag_is_never_used() {
    let setup = Setup::new().await;
    let world = &setup.world;
    let evil = unique("evil").replace('-', "");
    setup.github.repository(&evil, "loot", &[]).await;
    let spec = format!("github:{evil}/loot");
    let current = world.current_value(&setup.fixture.secret_arn).await.1;
    let mut poisoned = current.clone();
    poisoned["iam-key-rotation:deliver:x"] = json!(spec);
    poisoned["Deliver"] = json!({"iam-key-rotation:deliver:x": spec});
    world.put_current(&setup.fixture, &poisoned).await;
    world
        .tag_secret(
            &setup.fixture.secret_arn,
            &[
                ("deliver:x", &spec),
                ("IAM-KEY-ROTATION:deliver:x", &spec),
                ("iam-key-rotation:Deliver:x", &spec),
                ("Iam-Key-Rotation:deliver:x", &spec),
                ("iam-key-rotation:deliver", &spec),
                ("iam-key-rotation:delivered-to:x", &spec),
            ],
        )
        .await;
    world
        .tag_user(&setup.fixture.user, "iam-key-rotation:deliver:x", &spec)
        .await;
    let old_key = world.current_key(&setup.fixture).await.unwrap();
    setup.rotate(Config::default()).await;
    assert_eq!(
        setup.keys().await[&old_key],
        "Inactive",
        "finishSecret retires the old key of a secret with no targets"
    );

    let mut deliverer = setup.deliverer().await;
    for secret_id in [Some(setup.fixture.secret_arn.as_str()), None] {
        let response = deliverer.deliver(secret_id).await;
        assert_eq!(response["Secrets"], 0, "{response}");
        assert_eq!(response["Delivered"], json!([]), "{response}");
        assert_eq!(response["Failed"], json!([]), "{response}");
    }
    deliverer.stop().await;
    assert!(
        setup.github.calls().await.is_empty(),
        "GitHub was called: {:?}",
        setup.github.calls().await
    );
    assert_eq!(
        setup
            .github
            .secret(&format!("repos/{evil}/loot"), "AWS_SECRET_ACCESS_KEY")
            .await,
        None
    );
    assert_eq!(
        world.secret_tag(&setup.fixture.secret_arn, DELIVERED).await,
        None
    );
}

/// An invalid spec or label is a target that fails on every run: a `Failed`
/// entry whose error starts `invalid target spec`, the failure event, counted
/// as undelivered; the valid targets beside it are delivered, and the
/// previous key stays Active.
#[tokio::test]
async fn an_invalid_target_fails_every_run_and_keeps_the_previous_key() {
    let setup = Setup::new().await;
    let world = &setup.world;
    world
        .tag_secret(
            &setup.fixture.secret_arn,
            &[
                ("iam-key-rotation:deliver:ci", &setup.repo_spec()),
                ("iam-key-rotation:deliver:bad", "ftp://example.com/keys"),
                ("iam-key-rotation:deliver:bad label", &setup.repo_spec()),
                (
                    "iam-key-rotation:deliver:byname",
                    "secretsmanager:arn:aws:secretsmanager:us-east-1:123456789012:secret:copies/app",
                ),
            ],
        )
        .await;
    let old_key = world.current_key(&setup.fixture).await.unwrap();
    setup.rotate(Config::default()).await;
    let queue = event_queue::EventQueue::subscribe(
        &moto().endpoint,
        &json!({"source": ["iam-key-rotation"], "detail-type": ["Access Key Delivery Failed", "Access Key Delivered"], "detail": {"secretArn": [setup.fixture.secret_arn]}}),
    )
    .await;
    let mut deliverer = setup.deliverer().await;
    for run in 0..2 {
        let response = deliverer.deliver(None).await;
        assert_eq!(response["Secrets"], 1, "{response}");
        assert_eq!(
            labels_of(&response, "Failed"),
            ["bad", "bad label", "byname"],
            "{response}"
        );
        for failed in response["Failed"].as_array().unwrap() {
            let error = failed["error"].as_str().unwrap();
            assert!(error.starts_with("invalid target spec"), "{error}");
        }
        let delivered = labels_of(&response, "Delivered");
        assert_eq!(delivered, if run == 0 { vec!["ci"] } else { vec![] });
    }
    let output = deliverer.stop().await;
    let metrics = harness::function::emf_record(&output);
    assert_eq!(metrics["DeliveryFailures"], json!(3.0), "{metrics}");
    assert_eq!(metrics["UndeliveredSecrets"], json!(1.0), "{metrics}");
    let events = queue.receive(7, Duration::from_secs(10)).await;
    let failed: Vec<&Value> = events
        .iter()
        .filter(|event| event["detail-type"] == "Access Key Delivery Failed")
        .collect();
    assert_eq!(failed.len(), 6, "two runs of three: {events:?}");
    assert!(
        failed.iter().all(|event| event["detail"]["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid target spec")),
        "{failed:?}"
    );
    let last_error = world
        .secret_tag(&setup.fixture.secret_arn, LAST_ERROR)
        .await
        .expect("the last error is recorded");
    assert!(last_error.starts_with("bad "), "{last_error}");
    assert_eq!(setup.keys().await[&old_key], "Active");
    setup.sweep(Config::default()).await;
    assert_eq!(setup.keys().await[&old_key], "Active", "undelivered");
}

/// A delivered previous key is retired by the next sweep as finishSecret would
/// have retired it: `delete` deletes it, `keep` keeps it, `grace` deactivates it
/// `GRACE_HOURS` after the delivery (not the rotation).
#[tokio::test]
async fn once_delivered_the_sweep_applies_each_old_key_action() {
    for action in [
        OldKeyAction::Delete,
        OldKeyAction::Keep,
        OldKeyAction::Grace,
    ] {
        let setup = Setup::new().await;
        let world = &setup.world;
        world
            .tag_secret(
                &setup.fixture.secret_arn,
                &[("iam-key-rotation:deliver:ci", &setup.repo_spec())],
            )
            .await;
        let old_key = world.current_key(&setup.fixture).await.unwrap();
        let mut config = config_with(action);
        config.retirement.grace = Duration::from_secs(3);
        setup.rotate(config.clone()).await;
        assert_eq!(setup.keys().await[&old_key], "Active", "{action:?}");
        // The rotation is older than the grace before the delivery starts it.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let mut deliverer = setup.deliverer().await;
        deliverer.deliver(Some(&setup.fixture.secret_arn)).await;
        deliverer.stop().await;
        let swept = setup.sweep(config.clone()).await;
        let keys = setup.keys().await;
        match action {
            OldKeyAction::Delete => {
                assert_eq!(swept["Deleted"], json!([old_key]), "{swept}");
                assert!(!keys.contains_key(&old_key), "{keys:?}");
            }
            OldKeyAction::Keep => assert_eq!(keys[&old_key], "Active", "{swept}"),
            _ => {
                assert_eq!(
                    keys[&old_key], "Active",
                    "grace counts from the delivery: {swept}"
                );
                tokio::time::sleep(Duration::from_secs(4)).await;
                let swept = setup.sweep(config).await;
                assert_eq!(swept["Deactivated"], json!([old_key]), "{swept}");
            }
        }
    }
}

/// Fails the target of `setup` (its repository does not exist), rotates once
/// and runs a delivery that fails; returns the first key, still Active.
async fn rotated_with_a_broken_target(setup: &Setup, config: Config) -> String {
    let world = &setup.world;
    world
        .tag_secret(
            &setup.fixture.secret_arn,
            &[(
                "iam-key-rotation:deliver:ci",
                &format!("github:{}/missing", setup.owner),
            )],
        )
        .await;
    let old_key = world.current_key(&setup.fixture).await.unwrap();
    setup.rotate(config).await;
    let mut deliverer = setup.deliverer().await;
    let response = deliverer.deliver(Some(&setup.fixture.secret_arn)).await;
    deliverer.stop().await;
    assert_eq!(labels_of(&response, "Failed"), ["ci"], "{response}");
    let error = response["Failed"][0]["error"].as_str().unwrap();
    assert!(error.contains("404"), "{error}");
    let last_error = world
        .secret_tag(&setup.fixture.secret_arn, LAST_ERROR)
        .await
        .unwrap();
    assert!(
        last_error.starts_with("ci ") && last_error.contains("404"),
        "{last_error}"
    );
    assert_eq!(setup.keys().await[&old_key], "Active");
    old_key
}

async fn step_as(
    setup: &Setup,
    config: Config,
    step: &str,
    token: &str,
) -> Result<Value, iam_key_rotation::RotationError> {
    setup
        .world
        .handler(config)
        .handle(
            json!({"Step": step, "SecretId": setup.fixture.secret_arn, "ClientRequestToken": token}),
            iam_key_rotation::Invocation {
                function_arn: &setup.function_arn,
                deadline: None,
            },
        )
        .await
}

/// While the current version misses a target, the next createSecret does not
/// delete the Active previous key its consumers still use: `Undelivered`,
/// naming the target, nothing changed. Once delivered, the rotation goes on.
#[tokio::test]
async fn create_secret_fails_undelivered_rather_than_delete_a_key_still_in_use() {
    let setup = Setup::new().await;
    let world = &setup.world;
    let old_key = rotated_with_a_broken_target(&setup, Config::default()).await;
    let token = world
        .start_rotation_by(&setup.fixture, &setup.function_arn)
        .await;
    let before = world.snapshot(&setup.fixture).await;
    let error = step_as(&setup, Config::default(), "createSecret", &token)
        .await
        .expect_err("createSecret must refuse");
    assert_eq!(error.kind(), "Undelivered", "{error}");
    let message = error.to_string();
    for says in [
        old_key.as_str(),
        "target ci",
        "keyrot status",
        "GRACE_MAX_HOURS",
        &setup.fixture.secret_arn,
    ] {
        assert!(message.contains(says), "{says:?} not in: {message}");
    }
    assert_eq!(
        world.snapshot(&setup.fixture).await,
        before,
        "a refusal changed the state"
    );

    // The target repaired and delivered, the same rotation goes ahead.
    setup.github.repository(&setup.owner, "missing", &[]).await;
    let mut deliverer = setup.deliverer().await;
    let response = deliverer.deliver(None).await;
    deliverer.stop().await;
    assert_eq!(labels_of(&response, "Delivered"), ["ci"], "{response}");
    assert_eq!(
        world
            .secret_tag(&setup.fixture.secret_arn, LAST_ERROR)
            .await,
        None,
        "repaired"
    );
    for step in STEPS {
        step_as(&setup, Config::default(), step, &token)
            .await
            .unwrap();
    }
    assert!(!setup.keys().await.contains_key(&old_key));
}

/// A rotation that deletes nothing goes ahead whatever the targets say: the
/// first rotation of a secret that holds no key yet.
#[tokio::test]
async fn a_first_rotation_deletes_nothing_and_goes_ahead_while_undelivered() {
    let world = World::new().await;
    let github = GitHubStandIn::start();
    let fixture = world.bound_user().await;
    world
        .tag_secret(
            &fixture.secret_arn,
            &[("iam-key-rotation:deliver:ci", "github:nobody/nothing")],
        )
        .await;
    let function_arn = unique_function_arn();
    world
        .rotate_as(Config::default(), &fixture, &function_arn)
        .await;
    assert!(world.current_key(&fixture).await.is_some());
    drop(github);
}

/// `GRACE_MAX_HOURS` after `AWSCURRENT` moved still bounds a broken target: the
/// sweep deactivates the previous key anyway, and createSecret deletes it.
#[tokio::test]
async fn grace_max_hours_bounds_a_target_that_keeps_failing() {
    let bounded = Config {
        retirement: iam_key_rotation::Retirement {
            grace: Duration::ZERO,
            grace_max: Duration::ZERO,
            delete_after: None,
        },
        ..Config::default()
    };
    let setup = Setup::new().await;
    let old_key = rotated_with_a_broken_target(&setup, Config::default()).await;
    assert_eq!(setup.keys().await[&old_key], "Active");
    let swept = setup.sweep(Config::default()).await;
    assert_eq!(
        swept["Deactivated"],
        json!([]),
        "within GRACE_MAX_HOURS: {swept}"
    );
    let swept = setup.sweep(bounded.clone()).await;
    assert_eq!(swept["Deactivated"], json!([old_key]), "{swept}");

    let other = Setup::new().await;
    let old_key = rotated_with_a_broken_target(&other, Config::default()).await;
    other.rotate(bounded).await;
    assert!(
        !other.keys().await.contains_key(&old_key),
        "createSecret deletes it past the maximum"
    );
}

/// `RETIRE_WHEN_SWITCHED`: once delivered (and a sweep interval after), the
/// sweep deactivates the previous key as soon as IAM shows the new key used
/// after the delivery and the old one not; an old key still used stays.
#[tokio::test]
async fn retire_when_switched_deactivates_once_consumers_use_the_new_key_only() {
    let config = Config {
        old_key_action: OldKeyAction::Grace,
        retire_when_switched: true,
        sweep_interval: Duration::ZERO,
        ..Config::default()
    };
    for old_still_used in [false, true] {
        let setup = Setup::new().await;
        let world = &setup.world;
        world
            .tag_secret(
                &setup.fixture.secret_arn,
                &[("iam-key-rotation:deliver:ci", &setup.repo_spec())],
            )
            .await;
        let old_key = world.current_key(&setup.fixture).await.unwrap();
        let old_secret = world.ledger.secret_of(&old_key).unwrap();
        setup.rotate(config.clone()).await;
        let new_key = world.current_key(&setup.fixture).await.unwrap();
        let mut deliverer = setup.deliverer().await;
        deliverer.deliver(Some(&setup.fixture.secret_arn)).await;
        deliverer.stop().await;
        let swept = setup.sweep(config.clone()).await;
        assert_eq!(
            swept["Deactivated"],
            json!([]),
            "the new key is not used yet: {swept}"
        );
        // IAM's last use is in whole seconds: use the keys after the record's second.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let new_secret = world.ledger.secret_of(&new_key).unwrap();
        use_key(&moto().endpoint, &new_key, &new_secret).await;
        if old_still_used {
            use_key(&moto().endpoint, &old_key, &old_secret).await;
        }
        let swept = setup.sweep(config.clone()).await;
        let expected = if old_still_used {
            json!([])
        } else {
            json!([old_key])
        };
        assert_eq!(
            swept["Deactivated"], expected,
            "old key still used: {old_still_used}: {swept}"
        );
    }
}

/// What each target of the crash test holds: whether `label` holds `key`.
async fn target_holds(setup: &Setup, path: &str, copy: &str, label: &str, key: &str) -> bool {
    match label {
        "ci" => setup
            .github
            .secret(&setup.repo_holder(), "AWS_ACCESS_KEY_ID")
            .await
            .is_some_and(|stored| stored.value == key),
        "params" => {
            setup
                .world
                .parameter(&format!("{path}/AccessKeyId"))
                .await
                .as_deref()
                == Some(key)
        }
        "copy" => setup.world.current_value(copy).await.1["AccessKeyId"] == key,
        other => panic!("no target {other}"),
    }
}

/// Where a crash test kills the delivery function.
#[derive(Clone, Copy, Debug)]
enum CrashAt {
    /// After the k-th AWS call (through the fault proxy).
    Aws(usize),
    /// After the k-th GitHub call (the stand-in kills it).
    GitHub(usize),
}

/// Rotates, runs a delivery that is killed right after the chosen call took
/// effect, checks that the record claims nothing the targets do not hold and
/// that the previous key still works, then runs delivery again and checks it
/// converged: every target holds the new key and the record lists them all.
/// Returns false once the run finished before the crash point.
async fn crash_delivery(setup: &Setup, path: &str, copy: &str, at: CrashAt) -> bool {
    let world = &setup.world;
    let old_key = world.current_key(&setup.fixture).await.unwrap();
    let token = setup.rotate(Config::default()).await;
    let new_key = world.current_key(&setup.fixture).await.unwrap();
    let proxy = harness::fault_proxy::FaultProxy::start(&moto().endpoint).await;
    let mut deliverer = setup.deliverer_at(&proxy.endpoint).await;
    match at {
        CrashAt::Aws(k) => proxy.set_plan(harness::fault_proxy::FaultPlan {
            crash_after_call: Some((k, deliverer.pid())),
            ..Default::default()
        }),
        CrashAt::GitHub(k) => setup.github.crash_after(k, deliverer.pid()).await,
    }
    let payload = json!({"Action": "deliver", "SecretId": setup.fixture.secret_arn});
    let crashed = deliverer.try_invoke(payload).await.is_none();
    deliverer.stop().await;
    setup.github.no_crash().await;
    let context = format!("{at:?}");
    // Never more claimed than held, and the previous key untouched.
    if let Some(record) = world.secret_tag(&setup.fixture.secret_arn, DELIVERED).await {
        let words: Vec<&str> = record.split(' ').collect();
        if words[0] == token {
            for label in &words[2..] {
                assert!(
                    target_holds(setup, path, copy, label, &new_key).await,
                    "{context}: the record says {label} holds the new key: {record}"
                );
            }
        }
    }
    assert_eq!(setup.keys().await[&old_key], "Active", "{context}");
    if !crashed {
        return false;
    }
    let mut again = setup.deliverer().await;
    let response = again.deliver(None).await;
    again.stop().await;
    assert_eq!(response["Failed"], json!([]), "{context}: {response}");
    for label in ["ci", "copy", "params"] {
        assert!(
            target_holds(setup, path, copy, label, &new_key).await,
            "{context}: {label} does not hold the new key"
        );
    }
    let record = world
        .secret_tag(&setup.fixture.secret_arn, DELIVERED)
        .await
        .unwrap();
    let words: Vec<&str> = record.split(' ').collect();
    assert_eq!(words[0], token, "{context}: {record}");
    assert_eq!(&words[2..], ["ci", "copy", "params"], "{context}: {record}");
    true
}

/// SPEC 14: every write is idempotent and a crash at any call converges on
/// the next run, the crash test of the steps applied to a delivery run: killed
/// right after each AWS call and each GitHub call in turn.
#[tokio::test]
async fn a_crash_after_any_call_of_a_delivery_run_converges_on_the_next_run() {
    let setup = Setup::new().await;
    let world = &setup.world;
    let path = format!("/{}", unique("crash").replace('-', "_"));
    let copy = world
        .create_secret(&unique("copies/crash"), &json!({"placeholder": true}))
        .await;
    world
        .tag_secret(
            &setup.fixture.secret_arn,
            &[
                ("iam-key-rotation:deliver:ci", &setup.repo_spec()),
                (
                    "iam-key-rotation:deliver:params",
                    &format!("ssm:{REGION}:{path}"),
                ),
                (
                    "iam-key-rotation:deliver:copy",
                    &format!("secretsmanager:{copy}"),
                ),
            ],
        )
        .await;
    let mut aws_calls = 0;
    while crash_delivery(&setup, &path, &copy, CrashAt::Aws(aws_calls + 1)).await {
        aws_calls += 1;
    }
    let mut github_calls = 0;
    while crash_delivery(&setup, &path, &copy, CrashAt::GitHub(github_calls + 1)).await {
        github_calls += 1;
    }
    eprintln!("crashed after each of {aws_calls} AWS calls and {github_calls} GitHub calls");
    assert!(
        aws_calls >= 10,
        "a delivery run makes more AWS calls: {aws_calls}"
    );
    assert!(
        github_calls >= 5,
        "public key, then a write and a check per name: {github_calls}"
    );
}

/// Another account is reached through its delivery role
/// (`iam-key-rotation-delivery`, deploy/member-account.yaml), another region
/// of this account with the function's own role; the SES SMTP password goes
/// with the key; an organization secret through a GitHub App carries its
/// visibility.
#[tokio::test]
async fn targets_in_another_account_and_region_an_organization_and_the_smtp_password() {
    const MEMBER: &str = "222222222222";
    let world = World::new().await;
    let github = GitHubStandIn::start();
    let org = unique("org").replace('-', "");
    github.organization(&org).await;
    let app = github.app(&[&format!("org:{org}")], false).await;
    let credentials = world.github_credentials(&app).await;
    let prefix = format!("{}/", unique("smtp"));
    let fixture = world
        .user_with_key_at("/", &format!("{prefix}mailer"))
        .await;
    let mut value = world.current_value(&fixture.secret_arn).await.1;
    value["SmtpRegion"] = json!("eu-west-1");
    world.put_current(&fixture, &value).await;
    let member = world
        .clients_in_account(&format!(
            "arn:aws:iam::{MEMBER}:role/iam-key-rotation-delivery"
        ))
        .await;
    let copy = member
        .secrets
        .create_secret()
        .name(unique("copies/mailer"))
        .secret_string("{}")
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_string();
    let path = format!("/{}", unique("mail").replace('-', "_"));
    world
        .tag_secret(
            &fixture.secret_arn,
            &[
                (
                    "iam-key-rotation:deliver:org",
                    &format!("github-org:{org}:visibility=all"),
                ),
                (
                    "iam-key-rotation:deliver:member",
                    &format!("ssm:{MEMBER}:{REGION}:{path}"),
                ),
                (
                    "iam-key-rotation:deliver:ireland",
                    &format!("ssm:eu-west-1:{path}"),
                ),
                (
                    "iam-key-rotation:deliver:copy",
                    &format!("secretsmanager:{copy}"),
                ),
            ],
        )
        .await;
    let function_arn = unique_function_arn();
    world
        .rotate_as(Config::default(), &fixture, &function_arn)
        .await;
    let (_, current) = world.current_value(&fixture.secret_arn).await;
    let smtp_password = current["SmtpPassword"].as_str().unwrap().to_string();
    record_issued_secret(&smtp_password);
    let new_key = current["AccessKeyId"].as_str().unwrap();

    // At TRACE, so the suite's secret scan sees every level: no token, App
    // key, secret access key or SMTP password in any line.
    let mut env = deliver_env(&github, &credentials, &prefix);
    env.push(("AWS_LAMBDA_LOG_LEVEL".into(), "TRACE".into()));
    env.push(("RUST_LOG".into(), "trace".into()));
    let mut deliverer = Function::start_deliver(&moto().endpoint, &env_pairs(&env)).await;
    let response = deliverer.deliver(Some(&fixture.secret_arn)).await;
    let output = deliverer.stop().await;
    assert_eq!(
        labels_of(&response, "Delivered"),
        ["copy", "ireland", "member", "org"],
        "{response}"
    );
    let secrets = [
        smtp_password.as_str(),
        current["SecretAccessKey"].as_str().unwrap(),
        app["private_key"].as_str().unwrap().lines().nth(1).unwrap(),
    ];
    for line in &output {
        for secret in secrets {
            assert!(
                !line.contains(secret),
                "a secret in the delivery function's output"
            );
        }
    }
    assert!(
        output
            .iter()
            .any(|line| line.contains("TRACE") || line.contains("DEBUG")),
        "ran at TRACE"
    );
    let org_holder = format!("orgs/{org}");
    let stored = github.secret(&org_holder, "SMTP_PASSWORD").await.unwrap();
    assert_eq!(stored.value, smtp_password);
    assert_eq!(stored.visibility.as_deref(), Some("all"));
    assert_eq!(
        github
            .secret(&org_holder, "AWS_ACCESS_KEY_ID")
            .await
            .unwrap()
            .value,
        new_key
    );
    let read = |client: aws_sdk_ssm::Client, name: String| async move {
        client
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
            .unwrap()
            .parameter()
            .unwrap()
            .value()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        read(member.ssm.clone(), format!("{path}/SmtpPassword")).await,
        smtp_password
    );
    assert_eq!(
        read(member.ssm.clone(), format!("{path}/AccessKeyId")).await,
        new_key
    );
    let ireland = aws_sdk_ssm::Client::from_conf(
        aws_sdk_ssm::config::Builder::from(&sdk_config(&moto().endpoint).await)
            .region(aws_sdk_ssm::config::Region::new("eu-west-1"))
            .build(),
    );
    assert_eq!(
        read(ireland, format!("{path}/SmtpPassword")).await,
        smtp_password
    );
    let copied = member
        .secrets
        .get_secret_value()
        .secret_id(&copy)
        .send()
        .await
        .unwrap();
    let copied: Value = serde_json::from_str(copied.secret_string().unwrap()).unwrap();
    assert_eq!(copied["SmtpPassword"], smtp_password.as_str());
}

/// The schedule's run examines every secret under SECRET_NAME_PREFIX with a
/// target, and only those; a run for one secret outside the prefix is refused.
/// GitHub's rate limit is waited out within the run.
#[tokio::test]
async fn the_scheduled_run_delivers_every_secret_under_the_prefix_within_githubs_rate_limit() {
    let setup = Setup::new().await;
    let world = &setup.world;
    let mut inside = vec![setup.fixture.clone()];
    for n in 0..2 {
        inside.push(
            world
                .user_with_key_at("/", &format!("{}more-{n}", setup.prefix))
                .await,
        );
    }
    let outside = world.user_with_key_at("/", &unique("elsewhere/app")).await;
    for fixture in inside.iter().chain([&outside]) {
        world
            .tag_secret(
                &fixture.secret_arn,
                &[("iam-key-rotation:deliver:ci", &setup.repo_spec())],
            )
            .await;
        world
            .rotate_as(Config::default(), fixture, &setup.function_arn)
            .await;
    }
    // Four calls per three seconds: three secrets' five calls each wait it out.
    setup.github.rate_limit(4, Duration::from_secs(3)).await;
    let mut deliverer = setup.deliverer().await;
    let response = deliverer.deliver(None).await;
    assert_eq!(response["Secrets"], 3, "{response}");
    assert_eq!(response["Failed"], json!([]), "{response}");
    let delivered: Vec<&str> = response["Delivered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["secret"].as_str().unwrap())
        .collect();
    assert_eq!(delivered.len(), 3, "{response}");
    assert!(!delivered.contains(&outside.secret_arn.as_str()));
    assert!(
        setup.github.rate_limited_calls().await > 0,
        "the limit never bit"
    );
    assert_eq!(world.secret_tag(&outside.secret_arn, DELIVERED).await, None);
    let refused = deliverer
        .invoke_payload(json!({"Action": "deliver", "SecretId": outside.secret_arn}))
        .await;
    let harness::runtime_api::Reply::Error(error) = refused else {
        panic!("a secret outside the prefix was delivered: {refused:?}")
    };
    assert_eq!(error["errorType"], "SecretOutsidePrefix", "{error}");
    deliverer.stop().await;
}

async fn keyrot(args: &[&str]) -> harness::keyrot::KeyrotRun {
    harness::keyrot::keyrot(&moto().endpoint, args).await
}

/// `keyrot deliver add|list|remove` write and read the reserved tags, each
/// spec checked first; what the record could not hold, a label taken by
/// another spec and an invalid spec are refused with nothing written.
#[tokio::test]
async fn keyrot_deliver_adds_lists_and_removes_targets_checking_each_first() {
    let setup = Setup::new().await;
    let world = &setup.world;
    let secret = setup.fixture.secret_name.clone();
    let spec = setup.repo_spec();
    let added = keyrot(&["deliver", "add", &secret, "ci", &spec, "--output", "json"]).await;
    assert_eq!(added.code, 0, "{}", added.stderr);
    assert_eq!(added.json()["changed"], json!(true));
    let again = keyrot(&["deliver", "add", &secret, "ci", &spec]).await;
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stdout.contains("Nothing to do"), "{}", again.stdout);
    assert_eq!(
        world
            .secret_tag(&setup.fixture.secret_arn, "iam-key-rotation:deliver:ci")
            .await
            .as_deref(),
        Some(spec.as_str())
    );
    let tags_before = world.secret_tags(&setup.fixture.secret_arn).await;
    for (args, code, says) in [
        (
            vec!["ops", "ftp:somewhere"],
            2,
            "invalid target spec: unknown target kind",
        ),
        (
            vec!["bad label", "github:o/r"],
            2,
            "invalid target spec: label",
        ),
        (vec!["ci", "github:other/repo"], 1, "remove it first"),
        (vec![&"l".repeat(64), "github:o/r"], 0, ""),
    ] {
        let mut full = vec!["deliver", "add", secret.as_str()];
        full.extend(args.iter().copied());
        let run = keyrot(&full).await;
        assert_eq!(run.code, code, "{full:?}: {}{}", run.stdout, run.stderr);
        assert!(run.stderr.contains(says), "{full:?}: {}", run.stderr);
        if code != 0 {
            assert_eq!(
                world.secret_tags(&setup.fixture.secret_arn).await,
                tags_before
            );
        }
    }
    let long = [&"m".repeat(64), &"n".repeat(64), &"o".repeat(64)];
    let before = world.secret_tags(&setup.fixture.secret_arn).await;
    let mut refused = false;
    for label in long {
        let run = keyrot(&["deliver", "add", &secret, label, "github:o/r"]).await;
        if run.code == 1 {
            assert!(run.stderr.contains("record too long"), "{}", run.stderr);
            refused = true;
            break;
        }
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    assert!(
        refused,
        "four labels of 64 characters cannot fit: {before:?}"
    );

    let listed = keyrot(&["deliver", "list", &secret, "--output", "json"]).await;
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let rows = listed.json();
    let ci = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["label"] == "ci")
        .unwrap()
        .clone();
    assert_eq!(ci["spec"], spec.as_str());
    assert_eq!(ci["kind"], "github");
    assert_eq!(ci["delivered"], false);
    let table = keyrot(&["deliver", "list", "--prefix", &setup.prefix]).await;
    assert!(table.stdout.contains("not yet"), "{}", table.stdout);

    let removed = keyrot(&["deliver", "remove", &secret, "ci", "--output", "json"]).await;
    assert_eq!(removed.code, 0, "{}", removed.stderr);
    assert_eq!(removed.json()["changed"], true);
    assert_eq!(
        world
            .secret_tag(&setup.fixture.secret_arn, "iam-key-rotation:deliver:ci")
            .await,
        None
    );
    let gone = keyrot(&["deliver", "remove", &secret, "ci"]).await;
    assert_eq!(gone.code, 0);
    assert!(gone.stdout.contains("Nothing to do"), "{}", gone.stdout);
}

/// `keyrot enroll --deliver LABEL=SPEC` tags the new secret before rotation is
/// attached (an invalid spec refused before anything is written), and `keyrot
/// status` shows `delivered 1/2` and the `undelivered` state with the failing
/// target and its last error.
#[tokio::test]
async fn enroll_deliver_and_the_undelivered_state_in_status() {
    let setup = Setup::new().await;
    let world = &setup.world;
    let user = unique("enrolled");
    world.create_user(&user, &[]).await;
    let function = harness::keyrot::register_function(&moto().endpoint, "delivery-enroll-target");
    let secret_name = format!("{}{user}", setup.prefix);
    let refused = keyrot(&[
        "enroll",
        &user,
        "--function-arn",
        &function,
        "--secret-name",
        &secret_name,
        "--no-rotate-now",
        "--deliver",
        "ci=github:acme",
    ])
    .await;
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("invalid target spec"),
        "{}",
        refused.stderr
    );
    assert!(
        world
            .secrets()
            .describe_secret()
            .secret_id(&secret_name)
            .send()
            .await
            .is_err(),
        "nothing written"
    );
    let enrolled = keyrot(&[
        "enroll",
        &user,
        "--function-arn",
        &function,
        "--secret-name",
        &secret_name,
        "--no-rotate-now",
        "--deliver",
        &format!("ci={}", setup.repo_spec()),
        "--deliver",
        &format!("broken=github:{}/missing", setup.owner),
        "--output",
        "json",
    ])
    .await;
    assert_eq!(enrolled.code, 0, "{}", enrolled.stderr);
    let plan = enrolled.json();
    let secret_arn = plan["secret_arn"].as_str().unwrap().to_string();
    let actions = plan["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 5, "{plan}");
    assert!(
        actions[3]
            .as_str()
            .unwrap()
            .contains("iam-key-rotation:deliver:broken"),
        "{plan}"
    );
    assert_eq!(
        world
            .secret_tag(&secret_arn, "iam-key-rotation:deliver:ci")
            .await
            .as_deref(),
        Some(setup.repo_spec().as_str())
    );

    // A rotation (by the rotation function), then a delivery that fails one target.
    let fixture = Fixture {
        user: user.clone(),
        secret_name: secret_name.clone(),
        secret_arn: secret_arn.clone(),
    };
    world
        .rotate_as(Config::default(), &fixture, &function)
        .await;
    let mut deliverer = setup.deliverer().await;
    let response = deliverer.deliver(Some(&secret_arn)).await;
    deliverer.stop().await;
    assert_eq!(labels_of(&response, "Failed"), ["broken"], "{response}");
    let status = keyrot(&["status", "--prefix", &setup.prefix, "--output", "json"]).await;
    let rows = status.json();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["secret_arn"] == secret_arn.as_str())
        .unwrap_or_else(|| panic!("{rows}"))
        .clone();
    assert_eq!(row["state"], "undelivered", "{row}");
    assert_eq!(row["delivery"]["delivered"], 1, "{row}");
    assert_eq!(row["delivery"]["targets"], 2, "{row}");
    assert_eq!(row["delivery"]["undelivered"], json!(["broken"]), "{row}");
    let last_error = row["delivery"]["last_error"].as_str().unwrap();
    assert!(
        last_error.starts_with("broken: ") && last_error.contains("404"),
        "{last_error}"
    );
    let fix = row["fix"].as_str().unwrap();
    assert!(
        fix.starts_with("target broken does not hold the current version"),
        "{fix}"
    );
    let table = keyrot(&["status", "--prefix", &setup.prefix]).await;
    assert!(table.stdout.contains("delivered 1/2"), "{}", table.stdout);
    assert!(table.stdout.contains("undelivered"), "{}", table.stdout);
}

/// The template's rule, read from template.yaml and installed in moto's
/// EventBridge (an SQS queue standing in for the function), turns the events
/// the rotation function and keyrot put into the delivery function's event,
/// which the binary accepts; other events do not match.
#[tokio::test]
async fn the_templates_rule_turns_a_rotation_or_rollback_into_a_delivery_run() {
    use aws_sdk_eventbridge::types::{InputTransformer, PutEventsRequestEntry};
    use iam_key_rotation::{Lifecycle, Retired, Subject};
    let text = std::fs::read_to_string(repo_root().join("template.yaml")).unwrap();
    let template: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    let rule = &template["Resources"]["DeliveryFunction"]["Properties"]["Events"]["KeyChanged"]["Properties"];
    let pattern: Value = serde_json::to_value(&rule["Pattern"]).unwrap();
    let transformer = &rule["InputTransformer"];
    let paths = transformer["InputPathsMap"]
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().unwrap().to_string(),
                v.as_str().unwrap().to_string(),
            )
        })
        .collect();
    let queue = event_queue::EventQueue::subscribe_with(
        &moto().endpoint,
        &pattern,
        Some(
            InputTransformer::builder()
                .set_input_paths_map(Some(paths))
                .input_template(transformer["InputTemplate"].as_str().unwrap())
                .build()
                .unwrap(),
        ),
    )
    .await;
    let setup = Setup::new().await;
    let subject = Subject {
        secret_arn: setup.fixture.secret_arn.clone(),
        secret_name: setup.fixture.secret_name.clone(),
        user: Some(setup.fixture.user.clone()),
        account: Some(ACCOUNT.into()),
        version_id: new_token(),
    };
    let entry = |event: Lifecycle| {
        PutEventsRequestEntry::builder()
            .source("iam-key-rotation")
            .detail_type(event.detail_type())
            .detail(event.detail(&subject).to_string())
            .build()
    };
    aws_sdk_eventbridge::Client::new(&sdk_config(&moto().endpoint).await)
        .put_events()
        .entries(entry(Lifecycle::rotated("AKIANEW", Some("AKIAOLD"))))
        .entries(entry(Lifecycle::retired("AKIAOLD", Retired::Deactivated)))
        .entries(entry(Lifecycle::RolledBack {
            restored: "AKIAOLD".into(),
            rolled_back: "AKIANEW".into(),
        }))
        .send()
        .await
        .unwrap();
    // Other tests rotate at the same time: only this secret's events count.
    let bodies: Vec<String> = queue
        .receive_bodies(usize::MAX, Duration::from_secs(6))
        .await
        .into_iter()
        .filter(|body| body.contains(&setup.fixture.secret_arn))
        .collect();
    assert_eq!(bodies.len(), 2, "rotated and rolled back only: {bodies:?}");
    let mut deliverer = setup.deliverer().await;
    for body in bodies {
        let payload: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{body}"));
        assert_eq!(
            payload,
            json!({"Action": "deliver", "SecretId": setup.fixture.secret_arn})
        );
        let harness::runtime_api::Reply::Response(response) =
            deliverer.invoke_payload(payload).await
        else {
            panic!("the delivery function refused the rule's event")
        };
        assert_eq!(response["Action"], "deliver");
    }
    deliverer.stop().await;
}

/// Whoever may write the secret's value cannot push a pair of their choosing
/// into the targets (a key of another user, of an unbound user, of a user in
/// an account of their own): only a key the rotation vouches for (its user
/// bound to the secret, its description naming this version, or its pair
/// authenticating as that user) is delivered.
#[tokio::test]
async fn a_key_written_into_the_value_by_hand_is_never_delivered() {
    let setup = Setup::new().await;
    let world = &setup.world;
    world
        .tag_secret(
            &setup.fixture.secret_arn,
            &[("iam-key-rotation:deliver:ci", &setup.repo_spec())],
        )
        .await;
    let attacker = unique("attacker");
    world.create_user(&attacker, &[]).await;
    let (attacker_key, attacker_secret) = world.create_key(&attacker).await;
    let current = world.current_value(&setup.fixture.secret_arn).await.1;
    let forged = |user: &str, role: Option<&str>| {
        let mut value = current.clone();
        value["UserName"] = json!(user);
        value["AccessKeyId"] = json!(attacker_key);
        value["SecretAccessKey"] = json!(attacker_secret);
        if let Some(role) = role {
            value["RoleArn"] = json!(role);
        }
        value
    };
    let mut deliverer = setup.deliverer().await;
    for (value, says) in [
        (forged(&setup.fixture.user, None), "authenticates as"),
        (forged(&attacker, None), "is not bound to the secret"),
        (
            forged(&attacker, Some("arn:aws:iam::999999999999:role/mine")),
            "not one of the stack's AssumableRoleArns",
        ),
    ] {
        world.put_current(&setup.fixture, &value).await;
        let response = deliverer.deliver(Some(&setup.fixture.secret_arn)).await;
        assert_eq!(response["Delivered"], json!([]), "{response}");
        let error = response["Failed"][0]["error"].as_str().unwrap();
        assert!(
            error.starts_with("not delivered: the current version's key"),
            "{error}"
        );
        assert!(error.contains(says), "{says:?} not in {error}");
    }
    // The user's own description tag for the forged version (its tag key is
    // the access key id, which no SCP reserves) vouches for nothing either.
    world
        .put_current(&setup.fixture, &forged(&setup.fixture.user, None))
        .await;
    let (version, _) = world.current_value(&setup.fixture.secret_arn).await;
    world
        .tag_user(
            &setup.fixture.user,
            &attacker_key,
            &format!("iam-key-rotation {} {version}", setup.fixture.secret_arn),
        )
        .await;
    let response = deliverer.deliver(Some(&setup.fixture.secret_arn)).await;
    assert_eq!(response["Delivered"], json!([]), "{response}");
    let error = response["Failed"][0]["error"].as_str().unwrap();
    assert!(error.contains("authenticates as"), "{error}");
    deliverer.stop().await;
    let holder = setup.repo_holder();
    assert_eq!(
        setup.github.secret(&holder, "AWS_ACCESS_KEY_ID").await,
        None
    );
    assert!(
        setup
            .github
            .calls()
            .await
            .iter()
            .all(|call| call.method != "PUT"),
        "nothing was written to GitHub"
    );
}

/// A rollback after a delivery that wrote its targets but never recorded it
/// (killed, or cut short by its deadline): the record still says the targets
/// hold the version being restored while they hold the key rolled back from,
/// which the sweep would then retire from under them. `keyrot rollback` drops
/// the record, so the run its event starts writes the restored key again.
#[tokio::test]
async fn a_rollback_has_every_target_written_with_the_restored_key_again() {
    let setup = Setup::new().await;
    let world = &setup.world;
    world
        .tag_secret(
            &setup.fixture.secret_arn,
            &[("iam-key-rotation:deliver:ci", &setup.repo_spec())],
        )
        .await;
    let mut deliverer = setup.deliverer().await;
    let restored_version = setup.rotate(Config::default()).await;
    let restored_key = world.current_key(&setup.fixture).await.unwrap();
    assert_eq!(deliverer.deliver(None).await["Failed"], json!([]));
    let restored_record = world
        .secret_tag(&setup.fixture.secret_arn, DELIVERED)
        .await
        .unwrap();
    assert!(
        restored_record.starts_with(&restored_version),
        "{restored_record}"
    );

    setup.rotate(Config::default()).await;
    let rolled_back_key = world.current_key(&setup.fixture).await.unwrap();
    assert_eq!(deliverer.deliver(None).await["Failed"], json!([]));
    assert!(target_holds(&setup, "", "", "ci", &rolled_back_key).await);
    // The run's record lost: the tag says what it said before the run.
    world
        .tag_secret(&setup.fixture.secret_arn, &[(DELIVERED, &restored_record)])
        .await;

    let run = keyrot(&["rollback", &setup.fixture.secret_name, "--output", "json"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        world.secret_tag(&setup.fixture.secret_arn, DELIVERED).await,
        None,
        "the rollback kept a record that may not be true"
    );
    assert_eq!(
        world.current_key(&setup.fixture).await.unwrap(),
        restored_key
    );
    let response = deliverer.deliver(None).await;
    assert_eq!(labels_of(&response, "Delivered"), ["ci"], "{response}");
    assert!(
        target_holds(&setup, "", "", "ci", &restored_key).await,
        "the target still holds the key rolled back from"
    );
    let record = world
        .secret_tag(&setup.fixture.secret_arn, DELIVERED)
        .await
        .unwrap();
    assert!(record.starts_with(&restored_version), "{record}");
    // The key rolled back from is AWSPREVIOUS, and Active: nothing retired it.
    assert_eq!(setup.keys().await[&rolled_back_key], "Active");
    deliverer.stop().await;
}

/// A delivery run held up by GitHub (its secondary rate limit) while
/// `AWSCURRENT` is moved back by hand (`update-secret-version-stage`, no
/// keyrot): its write lands after the move, so the record of the version now
/// current must stop saying the target holds it, and the next run writes the
/// restored key there again; the run's next target, started more than a second
/// after `AWSCURRENT` was last seen, is not written at all.
#[tokio::test]
async fn a_write_that_lands_after_a_rollback_is_not_left_recorded_as_the_restored_key() {
    use harness::github_standin::Fault;
    let setup = Setup::new().await;
    let world = &setup.world;
    let path = format!("/{}", unique("raced").replace('-', "_"));
    world
        .tag_secret(
            &setup.fixture.secret_arn,
            &[
                ("iam-key-rotation:deliver:ci", &setup.repo_spec()),
                (
                    "iam-key-rotation:deliver:params",
                    &format!("ssm:{REGION}:{path}"),
                ),
            ],
        )
        .await;
    let mut deliverer = setup.deliverer().await;
    let restored_version = setup.rotate(Config::default()).await;
    let restored_key = world.current_key(&setup.fixture).await.unwrap();
    assert_eq!(deliverer.deliver(None).await["Failed"], json!([]));
    let rolled_back_version = setup.rotate(Config::default()).await;

    setup
        .github
        .fail_next(Fault {
            status: 429,
            count: 1,
            path: Some("/AWS_ACCESS_KEY_ID".into()),
            method: Some("PUT"),
            headers: vec![("retry-after", "3".into())],
            ..Fault::default()
        })
        .await;
    let roll_back_by_hand = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        world
            .secrets()
            .update_secret_version_stage()
            .secret_id(&setup.fixture.secret_arn)
            .version_stage("AWSCURRENT")
            .move_to_version_id(&restored_version)
            .remove_from_version_id(&rolled_back_version)
            .send()
            .await
            .unwrap();
    };
    let (raced, ()) = tokio::join!(deliverer.deliver(None), roll_back_by_hand);
    assert_eq!(labels_of(&raced, "Delivered"), ["ci"], "{raced}");
    // The next target was not written with a version no longer current.
    assert_eq!(labels_of(&raced, "Failed"), ["params"], "{raced}");
    assert!(
        raced["Failed"][0]["error"]
            .as_str()
            .unwrap()
            .contains("stopped being AWSCURRENT"),
        "{raced}"
    );
    assert!(target_holds(&setup, &path, "", "params", &restored_key).await);
    let record = world
        .secret_tag(&setup.fixture.secret_arn, DELIVERED)
        .await
        .unwrap_or_default();
    assert!(
        !record.starts_with(&restored_version) || !record.ends_with(" ci"),
        "the record says ci holds the restored version, which the run overwrote: {record}"
    );
    let response = deliverer.deliver(None).await;
    assert_eq!(labels_of(&response, "Delivered"), ["ci"], "{response}");
    assert_eq!(response["Failed"], json!([]), "{response}");
    assert!(
        target_holds(&setup, "", "", "ci", &restored_key).await,
        "the target was left with the key rolled back from"
    );
    deliverer.stop().await;
}

/// A rollback by hand over a delivery record that lost a run's writes (the
/// record still says the targets hold the restored version, from before): the
/// sweep counts a delivery only if it was confirmed after `AWSCURRENT`'s
/// recorded move, so it does not retire the key the targets hold.
#[tokio::test]
async fn a_delivery_record_from_before_a_rollback_by_hand_retires_nothing() {
    let setup = Setup::new().await;
    let world = &setup.world;
    world
        .tag_secret(
            &setup.fixture.secret_arn,
            &[("iam-key-rotation:deliver:ci", &setup.repo_spec())],
        )
        .await;
    let mut deliverer = setup.deliverer().await;
    let restored_version = setup.rotate(Config::default()).await;
    assert_eq!(deliverer.deliver(None).await["Failed"], json!([]));
    let rolled_back_version = setup.rotate(Config::default()).await;
    let rolled_back_key = world.current_key(&setup.fixture).await.unwrap();
    assert_eq!(deliverer.deliver(None).await["Failed"], json!([]));
    deliverer.stop().await;
    // The record as it was before the second delivery, a while ago.
    let long_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 100;
    world
        .tag_secret(
            &setup.fixture.secret_arn,
            &[(DELIVERED, &format!("{restored_version} {long_ago} ci"))],
        )
        .await;
    world
        .secrets()
        .update_secret_version_stage()
        .secret_id(&setup.fixture.secret_arn)
        .version_stage("AWSCURRENT")
        .move_to_version_id(&restored_version)
        .remove_from_version_id(&rolled_back_version)
        .send()
        .await
        .unwrap();
    for _ in 0..2 {
        let response = setup.sweep(Config::default()).await;
        assert_eq!(response["Deactivated"], json!([]), "{response}");
        assert_eq!(response["Deleted"], json!([]), "{response}");
    }
    assert_eq!(setup.keys().await[&rolled_back_key], "Active");
}

/// A stack with no `SecretNamePrefix` may rotate any secret of the account, so
/// a copy target is asked whether a rotation function rotates it: a copy
/// never overwrites a rotated secret, whatever `DeliverySecretPrefix` allows.
#[tokio::test]
async fn a_copy_never_overwrites_a_rotated_secret_even_without_a_prefix() {
    let setup = Setup::new().await;
    let world = &setup.world;
    let rotated = world.user_with_key().await;
    world.rotate_now(&rotated).await;
    let before = world.current_value(&rotated.secret_arn).await;
    world
        .tag_secret(
            &setup.fixture.secret_arn,
            &[(
                "iam-key-rotation:deliver:copy",
                &format!("secretsmanager:{}", rotated.secret_arn),
            )],
        )
        .await;
    setup.rotate(Config::default()).await;
    let env = deliver_env(&setup.github, &setup.credentials, "");
    let mut deliverer = Function::start_deliver(&moto().endpoint, &env_pairs(&env)).await;
    let response = deliverer.deliver(Some(&setup.fixture.secret_arn)).await;
    deliverer.stop().await;
    assert_eq!(labels_of(&response, "Failed"), ["copy"], "{response}");
    assert!(
        response["Failed"][0]["error"]
            .as_str()
            .unwrap()
            .contains("a rotation function rotates"),
        "{response}"
    );
    assert_eq!(world.current_value(&rotated.secret_arn).await, before);
}
