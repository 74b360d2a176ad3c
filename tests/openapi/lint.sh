#!/usr/bin/env bash
# ctest `openapi_lint`: lints docs/openapi/*.yaml with the pinned Redocly CLI
# (tools/openapi/package-lock.json, installed by scripts/install-deps) and the rules of
# docs/openapi/redocly.yaml. Fails on any problem. Runs offline.
#   lint.sh SOURCE_DIR
set -euo pipefail
src=${1:?usage: lint.sh SOURCE_DIR}
redocly=$src/tools/openapi/node_modules/.bin/redocly
if [ ! -x "$redocly" ]; then
  echo "openapi_lint: $redocly is missing: run scripts/install-deps (npm ci --prefix tools/openapi)" >&2
  exit 1
fi
want=$(sed -n 's/.*"@redocly\/cli": "\(.*\)".*/\1/p' "$src/tools/openapi/package.json")
have=$("$redocly" --version)
if [ "$have" != "$want" ]; then
  echo "openapi_lint: Redocly CLI $have is installed, tools/openapi pins $want: run scripts/install-deps" >&2
  exit 1
fi
# No usage data sent, no look-up of newer versions: the lint needs no network.
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true NO_COLOR=1
cd "$src"
exec "$redocly" lint --config docs/openapi/redocly.yaml --format=stylish \
  docs/openapi/pos-api.yaml docs/openapi/hq-admin.yaml
