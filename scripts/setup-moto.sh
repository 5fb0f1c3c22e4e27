#!/usr/bin/env bash
# Installs the pinned moto server (tests/requirements.txt) into .venv in the repo.
# Does nothing when .venv already holds exactly those pins.
set -euo pipefail
cd "$(dirname "$0")/.."

requirements=tests/requirements.txt
stamp=.venv/.requirements-installed
if [ -f "$stamp" ] && cmp -s "$requirements" "$stamp"; then
  exit 0
fi
echo "setup: installing moto into .venv from $requirements" >&2
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$requirements"
cp "$requirements" "$stamp"
