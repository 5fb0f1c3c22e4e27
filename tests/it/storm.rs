//! A rotation storm (many secrets due at once, several function instances, IAM
//! throttling the account): no step may fail from throttling while the
//! invocation has time left, and every rotation keeps invariants 1 to 4.

use harness::fault_proxy::FaultProxy;
use harness::storm::{Storm, run_storm};
use harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_36_rotations_through_6_instances_at_12_iam_calls_per_second_fails_no_step() {
    let world = World::new().await;
    let proxy = FaultProxy::start(&moto().endpoint).await;
    let storm = Storm {
        secrets: 36,
        instances: 6,
        iam_calls_per_second: 12.0,
        env: Vec::new(),
    };
    let report = run_storm(&world, &proxy, &storm).await;
    eprintln!(
        "storm: {} rotations in {:.1} s, {} calls, {} throttled, {} failed steps, IAM answered {:.1} calls/s, slowest step {:.1} s",
        storm.secrets,
        report.wall_time.as_secs_f64(),
        report.calls,
        report.throttled,
        report.failed_steps.len(),
        report.iam_rate(),
        report.slowest_step().as_secs_f64()
    );
    assert!(
        report.throttled > 0,
        "IAM never throttled: the storm proved nothing"
    );
    assert!(
        report.failed_steps.is_empty(),
        "steps failed under throttling: {:?}",
        report.failed_steps
    );
    assert_eq!(report.abandoned, 0);
    for (fixture, token) in &report.rotations {
        world
            .assert_rotation_complete_issued(fixture, &[], &|key| proxy.issued_secret(key))
            .await;
        world
            .assert_current_key_works(fixture, "after the storm")
            .await;
        let snapshot = world.snapshot(fixture).await;
        assert_eq!(snapshot.versions[token], vec!["AWSCURRENT"], "{snapshot:?}");
    }
}
