#!/usr/bin/env bash
# The domain, ports and app crates must not depend on a framework, a driver or a wire format:
# fails when cargo's dependency tree of either names one of them.
set -euo pipefail

forbidden='^(actix-[a-z-]+|actix|tokio|tokio-postgres|postgres-[a-z-]+|deadpool[a-z-]*|utoipa[a-z-]*|serde|serde_json|refinery[a-z-]*|jsonwebtoken) '
status=0
for crate in domain ports app; do
    # Normal dependencies only, with every feature a consumer may turn on.
    deps=$(cargo tree -p "$crate" --all-features -e normal --prefix none --format '{p}' | sort -u)
    if offenders=$(grep -E "$forbidden" <<<"$deps"); then
        echo "error: crate '$crate' depends on forbidden crates:" >&2
        sed 's/^/    /' <<<"$offenders" >&2
        status=1
    fi
done
[[ $status -eq 0 ]] && echo "purity: domain, ports and app depend on no framework, driver or wire format"
exit $status
