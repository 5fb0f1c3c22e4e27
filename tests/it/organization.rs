//! `keyrot audit` and `keyrot status` across the accounts of an AWS Organization
//! (SPEC 12), through the real binary against moto's Organizations, with member
//! accounts reached through `sts:AssumeRole` (moto maps a role's session to the
//! role's account) and the fault proxy refusing one account's role.

use harness::fault_proxy::{FaultPlan, FaultProxy};
use harness::function::{Function, audit_bootstrap, emf_record};
use harness::keyrot::keyrot;
use harness::organization::{
    close_account, member_iam, member_role, new_member_account, user_with_one_key,
};
use harness::runtime_api::Reply;
use harness::*;
use serde_json::Value;

const EXEMPT_TAG: &str = "iam-key-rotation:exempt";

/// A user under `path` in `account` with one Active key, and `tags`.
async fn member_user(world: &World, account: &str, path: &str, tags: &[(&str, &str)]) -> String {
    let user = unique("member");
    user_with_one_key(&member_iam(world, account).await, &user, path, tags).await;
    user
}

fn with_account<'a>(items: &'a Value, account: &str) -> Vec<&'a Value> {
    items
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| item["account"] == account)
        .collect()
}

fn account_state<'a>(json: &'a Value, account: &str) -> &'a Value {
    json["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["account"] == account)
        .unwrap_or_else(|| panic!("account {account} missing from {}", json["accounts"]))
}

