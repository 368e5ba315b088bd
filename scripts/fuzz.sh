#!/usr/bin/env bash
# Runs every Fuzz* target for a short while on top of its committed corpus.
# The budget is a number of inputs (default 10000x) rather than a duration:
# with -fuzztime=5s, Go's fuzzing coordinator sometimes reports "context
# deadline exceeded" as a failure when a worker is slow to stop on a loaded
# machine, a flake that says nothing about the code.
set -euo pipefail
budget=${1:-10000x}
# Stateful targets drive whole dialogs over loopback UDP (tens of inputs a
# second, not thousands): they get their own, smaller budget.
declare -A slow=([FuzzDialogs]=${FUZZ_DIALOGS_BUDGET:-200x})
cd "$(dirname "$0")/.."
for dir in $(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do
	for f in $(grep -h '^func Fuzz' "$dir"/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do
		b=${slow[$f]:-$budget}
		echo "fuzz $dir $f ($b)"
		go test -run '^$' -fuzz "^$f\$" -fuzztime "$b" "$dir"
	done
done
