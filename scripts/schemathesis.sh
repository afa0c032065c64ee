#!/usr/bin/env bash
# Spec-driven fuzzing: runs Schemathesis (all checks, fixed seed, bounded examples) with the
# committed openapi/openapi.json against a live server on the embedded store and on PostgreSQL
# (TEST_DATABASE_URL, as scripts/with-test-postgres.sh provides). Fails on any finding.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
VENV=${SCHEMATHESIS_VENV:-target/schemathesis-venv}
SEED=${FUZZ_SEED:-20261121}
EXAMPLES=${FUZZ_EXAMPLES:-30}

# Installed from fuzz/requirements.txt (every dependency pinned); reinstalled when it changes.
REQUIREMENTS=fuzz/requirements.txt
if ! cmp -s "$REQUIREMENTS" "$VENV/requirements.txt" 2>/dev/null \
    || ! "$VENV/bin/st" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
    echo "--- installing schemathesis $SCHEMATHESIS_VERSION into $VENV" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
    cp "$REQUIREMENTS" "$VENV/requirements.txt"
fi
cargo build --quiet -p iot-api
BIN="${CARGO_TARGET_DIR:-target}/debug/iot-api"
export IOT_JWT_SECRET=schemathesis-only-secret-at-least-32-bytes
work=$(mktemp -d)
server=""
cleanup() { [[ -n "$server" ]] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

fuzz() {
    local store=$1 log="$work/$1.log"
    RUST_LOG=info IOT_BIND=127.0.0.1:0 IOT_WORKERS=2 "$BIN" serve >"$log" 2>&1 &
    server=$!
    local base=""
    for _ in $(seq 1 300); do
        base=$(grep -ao 'listening on http://[0-9.:]*' "$log" | head -n 1 | sed 's/listening on //') || true
        [[ -n "$base" ]] && break
        kill -0 "$server" 2>/dev/null || { cat "$log" >&2; exit 1; }
        sleep 0.1
    done
    [[ -n "$base" ]] || { echo "the server did not start" >&2; cat "$log" >&2; exit 1; }
    local token
    token=$("$BIN" token --tenant "fuzz-$store" --role admin --sub schemathesis)
    echo "--- schemathesis on the $store store ($base)"
    local status=0
    # The event stream answers a valid request with a body that never ends: it is tested by
    # tests/api/events.rs (its refusals included), not here.
    # fuzz/sitecustomize.py serialises `ast.parse` (a CPython 3.11.7 defect with threads).
    PYTHONPATH="$PWD/fuzz${PYTHONPATH:+:$PYTHONPATH}" \
    "$VENV/bin/st" --config-file fuzz/schemathesis.toml run openapi/openapi.json \
        --exclude-path /api/events \
        --url "$base" \
        -H "Authorization: Bearer $token" \
        --checks all \
        --seed "$SEED" \
        --max-examples "$EXAMPLES" \
        --workers 2 \
        --no-color || status=$?
    local requests
    requests=$(grep -c 'iot_api::access' "$log" || true)
    local server_errors
    server_errors=$(grep -a 'iot_api::access' "$log" | grep -cE 'status=5[0-9][0-9]' || true)
    echo "schemathesis: $requests requests to the $store store, $server_errors answered 5xx"
    kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; server=""
    [[ $status -eq 0 && $server_errors -eq 0 ]] || { echo "schemathesis found problems on the $store store" >&2; exit 1; }
}

unset DATABASE_URL
fuzz embedded

if [[ -z "${TEST_DATABASE_URL:-}" ]]; then
    echo "error: TEST_DATABASE_URL is not set; run through scripts/with-test-postgres.sh" >&2
    exit 1
fi
bin=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
db="iot_fuzz_$$"
"$bin/createdb" --maintenance-db="$TEST_DATABASE_URL" "$db"
export DATABASE_URL="${TEST_DATABASE_URL%/*}/$db"
fuzz postgres
"$bin/dropdb" --maintenance-db="$TEST_DATABASE_URL" --force "$db" || true
