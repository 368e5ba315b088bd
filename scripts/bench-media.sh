#!/usr/bin/env bash
# Media load: `plateau loadgen` holds concurrent G.711 calls through Plateau
# (every call registered, digest-authenticated, policy-checked, relayed and
# recorded) to pstn-sim, which echoes the RTP. The calls ramp up step by step
# (STEPS); at each step one window of HOLD measures per-stream loss, the
# round trip through Plateau, Plateau's CPU (from /proc/PID/stat, Plateau
# only) and the recorder's dropped packets (/metrics). A first run straight to
# pstn-sim (no Plateau) is the baseline subtracted to estimate Plateau's added
# one-way latency. Ends with disk bytes per minute per recorded call.
# Usage: scripts/bench-media.sh [bin/plateau]
# Tunables (env): STEPS ("250 500 1000 2000"), HOLD (10s), SETTLE (7s: the
# notice prompt plays before the operator is bridged), RATE (setups/s while
# ramping, 40; BASE_RATE for the baseline, 200), BASELINE=0 to skip the direct run, KEEP=1 to keep the files.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
root=$PWD
bin=$(realpath "${1:-bin/plateau}")
steps=${STEPS:-"250 500 1000 2000"}
hold=${HOLD:-10s}
settle=${SETTLE:-7s}
rate=${RATE:-40}
first_ext=1000
number="+33240123456"
steps_csv=$(echo $steps | tr ' ' ',')
max_calls=$(echo $steps | tr ' ' '\n' | sort -n | tail -1)
users=$max_calls

tmp=$(mktemp -d /tmp/plateau-bench-media.XXXXXX)
pid=""; sim=""; keep=${KEEP:-}
cleanup() {
	stop "$pid"; stop "$sim" INT # pstn-sim stops on SIGINT (SIGTERM only drains)
	if [ -z "$keep" ]; then rm -rf "$tmp"; else echo "bench-media: files kept in $tmp"; fi
}
trap cleanup EXIT INT TERM

bench_users() {
	operator_users "$first_ext" "$users"
}
start_echo_world
"$bin" allowlist add --by 301 -c "$tmp/plateau.yaml" "$number" >/dev/null
"$bin" allowlist approve --by 302 -c "$tmp/plateau.yaml" --all >/dev/null

# Other jobs on the host skew every figure: say how busy it was.
echo "host: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) before the run"
lg=(loadgen --steps "$steps_csv" --rate "$rate" --hold "$hold" --number "$number"
	--first-ext "$first_ext" --password-prefix pw)
echo "== baseline: loadgen <-> pstn-sim echo, no Plateau"
if [ "${BASELINE:-1}" != 0 ]; then
	timeout 600 "$bin" "${lg[@]}" --rate "${BASE_RATE:-200}" --direct --server "127.0.0.1:$sim_port" --settle 1s \
		--json "$tmp/baseline.json" 2>"$tmp/loadgen-direct.log" || { keep=1; cat "$tmp/loadgen-direct.log"; }
	base=(--baseline "$tmp/baseline.json")
else
	base=()
fi

echo
echo "== through Plateau: operator (loadgen) -> Plateau (relay + recording) -> pstn-sim echo"
rss0=$(awk '/VmRSS/{print $2 " " $3}' "/proc/$pid/status")
set +e
timeout 900 "$bin" "${lg[@]}" --server "127.0.0.1:$sip_port" --settle "$settle" \
	--server-pid "$pid" --metrics-url "http://127.0.0.1:$http_port/metrics" \
	--json "$tmp/plateau.json" "${base[@]}" 2>"$tmp/loadgen.log" | tee "$tmp/plateau.out"
rc=${PIPESTATUS[0]}
set -e
[ "$rc" -eq 0 ] || { keep=1; echo "loadgen exited $rc (see $tmp/loadgen.log)"; tail -5 "$tmp/loadgen.log"; }
hwm=$(awk '/VmHWM/{print $2 " " $3}' "/proc/$pid/status")
# Every packet the relay did not send on, by reason: a load test must show
# none but the expected (e.g. muted: the operator while the notice plays).
drops=$(curl -fs "http://127.0.0.1:$http_port/metrics" |
	awk -F'[{}" ]+' '/^plateau_rtp_dropped_packets_total\{/ && $NF > 0 {printf "%s%s=%s", sep, $3, $NF; sep=", "}')
# Let Plateau close the last recordings, then size them.
for _ in $(seq 100); do
	active=$(curl -fs "http://127.0.0.1:$http_port/metrics" | awk '/^plateau_recordings_active /{print $2}')
	[ "${active:-0}" = 0 ] && break
	sleep 0.2
done
bytes=$(du -sb "$tmp/data/recordings" 2>/dev/null | awk '{print $1}')
files=$(find "$tmp/data/recordings" -name '*.wav' | wc -l)
minutes=$(grep -o 'call time [0-9.]* min' "$tmp/plateau.out" | awk '{print $3}' | tail -1)
echo
# The largest step held with under 0.1 % loss while the generator kept
# pace (>= 99 % of one packet per call per 20 ms sent), from loadgen's table.
awk '$1 ~ /^[0-9]+$/ && NF >= 15 && $5 < 0.1 && $3 >= 99 {best=$0} END{
	if (best == "") { print "no step held with under 0.1 % loss at full pace"; exit }
	split(best, f, " ")
	printf "%-44s %s calls (loss %s %%, RTT p50 %s p99 %s, added one-way p50 %s p99 %s, %s %% of a core per call, recorder dropped %s)\n",
		"largest step held, < 0.1 % loss, full pace", f[1], f[5], f[8], f[9], f[12], f[13], f[14], f[15]}' "$tmp/plateau.out"
printf '%-44s %s (%s after start-up)\n' "Plateau peak RSS (VmHWM)" "$hwm" "$rss0"
printf '%-44s %s files, %s bytes\n' "recordings" "$files" "${bytes:-0}"
printf '%-44s %s\n' "RTP not sent on, by reason" "${drops:-none}"
if [ -n "$minutes" ] && [ "$(echo "${minutes:-0} > 0" | bc -l)" -eq 1 ]; then
	printf '%-44s %.0f bytes (%.2f MB) over %s call-minutes\n' "disk per minute per recorded call" \
		"$(echo "$bytes / $minutes" | bc -l)" "$(echo "$bytes / $minutes / 1000000" | bc -l)" "$minutes"
fi
echo "targets: 2000 concurrent relayed calls, <= 0.05 % of a core per relayed call, p99 added latency < 1 ms;"
echo "         2000 concurrent recorded calls, recorder drops 0, <= 0.07 % of a core per recorded call"
echo "reference (FIELD-NOTES): Asterisk 20 relays 400 calls at 0.27 % core/call, records 200 at 0.7 % core/call"
