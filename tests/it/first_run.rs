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
        verbose.stderr.contains("the SDK's whole error chain"),
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
    let function = format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:keyrot-enroll-target");
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
