//! What one sweep (`{"Action": "sweep"}`) costs over many secrets, with the real
//! function binary against a moto of its own, through the fault proxy (which
//! counts the calls), with and without a simulated network round trip.
//!
//! Every secret starts where a rotation in grace mode leaves it: `AWSPREVIOUS`
//! holds an Active key. The first sweep deactivates all of them (one write per
//! secret); the second finds nothing due, which is every other hour of the day.
//! Beside that steady sweep, the obvious sequential approach over the same
//! secrets: list them, then per secret read both versions, the user (binding
//! tag) and its keys, one call at a time. Prints a table.
//!
//! Run it with `scripts/bench.sh [--quick]` (1,000 secrets, or 200 in quick mode).

use std::time::{Duration, Instant};

use futures::{StreamExt, stream};
use harness::fault_proxy::{FaultPlan, FaultProxy};
use harness::function::Function;
use harness::runtime_api::Reply;
use harness::{ACCOUNT, BINDING_TAG, Fixture, Moto, REGION, World, unique};
use serde_json::{Value, json};

const CURRENT_SINCE_TAG: &str = "iam-key-rotation:current-since";

struct Measure {
    wall: Duration,
    calls: usize,
}

#[tokio::main]
async fn main() {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let secrets = if quick { 200 } else { 1000 };
    let latencies: &[u64] = if quick { &[50] } else { &[0, 50] };
    println!(
        "\n| round trip (ms) | sweep | approach | secrets | wall time (s) | AWS calls | calls per secret | keys deactivated | speed-up |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for &latency in latencies {
        // A fresh account each time: the first sweep changes every secret.
        let moto = Moto::start();
        let world = World::with_endpoint(&moto.endpoint).await;
        let function_arn = format!(
            "arn:aws:lambda:{REGION}:{ACCOUNT}:function:{}",
            unique("sweeper")
        );
        eprintln!("populating moto with {secrets} secrets after a rotation in grace mode...");
        populate(&world, &function_arn, secrets).await;
        let proxy = FaultProxy::start(&moto.endpoint).await;
        proxy.set_plan(FaultPlan {
            latency: Duration::from_millis(latency),
            ..FaultPlan::default()
        });
        let mut function = Function::start(
            &proxy.endpoint,
            &[("OLD_KEY_ACTION", "grace"), ("GRACE_HOURS", "0")],
        )
        .await;
        function.set_function_arn(&function_arn);
        let (first, first_response) = sweep(&mut function, &proxy).await;
        let (steady, steady_response) = sweep(&mut function, &proxy).await;
        function.stop().await;
        let sequential = sequential_sweep(&proxy, &function_arn).await;
        let deactivated = first_response["Deactivated"].as_array().map_or(0, Vec::len);
        // A benchmark of a sweep that did nothing would measure nothing.
        assert_eq!(
            deactivated, secrets,
            "the first sweep retires every key: {first_response}"
        );
        assert_eq!(
            steady_response["Deactivated"]
                .as_array()
                .map_or(0, Vec::len),
            0,
            "the steady sweep finds nothing due: {steady_response}"
        );
        let line = |sweep: &str,
                    approach: &str,
                    m: &Measure,
                    keys: usize,
                    baseline: Option<&Measure>| {
            let speedup = baseline
                .map(|b| format!("{:.1}x", b.wall.as_secs_f64() / m.wall.as_secs_f64()))
                .unwrap_or_else(|| "-".into());
            println!(
                "| {latency} | {sweep} | {approach} | {secrets} | {:.1} | {} | {:.2} | {keys} | {speedup} |",
                m.wall.as_secs_f64(),
                m.calls,
                m.calls as f64 / secrets as f64,
            );
        };
        line("first (all due)", "function", &first, deactivated, None);
        line(
            "steady (none due)",
            "function",
            &steady,
            0,
            Some(&sequential),
        );
        line("steady (none due)", "sequential", &sequential, 0, None);
    }
}

