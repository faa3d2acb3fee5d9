#!/usr/bin/env bash
# Analyze a sample capture into a fresh embedded store, then print the reports.
#
#   scripts/demo.sh [CAPTURE]
#
# CAPTURE defaults to ../shared/pcaps/zeek-wikipedia.pcap (beside the repo). The store is
# a new temporary directory (DEMO_STORE to choose one: it must be absent or empty); it is
# kept so that more reports can be run against it afterwards.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
netwarden="$repo/.venv/bin/netwarden"

shared=$(cd "$repo/.." && pwd)/shared
capture=${1:-"$shared/pcaps/zeek-wikipedia.pcap"}
if [[ ! -f $capture ]]; then
    echo "demo.sh: capture not found: $capture (pass one as the first argument)" >&2
    exit 1
fi

if [[ -n ${DEMO_STORE:-} ]]; then
    if [[ -e $DEMO_STORE && -n $(ls -A "$DEMO_STORE") ]]; then
        echo "demo.sh: DEMO_STORE is not empty, refusing to reuse it: $DEMO_STORE" >&2
        exit 1
    fi
    store=$DEMO_STORE
else
    store=$(mktemp -d "${TMPDIR:-/tmp}/netwarden-demo.XXXXXX")
fi

run() {
    printf '\n== netwarden %s ==\n' "$*"
    "$netwarden" "$@"
}

run analyze "$capture" --store "$store"
run report conversations --kind tcp --store "$store"
run report protocols --store "$store"
run report io --store "$store"
run report talkers --store "$store"
run report ports --store "$store"

printf '\nstore kept at %s (netwarden report ... --store %s)\n' "$store" "$store"
