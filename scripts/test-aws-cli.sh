#!/usr/bin/env bash
# The AWS CLI path, end to end: the function runs under `cargo lambda watch` on
# 127.0.0.1, and the real `aws` CLI drives a full rotation against moto with the
# same commands the README shows for real AWS (plus --endpoint-url): set up a user
# and its secret, attach rotation, then `aws lambda invoke` each step with the
# events/ files (secret and token rewritten), and check the end state.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-moto.sh
scripts/setup-deploy-tools.sh
export PATH="$PWD/.venv-deploy/bin:$PATH"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

work=$(mktemp -d)
watch_pid=""
cleanup() {
  [ -z "$watch_pid" ] || kill -- "-$watch_pid" 2>/dev/null || true
  exec 3>&-
  rm -rf "$work"
}
trap cleanup EXIT

# moto on a free port, stopped when fd 3 closes (at exit, however we exit).
exec 3> >(exec .venv/bin/python harness/moto_guard.py > "$work/moto-port")
for _ in $(seq 600); do [ -s "$work/moto-port" ] && break; sleep 0.1; done
moto="http://127.0.0.1:$(cat "$work/moto-port")"
aws() { .venv-awscli/bin/aws --endpoint-url "$moto" "$@"; }

user=example-app
secret=iam-keys/example-app

echo "-- a user under the managed path, bound to its secret by ARN (as the README shows), with a first key"
arn=$(aws secretsmanager create-secret --name "$secret" \
  --secret-string "{\"UserName\": \"$user\"}" --query ARN --output text)
aws iam create-user --user-name "$user" --path /rotated/ \
  --tags "Key=iam-key-rotation:secret,Value=$arn" > /dev/null
aws iam create-access-key --user-name "$user" > "$work/first-key.json"
python3 - "$work/first-key.json" "$user" > "$work/secret.json" <<'PY'
import json, sys
key = json.load(open(sys.argv[1]))["AccessKey"]
print(json.dumps({"UserName": sys.argv[2], "AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}))
PY
aws secretsmanager put-secret-value --secret-id "$arn" --secret-string "file://$work/secret.json" > /dev/null
old_key=$(aws iam list-access-keys --user-name "$user" --query 'AccessKeyMetadata[0].AccessKeyId' --output text)

echo "-- attach rotation (moto has no Lambda to call: it stages AWSPENDING, then says the function is missing)"
# The secret's rotation function must be the function invoked (RotationFunctionMismatch
# otherwise). `cargo lambda watch` reports the placeholder "function-arn" as the invoked
# function's ARN (and no deadline), so that is the ARN this secret names here; against
# AWS it is the stack output RotationFunctionArn.
function_arn=function-arn
if aws secretsmanager rotate-secret --secret-id "$secret" --rotation-lambda-arn "$function_arn" \
     --rotation-rules AutomaticallyAfterDays=30 2> "$work/rotate.err"; then
  echo "rotate-secret was expected to fail on moto" >&2; exit 1
fi
grep -q ResourceNotFoundException "$work/rotate.err"
token=$(aws secretsmanager describe-secret --secret-id "$secret" --output json \
  | python3 -c 'import json,sys; v=json.load(sys.stdin)["VersionIdsToStages"]; print(next(k for k, s in v.items() if "AWSPENDING" in s))')

echo "-- the function under cargo lambda watch"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
setsid cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$port" \
  --env-var "AWS_ENDPOINT_URL=$moto" --env-var AWS_REGION=us-east-1 \
  --env-var AWS_ACCESS_KEY_ID=testing --env-var AWS_SECRET_ACCESS_KEY=testing \
  --env-var AWS_LAMBDA_LOG_FORMAT=JSON > "$work/watch.log" 2>&1 &
watch_pid=$!
for _ in $(seq 300); do
  python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$port" 2>/dev/null && break
  sleep 0.2
done

echo "-- the four steps with aws lambda invoke"
for step in createSecret setSecret testSecret finishSecret; do
  python3 - "events/$step.json" "$secret" "$token" > "$work/$step.json" <<'PY'
import json, sys
event = json.load(open(sys.argv[1]))
event.update(SecretId=sys.argv[2], ClientRequestToken=sys.argv[3])
print(json.dumps(event))
PY
  .venv-awscli/bin/aws lambda invoke --endpoint-url "http://127.0.0.1:$port" \
    --function-name iam-key-rotation \
    --cli-read-timeout 300 --payload "fileb://$work/$step.json" "$work/$step.out" > "$work/$step.meta" \
    || { tail -n 40 "$work/watch.log" >&2; exit 1; }
  if grep -q FunctionError "$work/$step.meta"; then
    echo "$step failed: $(cat "$work/$step.out")" >&2
    tail -n 20 "$work/watch.log" >&2
    exit 1
  fi
  echo "   $step: $(cat "$work/$step.out")"
done

echo "-- the end state"
stages=$(aws secretsmanager describe-secret --secret-id "$secret" --query "VersionIdsToStages.\"$token\"" --output text)
[ "$stages" = AWSCURRENT ] || { echo "the new version is '$stages', not AWSCURRENT" >&2; exit 1; }
aws iam list-access-keys --user-name "$user" --query 'AccessKeyMetadata[].[AccessKeyId,Status]' --output text | sort > "$work/keys"
cat "$work/keys"
grep -q "^$old_key	Inactive$" "$work/keys" || { echo "the old key is not Inactive" >&2; exit 1; }
[ "$(grep -c '	Active$' "$work/keys")" -eq 1 ] || { echo "expected one Active key" >&2; exit 1; }
new_key=$(aws secretsmanager get-secret-value --secret-id "$secret" --version-stage AWSCURRENT --query SecretString --output text \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["AccessKeyId"])')
grep -q "^$new_key	Active$" "$work/keys" || { echo "AWSCURRENT does not hold the Active key" >&2; exit 1; }
echo "AWS CLI path: rotated $secret from $old_key to $new_key"