#[tokio::test]
async fn an_audit_of_several_accounts_names_each_keys_account_and_goes_on_past_an_unreachable_one()
{
    let proxy = FaultProxy::start(&moto().endpoint).await;
    let world = World::with_endpoint(&proxy.endpoint).await;
    let path = format!("/{}/", unique("org"));
    let (alpha, beta) = (
        new_member_account(&unique("alpha")).await,
        new_member_account(&unique("beta")).await,
    );
    // The caller's own account: a managed key (rotated by the function).
    let managed = world.user_with_key_at(&path, &unique("org-secret")).await;
    world.rotate_now(&managed).await;
    // alpha: an unmanaged key (a finding at --max-age-days 0) and an exempt user's.
    let unmanaged = member_user(&world, &alpha, &path, &[]).await;
    let exempt = member_user(
        &world,
        &alpha,
        &path,
        &[(EXEMPT_TAG, "vendor key, ticket 42")],
    )
    .await;
    // beta: its role does not trust us.
    member_user(&world, &beta, &path, &[]).await;
    proxy.set_plan(FaultPlan {
        deny_assume_role_into: vec![member_role(&beta)],
        ..FaultPlan::default()
    });

    let accounts = format!("{ACCOUNT},{alpha},{beta}");
    let run = keyrot(
        &proxy.endpoint,
        &[
            "audit",
            "--prefix",
            "",
            "--accounts",
            &accounts,
            "--path",
            &path,
            "--max-age-days",
            "0",
            "--output",
            "json",
        ],
    )
    .await;
    assert_eq!(
        run.code, 1,
        "findings, and an unreachable account: {}",
        run.stderr
    );
    let json = run.json();
    assert_eq!(account_state(&json, ACCOUNT)["state"], "read");
    assert_eq!(account_state(&json, &alpha)["state"], "read");
    let unreachable = account_state(&json, &beta);
    assert_eq!(unreachable["state"], "unreachable");
    let detail = unreachable["detail"].as_str().unwrap();
    assert!(
        detail.contains(&member_role(&beta)) && detail.contains("deploy/member-account.yaml"),
        "{detail}"
    );

    let own_keys = with_account(&json["keys"], ACCOUNT);
    assert_eq!(
        own_keys.len(),
        2,
        "the rotated user's current and previous keys"
    );
    assert!(
        own_keys
            .iter()
            .all(|key| key["managed_by"] == managed.secret_name.as_str())
    );
    let alpha_keys = with_account(&json["keys"], &alpha);
    assert_eq!(alpha_keys.len(), 2, "{alpha_keys:?}");
    assert!(with_account(&json["keys"], &beta).is_empty());

    let findings = &json["findings"];
    let alpha_findings = with_account(findings, &alpha);
    let of = |user: &str| {
        alpha_findings
            .iter()
            .find(|f| f["user"] == user)
            .unwrap_or_else(|| panic!("no finding for {user}: {findings}"))
    };
    assert_eq!(of(&unmanaged)["kind"], "unmanaged-old-key");
    assert!(of(&unmanaged).get("exempt").is_none());
    assert_eq!(of(&exempt)["exempt"], true);
    assert!(
        of(&exempt)["detail"]
            .as_str()
            .unwrap()
            .contains("ticket 42")
    );
    let beta_findings = with_account(findings, &beta);
    assert_eq!(beta_findings.len(), 1);
    assert_eq!(beta_findings[0]["kind"], "account-unreachable");
    assert!(beta_findings[0]["user"].is_null());
    // The managed key is older than a limit of 0 days: a finding, although a
    // secret manages it (no key escapes the age limit), and the only one.
    let own_findings = with_account(findings, ACCOUNT);
    assert_eq!(own_findings.len(), 1, "{findings}");
    assert_eq!(own_findings[0]["kind"], "managed-key-not-rotating");
    assert_eq!(own_findings[0]["user"], managed.user.as_str());

    // A read refused inside an account (a Deny on the member role, say) must not
    // leave the account looking covered: it is unreachable, and a finding.
    proxy.set_plan(FaultPlan {
        deny_operation: Some("ListAccessKeys"),
        ..FaultPlan::default()
    });
    let refused = keyrot(
        &proxy.endpoint,
        &[
            "audit",
            "--prefix",
            "",
            "--accounts",
            &alpha,
            "--path",
            &path,
            "--output",
            "json",
        ],
    )
    .await;
    let json_refused = refused.json();
    let row = account_state(&json_refused, &alpha);
    assert_eq!(row["state"], "unreachable", "{row}");
    assert!(
        row["detail"]
            .as_str()
            .unwrap()
            .contains("could not be read"),
        "{row}"
    );
    assert_eq!(
        with_account(&json_refused["findings"], &alpha)[0]["kind"],
        "account-unreachable"
    );
    assert_eq!(
        refused.code, 2,
        "unreadable users are an access error: {}",
        refused.stderr
    );
    proxy.set_plan(FaultPlan::default());

    // keyrot assumed the two members' roles only (the test's set-up made three
    // more); its own account was read with its own credentials.
    let assume_roles = proxy
        .calls()
        .iter()
        .filter(|call| call.operation == "AssumeRole")
        .count();
    assert_eq!(
        assume_roles,
        3 + 2 + 1,
        "set-up, the audit, and the refused one"
    );
}

