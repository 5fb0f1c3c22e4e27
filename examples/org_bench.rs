//! What `keyrot audit --accounts` costs over an organization, side by side with
//! reading the same accounts one after another (`--concurrency 1`): 20 member
//! accounts of 250 users each (4 of 50 in quick mode), through the fault proxy
//! with a 50 ms round trip per call and IAM throttled per account (15 calls/s,
//! each account's own bucket, as AWS throttles IAM per account). Prints the wall
//! time, the AWS calls per user, and keyrot's peak memory for all the accounts
//! and for half of them (flat memory: output is streamed).
//!
//! Run it with `scripts/bench.sh [--quick]`.

use std::time::Duration;

use futures::{StreamExt, stream};
use harness::fault_proxy::{FaultPlan, FaultProxy};
use harness::keyrot::{Measure, measure_keyrot as keyrot};
use harness::organization::{member_iam, new_member_account, user_with_one_key};
use harness::{World, moto, unique};

const ROUND_TRIP: Duration = Duration::from_millis(50);
const IAM_CALLS_PER_SECOND_PER_ACCOUNT: f64 = 15.0;

#[tokio::main]
async fn main() {
    let quick = std::env::args().any(|arg| arg == "--quick");
    let (accounts, users) = if quick { (4, 50) } else { (20, 250) };
    let world = World::new().await;
    let path = format!("/{}/", unique("orgbench"));
    println!("populating moto: {accounts} member accounts of {users} users, one key each...");
    let mut members = Vec::new();
    for _ in 0..accounts {
        let account = new_member_account(&unique("bench")).await;
        populate_member(&world, &account, &path, users).await;
        members.push(account);
    }
    let all = members.join(",");
    let half = members[..accounts / 2].join(",");
    let total_users = accounts * users;

    let proxy = FaultProxy::start(&moto().endpoint).await;
    proxy.set_plan(FaultPlan {
        latency: ROUND_TRIP,
        rate_limits: vec![("iam", IAM_CALLS_PER_SECOND_PER_ACCOUNT)],
        rate_limit_per_key: true,
        ..FaultPlan::default()
    });
    let audit = |accounts: String, concurrency: &'static str| {
        let proxy = &proxy;
        let path = path.clone();
        async move {
            keyrot(
                proxy,
                &[
                    "audit",
                    "--accounts",
                    &accounts,
                    "--path",
                    &path,
                    "--concurrency",
                    concurrency,
                    "--output",
                    "json",
                ],
            )
            .await
        }
    };
    let parallel = audit(all.clone(), "8").await;
    let mut by_operation = std::collections::BTreeMap::<String, usize>::new();
    for call in proxy.calls() {
        *by_operation.entry(call.operation).or_default() += 1;
    }
    let half_parallel = audit(half, "8").await;
    let one_by_one = audit(all, "1").await;

    println!(
        "\n| approach | accounts | users | round trip (ms) | wall time (s) | AWS calls (throttled and retried) | requests per user | speed-up | keyrot peak RSS (MiB) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let line = |approach: &str, accounts: usize, m: &Measure, baseline: Option<&Measure>| {
        let users = accounts * users;
        let (speedup, rss) = (m.speedup_over(baseline), m.peak_rss_mib());
        println!(
            "| {approach} | {accounts} | {users} | {} | {:.1} | {} ({}) | {:.2} | {speedup} | {rss} |",
            ROUND_TRIP.as_millis(),
            m.wall.as_secs_f64(),
            m.calls,
            m.throttled,
            (m.calls - m.throttled) as f64 / users as f64,
        );
    };
    line("--concurrency 8", accounts, &parallel, Some(&one_by_one));
    line(
        "one account after another (--concurrency 1)",
        accounts,
        &one_by_one,
        None,
    );
    line(
        "--concurrency 8, half the accounts",
        accounts / 2,
        &half_parallel,
        None,
    );
    println!(
        "\ncalls of the --concurrency 8 run, by operation: {}",
        by_operation
            .iter()
            .map(|(operation, n)| format!("{operation} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "{total_users} users: {:.2} requests per user ({:.2} calls with the throttled retries; the target is at most 1.2), {:.1}x faster than one account at a time (target 6x)",
        (parallel.calls - parallel.throttled) as f64 / total_users as f64,
        parallel.calls as f64 / total_users as f64,
        one_by_one.wall.as_secs_f64() / parallel.wall.as_secs_f64()
    );
}

async fn populate_member(world: &World, account: &str, path: &str, users: usize) {
    let iam = member_iam(world, account).await;
    stream::iter(0..users)
        .for_each_concurrent(8, |n| {
            let iam = iam.clone();
            async move { user_with_one_key(&iam, &format!("user-{n:04}"), path, &[]).await }
        })
        .await;
}
