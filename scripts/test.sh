#!/usr/bin/env bash
# The whole test suite:
#   unit tests, integration and fault-injection tests against moto, and the debug
#   binary under a local Lambda Runtime API (cargo test);
#   the deployment path (scripts/test-deploy.sh): template checks, the release
#   artifacts for x86_64 and arm64 (the latter under qemu) rotating against moto,
#   sam build, and the AWS CLI path;
#   a scan of everything the function logged, for every secret it handled;
#   least privilege: every call the tests' functions made, and a list of attempts
#   that must fail, through a real IAM policy evaluator over the template.
# Tools (moto, cargo-lambda, sam, the aws CLI, checkov, qemu) are installed on first
# use. Extra arguments go to `cargo test` (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-moto.sh
scripts/setup-deploy-tools.sh
rm -rf target/test-evidence

echo "== unit, integration and fault-injection tests (debug build)" >&2
cargo test --all-targets "$@"

scripts/test-deploy.sh

echo "== secret scan of everything the function logged" >&2
scripts/scan-test-logs.sh

echo "== least privilege: the template's policies against every recorded call" >&2
scripts/check-least-privilege.sh