/// `count` bound users, each with a secret rotated by `function_arn` whose
/// `AWSPREVIOUS` holds the user's first key (Active) and `AWSCURRENT` a second.
async fn populate(world: &World, function_arn: &str, count: usize) {
    stream::iter(0..count)
        .for_each_concurrent(8, |_| async move {
            let user = unique("swept");
            let secret_name = format!("iam-keys/{user}");
            let secret_arn = world
                .create_secret(&secret_name, &json!({"UserName": user}))
                .await;
            world
                .create_user_at(&user, "/", &[(BINDING_TAG, &secret_arn)])
                .await;
            let (old_id, old_secret) = world.create_key(&user).await;
            let fixture = Fixture {
                user: user.clone(),
                secret_name,
                secret_arn,
            };
            world
                .put_current(
                    &fixture,
                    &json!({"UserName": user, "AccessKeyId": old_id, "SecretAccessKey": old_secret}),
                )
                .await;
            // As a rotation leaves it: the function's description of its key.
            world.describe_key(&fixture, &old_id).await;
            world.set_rotation_function(&fixture, function_arn).await;
            let (new_id, new_secret) = world.create_key(&user).await;
            world
                .put_current(
                    &fixture,
                    &json!({"UserName": user, "AccessKeyId": new_id, "SecretAccessKey": new_secret}),
                )
                .await;
            // finishSecret's records: the new key's description, and when
            // AWSCURRENT moved (now, after both versions were made: a record
            // older than AWSPREVIOUS is stale, T6; the grace of 0 hours has
            // passed at once).
            world.describe_key(&fixture, &new_id).await;
            let current = current_version(world, &fixture.secret_arn).await;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            world
                .tag_user(&user, CURRENT_SINCE_TAG, &format!("{current} {now}"))
                .await;
        })
        .await;
}

async fn current_version(world: &World, secret_arn: &str) -> String {
    world
        .secrets()
        .describe_secret()
        .secret_id(secret_arn)
        .send()
        .await
        .unwrap()
        .version_ids_to_stages()
        .into_iter()
        .flatten()
        .find(|(_, stages)| stages.iter().any(|s| s == "AWSCURRENT"))
        .map(|(version, _)| version.clone())
        .unwrap()
}

async fn sweep(function: &mut Function, proxy: &FaultProxy) -> (Measure, Value) {
    proxy.clear_calls();
    let started = Instant::now();
    let reply = function
        .api
        .invoke(json!({"Action": "sweep"}), Duration::from_secs(900))
        .await;
    let wall = started.elapsed();
    let Some(Reply::Response(response)) = reply else {
        panic!(
            "the sweep failed: {reply:?}\n{}",
            function.output().join("\n")
        );
    };
    assert_eq!(response["Unfinished"], 0, "{response}");
    (
        Measure {
            wall,
            calls: proxy.calls().len(),
        },
        response,
    )
}

/// The sweep as a sample script would write it: every call one at a time.
async fn sequential_sweep(proxy: &FaultProxy, function_arn: &str) -> Measure {
    let config = harness::sdk_config(&proxy.endpoint).await;
    let secrets = aws_sdk_secretsmanager::Client::new(&config);
    let iam = aws_sdk_iam::Client::new(&config);
    proxy.clear_calls();
    let started = Instant::now();
    let mut pages = secrets.list_secrets().into_paginator().send();
    while let Some(page) = pages.next().await {
        for secret in page.unwrap().secret_list() {
            if secret.rotation_lambda_arn() != Some(function_arn) {
                continue;
            }
            let arn = secret.arn().unwrap();
            let mut users = Vec::new();
            for stage in ["AWSCURRENT", "AWSPREVIOUS"] {
                let value = secrets
                    .get_secret_value()
                    .secret_id(arn)
                    .version_stage(stage)
                    .send()
                    .await
                    .unwrap();
                let value: Value = serde_json::from_str(value.secret_string().unwrap()).unwrap();
                users.push(value["UserName"].as_str().unwrap().to_string());
            }
            iam.get_user().user_name(&users[0]).send().await.unwrap();
            iam.list_access_keys()
                .user_name(&users[0])
                .send()
                .await
                .unwrap();
        }
    }
    Measure {
        wall: started.elapsed(),
        calls: proxy.calls().len(),
    }
}
