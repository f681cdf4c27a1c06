#!/usr/bin/env bash
# Runs the agent inbox page's browser tests (inbox.test.mjs) with
# playwright-core at the exact version in package-lock.json, driving Debian's
# chromium (/usr/bin/chromium, never a downloaded browser).
#   tests/web/run.sh [scenario]        (inbox.test.mjs --list names them)
# Needs BACKLINE_BIN (the backline binary, set by ctest; it runs in sandbox
# mode, with the simulated Slack workspace in-process); node, npm and chromium
# (scripts/deps.sh --test); and the npm registry the first time.
# Screenshots and server logs go to $WEB_ARTIFACTS/<scenario>/.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../support/npm_install.sh"
npm_install_here "$here" run.sh

export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [[ ! -x "$CHROMIUM" ]]; then
  echo "run.sh: $CHROMIUM is missing (run scripts/deps.sh --test, which installs Debian's chromium)" >&2
  exit 2
fi
# playwright-core must never fetch a browser of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
exec node "$here/inbox.test.mjs" "$@"
