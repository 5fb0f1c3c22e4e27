#!/usr/bin/env bash
# The member-account template, deployed as a StackSet would deploy it: moto's
# CloudFormation creates deploy/member-account.yaml inside a member account of
# moto's organization (with that account's credentials), the roles it declares
# exist there with their policies, and `keyrot audit --accounts` reads the
# account through the audit role. Its policies are proven least-privilege by
# scripts/check-least-privilege.sh; this shows that the template deploys.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-moto.sh
scripts/setup-deploy-tools.sh
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

work=$(mktemp -d)
cleanup() {
  exec 3>&-
  rm -rf "$work"
}
trap cleanup EXIT

exec 3> >(exec .venv/bin/python harness/moto_guard.py > "$work/moto-port")
for _ in $(seq 600); do [ -s "$work/moto-port" ] && break; sleep 0.1; done
export AWS_ENDPOINT_URL="http://127.0.0.1:$(cat "$work/moto-port")"
aws() { .venv-awscli/bin/aws "$@"; }
central=$(aws sts get-caller-identity --query Account --output text)

echo "-- an organization with a member account"
org=$(aws organizations create-organization --feature-set ALL --query Organization.Id --output text)
aws organizations create-account --email member@example.com --account-name member > /dev/null
member=$(aws organizations list-accounts --query "Accounts[?Name=='member'].Id" --output text)

echo "-- deploy/member-account.yaml in account $member, as the StackSet's execution role"
aws sts assume-role --role-arn "arn:aws:iam::$member:role/stacksets-exec" --role-session-name stackset \
  --query Credentials --output json > "$work/member-credentials.json"
as_member() {
  env $(python3 - "$work/member-credentials.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
print(f"AWS_ACCESS_KEY_ID={c['AccessKeyId']} AWS_SECRET_ACCESS_KEY={c['SecretAccessKey']} AWS_SESSION_TOKEN={c['SessionToken']}")
PY
) .venv-awscli/bin/aws "$@"
}
as_member cloudformation create-stack --stack-name iam-key-rotation-member \
  --template-body file://deploy/member-account.yaml --capabilities CAPABILITY_NAMED_IAM \
  --parameters "ParameterKey=CentralAccountId,ParameterValue=$central" "ParameterKey=OrganizationId,ParameterValue=$org" \
  "ParameterKey=CentralPrincipalArns,ParameterValue=arn:aws:iam::$central:user/moto" \
  ParameterKey=CreateRotationRole,ParameterValue=true \
  "ParameterKey=RotationFunctionRoleArn,ParameterValue=arn:aws:iam::$central:role/central-RotationFunctionRole-x" > /dev/null
status=$(as_member cloudformation describe-stacks --stack-name iam-key-rotation-member --query 'Stacks[0].StackStatus' --output text)
[ "$status" = CREATE_COMPLETE ] || { echo "the member stack is $status" >&2; exit 1; }
for role in iam-key-rotation-audit iam-key-rotation-target; do
  arn=$(as_member iam get-role --role-name "$role" --query Role.Arn --output text)
  case "$arn" in
    "arn:aws:iam::$member:role/$role") echo "   $arn" ;;
    *) echo "role $role is $arn, not in account $member" >&2; exit 1 ;;
  esac
done
trusted=$(as_member iam get-role --role-name iam-key-rotation-audit \
  --query 'Role.AssumeRolePolicyDocument.Statement[0].Principal.AWS' --output text)
[ "$trusted" = "arn:aws:iam::$central:root" ] || { echo "the audit role trusts $trusted" >&2; exit 1; }

echo "-- keyrot audit --accounts $member reads it through the audit role"
as_member iam create-user --user-name billing-export > /dev/null
as_member iam create-access-key --user-name billing-export > /dev/null
cargo build --quiet --bin keyrot
target/debug/keyrot audit --accounts "$member" --output json > "$work/audit.json"
python3 - "$work/audit.json" "$member" <<'PY'
import json, sys
audit, member = json.load(open(sys.argv[1])), sys.argv[2]
assert [a["state"] for a in audit["accounts"]] == ["read"], audit["accounts"]
users = {k["user"] for k in audit["keys"] if k["account"] == member}
assert users == {"billing-export"}, users
PY
echo "member template: deployed in account $member, both roles created, read by keyrot audit --accounts"
