#!/usr/bin/env bash
# Generated clients, proven (`make clients`):
#   1. installs pinned tools: openapi-python-client and openapi-spec-validator (PyPI) into a
#      virtualenv under target/, openapi-typescript and typescript (npm) into
#      clients/typescript/node_modules from the committed package-lock.json;
#   2. lints openapi/openapi.json with openapi-spec-validator;
#   3. generates a Python client and TypeScript types from it into target/clients/;
#   4. type-checks clients/typescript/check.ts against the types (tsc --noEmit), and shows that
#      the check bites: without its `@ts-expect-error` lines the same file must fail;
#   5. starts the service on the embedded store and drives it with the generated Python client
#      (clients/python/smoke.py), which checks every answer.
# The tool caches (target/clients-venv, clients/typescript/node_modules) are reused while the
# pins are unchanged; target/clients/ is rewritten on every run and never committed.
# CLIENTS_SERVER_BIN=path runs the smoke test against that binary instead of building one.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# --- pins -------------------------------------------------------------------------------------
OPENAPI_PYTHON_CLIENT_VERSION=0.29.1
OPENAPI_SPEC_VALIDATOR_VERSION=0.9.0
# Everything else the virtualenv holds, pinned too (pip freeze of the two above on Python 3.11).
PYTHON_CONSTRAINTS="annotated-doc==0.0.7
annotated-types==0.8.0
anyio==4.16.0
attrs==26.1.0
certifi==2026.10.18
h11==0.16.0
httpcore==1.0.9
httpx==0.28.1
idna==3.20
Jinja2==3.1.6
jsonschema==4.26.0
jsonschema-path==0.5.0
jsonschema-specifications==2025.9.1
lazy-object-proxy==1.13.0
markdown-it-py==4.3.0
MarkupSafe==3.0.4
mdurl==0.1.2
openapi-schema-validator==0.9.0
pathable==0.6.0
pydantic==2.14.3
pydantic-settings==2.16.3
pydantic_core==2.50.4
Pygments==2.21.0
python-dotenv==1.2.4
PyYAML==6.0.3
referencing==0.37.0
rfc3339-validator==0.1.4
rich==15.0.0
rpds-py==2026.9.1
ruamel.yaml==0.19.1
ruff==0.17.5
shellingham==1.5.4
six==1.17.0
typer==0.27.3
typing-inspection==0.4.5
typing_extensions==4.16.0"
# openapi-typescript and typescript: clients/typescript/package.json and package-lock.json.
NPM_DEFAULT_REGISTRY=https://registry.npmjs.org/

SPEC=openapi/openapi.json
VENV=${CLIENTS_VENV:-target/clients-venv}
TS_DIR=clients/typescript
OUT=target/clients
PY_OUT=$OUT/python/iot-api-client
TS_OUT=$OUT/typescript/iot-api.d.ts

started=$SECONDS
step_started=$SECONDS
step_name=""
timings=()
step() {
    if [[ -n "$step_name" ]]; then timings+=("$(printf '%4ss  %s' $((SECONDS - step_started)) "$step_name")"); fi
    step_name=$1
    step_started=$SECONDS
    echo
    echo "--- $1"
}
fail() {
    echo "clients: $*" >&2
    exit 1
}

server=""
cleanup() {
    if [[ -n "$server" ]]; then
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
}
trap cleanup EXIT

step "tools"
for tool in python3 node npm; do
    command -v "$tool" >/dev/null || fail "$tool is required"
done
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    fail "openapi-python-client $OPENAPI_PYTHON_CLIENT_VERSION needs Python 3.11 or later ($(python3 --version))"
registry=$(npm config get registry 2>/dev/null)
echo "python3 $(python3 -c 'import platform; print(platform.python_version())'), node $(node --version), npm $(npm --version 2>/dev/null), npm registry $registry"

step "python tools: openapi-python-client $OPENAPI_PYTHON_CLIENT_VERSION, openapi-spec-validator $OPENAPI_SPEC_VALIDATOR_VERSION ($VENV)"
requirements="openapi-python-client==$OPENAPI_PYTHON_CLIENT_VERSION
openapi-spec-validator==$OPENAPI_SPEC_VALIDATOR_VERSION"
py_stamp=$(printf '%s\n%s\n%s\n' "$(python3 --version)" "$requirements" "$PYTHON_CONSTRAINTS" | sha256sum | cut -c1-16)
if [[ "$(cat "$VENV/.clients-stamp" 2>/dev/null)" == "$py_stamp" ]]; then
    echo "cached"
