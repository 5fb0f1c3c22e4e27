//! Shared test fixtures: one moto server per test binary, SDK clients pointed at
//! it, and helpers that set up users and secrets the way Secrets Manager would
//! leave them before `createSecret`.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use aws_config::BehaviorVersion;
use aws_sdk_iam::config::interceptors::AfterDeserializationInterceptorContextRef;
use aws_sdk_iam::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_iam::operation::create_access_key::CreateAccessKeyOutput;
use aws_sdk_iam::types::{StatusType, Tag};
use aws_sdk_secretsmanager::config::Credentials;
use iam_key_rotation::{Clients, Config, Invocation, RotationError, Rotator};
use serde_json::{Value, json};

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "123456789012";
pub const BINDING_TAG: &str = "iam-key-rotation:secret";
/// The function every test secret names as its rotation function, and the ARN
/// the function is invoked by (the local Runtime API sends the same one).
pub const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:iam-key-rotation";

/// A moto server started for this test binary. The child holds the write end of
/// the guard's stdin; the guard stops moto when this process exits.
pub struct Moto {
    pub endpoint: String,
    _guard: Mutex<Child>,
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python that has the pinned moto (`scripts/test.sh` makes `.venv`).
fn moto_python() -> PathBuf {
    std::env::var_os("MOTO_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/python"))
}

pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| {
        let python = moto_python();
        let mut child = Command::new(&python)
            .arg(repo_root().join("tests/support/moto_guard.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot start moto with {}: {error}. Run scripts/test.sh, which installs it into .venv",
                    python.display()
                )
            });
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("moto guard printed no port: {line:?}"));
        Moto {
            endpoint: format!("http://127.0.0.1:{port}"),
            _guard: Mutex::new(child),
        }
    })
}

/// Access keys as IAM handed them out, captured from `CreateAccessKey` responses
/// by an SDK interceptor: the only way to check invariant 3 against moto, which
/// has no call that returns a key's secret later.
#[derive(Debug, Default, Clone)]
pub struct KeyLedger(Arc<Mutex<HashMap<String, String>>>);

impl KeyLedger {
    pub fn secret_of(&self, key_id: &str) -> Option<String> {
        self.0.lock().unwrap().get(key_id).cloned()
    }

    pub fn all_secrets(&self) -> Vec<String> {
        self.0.lock().unwrap().values().cloned().collect()
    }
}

impl Intercept for KeyLedger {
    fn name(&self) -> &'static str {
        "KeyLedger"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), aws_sdk_iam::error::BoxError> {
        if let Ok(output) = context.output_or_error()
            && let Some(created) = output.downcast_ref::<CreateAccessKeyOutput>()
            && let Some(key) = created.access_key()
        {
            record_issued_secret(key.secret_access_key());
            self.0.lock().unwrap().insert(
                key.access_key_id().to_string(),
                key.secret_access_key().to_string(),
            );
        }
        Ok(())
    }
}

pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(REGION)
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .load()
        .await
}

/// An invocation as Secrets Manager makes it: by the secret's rotation function,
/// with no deadline (in-process tests wait as long as they need).
pub fn invocation() -> Invocation<'static> {
    Invocation {
        function_arn: FUNCTION_ARN,
        deadline: None,
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// A name no other test in this run (or an earlier run on the same server) uses.
pub fn unique(prefix: &str) -> String {
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{n}-{nanos}", std::process::id())
}

/// A token shaped as Secrets Manager makes them (32-64 characters).
pub fn new_token() -> String {
    let a = fastrand::u64(..);
    let b = fastrand::u64(..);
    format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        b >> 52,
        b & 0xffff_ffff_ffff
    )
}

/// Clients for the test itself (set-up and inspection) and a rotator that
/// shares their configuration.
pub struct World {
    pub clients: Clients,
    pub ledger: KeyLedger,
}

/// One secret and its user, as a test sets them up.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub user: String,
    pub secret_name: String,
    pub secret_arn: String,
}

/// The state a test compares before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Access key id to "Active"/"Inactive".
    pub keys: BTreeMap<String, String>,
    /// User tags.
    pub tags: BTreeMap<String, String>,
    /// Version id to its sorted staging labels.
    pub versions: BTreeMap<String, Vec<String>>,
    pub rotation_enabled: bool,
}

impl World {
    pub async fn new() -> Self {
        Self::with_endpoint(&moto().endpoint).await
    }

