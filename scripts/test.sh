#!/usr/bin/env bash
# Every test, as the README's one test command and as .ci/run runs it on a clean checkout:
#   1. lint gates: rustfmt, clippy with warnings as errors, the benchmark built (not run);
#   2. cargo test: unit tests and the one integration-test binary (tests/it), then the
#      integration tests again with every test gateway on a real PostgreSQL instead of SQLite
#      (the npm packages are installed first: some interop tests run `age-encryption` under Node);
#   3. the fuzz targets (cargo fuzz, libFuzzer), each for 20 s from its seed corpus;
#   4. the browser code: type check, unit tests, and a rebuild that must equal the committed
#      web/dist/ (the gateway embeds that bundle);
#   5. Schemathesis against a real gateway, every operation of the OpenAPI contract, each role;
#   6. the browser tests: real Chromium against a real gateway, axe-core on every page.
# Needs: cargo, the Go age CLI, curl, compressors, Node.js 20 with npm, python3, Debian's
# chromium, PostgreSQL 15 and garage 2.x (.ci/run installs what is missing).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

step "lint"
cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
cargo build --benches --locked

step "npm packages"
# First, as the interop tests of step 2 run the browser pages' `age-encryption` under Node.
(cd web && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)

step "cargo test"
cargo test --locked

step "integration tests on PostgreSQL"
SEALPOST_TEST_DATABASE=postgres cargo test --locked --test it

step "fuzz (short runs)"
# Every fuzz target for 20 s from its committed seed corpus (scripts/fuzz.sh; README, Fuzzing).
bash scripts/fuzz.sh 20

step "browser code"
(
    cd web
    npm run check
    npm test
    npm run build
)
if ! git diff --quiet -- web/dist || [ -n "$(git ls-files --others --exclude-standard web/dist)" ]; then
    git status --short -- web/dist >&2
    echo "test.sh: error: web/dist differs from a fresh build of web/src" >&2
    echo "test.sh: hint: run \`cd web && npm ci && npm run build\` and commit web/dist" >&2
    exit 1
fi

step "schemathesis"
bash .ci/schemathesis.sh

step "browser tests"
bash e2e/run.sh

step "done"
