#!/usr/bin/env bash
# Runs conformance.mjs (Slack's own Node SDK against backline's fake Slack) with
# @slack/web-api and @slack/bolt at the exact versions in package-lock.json.
#   tests/slack_sdk/run.sh <base_url> <token> <signing_secret> <control_url>
# Needs a running fake_slack (tests/slack/sdk_conformance_test.cpp starts one
# and calls this), node and npm (scripts/deps.sh --test), and the npm registry
# the first time. Exits non-zero when a check fails.
set -euo pipefail

if (( $# != 4 )); then
  echo "usage: $0 <base_url> <token> <signing_secret> <control_url>" >&2
  exit 2
fi

here="$(cd "$(dirname "$0")" && pwd)"
for tool in node npm; do
  if ! command -v "$tool" >/dev/null; then
    echo "run.sh: $tool is not installed (run scripts/deps.sh --test)" >&2
    exit 2
  fi
done

cd "$here"
# npm writes node_modules/.package-lock.json on every install: (re)install when
# it is missing or older than the committed lock file.
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund
  touch node_modules/.package-lock.json
fi

export FAKE_SLACK_URL="$1" FAKE_SLACK_TOKEN="$2" FAKE_SLACK_SIGNING_SECRET="$3" FAKE_SLACK_CONTROL_URL="$4"
exec node "$here/conformance.mjs"