    /// Clients that reach moto through `endpoint` (a fault proxy, say).
    pub async fn with_endpoint(endpoint: &str) -> Self {
        capture_handler_logs();
        let config = sdk_config(endpoint).await;
        let ledger = KeyLedger::default();
        let mut clients = Clients::new(&config);
        let iam_config = clients
            .iam
            .config()
            .to_builder()
            .interceptor(ledger.clone())
            .build();
        clients.iam = aws_sdk_iam::Client::from_conf(iam_config);
        Self { clients, ledger }
    }

    pub fn rotator(&self, config: Config) -> Rotator {
        Rotator::new(self.clients.clone(), config)
    }

    pub fn iam(&self) -> &aws_sdk_iam::Client {
        &self.clients.iam
    }

    pub fn secrets(&self) -> &aws_sdk_secretsmanager::Client {
        &self.clients.secrets
    }

    pub async fn create_user(&self, name: &str, tags: &[(&str, &str)]) {
        let tags: Vec<Tag> = tags
            .iter()
            .map(|(k, v)| Tag::builder().key(*k).value(*v).build().unwrap())
            .collect();
        self.iam()
            .create_user()
            .user_name(name)
            .set_tags(Some(tags))
            .send()
            .await
            .unwrap();
    }

    pub async fn create_key(&self, user: &str) -> (String, String) {
        let output = self
            .iam()
            .create_access_key()
            .user_name(user)
            .send()
            .await
            .unwrap();
        let key = output.access_key().unwrap();
        (
            key.access_key_id().to_string(),
            key.secret_access_key().to_string(),
        )
    }

    pub async fn create_secret(&self, name: &str, value: &Value) -> String {
        self.secrets()
            .create_secret()
            .name(name)
            .secret_string(value.to_string())
            .send()
            .await
            .unwrap()
            .arn()
            .unwrap()
            .to_string()
    }

    /// A user with a first key, bound to a secret that holds that key.
    pub async fn user_with_key(&self) -> Fixture {
        let fixture = self.bound_user().await;
        let (id, secret) = self.create_key(&fixture.user).await;
        self.put_current(
            &fixture,
            &json!({"UserName": fixture.user, "AccessKeyId": id, "SecretAccessKey": secret}),
        )
        .await;
        fixture
    }

    /// A user bound to a secret that names only the user (adoption).
    pub async fn bound_user(&self) -> Fixture {
        let user = unique("user");
        let secret_name = unique("secret");
        self.create_user(&user, &[(BINDING_TAG, &secret_name)])
            .await;
        let secret_arn = self
            .create_secret(&secret_name, &json!({ "UserName": user }))
            .await;
        Fixture {
            user,
            secret_name,
            secret_arn,
        }
    }

    /// An IAM client acting in `account` through a role there (moto lets any role
    /// be assumed), recording created keys in the same ledger.
    pub async fn iam_in_account(&self, role_arn: &str) -> aws_sdk_iam::Client {
        let credentials = self
            .clients
            .sts
            .assume_role()
            .role_arn(role_arn)
            .role_session_name("tests")
            .send()
            .await
            .unwrap()
            .credentials()
            .unwrap()
            .clone();
        let config = self
            .clients
            .iam
            .config()
            .to_builder()
            .credentials_provider(aws_sdk_iam::config::Credentials::new(
                credentials.access_key_id(),
                credentials.secret_access_key(),
                Some(credentials.session_token().to_string()),
                None,
                "tests-assumed-role",
            ))
            .build();
        aws_sdk_iam::Client::from_conf(config)
    }

    /// Removes the user's binding tag, as a careless operator might.
    pub async fn unbind(&self, user: &str) {
        self.iam()
            .untag_user()
            .user_name(user)
            .tag_keys(BINDING_TAG)
            .send()
            .await
            .unwrap();
    }

    /// Stores a new `AWSCURRENT` value, as an operator would.
    pub async fn put_current(&self, fixture: &Fixture, value: &Value) {
        self.secrets()
            .put_secret_value()
            .secret_id(&fixture.secret_arn)
            .secret_string(value.to_string())
            .send()
            .await
            .unwrap();
    }

    /// Puts the secret where Secrets Manager has it before `createSecret`: rotation
    /// enabled and an `AWSPENDING` version without a value. moto has no Lambda to
    /// invoke here, so it stages the version and then answers
    /// ResourceNotFoundException for the function, which we ignore.
    pub async fn start_rotation(&self, fixture: &Fixture) -> String {
        self.start_rotation_by(fixture, FUNCTION_ARN).await
    }

