//! The test harness of iam-key-rotation, shared by the integration tests
//! (`tests/it`), the demo and the benchmark (`examples/`): a moto server, a small
//! Lambda Runtime API that runs the real function binary, a fault-injecting proxy,
//! a GitHub stand-in, fixtures, snapshots and the invariants every rotation must
//! keep.
//!
//! A crate of its own rather than a `mod support` included by each test binary:
//! it compiles once, needs no `#[path]` and no `dead_code` allowances.

mod admin;
pub mod boto3_baseline;
pub mod cpu_share;
pub mod delivery;
pub mod event_queue;
pub mod evidence;
pub mod fault_proxy;
pub mod function;
pub mod github_standin;
mod invariants;
pub mod keyrot;
mod ledger;
mod local_http;
mod moto;
pub mod organization;
pub mod population;
pub mod runtime_api;
mod sigv4;
pub mod storm;
pub mod tls_front;
mod world;

pub use admin::AdminClients;
pub use evidence::{record_issued_secret, record_log};
pub use invariants::{Snapshot, access_keys};
pub use ledger::KeyLedger;
pub use moto::{
    AUDIT_FUNCTION_KEY, DELIVERY_FUNCTION_KEY, Moto, ROTATION_FUNCTION_KEY, moto, repo_root,
    sdk_config, sdk_config_as,
};
pub use world::{Fixture, STEPS, World, config_with, invocation, new_token, unique, use_key};

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "123456789012";
pub const BINDING_TAG: &str = "iam-key-rotation:secret";
/// A function ARN of its own, for a test whose secrets no other test's
/// function may rotate (the sweep visits every secret its function rotates).
pub fn unique_function_arn() -> String {
    format!(
        "arn:aws:lambda:{REGION}:{ACCOUNT}:function:{}",
        unique("sweeper")
    )
}

/// The function every test secret names as its rotation function, and the ARN
/// the function is invoked by (the local Runtime API sends the same one).
pub const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:iam-key-rotation";
