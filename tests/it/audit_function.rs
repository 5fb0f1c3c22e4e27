//! The daily audit function (`iam-key-audit`), the real binary under the local
//! Runtime API against moto: its metrics carry the counts of a staged account.

use harness::function::{Function, audit_bootstrap, emf_record};
use harness::runtime_api::Reply;
use harness::*;
use serde_json::json;

#[tokio::test]
async fn the_audit_function_publishes_the_counts_of_a_staged_account() {
    let world = World::new().await;
    let tag = unique("daily");
    let (path, prefix) = (format!("/{tag}/"), format!("{tag}/"));
    let loner = unique("loner");
    world.create_user_at(&loner, &path, &[]).await;
    world.create_key(&loner).await;
    let stuck = world
        .user_with_key_at(&path, &format!("{prefix}stuck"))
        .await;
    // Rotated once (so the secret manages its key), then stuck.
    world.rotate_now(&stuck).await;
    world.start_rotation(&stuck).await;
    let broken = world
        .user_with_key_at(&path, &format!("{prefix}broken"))
        .await;
    world.rotate_now(&broken).await;
    let current = world.current_key(&broken).await.unwrap();
    world
        .set_key_status(
            &broken.user,
            &current,
            aws_sdk_iam::types::StatusType::Inactive,
        )
        .await;
    let healthy = world
        .user_with_key_at(&path, &format!("{prefix}healthy"))
        .await;
    world.rotate_now(&healthy).await;

    let binary = audit_bootstrap();
    let mut function = Function::start_binary(
        &binary,
        &moto().endpoint,
        &[
            ("AUDIT_USER_PATH", path.as_str()),
            ("SECRET_NAME_PREFIX", prefix.as_str()),
            ("MAX_KEY_AGE_DAYS", "0"),
            ("STUCK_AFTER_MINUTES", "0"),
        ],
    )
    .await;
    // What EventBridge Scheduler sends: the function ignores it.
    let reply = function.invoke_payload(json!({})).await;
    let output = function.stop().await;
    let Reply::Response(counts) = reply else {
        panic!("the audit failed: {reply:?}\n{}", output.join("\n"));
    };
    let expected = json!({
        "UnmanagedOldKeys": 1, "NotRotatingKeys": 2, "TwoActiveKeys": 0, "StuckRotations": 1, "OverdueRotations": 0, "BrokenSecrets": 1,
        "Keys": 7, "Secrets": 3, "Unreadable": 0, "UnreachableAccounts": 0,
    });
    assert_eq!(counts, expected, "{}", output.join("\n"));
    let record = emf_record(&output);
    assert_eq!(
        record["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        json!("IamKeyRotation")
    );
    for (metric, value) in [
        ("UnmanagedOldKeys", 1.0),
        // The stuck secret's key and the healthy one: older than a limit of 0
        // days, whoever manages them (no key escapes the age limit).
        ("NotRotatingKeys", 2.0),
        ("TwoActiveKeys", 0.0),
        ("StuckRotations", 1.0),
        ("OverdueRotations", 0.0),
        ("BrokenSecrets", 1.0),
    ] {
        assert_eq!(record[metric].as_f64(), Some(value), "{metric}: {record}");
    }
    let logged = output.join("\n");
    assert!(
        logged.contains(&loner) && logged.contains("unmanaged-old-key"),
        "{logged}"
    );
    assert!(logged.contains("secret needs attention"), "{logged}");
}
