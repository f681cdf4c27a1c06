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
source "$here/../support/npm_install.sh"
npm_install_here "$here" run.sh

export FAKE_SLACK_URL="$1" FAKE_SLACK_TOKEN="$2" FAKE_SLACK_SIGNING_SECRET="$3" FAKE_SLACK_CONTROL_URL="$4"
exec node "$here/conformance.mjs"
