#!/usr/bin/env bash
# Measures what a rotation costs, what a transient throttle and a rotation storm
# cost it (beside boto3's and the SDK's default retries), what keyrot costs over
# a large account and over an organization's accounts, what one sweep costs
# over many secrets, and what delivery costs (docs/performance.md), with the
# release x86_64 artifact of the function:
# `scripts/bench.sh` for the full run, `scripts/bench.sh --quick` for a few
# repetitions and 200 users or secrets (CI). Uses the artifact scripts/test-deploy.sh built,
# or builds it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-moto.sh
bootstrap=target/lambda-x86_64/iam-key-rotation/bootstrap
if [ ! -x "$bootstrap" ]; then
  scripts/setup-deploy-tools.sh
  PATH="$PWD/.venv-deploy/bin:$PATH" cargo lambda build --release --x86-64 --bin iam-key-rotation --lambda-dir target/lambda-x86_64
fi
# Built beside it by scripts/test-deploy.sh.
deliver=target/lambda-x86_64/iam-key-deliver/bootstrap
if [ ! -x "$deliver" ]; then
  scripts/setup-deploy-tools.sh
  PATH="$PWD/.venv-deploy/bin:$PATH" cargo lambda build --release --x86-64 --bin iam-key-deliver --lambda-dir target/lambda-x86_64
fi
cargo build --quiet --example bench --example fleet_bench --example org_bench --example sweep_bench --example deliver_bench --bin keyrot
IAM_KEY_ROTATION_BOOTSTRAP="$bootstrap" target/debug/examples/bench "$@"
target/debug/examples/fleet_bench "$@"
target/debug/examples/org_bench "$@"
IAM_KEY_ROTATION_BOOTSTRAP="$bootstrap" target/debug/examples/sweep_bench "$@"
IAM_KEY_ROTATION_BOOTSTRAP="$bootstrap" IAM_KEY_DELIVER_BOOTSTRAP="$deliver" target/debug/examples/deliver_bench "$@"
