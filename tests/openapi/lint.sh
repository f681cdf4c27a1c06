#!/usr/bin/env bash
# Lints an OpenAPI description with Redocly CLI, at the exact version pinned in
# package.json / package-lock.json, using redocly.yaml beside this script.
#   tests/openapi/lint.sh [openapi.yaml]   (default: the repo's openapi.yaml)
# Exits non-zero when the description has errors (warnings are printed only).
# Needs node and npm (scripts/deps.sh --test) and the npm registry the first time.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
spec="${1:-$here/../../openapi.yaml}"
if [[ ! -f "$spec" ]]; then
  echo "lint.sh: no such file: $spec" >&2
  exit 2
fi
spec="$(cd "$(dirname "$spec")" && pwd)/$(basename "$spec")"

source "$here/../support/npm_install.sh"
npm_install_here "$here" lint.sh

# No telemetry, update notices or other notifications: this is a test.
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true REDOCLY_SUPPRESS_NOTIFICATIONS=true
exec node_modules/.bin/redocly lint --config "$here/redocly.yaml" "$spec"
