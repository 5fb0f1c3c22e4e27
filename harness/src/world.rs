//! The test's view of AWS: clients pointed at moto (or a fault proxy), fixtures
//! set up the way an operator and Secrets Manager would leave them, and the
//! in-process handler invoked as the Lambda runtime would.

use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_iam::types::Tag;
use iam_key_rotation::{Clients, Config, Handler, Invocation, RotationError};
use serde_json::{Value, json};

use crate::admin::AdminClients;
use crate::evidence::{capture_handler_logs, record_log};
use crate::ledger::KeyLedger;
use crate::moto::{ROTATION_FUNCTION_KEY, moto, sdk_config, sdk_config_as};
use crate::{BINDING_TAG, FUNCTION_ARN};

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

/// Clients for the test itself (set-up and inspection) and a handler that
/// shares their configuration.
pub struct World {
    /// The test's own clients (set-up and inspection), as an administrator.
    pub clients: AdminClients,
    /// Their configuration, for the clients of another account's role.
    config: aws_config::SdkConfig,
    /// The rotation function's clients, signing as the function.
    pub function_clients: Clients,
    pub ledger: KeyLedger,
    /// A handler with the default configuration, on the same clients.
    pub handler: Handler,
}

/// One secret and its user, as a test sets them up.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub user: String,
    pub secret_name: String,
    pub secret_arn: String,
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
        let clients = AdminClients::new(&config, &ledger);
        // The function signs as itself, so that moto records its calls (and
        // only its calls) for the least-privilege check.
        let function_clients = Clients::new(&sdk_config_as(endpoint, ROTATION_FUNCTION_KEY).await)
            .with_iam_interceptor(ledger.clone());
        let handler = Handler::new(function_clients.clone(), Config::default());
        Self {
            clients,
            config,
            function_clients,
            ledger,
            handler,
        }
    }

    pub fn handler(&self, config: Config) -> Handler {
        Handler::new(self.function_clients.clone(), config)
    }

    pub fn iam(&self) -> &aws_sdk_iam::Client {
        &self.clients.iam
    }

    pub fn secrets(&self) -> &aws_sdk_secretsmanager::Client {
        &self.clients.secrets
    }

    pub async fn create_user(&self, name: &str, tags: &[(&str, &str)]) {
        self.create_user_at(name, "/", tags).await
    }

    /// A user under an IAM path (audits filter by path, so a test can have an
    /// account of its own on the shared server).
    pub async fn create_user_at(&self, name: &str, path: &str, tags: &[(&str, &str)]) {
        create_user_with(self.iam(), name, path, tags).await;
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
        self.user_with_key_at("/", &unique("secret")).await
    }

    /// A user bound to a secret that names only the user (adoption).
    pub async fn bound_user(&self) -> Fixture {
        self.bound_user_at("/", &unique("secret")).await
    }

    /// As [`Self::user_with_key`], the user under `path` and the secret named
    /// `secret_name` (so a test can list what is its own by prefix).
    pub async fn user_with_key_at(&self, path: &str, secret_name: &str) -> Fixture {
        let fixture = self.bound_user_at(path, secret_name).await;
        let (id, secret) = self.create_key(&fixture.user).await;
        self.put_current(
            &fixture,
            &json!({"UserName": fixture.user, "AccessKeyId": id, "SecretAccessKey": secret}),
        )
        .await;
        fixture
    }

    async fn bound_user_at(&self, path: &str, secret_name: &str) -> Fixture {
        let user = unique("user");
        let secret_name = secret_name.to_string();
        let secret_arn = self
            .create_secret(&secret_name, &json!({ "UserName": user }))
            .await;
        self.create_user_at(&user, path, &[(BINDING_TAG, &secret_arn)])
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
        self.clients_in_account(role_arn).await.iam
    }

    /// All the clients, acting in the role's account through a session of it
    /// (created keys land in the same ledger).
    pub async fn clients_in_account(&self, role_arn: &str) -> AdminClients {
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
            .config
            .to_builder()
            .credentials_provider(aws_sdk_iam::config::SharedCredentialsProvider::new(
                aws_sdk_iam::config::Credentials::new(
                    credentials.access_key_id(),
                    credentials.secret_access_key(),
                    Some(credentials.session_token().to_string()),
                    None,
                    "tests-assumed-role",
                ),
            ))
            .build();
        AdminClients::new(&config, &self.ledger)
    }

    /// Writes the description the function gives a key it stored in the
    /// secret, for the version that is `AWSCURRENT` now (for fixtures that make
    /// the key by hand and put it there).
    pub async fn describe_key(&self, fixture: &Fixture, key_id: &str) {
        let current = self.stage_version(fixture, "AWSCURRENT").await;
        self.tag_user(
            &fixture.user,
            key_id,
            &format!("iam-key-rotation {} {current}", fixture.secret_arn),
        )
        .await;
    }

    /// Sets one tag on a user, as an administrator (or an attacker with
    /// `iam:TagUser`) would.
    pub async fn tag_user(&self, user: &str, key: &str, value: &str) {
        self.iam()
            .tag_user()
            .user_name(user)
            .tags(Tag::builder().key(key).value(value).build().unwrap())
            .send()
            .await
            .unwrap();
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
    /// The version that carries `stage`, as `DescribeSecret` lists it.
    pub async fn stage_version(&self, fixture: &Fixture, stage: &str) -> String {
        let described = self
            .secrets()
            .describe_secret()
            .secret_id(&fixture.secret_arn)
            .send()
            .await
            .unwrap();
        described
            .version_ids_to_stages()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .find(|(_, stages)| stages.iter().any(|s| s == stage))
            .map(|(version, _)| version)
            .unwrap_or_else(|| panic!("no version carries {stage}"))
    }

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
        handler: &Handler,
        step: &str,
        secret_id: &str,
        token: &str,
    ) -> Result<Value, RotationError> {
        let result = handler
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

    /// Runs one step with the default configuration.
    pub async fn step(
        &self,
        step: &str,
        secret_id: &str,
        token: &str,
    ) -> Result<Value, RotationError> {
        self.invoke(&self.handler, step, secret_id, token).await
    }

    /// Starts a rotation and runs all four steps with the default configuration;
    /// returns the rotation's token.
    pub async fn rotate_now(&self, fixture: &Fixture) -> String {
        let token = self.start_rotation(fixture).await;
        self.rotate(&self.handler, fixture, &token)
            .await
            .unwrap_or_else(|error| panic!("rotation of {} failed: {error}", fixture.secret_name));
        token
    }

    /// Runs `step` with the default configuration, expecting a refusal of `kind`,
    /// and checks that nothing changed; returns the error for more checks.
    pub async fn assert_refused(
        &self,
        fixture: &Fixture,
        step: &str,
        token: &str,
        kind: &str,
    ) -> RotationError {
        let before = self.snapshot(fixture).await;
        let error = self
            .step(step, &fixture.secret_arn, token)
            .await
            .expect_err("the step should have been refused");
        assert_eq!(error.kind(), kind, "{error}");
        assert_eq!(
            self.snapshot(fixture).await,
            before,
            "a refused {step} changed the state"
        );
        error
    }

    /// Starts a rotation with `function_arn` as the rotation function and runs
    /// all four steps in-process as that function; returns the token.
    pub async fn rotate_as(&self, config: Config, fixture: &Fixture, function_arn: &str) -> String {
        let token = self.start_rotation_by(fixture, function_arn).await;
        let handler = self.handler(config);
        for step in STEPS {
            handler
                .handle(
                    json!({"Step": step, "SecretId": fixture.secret_arn, "ClientRequestToken": token}),
                    Invocation {
                        function_arn,
                        deadline: None,
                    },
                )
                .await
                .unwrap_or_else(|error| panic!("{step} of {} failed: {error}", fixture.secret_name));
        }
        token
    }

    /// Makes `function_arn` the secret's rotation function without a rotation in
    /// progress (moto stages an `AWSPENDING` version, which is taken off again).
    pub async fn set_rotation_function(&self, fixture: &Fixture, function_arn: &str) {
        self.start_rotation_by(fixture, function_arn).await;
        let described = self
            .secrets()
            .describe_secret()
            .secret_id(&fixture.secret_arn)
            .send()
            .await
            .unwrap();
        for (version, stages) in described
            .version_ids_to_stages()
            .cloned()
            .unwrap_or_default()
        {
            if stages.iter().any(|s| s == "AWSPENDING") && !stages.iter().any(|s| s == "AWSCURRENT")
            {
                self.secrets()
                    .update_secret_version_stage()
                    .secret_id(&fixture.secret_arn)
                    .version_stage("AWSPENDING")
                    .remove_from_version_id(version)
                    .send()
                    .await
                    .unwrap();
            }
        }
    }

    /// Runs all four steps, stopping at the first failure.
    pub async fn rotate(
        &self,
        handler: &Handler,
        fixture: &Fixture,
        token: &str,
    ) -> Result<(), RotationError> {
        for step in STEPS {
            self.invoke(handler, step, &fixture.secret_arn, token)
                .await?;
        }
        Ok(())
    }
}