    /// As [`Self::start_rotation`], with `function_arn` as the secret's rotation function.
    pub async fn start_rotation_by(&self, fixture: &Fixture, function_arn: &str) -> String {
        let token = new_token();
        let result = self
            .secrets()
            .rotate_secret()
            .secret_id(&fixture.secret_arn)
            .client_request_token(&token)
            .rotation_lambda_arn(function_arn)
            .rotation_rules(
                aws_sdk_secretsmanager::types::RotationRulesType::builder()
                    .automatically_after_days(30)
                    .build(),
            )
            .send()
            .await;
        if let Err(error) = result {
            let service_error = error.into_service_error();
            assert!(
                service_error.is_resource_not_found_exception(),
                "unexpected RotateSecret failure: {service_error:?}"
            );
        }
        token
    }

    pub async fn invoke(
        &self,
        rotator: &Rotator,
        step: &str,
        secret_id: &str,
        token: &str,
    ) -> Result<Value, RotationError> {
        let result = rotator
            .handle(
                json!({"Step": step, "SecretId": secret_id, "ClientRequestToken": token}),
                invocation(),
            )
            .await;
        if let Err(error) = &result {
            record_log(&error.to_string());
        }
        result
    }

    /// Runs all four steps, stopping at the first failure.
    pub async fn rotate(
        &self,
        rotator: &Rotator,
        fixture: &Fixture,
        token: &str,
    ) -> Result<(), RotationError> {
        for step in STEPS {
            self.invoke(rotator, step, &fixture.secret_arn, token)
                .await?;
        }
        Ok(())
    }

    pub async fn snapshot(&self, fixture: &Fixture) -> Snapshot {
        let keys = access_keys(self.iam(), &fixture.user).await;
        let tags = self
            .iam()
            .list_user_tags()
            .user_name(&fixture.user)
            .send()
            .await
            .unwrap()
            .tags()
            .iter()
            .map(|tag| (tag.key().to_string(), tag.value().to_string()))
            .collect();
        let described = self
            .secrets()
            .describe_secret()
            .secret_id(&fixture.secret_arn)
            .send()
            .await
            .unwrap();
        let versions = described
            .version_ids_to_stages()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|(id, mut stages)| {
                stages.sort();
                (id, stages)
            })
            .collect();
        Snapshot {
            keys,
            tags,
            versions,
            rotation_enabled: described.rotation_enabled().unwrap_or(false),
        }
    }

    /// The value stored under `stage`, if any.
    pub async fn value(&self, fixture: &Fixture, stage: &str) -> Option<Value> {
        let output = self
            .secrets()
            .get_secret_value()
            .secret_id(&fixture.secret_arn)
            .version_stage(stage)
            .send()
            .await
            .ok()?;
        Some(serde_json::from_str(output.secret_string()?).unwrap())
    }

    /// SPEC 6 invariant 1: the key `AWSCURRENT` holds exists and is Active.
    pub async fn assert_current_key_works(&self, fixture: &Fixture, context: &str) {
        let key = self
            .current_key(fixture)
            .await
            .expect("AWSCURRENT holds a key");
        let snapshot = self.snapshot(fixture).await;
        assert_eq!(
            snapshot.keys.get(&key).map(String::as_str),
            Some("Active"),
            "{context}: the AWSCURRENT key {key} does not work: {snapshot:?}"
        );
    }

    pub async fn current_key(&self, fixture: &Fixture) -> Option<String> {
        self.value(fixture, "AWSCURRENT").await?["AccessKeyId"]
            .as_str()
            .map(str::to_string)
    }

    pub async fn set_key_status(&self, user: &str, key: &str, status: StatusType) {
        self.iam()
            .update_access_key()
            .user_name(user)
            .access_key_id(key)
            .status(status)
            .send()
            .await
            .unwrap();
    }

    /// SPEC section 6, invariants 2 and 3, after a completed rotation: at most two
    /// keys, every key is AWSCURRENT's, AWSPREVIOUS's or unmanaged, no AWSPENDING
    /// is left, and the stored secret key is the one IAM returned.
    pub async fn assert_rotation_complete(&self, fixture: &Fixture, unmanaged: &[&str]) {
        let ledger = self.ledger.clone();
        self.assert_rotation_complete_issued(fixture, unmanaged, &move |key| ledger.secret_of(key))
            .await
    }

    /// As [`Self::assert_rotation_complete`], with the issued secrets looked up
    /// by `issued` (keys made by the function binary are seen by a fault proxy).
    pub async fn assert_rotation_complete_issued(
        &self,
        fixture: &Fixture,
        unmanaged: &[&str],
        issued: &(dyn Fn(&str) -> Option<String> + Sync),
    ) {
        let snapshot = self.snapshot(fixture).await;
        assert!(snapshot.keys.len() <= 2, "more than two keys: {snapshot:?}");
        let current = self.value(fixture, "AWSCURRENT").await.unwrap();
        let current_key = current["AccessKeyId"].as_str().unwrap();
        assert_eq!(
            snapshot.keys.get(current_key).map(String::as_str),
            Some("Active"),
            "{snapshot:?}"
        );
        let issued =
            issued(current_key).expect("every key in these tests is created where it is recorded");
        assert_eq!(
            current["SecretAccessKey"].as_str(),
            Some(issued.as_str()),
            "invariant 3"
        );
        let previous_key = self
            .value(fixture, "AWSPREVIOUS")
            .await
            .and_then(|v| v["AccessKeyId"].as_str().map(str::to_string));
        for key in snapshot.keys.keys() {
            assert!(
                key == current_key
                    || Some(key) == previous_key.as_ref()
                    || unmanaged.contains(&key.as_str()),
                "key {key} is neither AWSCURRENT, AWSPREVIOUS nor unmanaged: {snapshot:?}"
            );
        }
        let pending: Vec<_> = snapshot
            .versions
            .values()
            .filter(|stages| stages.iter().any(|s| s == "AWSPENDING"))
            .collect();
        assert!(pending.is_empty(), "AWSPENDING left behind: {snapshot:?}");
        assert!(
            snapshot
                .tags
                .get("iam-key-rotation:creating")
                .is_none_or(String::is_empty),
            "creation marker left set: {snapshot:?}"
        );
    }
}

