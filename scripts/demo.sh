#!/usr/bin/env bash
# A complete local rotation against moto: installs the pinned emulator into .venv,
# builds the function and the demo, then rotates an example user's key through the
# real function binary, prints the versions and keys before and after, delivers
# the new key to a local GitHub stand-in's repository (the old key retires only
# then), and ends with `keyrot status` and `keyrot audit` over the same account.
#
# --keep leaves moto running afterwards (with the rotation function registered,
# a user to enroll and an organization) and prints the exports that point the
# AWS CLI and keyrot at it, so that the README's keyrot commands run as written.
set -euo pipefail
cd "$(dirname "$0")/.."
keep=false
case "${1:-}" in
  --keep) keep=true ;;
  "") ;;
  *) echo "usage: scripts/demo.sh [--keep]" >&2; exit 2 ;;
esac
scripts/setup-moto.sh
echo "demo: building the functions, keyrot and the demo (the first build compiles the AWS SDK: about 6 minutes on 2 cores)" >&2
cargo build --bin iam-key-rotation --bin iam-key-deliver --bin keyrot --example local_rotation
export IAM_KEY_ROTATION_BOOTSTRAP="${IAM_KEY_ROTATION_BOOTSTRAP:-target/debug/iam-key-rotation}"
if ! $keep; then
  exec target/debug/examples/local_rotation
fi

# moto on a free port, kept up by a holder process: killing the holder stops it.
state=$(mktemp -d)
setsid bash -c 'exec sleep infinity | exec .venv/bin/python harness/moto_guard.py' > "$state/port" 2> "$state/moto.log" &
holder=$!
for _ in $(seq 600); do [ -s "$state/port" ] && break; sleep 0.1; done
[ -s "$state/port" ] || { echo "demo: moto did not start (see $state/moto.log)" >&2; exit 1; }
endpoint="http://127.0.0.1:$(head -1 "$state/port")"
MOTO_ENDPOINT="$endpoint" target/debug/examples/local_rotation | tee "$state/demo.out"
function_arn=$(sed -n 's/^FUNCTION_ARN=//p' "$state/demo.out")
cat <<EXPORTS

moto stays up at $endpoint. Point the AWS CLI and keyrot at it, and try the README's commands:

  export AWS_ENDPOINT_URL=$endpoint AWS_REGION=us-east-1
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
  export FUNCTION_ARN=$function_arn
  export PATH="$PWD/target/debug:\$PATH"
  keyrot status

Stop it with: kill -- -$holder
EXPORTS
