# Sourced by the Node-based tests (tests/openapi/lint.sh, tests/slack_sdk/run.sh):
#   npm_install_here <dir> <caller name>
# checks that node and npm exist, then installs <dir>'s pinned packages with
# `npm ci` when node_modules is missing or older than the committed lock file.
npm_install_here() {
  local dir="$1" who="$2"
  for tool in node npm; do
    if ! command -v "$tool" >/dev/null; then
      echo "$who: $tool is not installed (run scripts/deps.sh --test)" >&2
      exit 2
    fi
  done
  cd "$dir" || exit 2
  # npm writes node_modules/.package-lock.json on every install: (re)install
  # when it is missing or older than the committed lock file.
  if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
    npm ci --no-audit --no-fund
    touch node_modules/.package-lock.json
  fi
}
