//! The integration tests, one binary (one link of the SDK-heavy code, one moto
//! server): every module below drives the real handler or the real function
//! binary against moto through the harness crate (`harness/`).

mod alerts;
mod audit_function;
mod cross_account;
mod delivery;
mod faults;
mod first_run;
mod github;
mod grace;
mod keyrot;
mod lambda_binary;
mod organization;
mod refusals;
mod rollback;
mod rotation;
mod storm;
mod trust;
