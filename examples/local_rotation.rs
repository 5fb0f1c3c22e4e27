//! A complete local rotation, end to end: starts moto, creates an IAM user with a
//! first access key and a secret bound to it, runs the function binary under a
//! local Lambda Runtime API for the four steps, and prints the secret's versions
//! and the user's keys before and after, then the operator's view with `keyrot
//! status` and `keyrot audit`. Secret access keys are never printed. With
//! `OLD_KEY_ACTION=grace` the old key stays Active after the rotation, and the
//! demo then runs the hourly sweep once (`GRACE_HOURS=0` unless set), which
//! deactivates it.
//!
//! Run it with `scripts/demo.sh`, which installs moto and builds the binary.

#[path = "local_rotation/delivery.rs"]
mod delivery;

use harness::runtime_api::Reply;
use harness::{BINDING_TAG, Fixture, STEPS, Snapshot, World};
use serde_json::{Value, json};

const USER: &str = "app-deployer";
/// Under the default stack's `SecretNamePrefix`, for a user under its
/// `ManagedUserPath`: what `keyrot enroll` makes, and `keyrot status` reads.
const SECRET: &str = "iam-keys/app-deployer";
const USER_PATH: &str = "/rotated/";

#[tokio::main]
async fn main() {
    let world = World::new().await;
    println!("moto server: {}", harness::moto().endpoint);
    let fixture = set_up(&world).await;
    let demo_delivery = delivery::DemoDelivery::start(&world, &fixture).await;
    let token = world.start_rotation(&fixture).await;
    print_state(&world, &fixture, "Before the rotation").await;

    let old_key_action = std::env::var("OLD_KEY_ACTION").unwrap_or_else(|_| "deactivate".into());
    let grace_hours = std::env::var("GRACE_HOURS").unwrap_or_else(|_| "0".into());
    println!("\nRotating with OLD_KEY_ACTION={old_key_action}, token {token}");
    let mut function = harness::function::Function::start(
        &harness::moto().endpoint,
        &[
            ("OLD_KEY_ACTION", old_key_action.as_str()),
            ("GRACE_HOURS", grace_hours.as_str()),
            ("AWS_LAMBDA_LOG_FORMAT", "Text"),
        ],
    )
    .await;
    let mut failed = false;
    for step in STEPS {
        match function.invoke(step, &fixture.secret_arn, &token).await {
            Reply::Response(response) => {
                println!(
                    "  {step:<13} {}",
                    response["Outcome"].as_str().unwrap_or("?")
                )
            }
            Reply::Error(error) => {
                println!(
                    "  {step:<13} FAILED {}: {}",
                    error["errorType"], error["errorMessage"]
                );
                failed = true;
                break;
            }
        }
    }
    if !failed {
        print_state(
            &world,
            &fixture,
            "After the rotation (the old key waits for the delivery)",
        )
        .await;
        demo_delivery.deliver(&world, &fixture).await;
        if old_key_action != "grace" {
            println!("\nThe hourly sweep, now that every target holds the new key:");
            println!("  {}", function.sweep().await);
        }
    }
    if !failed && old_key_action == "grace" {
        print_state(
            &world,
            &fixture,
            "After the rotation (the old key is in its grace period)",
        )
        .await;
        println!(
            "\nThe hourly sweep, invoked once with {{\"Action\": \"sweep\"}} (GRACE_HOURS={grace_hours}):"
        );
        println!("  {}", function.sweep().await);
    }
    let log = function.stop().await;
    println!("\nThe function's log:");
    for line in log {
        if let Some(record) = serde_json::from_str::<Value>(&line)
            .ok()
            .filter(|value| value.get("_aws").is_some())
        {
            println!(
                "  EMF   {} {}: {} AWS calls, {:.0} ms",
                record["Step"].as_str().unwrap_or("?"),
                record["Outcome"].as_str().unwrap_or("?"),
                record["AwsCalls"][0].as_f64().unwrap_or(0.0) as u64,
                record["Duration"][0].as_f64().unwrap_or(0.0)
            );
            continue;
        }
        // Keep the level and the message; the spans repeat the step and secret.
        let message = line.rsplit("}: ").next().unwrap_or(&line);
        let level = line.split_whitespace().next().unwrap_or("");
        println!("  {level:<5} {message}");
    }
    let after = if old_key_action == "grace" {
        "After the rotation and the sweep"
    } else {
        "After the rotation"
    };
    print_state(&world, &fixture, after).await;
    if failed {
        std::process::exit(1);
    }
    operators_view(&world).await;
}

