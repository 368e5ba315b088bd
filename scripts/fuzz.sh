#!/usr/bin/env bash
# Runs every Fuzz* target for a short time (default 5s each).
set -euo pipefail
time=${1:-5s}
cd "$(dirname "$0")/.."
for dir in $(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do
	for f in $(grep -h '^func Fuzz' "$dir"/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do
		echo "fuzz $dir $f ($time)"
		go test -run '^$' -fuzz "^$f\$" -fuzztime "$time" "$dir"
	done
done
