#!/usr/bin/env bash
# Load benchmarks of the real binary; `make bench` runs this after the Go
# benchmarks. Usage: scripts/bench.sh [bin/plateau]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-bin/plateau}
[ -x "$bin" ] || go build -o "$bin" ./cmd/plateau
scripts/bench-register.sh "$bin"
echo
scripts/bench-calls.sh "$bin"
echo
scripts/bench-media.sh "$bin"
