#!/usr/bin/env bash
# Load benchmarks of the real binary; `make bench` runs this after the Go
# benchmarks. Usage: scripts/bench.sh [bin/plateau]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-bin/plateau}
[ -x "$bin" ] || go build -o "$bin" ./cmd/plateau
scripts/bench-register.sh "$bin"
# Calls (SIPp, no media), media and live monitoring (plateau loadgen): each
# prints its figures; a failing one does not hide the others'.
status=0
echo
# Memory under a one-source REGISTER flood (RSS must stay under 300 MB).
FLOOD=1 scripts/bench-register.sh "$bin" || status=1
echo
scripts/bench-calls.sh "$bin" || status=1
echo
scripts/bench-media.sh "$bin" || status=1
echo
scripts/bench-monitor.sh "$bin" || status=1
exit "$status"
