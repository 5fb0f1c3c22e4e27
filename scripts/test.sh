#!/usr/bin/env bash
# The whole test suite: unit tests, integration tests against moto (installed into
# .venv on first use), and the release binary under a local Lambda Runtime API.
# Extra arguments go to the first `cargo test` (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-moto.sh

echo "== unit and integration tests (debug build)" >&2
cargo test --all-targets "$@"

echo "== the release binary under a Lambda Runtime API" >&2
cargo build --release --bin iam-key-rotation
IAM_KEY_ROTATION_BOOTSTRAP=target/release/iam-key-rotation cargo test --test lambda_binary
