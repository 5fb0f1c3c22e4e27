//! keyrot's first run on a machine without AWS set up (issue 23): every mistake
//! ends in one or two lines that say what happened and what to do, exit code 2,
//! and no dump of the SDK's error; `-v` shows the whole chain. And the errors
//! of a secret or role keyrot cannot work with, worded for the operator.

use harness::fault_proxy::{FaultPlan, FaultProxy};
use harness::keyrot::{KeyrotRun, keyrot, keyrot_with_env};
use harness::*;

/// Exit 2, at most two lines, no Debug dump of the SDK's error, and `words`.
fn assert_actionable(run: &KeyrotRun, words: &[&str]) {
    assert_eq!(run.code, 2, "{}", run.stderr);
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert!(lines.len() <= 2, "more than two lines:\n{}", run.stderr);
    for dump in [
        "DispatchFailure(",
        "ConnectorError",
        "Response {",
        "{ source",
    ] {
        assert!(
            !run.stderr.contains(dump),
            "the SDK's dump ({dump}):\n{}",
            run.stderr
        );
    }
    for word in words {
        assert!(run.stderr.contains(word), "no {word:?} in:\n{}", run.stderr);
    }
}

#[tokio::test]
async fn no_region_says_how_to_set_one() {
    let run = keyrot_with_env(
        &["status"],
        &[
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ],
    )
    .await;
    assert_actionable(&run, &["no AWS region", "--region", "AWS_REGION"]);
}