/// The user's access keys, id to "Active"/"Inactive", as `iam` sees them.
pub async fn access_keys(iam: &aws_sdk_iam::Client, user: &str) -> BTreeMap<String, String> {
    iam.list_access_keys()
        .user_name(user)
        .send()
        .await
        .unwrap()
        .access_key_metadata()
        .iter()
        .map(|key| {
            (
                key.access_key_id().unwrap().to_string(),
                key.status().unwrap().as_str().to_string(),
            )
        })
        .collect()
}

pub const STEPS: [&str; 4] = ["createSecret", "setSecret", "testSecret", "finishSecret"];

pub fn config_with(action: iam_key_rotation::OldKeyAction) -> Config {
    Config {
        old_key_action: action,
        ..Config::default()
    }
}

pub mod fault_proxy;
pub mod function;
pub mod local_http;
pub mod runtime_api;

/// Evidence for the suite-wide secret scan (`scripts/scan-test-logs.sh`): every
/// line the function logged or answered, in-process or as a binary, and every
/// secret it handled, one file pair per test process under target/test-evidence.
pub fn evidence_dir() -> PathBuf {
    repo_root().join("target/test-evidence")
}

fn evidence_file(extension: &str) -> &'static Mutex<std::fs::File> {
    static LOG: OnceLock<Mutex<std::fs::File>> = OnceLock::new();
    static SECRETS: OnceLock<Mutex<std::fs::File>> = OnceLock::new();
    let cell = if extension == "log" { &LOG } else { &SECRETS };
    cell.get_or_init(|| {
        std::fs::create_dir_all(evidence_dir()).unwrap();
        let exe = std::env::current_exe().unwrap();
        let name = exe.file_stem().unwrap().to_string_lossy().to_string();
        let path = evidence_dir().join(format!("{name}-{}.{extension}", std::process::id()));
        Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .unwrap(),
        )
    })
}

fn append(extension: &str, text: &str) {
    use std::io::Write;
    let mut file = evidence_file(extension).lock().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    if !text.ends_with('\n') {
        file.write_all(b"\n").unwrap();
    }
}

/// A secret the function handled, which no log line may contain.
pub fn record_issued_secret(secret: &str) {
    append("secrets", secret);
}

/// Something the function logged or answered.
pub fn record_log(text: &str) {
    append("log", text);
}

/// Writes the in-process handler's logs, formatted by the Lambda runtime's own
/// subscriber, into this process's evidence log.
#[derive(Clone, Copy)]
pub struct EvidenceWriter;

impl std::io::Write for EvidenceWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        evidence_file("log").lock().unwrap().write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn capture_handler_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        lambda_runtime::tracing::init_default_subscriber_with_writer(|| EvidenceWriter)
    });
}
