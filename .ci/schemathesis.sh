#!/usr/bin/env bash
# Property-based API testing with Schemathesis against a real gateway: every operation of the
# contract (GET /api/v1/openapi.json), once with a token of each role, checking that no answer
# is a 5xx, that every status, body and content type is the one the contract documents.
#
# Usage: .ci/schemathesis.sh [MAX_EXAMPLES]   (default 50 per operation and role)
# Environment: SCHEMATHESIS_SEED, SCHEMATHESIS_CHECKS, SCHEMATHESIS_REPORT (formats),
# SCHEMATHESIS_REPORT_DIR.
# Needs python3 (and pip, if Schemathesis 4 is not installed yet) and cargo.
set -euo pipefail
cd "$(dirname "$0")/.."

max_examples="${1:-${SCHEMATHESIS_MAX_EXAMPLES:-50}}"
seed="${SCHEMATHESIS_SEED:-20250301}"
# Reports (JUnit by default; SCHEMATHESIS_REPORT=junit,har adds every request and answer).
report_dir="${SCHEMATHESIS_REPORT_DIR:-}"
# No 5xx; every status, body and content type as documented (SCHEMATHESIS_CHECKS=all for more).
checks="${SCHEMATHESIS_CHECKS:-not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance}"

# Schemathesis 4: the flags below are 4.x's (3.x spelled several of them differently). One on the
# PATH is used; otherwise it is installed with pip into a virtualenv kept between runs.
if ! command -v schemathesis >/dev/null || ! schemathesis --version 2>/dev/null | grep -q 'version 4\.'; then
    venv="${XDG_CACHE_HOME:-$HOME/.cache}/sealpost/schemathesis-venv"
    if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q 'version 4\.'; then
        echo "schemathesis.sh: installing schemathesis 4 into $venv" >&2
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check 'schemathesis>=4,<5'
    fi
    PATH="$venv/bin:$PATH"
fi
echo "schemathesis.sh: $(schemathesis --version)" >&2

cargo build --locked --quiet --bin sealpost
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
sealpost="$target_dir/debug/sealpost"

work="$(mktemp -d)"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
report_dir="${report_dir:-$work/report}"

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
url="http://127.0.0.1:$port"
"$sealpost" serve --data-dir "$work/data" --listen "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server_pid=$!

healthy() {
    python3 - "$url/healthz" <<'EOF'
import sys, urllib.request
try:
    sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=2).status == 200 else 1)
except Exception:
    sys.exit(1)
EOF
}
for _ in $(seq 1 300); do
    healthy && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
        cat "$work/server.log" >&2
        echo "schemathesis.sh: the gateway did not start" >&2
        exit 1
    fi
    sleep 0.1
done
healthy || { cat "$work/server.log" >&2; echo "schemathesis.sh: the gateway is not healthy" >&2; exit 1; }

# One user per role, named as the contract's examples name them, so that the examples reach
# past the addressing checks (a recipient with a key, a route from the sender's organisation).
export SEALPOST_URL="$url"
export SEALPOST_TOKEN
SEALPOST_TOKEN="$(cat "$work/data/admin.token")"
"$sealpost" admin org add acme --kind contractor
"$sealpost" admin org add hmpps --kind agency
"$sealpost" admin org add dpo --kind compliance
"$sealpost" admin route add acme hmpps
declare -A tokens
tokens[sender]="$("$sealpost" admin user add acme/bob --role sender)"
tokens[recipient]="$("$sealpost" admin user add hmpps/alice --role recipient)"
tokens[compliance]="$("$sealpost" admin user add dpo/olga --role compliance)"
# Not the bootstrap administrator: a fuzzer revoking tokens cannot lock this script out.
tokens[admin]="$("$sealpost" admin user add sealpost/ops --role admin)"
recipient_key="$("$sealpost" keygen -o "$work/alice.key")"
SEALPOST_TOKEN="${tokens[recipient]}" "$sealpost" keys add "$recipient_key" >/dev/null
# The shipped policies want OFFICIAL-SENSITIVE signed by its sender before release.
sender_key="$("$sealpost" keygen --signing -o "$work/bob.sign")"
SEALPOST_TOKEN="${tokens[sender]}" "$sealpost" keys add "$sender_key" >/dev/null

# Things to find (transfers available and held, their links, an unfinished upload), which the
# config's dictionaries offer to Schemathesis half the time instead of invented values.
printf 'a bundle for the contract tests\n' >"$work/bundle.txt"
for n in 1 2; do
    SEALPOST_TOKEN="${tokens[sender]}" "$sealpost" send "$work/bundle.txt" --to hmpps/alice --json -q >"$work/sent$n.json"
done
SEALPOST_TOKEN="${tokens[sender]}" "$sealpost" send "$work/bundle.txt" --to hmpps/alice --json -q \
    --classification OFFICIAL-SENSITIVE --signing-key "$work/bob.sign" >"$work/held.json"
python3 .ci/schemathesis_seed.py "$url" "${tokens[sender]}" "$recipient_key" \
    "$work/sent1.json" "$work/sent2.json" "$work/held.json" >"$work/schemathesis.toml"

export SCHEMATHESIS_HOOKS="$PWD/.ci/schemathesis_hooks.py"
status=0
# The recipient collects before the sender recalls; the administrator, who may revoke anyone's
# tokens, comes last.
for role in recipient compliance sender admin; do
    echo "schemathesis.sh: every operation as the $role" >&2
    started=$SECONDS
    # From the scratch directory: Schemathesis keeps its replay store in the current one.
    (cd "$work" && schemathesis --config-file "$work/schemathesis.toml" run "$url/api/v1/openapi.json" \
        --header "Authorization: Bearer ${tokens[$role]}" \
        --checks "$checks" \
        --phases examples,coverage,fuzzing \
        --max-examples "$max_examples" \
        --seed "$seed" \
        --workers 1 \
        --request-timeout 30 \
        --generation-database none \
        --report "${SCHEMATHESIS_REPORT:-junit}" \
        --report-dir "$report_dir/$role" \
        --no-color) || status=1
    echo "schemathesis.sh: the $role's run took $((SECONDS - started))s" >&2
done

if [[ $status -ne 0 ]]; then
    echo "schemathesis.sh: Schemathesis found answers the contract does not document; the gateway's log follows" >&2
    tail -n 50 "$work/server.log" >&2
fi
# An error the gateway logged is a failure too, even behind a documented answer: that is how the
# first run found a 403 that was really a policy request Cedar could not represent.
if grep -q 'ERROR' "$work/server.log"; then
    echo "schemathesis.sh: the gateway logged errors:" >&2
    grep 'ERROR' "$work/server.log" | head -n 20 >&2
    status=1
fi
exit $status