#[tokio::test]
async fn org_lists_every_active_account_skips_suspended_and_excluded_ones_and_status_names_them() {
    let world = World::new().await;
    let path = format!("/{}/", unique("org"));
    let gamma = new_member_account(&unique("gamma")).await;
    let closed = new_member_account(&unique("closed")).await;
    close_account(&closed).await;
    let user = member_user(&world, &gamma, &path, &[]).await;

    let run = keyrot(
        &moto().endpoint,
        &[
            "audit",
            "--prefix",
            "",
            "--org",
            "--exclude-accounts",
            ACCOUNT,
            "--path",
            &path,
            "--output",
            "json",
        ],
    )
    .await;
    assert_eq!(
        run.code, 0,
        "a new key is no finding at 90 days: {}",
        run.stderr
    );
    let json = run.json();
    assert_eq!(account_state(&json, &gamma)["state"], "read");
    let suspended = account_state(&json, &closed);
    assert_eq!(suspended["state"], "skipped");
    assert!(suspended["detail"].as_str().unwrap().contains("suspended"));
    assert!(suspended["name"].as_str().unwrap().starts_with("closed"));
    let excluded = account_state(&json, ACCOUNT);
    assert_eq!(excluded["state"], "skipped");
    assert!(excluded["detail"].as_str().unwrap().contains("excluded"));
    let keys = with_account(&json["keys"], &gamma);
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["user"], user.as_str());
    assert!(with_account(&json["keys"], ACCOUNT).is_empty());

    // keyrot status --org is an object with the accounts and the secrets.
    let status = keyrot(
        &moto().endpoint,
        &[
            "status",
            "--org",
            "--exclude-accounts",
            ACCOUNT,
            "--prefix",
            "no-such-prefix/",
            "--output",
            "json",
        ],
    )
    .await;
    // No secret read: said, exit 2 (SPEC 15), and the document keeps its shape.
    assert_eq!(status.code, 2, "{}", status.stderr);
    assert!(
        status.stderr.contains("read no secret"),
        "{}",
        status.stderr
    );
    let json = status.json();
    assert!(json["secrets"].as_array().unwrap().is_empty());
    assert_eq!(account_state(&json, &gamma)["state"], "read");
    assert_eq!(account_state(&json, &closed)["state"], "skipped");

    // A table for people: an ACCOUNT column, with the account's name.
    let table = keyrot(
        &moto().endpoint,
        &[
            "audit",
            "--prefix",
            "",
            "--org",
            "--exclude-accounts",
            ACCOUNT,
            "--path",
            &path,
        ],
    )
    .await;
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(table.stdout.contains("ACCOUNT"), "{}", table.stdout);
    assert!(
        table.stdout.contains(&format!("{gamma} (gamma")),
        "{}",
        table.stdout
    );
}

/// A central secret for a user of a member account (a `RoleArn`): across
/// accounts it is read through that account's read-only audit role, since the
/// member template's rotation role trusts the rotation function only (the
/// proxy refuses it here), and never in an account the run does not read,
/// whatever account the secret's writer put in its `RoleArn`.
#[tokio::test]
async fn across_accounts_a_cross_account_user_is_read_through_its_audit_role_and_only_in_the_runs_accounts()
 {
    let proxy = FaultProxy::start(&moto().endpoint).await;
    let world = World::with_endpoint(&proxy.endpoint).await;
    let zeta = new_member_account(&unique("zeta")).await;
    let user = member_user(&world, &zeta, "/", &[]).await;
    let rotation_role = format!("arn:aws:iam::{zeta}:role/iam-key-rotation-target");
    let foreign_role = "arn:aws:iam::999999999999:role/iam-key-rotation-target".to_string();
    let prefix = format!("{}/", unique("reader"));
    for (name, role) in [("far", &rotation_role), ("foreign", &foreign_role)] {
        world
            .create_secret(
                &format!("{prefix}{name}"),
                &serde_json::json!({"UserName": user, "RoleArn": role}),
            )
            .await;
    }
    proxy.set_plan(FaultPlan {
        deny_assume_role_into: vec![rotation_role.clone()],
        ..FaultPlan::default()
    });
    proxy.clear_calls();

    let accounts = format!("{ACCOUNT},{zeta}");
    let run = keyrot(
        &proxy.endpoint,
        &[
            "status",
            "--accounts",
            &accounts,
            "--prefix",
            &prefix,
            "--output",
            "json",
        ],
    )
    .await;
    let json = run.json();
    let all = json["secrets"].as_array().unwrap();
    assert_eq!(all.len(), 2, "every secret has a row: {json}");
    let foreign = all
        .iter()
        .find(|row| row["secret_name"] == format!("{prefix}foreign"))
        .expect("the foreign secret's row");
    assert_eq!(foreign["state"], "unreadable", "{json}");
    assert!(
        foreign["fix"]
            .as_str()
            .unwrap()
            .contains("999999999999 is not one of the accounts this run reads"),
        "{json}"
    );
    let rows: Vec<&serde_json::Value> = all
        .iter()
        .filter(|row| row["secret_name"] == format!("{prefix}far"))
        .collect();
    assert_eq!(rows[0]["secret_name"], format!("{prefix}far"));
    assert_eq!(rows[0]["user"], user.as_str());
    assert_eq!(
        rows[0]["state"], "unbound",
        "the user was read (it lacks the binding): {json}"
    );
    assert!(
        rows[0]["fix"]
            .as_str()
            .unwrap()
            .contains(&format!("the user is in account {zeta}")),
        "re-tagged in its own account, and not by the upgrade's one-pass: {json}"
    );
    assert_eq!(
        run.code, 1,
        "a secret not read is a row that needs a person: {}",
        run.stderr
    );
    // zeta's role for the run, and zeta's again for the far secret's user:
    // none into the account the foreign secret's writer chose.
    let assumed = proxy
        .calls()
        .iter()
        .filter(|call| call.operation == "AssumeRole")
        .count();
    assert_eq!(assumed, 2, "no AssumeRole into 999999999999");
}

