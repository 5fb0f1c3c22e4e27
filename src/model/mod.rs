//! The records the jobs read and write, as values: a secret's description and
//! value, an IAM user with its keys and the records kept on it (the binding,
//! key descriptions, the creation marker, the current-since record), a
//! secret's delivery (its targets, what reached them, the last failure), and
//! the lifecycle events. Each record has one module, with its one writer and its
//! one parser, and the rules of trust that bear on it (SPEC 11). Pure: nothing
//! here calls AWS, so every rule has a unit test.
//!
//! Who can write each record decides what it may prove: every
//! `iam-key-rotation:*` tag key is reserved (only administrators and the
//! function's role may write it, and the role never the binding), so the
//! binding, the marker and the current-since record may be trusted; a key
//! description and a secret's value can be written by others, so neither alone
//! proves anything (`description.rs`).

pub mod binding;
pub mod creation_marker;
pub mod current_since;
pub mod deactivation;
pub mod delivered;
pub mod delivery;
pub mod delivery_error;
pub mod delivery_target;
pub mod description;
pub mod lifecycle;
pub mod schedule;
pub mod secret;
pub mod secret_value;
pub mod user;
