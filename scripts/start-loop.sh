#!/usr/bin/env bash
# Restarts `plateau serve` many times under CPU load and counts the starts
# that became ready with their trunk up (issue 16): each start gets fresh
# 127.0.0.1 ports and a pstn-sim trunk probed every 30 s, and succeeds when,
# within READY_WITHIN seconds, /readyz answers 200 and plateau_trunk_up is 1.
# A start fails when the process exits (e.g. the whisper self-test refused
# it), is not ready in time, or its trunk is not up in time (a failed first
# OPTIONS used to keep it down for the whole 30 s).
# Usage: scripts/start-loop.sh [bin/plateau]
# Tunables (env): STARTS (40), LOAD_PROCS (2 busy loops, or stress-ng --cpu
# when installed; 0: no load), READY_WITHIN (10 s), KEEP=1 (keep the logs).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
root=$PWD
bin=$(realpath "${1:-bin/plateau}")
[ -x "$bin" ] || { echo "start-loop: $bin not found (make build)"; exit 1; }
starts=${STARTS:-40}
procs=${LOAD_PROCS:-2}
within=${READY_WITHIN:-10}
keep=${KEEP:-}

tmp=$(mktemp -d /tmp/plateau-start-loop.XXXXXX)
pid=""; sim=""; load=()
cleanup() {
	stop "$pid"; stop "$sim"
	for p in "${load[@]}"; do kill "$p" 2>/dev/null || true; done
	if [ -z "$keep" ]; then rm -rf "$tmp"; else echo "start-loop: logs kept in $tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

sim_port=$(free_port)
cat >"$tmp/pstn-sim.yaml" <<YAML
listen: "127.0.0.1:$sim_port"
media: {ip: 127.0.0.1, rtp_ports: "47000-47099"}
answer: {mode: echo}
YAML
"$bin" pstn-sim -c "$tmp/pstn-sim.yaml" >"$tmp/pstn-sim.log" 2>&1 &
sim=$!

if [ "$procs" -gt 0 ]; then
	if command -v stress-ng >/dev/null; then
		stress-ng --cpu "$procs" --quiet &
		load+=($!)
		what="stress-ng --cpu $procs"
	else
		for _ in $(seq "$procs"); do
			sh -c 'while :; do :; done' &
			load+=($!)
		done
		what="$procs shell busy loops"
	fi
else
	what="no load"
fi
echo "start-loop: $starts starts of $bin under $what, $(nproc) CPUs; success = ready and trunk up within ${within} s"

now() { date +%s.%N; }
ok=0; exited=0; notready=0; trunkdown=0; retried=0; conflicts=0; times=()
i=0
while [ "$i" -lt "$starts" ]; do
	i=$((i + 1))
	sip_port=$(free_port); http_port=$(free_port)
	{
		bench_sip_yaml start-loop
		cat <<YAML
media: {ip: 127.0.0.1, rtp_ports: "46000-46999"}
http: {listen: "127.0.0.1:$http_port"}
data_dir: $tmp/data
log: {level: info}
trunks:
  - name: sim
    address: "127.0.0.1:$sim_port"
    transport: udp
    caller_id: "+33240000000"
    options_interval: 30s
YAML
		bench_policy_yaml
		operator_users 101 1
	} >"$tmp/plateau.yaml"
	log="$tmp/start-$i.log"
	t0=$(now)
	"$bin" serve -c "$tmp/plateau.yaml" >"$log" 2>&1 &
	pid=$!
	outcome="" ready=""
	while :; do
		el=$(echo "$(now) - $t0" | bc)
		if ! kill -0 "$pid" 2>/dev/null; then outcome=exited; break; fi
		if [ -z "$ready" ] && [ "$(curl -s -o /dev/null -m 1 -w '%{http_code}' "http://127.0.0.1:$http_port/readyz")" = 200 ]; then
			ready=$el
		fi
		if [ -n "$ready" ] && curl -s -m 1 "http://127.0.0.1:$http_port/metrics" | grep -q '^plateau_trunk_up{trunk="sim"} 1$'; then
			outcome=ok; break
		fi
		if [ "$(echo "$el > $within" | bc)" = 1 ]; then
			if [ -z "$ready" ]; then outcome=not-ready; else outcome=trunk-down; fi
			break
		fi
		sleep 0.05
	done
	stop "$pid"; pid=""
	# Another process took a port free_port chose: not a start-up failure;
	# run this start again on new ports.
	if [ "$outcome" = exited ] && grep -q 'address already in use' "$log"; then
		conflicts=$((conflicts + 1)); i=$((i - 1))
		[ "$conflicts" -lt 20 ] || { echo "start-loop: too many port conflicts"; exit 1; }
		continue
	fi
	attempts=$(grep -c 'whisper self-test inconclusive' "$log" || true)
	[ "$attempts" -gt 0 ] && retried=$((retried + 1))
	case $outcome in
	ok) ok=$((ok + 1)); times+=("$el") ;;
	exited) exited=$((exited + 1)) ;;
	not-ready) notready=$((notready + 1)) ;;
	trunk-down) trunkdown=$((trunkdown + 1)) ;;
	esac
	printf 'start %3d: %-10s ready %-6s trunk up %-6s self-test retries %s\n' "$i" "$outcome" \
		"${ready:0:5}" "$([ "$outcome" = ok ] && echo "${el:0:5}" || echo -)" "$attempts"
	if [ "$outcome" != ok ]; then
		{ grep -E 'self-test|trunk state|level=ERROR|plateau:' "$log" || tail -3 "$log"; } | tail -5 | sed 's/^/    /'
		keep=1
	fi
done
sorted=$(printf '%s\n' "${times[@]:-}" | sort -n)
median=$(echo "$sorted" | awk 'NF{a[n++]=$1} END{if(n) print a[int(n/2)]; else print "-"}')
worst=$(echo "$sorted" | tail -1)
echo "start-loop: $ok of $starts starts ready with the trunk up within ${within} s" \
	"(exited $exited, not ready $notready, trunk down $trunkdown; self-test retried in $retried starts;" \
	"$conflicts starts redone after a port conflict;" \
	"time to trunk up: median ${median:0:5} s, worst ${worst:0:5} s)"
[ "$ok" = "$starts" ]
