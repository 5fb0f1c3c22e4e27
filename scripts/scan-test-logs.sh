#!/usr/bin/env bash
# The suite-wide secret scan (invariant 5, docs/design.md): every line the function logged or
# answered during the test run must be free of every secret it handled (secret
# access keys, rotation tokens). The tests write both under target/test-evidence.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=target/test-evidence
secrets=$(mktemp)
trap 'rm -f "$secrets"' EXIT
cat "$dir"/*.secrets 2>/dev/null | grep -v '^$' | sort -u > "$secrets" || true
nsecrets=$(wc -l < "$secrets")
nlines=$(cat "$dir"/*.log 2>/dev/null | wc -l)
if [ "$nsecrets" -eq 0 ] || [ "$nlines" -eq 0 ]; then
  echo "secret scan: no evidence under $dir (did the tests run?)" >&2
  exit 1
fi
# Report where, never what: printing the match would print the secret.
leaks=$(grep -H -F -c -f "$secrets" "$dir"/*.log | grep -v ':0$' || true)
if [ -n "$leaks" ]; then
  echo "secret scan: FAILED, secrets appear in (file:lines):" >&2
  echo "$leaks" >&2
  exit 1
fi
echo "secret scan: $nlines log lines, $nsecrets secrets handled, none logged"
