//! What `keyrot audit` and `keyrot status` cost over a large account, side by side
//! with the obvious sequential approach (every call one at a time: for audit,
//! `GetUser` for the description tags, `ListAccessKeys`, and
//! `GetAccessKeyLastUsed` per key; for status, the value, the user, its keys and
//! the current key's last use per secret). Both read the same users through the
//! fault proxy, which counts the calls, with and without a simulated network
//! round trip (moto on this machine answers in a few milliseconds of CPU, where
//! AWS's IAM API takes tens of milliseconds, mostly waiting, which concurrency
//! hides). Prints a table.
//!
//! Run it with `scripts/bench.sh [--quick]` (1,000 users, or 200 in quick mode).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use harness::fault_proxy::{FaultPlan, FaultProxy};
use harness::keyrot::{Measure, measure_keyrot as keyrot};
use harness::population::populate;
use harness::{World, moto, unique};

#[tokio::main]
async fn main() {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let users = if quick { 200 } else { 1000 };
    let world = World::new().await;
    let tag = unique("fleet");
    let (path, prefix) = (format!("/{tag}/"), format!("{tag}/"));
    let small_path = format!("{path}small/");
    println!("populating moto with {users} users (3 in 4 with a secret)...");
    let small = users / 5;
    populate(&world, &small_path, &prefix, small, 4).await;
    populate(&world, &format!("{path}rest/"), &prefix, users - small, 4).await;
    let secrets = users - users.div_ceil(4);

    println!(
        "\n| command | scope | round trip (ms) | approach | wall time (s) | AWS calls | calls per user or secret | speed-up | keyrot peak RSS (MiB) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let latencies: &[u64] = if quick { &[50] } else { &[0, 50] };
    for &latency in latencies {
        let proxy = FaultProxy::start(&moto().endpoint).await;
        proxy.set_plan(FaultPlan {
            latency: Duration::from_millis(latency),
            ..FaultPlan::default()
        });
        let audit = keyrot(
            &proxy,
            &[
                "audit", "--path", &path, "--prefix", &prefix, "--output", "json",
            ],
        )
        .await;
        let audit_small = keyrot(
            &proxy,
            &[
                "audit",
                "--path",
                &small_path,
                "--prefix",
                &prefix,
                "--output",
                "json",
            ],
        )
        .await;
        let audit_sequential = sequential_audit(&proxy, &path).await;
        let status = keyrot(&proxy, &["status", "--prefix", &prefix, "--output", "json"]).await;
        let status_sequential = sequential_status(&proxy, &prefix).await;
        let line = |command: &str,
                    scope: usize,
                    approach: &str,
                    m: &Measure,
                    baseline: Option<&Measure>| {
            let (speedup, rss) = (m.speedup_over(baseline), m.peak_rss_mib());
            println!(
                "| {command} | {scope} | {latency} | {approach} | {:.1} | {} | {:.2} | {speedup} | {rss} |",
                m.wall.as_secs_f64(),
                m.calls,
                m.calls as f64 / scope as f64,
            );
        };
        line("audit", users, "keyrot", &audit, Some(&audit_sequential));
        line("audit", users, "sequential", &audit_sequential, None);
        line("audit", small, "keyrot", &audit_small, None);
        line(
            "status",
            secrets,
            "keyrot",
            &status,
            Some(&status_sequential),
        );
        line("status", secrets, "sequential", &status_sequential, None);
    }
}

async fn clients(proxy: &FaultProxy) -> (aws_sdk_iam::Client, aws_sdk_secretsmanager::Client) {
    let config = harness::sdk_config(&proxy.endpoint).await;
    (
        aws_sdk_iam::Client::new(&config),
        aws_sdk_secretsmanager::Client::new(&config),
    )
}

/// Every user's keys, one call at a time: tags (which secret manages each key),
/// keys, and each key's last use.
async fn sequential_audit(proxy: &FaultProxy, path: &str) -> Measure {
    let (iam, _) = clients(proxy).await;
    proxy.clear_calls();
    let started = Instant::now();
    let mut keys = 0;
    let mut pages = iam.list_users().path_prefix(path).into_paginator().send();
    while let Some(page) = pages.next().await {
        for user in page.unwrap().users() {
            let name = user.user_name();
            let tags = iam.get_user().user_name(name).send().await.unwrap();
            let _managed: HashMap<String, String> = tags
                .user()
                .map(|u| {
                    u.tags()
                        .iter()
                        .map(|t| (t.key().into(), t.value().into()))
                        .collect()
                })
                .unwrap_or_default();
            let listed = iam.list_access_keys().user_name(name).send().await.unwrap();
            for key in listed.access_key_metadata() {
                iam.get_access_key_last_used()
                    .access_key_id(key.access_key_id().unwrap())
                    .send()
                    .await
                    .unwrap();
                keys += 1;
            }
        }
    }
    assert!(keys > 0);
    Measure {
        wall: started.elapsed(),
        calls: proxy.calls().len(),
        throttled: 0,
        peak_rss_kib: None,
    }
}

/// Every secret's row, one call at a time.
async fn sequential_status(proxy: &FaultProxy, prefix: &str) -> Measure {
    let (iam, secrets) = clients(proxy).await;
    proxy.clear_calls();
    let started = Instant::now();
    let mut pages = secrets
        .list_secrets()
        .filters(
            aws_sdk_secretsmanager::types::Filter::builder()
                .key(aws_sdk_secretsmanager::types::FilterNameStringType::Name)
                .values(prefix)
                .build(),
        )
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for secret in page.unwrap().secret_list() {
            let value = secrets
                .get_secret_value()
                .secret_id(secret.arn().unwrap())
                .send()
                .await
                .unwrap();
            let value: serde_json::Value =
                serde_json::from_str(value.secret_string().unwrap()).unwrap();
            let user = value["UserName"].as_str().unwrap();
            iam.get_user().user_name(user).send().await.unwrap();
            iam.list_access_keys().user_name(user).send().await.unwrap();
            iam.get_access_key_last_used()
                .access_key_id(value["AccessKeyId"].as_str().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    Measure {
        wall: started.elapsed(),
        calls: proxy.calls().len(),
        throttled: 0,
        peak_rss_kib: None,
    }
}
