#!/usr/bin/env bash
# The browser tests, as .ci/run calls them: a real gateway, Debian's Chromium, axe-core.
# Installs nothing from outside the npm registry (`npm ci` here, from the committed lock file);
# Chromium comes from Debian (`apt-get install -y chromium`), never downloaded by Playwright.
#
#   e2e/run.sh                     builds target/debug/sealpost (cargo, --locked) and tests it
#   SEALPOST_BIN=PATH e2e/run.sh   tests that binary instead, building nothing
set -euo pipefail
# A relative SEALPOST_BIN is relative to where this script was called from.
if [ -n "${SEALPOST_BIN:-}" ] && [[ "$SEALPOST_BIN" != /* ]]; then
    SEALPOST_BIN="$PWD/$SEALPOST_BIN"
fi
cd "$(dirname "$0")"
root=$(cd .. && pwd)

chromium=${SEALPOST_CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
    echo "e2e: error: Chromium is not installed at \`$chromium\`" >&2
    echo "e2e: hint: install Debian's with \`apt-get install -y chromium\` (or set SEALPOST_CHROMIUM)" >&2
    exit 1
fi
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' 2>/dev/null; then
    echo "e2e: error: the browser tests need Node.js 20 or later (found: $(node --version 2>/dev/null || echo none))" >&2
    echo "e2e: hint: install Node.js 20 or later with npm (e.g. \`apt-get install -y nodejs npm\`)" >&2
    exit 1
fi

if [ -z "${SEALPOST_BIN:-}" ]; then
    (cd "$root" && cargo build --locked --quiet --bin sealpost)
    SEALPOST_BIN="$root/target/debug/sealpost"
fi
if [ ! -x "$SEALPOST_BIN" ]; then
    echo "e2e: error: the gateway binary \`$SEALPOST_BIN\` does not exist" >&2
    echo "e2e: hint: build it with \`cargo build\`, or leave SEALPOST_BIN unset and this script builds it" >&2
    exit 1
fi
export SEALPOST_BIN

npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
npm test