/// `keyrot status` and `keyrot audit` over the demo's own account, with one more
/// user whose key no secret manages, as most accounts have.
async fn operators_view(world: &World) {
    world.create_user("legacy-ci", &[]).await;
    let (legacy_key, _) = world.create_key("legacy-ci").await;
    println!(
        "
Created IAM user legacy-ci with access key {legacy_key}, in no secret"
    );
    println!(
        "
The operator's view of the account, with keyrot (the crate's second binary):"
    );
    for args in [vec!["status"], vec!["audit"]] {
        println!(
            "
$ keyrot {}",
            args.join(" ")
        );
        let run = harness::keyrot::keyrot(&harness::moto().endpoint, &args).await;
        for line in run.stdout.lines().chain(run.stderr.lines()) {
            println!("  {line}");
        }
        println!("  (exit code {})", run.code);
        if run.code == 2 {
            std::process::exit(1);
        }
    }
    if std::env::var_os("MOTO_ENDPOINT").is_some() {
        keep_for_the_reader(world).await;
    }
}

/// With `scripts/demo.sh --keep`: what the README's keyrot commands need on
/// the emulator that stays up: the stack's rotation function (registered in
/// moto as the default stack configures it, under the name the demo's secret
/// already names), a user to enroll, and an organization with a member
/// account for `keyrot audit --org`.
async fn keep_for_the_reader(world: &World) {
    let endpoint = &harness::moto().endpoint;
    let function = harness::keyrot::register_function_of_stack(
        endpoint,
        "iam-key-rotation",
        USER_PATH,
        "iam-keys/",
        "secretsmanager",
    );
    world.create_user_at("new-app", USER_PATH, &[]).await;
    let prod = harness::organization::new_member_account("prod").await;
    let member = world
        .iam_in_account(&harness::organization::member_role(&prod))
        .await;
    harness::organization::user_with_one_key(&member, "billing-export", "/", &[]).await;
    println!(
        "\nFor the README's keyrot commands: IAM user new-app (not enrolled yet), the rotation function {function}, and an organization with member account {prod} (prod)"
    );
    // The line scripts/demo.sh reads the function's ARN from.
    println!("FUNCTION_ARN={function}");
}

/// The user, its first key, and the secret holding that key, bound by tag.
async fn set_up(world: &World) -> Fixture {
    let secret_arn = world
        .create_secret(SECRET, &json!({"UserName": USER}))
        .await;
    println!("Created secret {secret_arn}");
    world
        .create_user_at(USER, USER_PATH, &[(BINDING_TAG, &secret_arn)])
        .await;
    let (key_id, secret_access_key) = world.create_key(USER).await;
    let value =
        json!({"UserName": USER, "AccessKeyId": key_id, "SecretAccessKey": secret_access_key});
    world
        .secrets()
        .put_secret_value()
        .secret_id(&secret_arn)
        .secret_string(value.to_string())
        .send()
        .await
        .unwrap();
    println!(
        "Created IAM user {USER} with access key {key_id}, bound to the secret by the tag {BINDING_TAG}=<its ARN>"
    );
    Fixture {
        user: USER.into(),
        secret_name: SECRET.into(),
        secret_arn,
    }
}

async fn print_state(world: &World, fixture: &Fixture, title: &str) {
    let Snapshot { keys, versions, .. } = world.snapshot(fixture).await;
    println!("\n{title}:");
    println!("  secret versions:");
    for (version, stages) in &versions {
        let key = version_key(world, fixture, version).await;
        println!("    {version}  {:<24} AccessKeyId={key}", stages.join(","));
    }
    println!("  access keys of IAM user {}:", fixture.user);
    for (key, status) in &keys {
        println!("    {key}  {status}");
    }
}

async fn version_key(world: &World, fixture: &Fixture, version: &str) -> String {
    let value = world
        .secrets()
        .get_secret_value()
        .secret_id(&fixture.secret_arn)
        .version_id(version)
        .send()
        .await
        .ok()
        .and_then(|output| output.secret_string().map(str::to_string));
    value
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .and_then(|value| value["AccessKeyId"].as_str().map(str::to_string))
        .unwrap_or_else(|| "(no value yet)".into())
}
