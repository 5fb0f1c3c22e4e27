#!/usr/bin/env bash
# Installs the deployment tool chain, pinned under tools/:
#   .venv-deploy  cargo-lambda + zig (cross builds), aws-sam-cli (sam build/validate) and its cfn-lint
#   .venv-awscli  the aws CLI
#   .venv-checkov checkov
# and, from Debian, qemu-user and libc6-arm64-cross to run the arm64 binary here.
# Each venv is installed once per change of its requirements file.
set -euo pipefail
cd "$(dirname "$0")/.."

install_venv() {
  local name=$1 requirements=tools/requirements-$1.txt
  local venv=.venv-$name stamp=.venv-$name/.requirements-installed
  if [ -f "$stamp" ] && cmp -s "$requirements" "$stamp"; then
    return
  fi
  echo "setup: installing $name into $venv from $requirements" >&2
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$stamp"
}

install_venv deploy &
install_venv awscli &
install_venv checkov &

# jq runs the upgrade's one-pass of docs/operating.md in the trust tests.
if ! command -v qemu-aarch64 >/dev/null || [ ! -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ] \
  || ! command -v jq >/dev/null; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  echo "setup: installing qemu-user, libc6-arm64-cross and jq with apt-get" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq qemu-user libc6-arm64-cross jq >/dev/null
fi
for job in $(jobs -p); do wait "$job"; done