else
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    constraints=$(mktemp)
    printf '%s\n' "$PYTHON_CONSTRAINTS" >"$constraints"
    # shellcheck disable=SC2086 # one requirement per word
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --require-virtualenv \
        -c "$constraints" $requirements
    rm -f "$constraints"
    echo "$py_stamp" >"$VENV/.clients-stamp"
    echo "installed"
fi
"$VENV/bin/openapi-python-client" --version
echo "openapi-spec-validator $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("openapi-spec-validator"))')"

step "npm tools ($TS_DIR/node_modules, from package-lock.json)"
# The lock may record where packages were downloaded from; only the npm registry is allowed.
foreign=$(grep -o '"resolved": *"[^"]*"' "$TS_DIR/package-lock.json" | grep -v "\"${NPM_DEFAULT_REGISTRY}" || true)
[[ -z "$foreign" ]] || fail "package-lock.json downloads from a host other than $NPM_DEFAULT_REGISTRY: $foreign"
node_stamp=$(cat "$TS_DIR/package.json" "$TS_DIR/package-lock.json" <(node --version) | sha256sum | cut -c1-16)
if [[ "$(cat "$TS_DIR/node_modules/.clients-stamp" 2>/dev/null)" == "$node_stamp" ]]; then
    echo "cached"
else
    (cd "$TS_DIR" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
    echo "$node_stamp" >"$TS_DIR/node_modules/.clients-stamp"
fi
if command -v git >/dev/null && git rev-parse --is-inside-work-tree >/dev/null 2>&1 &&
    ! git check-ignore -q "$TS_DIR/node_modules"; then
    echo "warning: $TS_DIR/node_modules is not ignored by git; add /$TS_DIR/node_modules/ to .gitignore" >&2
fi
echo "openapi-typescript $(node -p "require('./$TS_DIR/node_modules/openapi-typescript/package.json').version"), typescript $("$TS_DIR/node_modules/.bin/tsc" --version | sed 's/^Version //')"

step "lint $SPEC (openapi-spec-validator)"
"$VENV/bin/openapi-spec-validator" "$SPEC"

rm -rf "$OUT"
mkdir -p "$OUT/python" "$OUT/typescript" "$OUT/server"

step "generate the Python client ($PY_OUT)"
# The generator formats its output with ruff from the virtualenv; warnings are failures.
PATH="$ROOT/$VENV/bin:$PATH" RUFF_NO_CACHE=true "$VENV/bin/openapi-python-client" generate \
    --path "$SPEC" --meta setup --output-path "$PY_OUT" --fail-on-warning
package=$PY_OUT/iot_api_client
echo "package iot_api_client: $(find "$package/api" -name '*.py' ! -name '__init__.py' | wc -l) endpoint modules, $(find "$package/models" -name '*.py' ! -name '__init__.py' | wc -l) models"
for tag_dir in "$package"/api/*/; do
    printf '  api.%s: %s\n' "$(basename "$tag_dir")" \
        "$(find "$tag_dir" -name '*.py' ! -name '__init__.py' -exec basename {} .py \; | sort | paste -sd ' ')"
done

step "generate TypeScript types ($TS_OUT)"
# --default-non-nullable=false: a request field with a default (MaintenanceWindowCreate.enabled)
# stays optional, as the spec has it, instead of becoming required.
"$TS_DIR/node_modules/.bin/openapi-typescript" "$SPEC" --output "$TS_OUT" --default-non-nullable=false
echo "$(wc -l <"$TS_OUT") lines: $(grep -c '^    "/' "$TS_OUT") paths," \
    "$(awk '/^    schemas: \{/ { on = 1; next } on && /^    \};/ { on = 0 } on && /^        [A-Za-z0-9_]+: / { n++ } END { print n }' "$TS_OUT") schemas," \
    "$(grep -cE '^    [a-z0-9_]+: \{$' <(sed -n '/^export interface operations/,$p' "$TS_OUT")) operations"

step "type-check $TS_DIR/check.ts (tsc --noEmit)"
tsc=(node_modules/.bin/tsc --noEmit --strict --noUncheckedIndexedAccess --target es2022 --lib es2022
     --module esnext --moduleResolution bundler)
(cd "$TS_DIR" && "${tsc[@]}" check.ts)
echo "check.ts: no errors"
# The same file without its @ts-expect-error lines must not type-check.
grep -q '@ts-expect-error' "$TS_DIR/check.ts" || fail "check.ts has no @ts-expect-error line"
negative=$OUT/typescript/check-without-expect-error.ts
sed -e '/@ts-expect-error/d' -e 's#"\.\./\.\./target/clients/typescript/iot-api"#"./iot-api"#' \
    "$TS_DIR/check.ts" >"$negative"
if (cd "$TS_DIR" && "${tsc[@]}" "../../$negative") >"$OUT/typescript/negative.log" 2>&1; then
    fail "check.ts without its @ts-expect-error lines type-checks: the check does not bite"
fi
grep -q 'error TS' "$OUT/typescript/negative.log" || { cat "$OUT/typescript/negative.log" >&2; fail "tsc failed without a type error"; }
echo "without @ts-expect-error, tsc fails as it must:"
grep 'error TS' "$OUT/typescript/negative.log" | sed "s#^\.\./\.\./##; s#^#  #"

step "smoke test: the Python client against a live server (embedded store)"
if [[ -n "${CLIENTS_SERVER_BIN:-}" ]]; then
    BIN=$CLIENTS_SERVER_BIN
else
    ${CARGO:-cargo} build --quiet -p iot-api
    BIN=target/debug/iot-api
fi
export IOT_JWT_SECRET=clients-smoke-only-secret-at-least-32-bytes
"$BIN" openapi >"$OUT/server/openapi.json"
cmp -s "$OUT/server/openapi.json" "$SPEC" ||
    fail "$SPEC differs from what the code generates ($BIN openapi); run \`make openapi\`"
env -u DATABASE_URL -u IOT_LOG_FORMAT IOT_BIND=127.0.0.1:0 IOT_WORKERS=2 RUST_LOG=info \
    "$BIN" serve >"$OUT/server/stdout.log" 2>"$OUT/server/stderr.log" &
server=$!
base=""
for _ in $(seq 1 300); do
    base=$(grep -ao 'listening on http://[0-9.:]*' "$OUT/server/stderr.log" | head -n 1 | sed 's/^listening on //') || true
    [[ -n "$base" ]] && break
    kill -0 "$server" 2>/dev/null || { cat "$OUT/server/stderr.log" >&2; fail "the server exited"; }
    sleep 0.1
done
[[ -n "$base" ]] || { cat "$OUT/server/stderr.log" >&2; fail "the server did not start in 30 s"; }
echo "server $base (pid $server), logs in $OUT/server/"
token=$("$BIN" token --tenant clients-smoke --role admin --sub clients-smoke --ttl-secs 600)
status=0
PYTHONPATH="$PY_OUT" PYTHONDONTWRITEBYTECODE=1 IOT_BASE_URL="$base" IOT_TOKEN="$token" \
    "$VENV/bin/python" clients/python/smoke.py || status=$?
kill "$server" 2>/dev/null || true
wait "$server" 2>/dev/null || true
server=""
# Access log lines: `GET /path 201 …` (actix Logger) or `… status=201 …` (tracing fields).
requests=$(cat "$OUT/server/stderr.log" "$OUT/server/stdout.log" | grep -ac 'iot_api::access' || true)
server_errors=$(cat "$OUT/server/stderr.log" "$OUT/server/stdout.log" | grep -a 'iot_api::access' |
    grep -cE 'status=5[0-9]{2}([^0-9]|$)| 5[0-9]{2} [0-9-]+ ' || true)
echo "server: $requests requests logged, $server_errors answered 5xx"
[[ $status -eq 0 ]] || fail "smoke test failed (server log: $OUT/server/)"
[[ $server_errors -eq 0 ]] || fail "the server answered $server_errors request(s) with 5xx"

step "done"
timings+=("$(printf '%4ss  %s' $((SECONDS - step_started)) "$step_name")")
echo "generated (not committed):"
echo "  $PY_OUT  (Python package iot_api_client, $(find "$PY_OUT" -name '*.py' | wc -l) files)"
echo "  $TS_OUT  ($(wc -l <"$TS_OUT") lines)"
echo "time per step:"
printf '  %s\n' "${timings[@]}"
echo "clients: all checks passed in $((SECONDS - started)) s"
