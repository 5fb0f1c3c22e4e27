#!/usr/bin/env bash
# Least privilege, proven: the templates' policies (the stack's and the member
# account's), evaluated by a real IAM policy
# evaluator (@cloud-copilot/iam-simulate, pinned in tools/iam-check), must allow
# every call the tests' functions made (moto records them: harness/moto_server.py)
# and give every probe of tools/iam-check/expectations.json its decision.
set -euo pipefail
cd "$(dirname "$0")/.."
check=tools/iam-check
stamp=$check/node_modules/.installed-lock
if [ ! -f "$stamp" ] || ! cmp -s "$check/package-lock.json" "$stamp"; then
  echo "setup: installing the IAM policy evaluator into $check/node_modules" >&2
  (cd "$check" && npm ci --no-audit --no-fund --silent)
  cp "$check/package-lock.json" "$stamp"
fi
node "$check/check.mjs" template.yaml deploy/member-account.yaml target/test-evidence/authz-calls.jsonl \
  "$check/expectations.json"
