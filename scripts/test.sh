#!/usr/bin/env bash
# The whole test suite: unit tests, integration and fault-injection tests against
# moto (installed into .venv on first use), the release binary under a local Lambda
# Runtime API, and a scan of everything the function logged for secrets.
# Extra arguments go to the first `cargo test` (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-moto.sh
rm -rf target/test-evidence

echo "== unit and integration tests (debug build)" >&2
cargo test --all-targets "$@"

echo "== the release binary under a Lambda Runtime API" >&2
cargo build --release --bin iam-key-rotation
IAM_KEY_ROTATION_BOOTSTRAP=target/release/iam-key-rotation cargo test --test lambda_binary

echo "== secret scan of everything the function logged" >&2
scripts/scan-test-logs.sh
