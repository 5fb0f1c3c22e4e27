#!/usr/bin/env bash
# A complete local rotation against moto: installs the pinned emulator into .venv,
# builds the function and the demo, then rotates an example user's key through the
# real function binary, prints the versions and keys before and after, delivers
# the new key to a local GitHub stand-in's repository (the old key retires only
# then), and ends with `keyrot status` and `keyrot audit` over the same account.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-moto.sh
cargo build --quiet --bin iam-key-rotation --bin iam-key-deliver --bin keyrot --example local_rotation
IAM_KEY_ROTATION_BOOTSTRAP="${IAM_KEY_ROTATION_BOOTSTRAP:-target/debug/iam-key-rotation}" \
  exec target/debug/examples/local_rotation