#[tokio::test]
async fn no_credentials_with_imds_disabled_says_how_to_get_some() {
    let run = keyrot_with_env(
        &["status"],
        &[
            ("AWS_REGION", REGION),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
    )
    .await;
    assert_actionable(
        &run,
        &["no AWS credentials", "aws configure", "aws sso login"],
    );
}

#[tokio::test]
async fn an_endpoint_that_cannot_be_reached_is_named_with_the_variable_that_chose_it() {
    let run = keyrot_with_env(
        &["audit"],
        &[
            ("AWS_REGION", REGION),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
            ("AWS_MAX_ATTEMPTS", "1"),
        ],
    )
    .await;
    assert_actionable(
        &run,
        &[
            "http://127.0.0.1:9",
            "AWS_ENDPOINT_URL",
            "Connection refused",
        ],
    );
}

#[tokio::test]
async fn access_denied_names_the_action_and_what_grants_it_and_v_shows_the_chain() {
    let proxy = FaultProxy::start(&moto().endpoint).await;
    proxy.set_plan(FaultPlan {
        deny_operation: Some("ListSecrets"),
        ..FaultPlan::default()
    });
    let prefix = unique("denied");
    let run = keyrot(&proxy.endpoint, &["status", "--prefix", &prefix]).await;
    assert_actionable(
        &run,
        &[
            "AccessDenied",
            "secretsmanager:ListSecrets",
            "SweepListsSecrets",
        ],
    );

    let verbose = keyrot(&proxy.endpoint, &["status", "--prefix", &prefix, "-v"]).await;
    assert_eq!(verbose.code, 2);
    assert!(
        verbose.stderr.contains("the SDK's error chain"),
        "-v shows the chain:\n{}",
        verbose.stderr
    );
}

#[tokio::test]
async fn an_expired_session_says_how_to_get_a_new_one() {
    let proxy = FaultProxy::start(&moto().endpoint).await;
    proxy.set_plan(FaultPlan {
        answer_operation: Some(("ListSecrets", "ExpiredToken")),
        ..FaultPlan::default()
    });
    let run = keyrot(&proxy.endpoint, &["status", "--prefix", &unique("expired")]).await;
    assert_actionable(&run, &["ExpiredToken", "expired", "aws sso login"]);
}

#[tokio::test]
async fn throttling_past_every_retry_says_to_run_again_later() {
    let proxy = FaultProxy::start(&moto().endpoint).await;
    proxy.set_plan(FaultPlan {
        throttle_every: Some(1),
        ..FaultPlan::default()
    });
    let run = keyrot_with_env(
        &["status", "--prefix", &unique("throttled")],
        &[
            ("AWS_REGION", REGION),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_ENDPOINT_URL", &proxy.endpoint),
            ("AWS_MAX_ATTEMPTS", "2"),
        ],
    )
    .await;
    assert_actionable(&run, &["ThrottlingException", "run again in a minute"]);
}

/// Completions and the man page come from the parser's own definitions, and
/// need no AWS set-up at all (no region, no credentials, no endpoint).
#[tokio::test]
async fn completions_and_the_man_page_need_no_aws_and_know_every_subcommand() {
    let bash = keyrot_with_env(&["completions", "bash"], &[]).await;
    assert_eq!(bash.code, 0, "{}", bash.stderr);
    let man = keyrot_with_env(&["man"], &[]).await;
    assert_eq!(man.code, 0, "{}", man.stderr);
    assert!(
        man.stdout.contains(".TH keyrot 1"),
        "not a man page: {}",
        man.stdout
    );
    for subcommand in ["enroll", "status", "audit", "rollback"] {
        assert!(
            bash.stdout.contains(subcommand),
            "bash completions lack {subcommand}"
        );
        assert!(
            man.stdout.contains(subcommand),
            "the man page lacks {subcommand}"
        );
    }
    let unknown = keyrot_with_env(&["completions", "cmd.exe"], &[]).await;
    assert_eq!(
        unknown.code, 2,
        "a shell clap does not know is a usage error"
    );
}

/// Errors worded for an operator at a terminal: what happened, where keyrot
/// looked, what to do with their own credentials, that nothing changed; never
/// the rotation function's advice about its role or the template.
fn assert_worded_for_an_operator(run: &KeyrotRun, says: &[&str]) {
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    for word in says.iter().chain(&["nothing was changed"]) {
        assert!(run.stderr.contains(word), "no {word:?} in {}", run.stderr);
    }
    for wrong in [
        "function's role",
        "the function could not",
        "AssumableRoleArns",
    ] {
        assert!(!run.stderr.contains(wrong), "{wrong:?} in {}", run.stderr);
    }
}

#[tokio::test]
async fn a_rollback_of_a_secret_that_does_not_exist_says_where_keyrot_looked() {
    let secret = format!("iam-keys/{}", unique("nowhere"));
    let run = keyrot(&moto().endpoint, &["rollback", &secret]).await;
    assert_worded_for_an_operator(&run, &[&secret, "--region", "--profile"]);
}

#[tokio::test]
async fn an_enroll_through_a_role_that_cannot_be_assumed_names_the_operators_credentials() {
    let proxy = FaultProxy::start(&moto().endpoint).await;
    let world = World::with_endpoint(&proxy.endpoint).await;
    // The role is refused before keyrot reads anything in its account.
    let role = "arn:aws:iam::333333333333:role/keyrot-enroll-denied";
    let user = unique("unreachable");
    let secret_name = format!("iam-keys/{user}");
    proxy.set_plan(FaultPlan {
        deny_operation: Some("AssumeRole"),
        ..Default::default()
    });
    let function =
        harness::keyrot::register_function(&moto().endpoint, "keyrot-enroll-role-target");
    proxy.set_plan(FaultPlan {
        deny_operation: Some("AssumeRole"),
        ..Default::default()
    });
    let args = [
        "enroll",
        "--role-arn",
        role,
        "--function-arn",
        &function,
        &user,
    ];
    let run = keyrot(&proxy.endpoint, &args).await;
    proxy.set_plan(Default::default());
    assert_worded_for_an_operator(&run, &[role, "your credentials", "trust policy"]);
    let created = world
        .secrets()
        .describe_secret()
        .secret_id(&secret_name)
        .send()
        .await;
    assert!(
        created.is_err(),
        "enroll created {secret_name} before it failed"
    );
}

/// A directory with an AWS config file holding `config`, and the environment
/// that points keyrot at it (and at moto, with no credentials of its own).
fn profile_env(config: &str) -> (std::path::PathBuf, Vec<(String, String)>) {
    let dir = std::env::temp_dir().join(unique("keyrot-profiles"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config"), config).unwrap();
    let env = vec![
        ("HOME".into(), dir.display().to_string()),
        (
            "AWS_CONFIG_FILE".into(),
            dir.join("config").display().to_string(),
        ),
        (
            "AWS_SHARED_CREDENTIALS_FILE".into(),
            dir.join("credentials").display().to_string(),
        ),
        ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ("AWS_ENDPOINT_URL".into(), moto().endpoint.clone()),
    ];
    (dir, env)
}

async fn keyrot_in(args: &[&str], env: &[(String, String)]) -> KeyrotRun {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    keyrot_with_env(args, &env).await
}

#[tokio::test]
async fn a_credential_process_profile_gives_keyrot_its_credentials_once() {
    let world = World::new().await;
    let path = format!("/{}/", unique("process"));
    world.create_user_at(&unique("proc-user"), &path, &[]).await;
    let (dir, env) = profile_env("");
    let script = dir.join("credentials.sh");
    let runs = dir.join("runs");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho run >> {}\necho '{{\"Version\": 1, \"AccessKeyId\": \"testing\", \"SecretAccessKey\": \"testing\"}}'\n",
            runs.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(
        dir.join("config"),
        format!(
            "[profile vault]\ncredential_process = {}\nregion = {REGION}\n",
            script.display()
        ),
    )
    .unwrap();
    let run = keyrot_in(&["audit", "--path", &path, "--profile", "vault"], &env).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("1 users"), "{}", run.stdout);
    let ran = std::fs::read_to_string(&runs).unwrap();
    assert_eq!(ran.lines().count(), 1, "credential_process ran {ran:?}");

    // A process that fails says which profile's command to run by hand.
    std::fs::write(&script, "#!/bin/sh\nexit 3\n").unwrap();
    let run = keyrot_in(&["audit", "--path", &path, "--profile", "vault"], &env).await;
    assert_actionable(&run, &["credential_process of profile vault", "by hand"]);
}

#[tokio::test]
async fn a_profile_that_does_not_exist_is_named() {
    let (_dir, env) = profile_env("[profile real]\nregion = us-east-1\n");
    let run = keyrot_in(&["status", "--profile", "nosuch"], &env).await;
    assert_actionable(
        &run,
        &["profile nosuch", "--profile", "aws configure list-profiles"],
    );
    let mut env = env;
    env.push(("AWS_PROFILE".into(), "typo".into()));
    let run = keyrot_in(&["status"], &env).await;
    assert_actionable(&run, &["profile typo", "AWS_PROFILE"]);
}

#[tokio::test]
async fn an_identity_center_profile_without_a_token_says_to_log_in() {
    let (dir, env) = profile_env(
        "[profile sso-dev]\nsso_session = corp\nsso_account_id = 123456789012\nsso_role_name = Admin\nregion = us-east-1\n\n[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = us-east-1\nsso_registration_scopes = sso:account:access\n",
    );
    let run = keyrot_in(&["status", "--profile", "sso-dev"], &env).await;
    assert_actionable(
        &run,
        &["IAM Identity Center", "aws sso login --profile sso-dev"],
    );
    // It went as far as the token cache, where `aws sso login` writes.
    assert!(!dir.join(".aws/sso/cache").exists());
}

#[tokio::test]
async fn a_region_that_is_no_region_is_refused_at_once_with_the_fix() {
    let started = std::time::Instant::now();
    let run = keyrot_with_env(
        &["status", "--region", "us-east1"],
        &[
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ],
    )
    .await;
    assert_actionable(
        &run,
        &["\"us-east1\"", "--region", "did you mean us-east-1?"],
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let run = keyrot_with_env(
        &["status"],
        &[
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ],
    )
    .await;
    assert_actionable(&run, &["no AWS region", "AWS_ENDPOINT_URL", "AWS_REGION"]);
}

#[tokio::test]
async fn a_path_without_its_slashes_is_a_usage_error_with_the_fix() {
    let run = keyrot(&moto().endpoint, &["audit", "--path", "rotated"]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stdout.is_empty());
    assert!(
        run.stderr.contains("try --path /rotated/"),
        "{}",
        run.stderr
    );
    let run = keyrot(&moto().endpoint, &["status", "--prefix", "iam-keys/*"]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("not a pattern"), "{}", run.stderr);
}

#[tokio::test]
async fn a_run_that_reads_no_user_says_so_and_exits_2() {
    let path = format!("/{}/", unique("nobody"));
    let run = keyrot(&moto().endpoint, &["audit", "--path", &path, "-o", "json"]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("read no IAM user under path"),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.json()["keys"],
        serde_json::json!([]),
        "stdout stays JSON"
    );
}

/// `keyrot ... | head -1`: the reader closes the pipe while keyrot writes.
#[tokio::test]
async fn a_closed_pipe_ends_keyrot_quietly() {
    let world = World::new().await;
    let path = format!("/{}/", unique("piped"));
    for n in 0..3 {
        let user = unique(&format!("piped{n}"));
        world.create_user_at(&user, &path, &[]).await;
        world.create_key(&user).await;
    }
    let keyrot = harness::function::sibling_binary("keyrot");
    for (reader, command) in [
        (
            "head -1",
            format!("{} audit --path {path} | head -1", keyrot.display()),
        ),
        // The reader is gone before keyrot writes a byte.
        (
            "true",
            format!("{} audit --path {path} -o json | true", keyrot.display()),
        ),
        (
            "a closed stderr",
            format!("{} audit --path nopath 2>&-", keyrot.display()),
        ),
    ] {
        let output = tokio::process::Command::new("bash")
            .arg("-c")
            .arg(format!("set -o pipefail; {command}; echo \"exit=$?\" >&2"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_REGION", REGION)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_ENDPOINT_URL", &moto().endpoint)
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{reader}: {stderr}");
        let code = stderr.lines().last().unwrap_or_default();
        assert!(
            ["exit=0", "exit=1", "exit=2"].contains(&code),
            "{reader}: {stderr}"
        );
    }
}

#[tokio::test]
async fn every_subcommand_has_examples_and_a_man_page_with_exit_status_and_environment() {
    for subcommand in [
        "enroll",
        "status",
        "audit",
        "rollback",
        "completions",
        "man",
    ] {
        let help = keyrot_with_env(&[subcommand, "--help"], &[]).await;
        assert_eq!(help.code, 0, "{}", help.stderr);
        let examples = help
            .stdout
            .split("\nExamples:\n")
            .nth(1)
            .unwrap_or_default();
        assert!(
            examples.contains(&format!("  keyrot {subcommand}")),
            "{subcommand}: {}",
            help.stdout
        );
        let hidden = ["completions", "man"].contains(&subcommand);
        assert_eq!(
            help.stdout.contains("--region"),
            !hidden,
            "{subcommand}: {}",
            help.stdout
        );
    }
    let dir = std::env::temp_dir().join(unique("man"));
    let run = keyrot_with_env(&["man", "--out", dir.to_str().unwrap()], &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    for page in [
        "keyrot",
        "keyrot-enroll",
        "keyrot-status",
        "keyrot-audit",
        "keyrot-rollback",
    ] {
        let text = std::fs::read_to_string(dir.join(format!("{page}.1"))).unwrap();
        for section in [
            ".SH \"EXIT STATUS\"",
            ".SH ENVIRONMENT",
            ".SH EXAMPLES",
            "AWS_PROFILE",
        ] {
            assert!(text.contains(section), "{page}.1 lacks {section}");
        }
    }
    let main = std::fs::read_to_string(dir.join("keyrot.1")).unwrap();
    assert!(main.contains("keyrot\\-enroll(1)"), "{main}");
}

#[tokio::test]
async fn verbose_logs_each_aws_call_and_never_a_credential() {
    let path = format!("/{}/", unique("verbose"));
    let run = keyrot(&moto().endpoint, &["audit", "--path", &path, "-v"]).await;
    assert!(
        run.stderr
            .contains("AWS call IAM GetAccountAuthorizationDetails ->"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("testing"),
        "a credential in: {}",
        run.stderr
    );
}