/// Creates user `name` under `path` with `tags`, through `iam` (the account's
/// client).
pub async fn create_user_with(
    iam: &aws_sdk_iam::Client,
    name: &str,
    path: &str,
    tags: &[(&str, &str)],
) {
    let tags: Vec<Tag> = tags
        .iter()
        .map(|(k, v)| Tag::builder().key(*k).value(*v).build().unwrap())
        .collect();
    iam.create_user()
        .user_name(name)
        .path(path)
        .set_tags(Some(tags))
        .send()
        .await
        .unwrap();
}

/// Makes a call signed with `key` through `endpoint`, as a consumer that still
/// holds it would (moto records it as the key's last use).
pub async fn use_key(endpoint: &str, key_id: &str, secret: &str) {
    let config = aws_sdk_sts::config::Builder::from(&sdk_config(endpoint).await)
        .credentials_provider(aws_sdk_sts::config::Credentials::new(
            key_id, secret, None, None, "consumer",
        ))
        .build();
    aws_sdk_sts::Client::from_conf(config)
        .get_caller_identity()
        .send()
        .await
        .unwrap();
}

pub const STEPS: [&str; 4] = ["createSecret", "setSecret", "testSecret", "finishSecret"];

pub fn config_with(action: iam_key_rotation::OldKeyAction) -> Config {
    Config {
        old_key_action: action,
        ..Config::default()
    }
}