/// SPEC 11, T7: a plain `keyrot status` (one account) assumes no role a
/// secret's value names. The attack: whoever may write a secret under the
/// prefix plants a `RoleArn` (and an `ExternalId`) of their choosing, hoping
/// the operator's credentials assume it. The secret gets its row, saying what
/// it names and how to read that account, and no AssumeRole call is made.
#[tokio::test]
async fn a_plain_status_assumes_no_role_a_planted_secret_names() {
    let proxy = FaultProxy::start(&moto().endpoint).await;
    let world = World::with_endpoint(&proxy.endpoint).await;
    let prefix = format!("{}/", unique("planted"));
    let planted_role = "arn:aws:iam::999999999999:role/attacker-chosen";
    world
        .create_secret(
            &format!("{prefix}planted"),
            &serde_json::json!({
                "UserName": "someone",
                "RoleArn": planted_role,
                "ExternalId": "attacker-external-id",
            }),
        )
        .await;
    let own = world.user_with_key_at("/", &format!("{prefix}own")).await;
    world.rotate_now(&own).await;
    // The emulator's account is the organization's management account.
    new_member_account(&unique("eta")).await;
    proxy.clear_calls();

    let run = keyrot(
        &proxy.endpoint,
        &["status", "--prefix", &prefix, "--output", "json"],
    )
    .await;
    let json = run.json();
    let rows = json.as_array().expect("one account: an array of rows");
    assert_eq!(rows.len(), 2, "every secret has a row: {json}");
    let planted = rows
        .iter()
        .find(|row| row["secret_name"] == format!("{prefix}planted"))
        .expect("the planted secret's row");
    assert_eq!(planted["state"], "unreadable", "{json}");
    let fix = planted["fix"].as_str().unwrap();
    for words in [planted_role, "--accounts 999999999999", "assumes no role"] {
        assert!(fix.contains(words), "no {words:?} in {fix}");
    }
    let own_row = rows
        .iter()
        .find(|row| row["secret_name"] == own.secret_name.as_str())
        .expect("the own secret's row");
    assert_ne!(
        own_row["state"], "unreadable",
        "its own user is read: {json}"
    );
    assert!(own_row["current_key_id"].is_string(), "{json}");
    assert_eq!(
        run.code, 1,
        "the planted row needs a person: {}",
        run.stderr
    );
    let assumed = proxy
        .calls()
        .iter()
        .filter(|call| call.operation == "AssumeRole")
        .count();
    assert_eq!(assumed, 0, "no AssumeRole of a role a secret's value names");
    // SPEC 11, T11: where SCPs do not reach, the operator is told.
    assert!(
        run.stderr
            .contains("warning: account 123456789012 is the organization's management account")
            && run.stderr.contains("delegated administrator"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn an_exempt_user_in_a_single_account_audit_is_listed_but_not_counted() {
    let world = World::new().await;
    let path = format!("/{}/", unique("exempt"));
    let name = unique("vendor");
    world
        .create_user_at(&name, &path, &[(EXEMPT_TAG, "vendor integration")])
        .await;
    world.create_key(&name).await;

    let run = keyrot(
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
    assert_eq!(
        run.code, 0,
        "an exempt finding does not fail the job: {}",
        run.stdout
    );
    let json = run.json();
    assert!(
        json["accounts"].is_null(),
        "no accounts list without --org/--accounts (null: one shape)"
    );
    assert!(json["keys"][0]["account"].is_null());
    let finding = &json["findings"][0];
    assert_eq!(finding["kind"], "unmanaged-old-key");
    assert_eq!(finding["exempt"], true);
    assert!(
        finding["detail"]
            .as_str()
            .unwrap()
            .contains("vendor integration")
    );
}

#[tokio::test]
async fn the_audit_function_with_organization_scope_totals_the_accounts_and_counts_the_unreachable()
{
    let proxy = FaultProxy::start(&moto().endpoint).await;
    let world = World::with_endpoint(&proxy.endpoint).await;
    let path = format!("/{}/", unique("daily-org"));
    let (delta, epsilon) = (
        new_member_account(&unique("delta")).await,
        new_member_account(&unique("epsilon")).await,
    );
    let app = member_user(&world, &delta, &path, &[]).await;
    member_user(&world, &delta, &path, &[(EXEMPT_TAG, "break-glass user")]).await;
    // A rotated secret in delta, so the status half reads it through the role too.
    let prefix = format!("{}/", unique("daily-org"));
    world
        .clients_in_account(&member_role(&delta))
        .await
        .secrets
        .create_secret()
        .name(format!("{prefix}app"))
        .secret_string(serde_json::json!({"UserName": app}).to_string())
        .send()
        .await
        .unwrap();
    member_user(&world, &epsilon, &path, &[]).await;
    proxy.set_plan(FaultPlan {
        deny_assume_role_into: vec![member_role(&epsilon)],
        ..FaultPlan::default()
    });

    let binary = audit_bootstrap();
    let env = [
        ("AUDIT_SCOPE", "organization"),
        ("EXCLUDE_ACCOUNTS", ACCOUNT),
        ("AUDIT_USER_PATH", path.as_str()),
        ("SECRET_NAME_PREFIX", prefix.as_str()),
        ("MAX_KEY_AGE_DAYS", "0"),
    ];
    let mut function = Function::start_binary(&binary, &proxy.endpoint, &env).await;
    let reply = function.invoke_payload(serde_json::json!({})).await;
    let output = function.stop().await;
    let Reply::Response(counts) = reply else {
        panic!("the audit failed: {reply:?}\n{}", output.join("\n"));
    };
    // delta's two keys are read; the exempt user's finding is not counted;
    // epsilon's role is refused.
    assert_eq!(counts["Keys"], 2, "{counts}\n{}", output.join("\n"));
    assert_eq!(counts["UnmanagedOldKeys"], 1, "{counts}");
    assert_eq!(counts["UnreachableAccounts"], 1, "{counts}");
    assert_eq!(
        counts["Secrets"], 1,
        "delta's secret, read through its role: {counts}"
    );
    let record = emf_record(&output);
    assert_eq!(
        record["UnreachableAccounts"].as_f64(),
        Some(1.0),
        "{record}"
    );
    assert!(
        output
            .iter()
            .any(|line| line.contains("account-unreachable") && line.contains(&epsilon)),
        "the log names the account: {}",
        output.join("\n")
    );

    // The same audit fanned out as the stack's state machine runs it for an
    // organization too large for one invocation: the accounts, one invocation
    // per account, then the total, which alone publishes the metrics.
    let mut function = Function::start_binary(&binary, &proxy.endpoint, &env).await;
    let accounts = answer(
        &mut function,
        serde_json::json!({"Action": "list-accounts"}),
    )
    .await;
    let ids: Vec<&str> = accounts["Accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|account| account["Account"].as_str().unwrap())
        .collect();
    for member in [&delta, &epsilon] {
        assert!(ids.contains(&member.as_str()), "{accounts}");
    }
    assert!(!ids.contains(&ACCOUNT), "excluded: {accounts}");
    let mut results = Vec::new();
    for id in &ids {
        let one = answer(
            &mut function,
            serde_json::json!({"Action": "audit-account", "Account": id}),
        )
        .await;
        results.push(one);
    }
    assert!(
        function
            .output()
            .iter()
            .all(|line| !line.contains("\"_aws\"")),
        "an account's invocation publishes nothing"
    );
    let total = answer(
        &mut function,
        serde_json::json!({"Action": "total", "Results": results}),
    )
    .await;
    let output = function.stop().await;
    assert_eq!(
        total, counts,
        "the fan-out totals what one invocation counts"
    );
    assert_eq!(
        emf_record(&output)["UnreachableAccounts"].as_f64(),
        Some(1.0)
    );
}

/// The function's answer to `payload`; panics with its output if it failed.
async fn answer(function: &mut Function, payload: Value) -> Value {
    match function.invoke_payload(payload.clone()).await {
        Reply::Response(value) => value,
        Reply::Error(error) => panic!(
            "{payload} failed: {error}\n{}",
            function.output().join("\n")
        ),
    }
}

/// The fan-out's invocation for the caller's own account, where the central
/// secrets are, reads a secret's user of a member account as the whole run
/// does: through that account's audit role, in the organization's accounts
/// (the member template's rotation role, refused here, trusts the rotation
/// function only).
#[tokio::test]
async fn the_fan_out_reads_a_central_secrets_member_user_as_the_whole_run_does() {
    let proxy = FaultProxy::start(&moto().endpoint).await;
    let world = World::with_endpoint(&proxy.endpoint).await;
    let eta = new_member_account(&unique("eta")).await;
    let path = format!("/{}/", unique("fan-out"));
    let user = member_user(&world, &eta, &path, &[]).await;
    let rotation_role = format!("arn:aws:iam::{eta}:role/iam-key-rotation-target");
    let prefix = format!("{}/", unique("fan-out"));
    world
        .create_secret(
            &format!("{prefix}far"),
            &serde_json::json!({"UserName": user, "RoleArn": rotation_role}),
        )
        .await;
    proxy.set_plan(FaultPlan {
        deny_assume_role_into: vec![rotation_role.clone()],
        ..FaultPlan::default()
    });
    let env = [
        ("AUDIT_SCOPE", "organization"),
        ("AUDIT_USER_PATH", path.as_str()),
        ("SECRET_NAME_PREFIX", prefix.as_str()),
        ("MAX_KEY_AGE_DAYS", "0"),
    ];
    let mut function = Function::start_binary(&audit_bootstrap(), &proxy.endpoint, &env).await;

    let whole = answer(&mut function, serde_json::json!({})).await;
    assert_eq!(whole["Secrets"], 1, "{whole}");
    assert_eq!(whole["Unreadable"], 0, "{whole}");
    let own = answer(
        &mut function,
        serde_json::json!({"Action": "audit-account", "Account": ACCOUNT}),
    )
    .await;
    assert_eq!(own["Secrets"], 1, "{own}");
    assert_eq!(
        own["Unreadable"],
        0,
        "the member's user is read in the caller's account's invocation too: {own}\n{}",
        function.output().join("\n")
    );
    let excluded = function
        .invoke_payload(serde_json::json!({"Action": "audit-account", "Account": "12345"}))
        .await;
    assert!(
        matches!(&excluded, Reply::Error(error) if error["errorMessage"].as_str().unwrap().contains("not an account id")),
        "{excluded:?}"
    );
    function.stop().await;
}
