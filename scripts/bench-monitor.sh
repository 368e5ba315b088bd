#!/usr/bin/env bash
# Monitor load: what live monitoring costs. `plateau loadgen` holds CALLS
# concurrent G.711 calls through Plateau (registered, policy-checked,
# relayed, recorded) to pstn-sim's echo, twice: first alone, then with
# MONITORS supervisors (role supervisor, registered) each dialling
# *1<ext> (listen) into a distinct operator's call and receiving the mix.
# Each run measures one window of HOLD: Plateau's CPU (from /proc, Plateau
# only), the loss and round trip of the first MONITORS calls (the
# monitored ones in the second run, the same calls unmonitored in the
# first), the packets each supervisor's phone received (and lost, by RTP
# sequence number) and plateau_monitor_sessions_active from /metrics.
# Prints CPU per monitor session = CPU difference / MONITORS, and the loss
# and latency added to the monitored calls. WHISPER > 0 adds a run with that
# many whisper sessions (their silence is mixed into the call). A last run
# without monitors again shows how much the host drifted meanwhile; the
# CPU "without" is the mean of the two.
# The issue's target is 100 sessions while 1,000 calls run; 1,000 relayed
# calls and their load generator do not fit on 2 cores, hence CALLS.
# Usage: scripts/bench-monitor.sh [bin/plateau]
# Tunables (env): CALLS (250), MONITORS (100), MODE (listen), WHISPER (10),
# HOLD (20s), SETTLE (7s: the notice prompt), RATE (40 setups/s), KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
root=$PWD
bin=$(realpath "${1:-bin/plateau}")
calls=${CALLS:-250}
monitors=${MONITORS:-100}
mode=${MODE:-listen}
whisper=${WHISPER:-10}
hold=${HOLD:-20s}
settle=${SETTLE:-7s}
rate=${RATE:-40}
first_ext=1000
sup_first=$(((first_ext + calls) / 1000 * 1000 + 1000)) # above every operator
number="+33240123456"
[ "$monitors" -ge 1 ] && [ "$monitors" -le "$calls" ] || { echo "bench-monitor: MONITORS must be 1..CALLS"; exit 2; }
[ "$whisper" -le "$calls" ] || { echo "bench-monitor: WHISPER must not exceed CALLS"; exit 2; }

tmp=$(mktemp -d /tmp/plateau-bench-monitor.XXXXXX)
pid=""; sim=""; keep=${KEEP:-}
cleanup() {
	stop "$pid"; stop "$sim" INT # pstn-sim stops on SIGINT (SIGTERM only drains)
	if [ -z "$keep" ]; then rm -rf "$tmp"; else echo "bench-monitor: files kept in $tmp"; fi
}
trap cleanup EXIT INT TERM

# supervisor_users FIRST COUNT: as operator_users, with the supervisor role.
supervisor_users() { operator_users "$@" | sed 's/role: operator/role: supervisor/'; }

bench_users() {
	operator_users "$first_ext" "$calls"
	supervisor_users "$sup_first" "$monitors"
}
start_echo_world
metrics="http://127.0.0.1:$http_port/metrics"
"$bin" allowlist add --by 301 -c "$tmp/plateau.yaml" "$number" >/dev/null
"$bin" allowlist approve --by 302 -c "$tmp/plateau.yaml" --all >/dev/null

gauge() { curl -fs "$metrics" | awk -v m="$1" '$1 == m {print $2}'; }
zero() { local v; v=$(gauge "$1"); [ "${v:-0}" = 0 ]; }

# idle: wait until the last run's calls, sessions and recordings are over.
idle() {
	for _ in $(seq 150); do
		zero plateau_calls_active && zero plateau_recordings_active && zero plateau_monitor_sessions_active && return
		sleep 0.2
	done
}

# run NAME ARGS...: one loadgen run of CALLS calls; its output in $tmp/NAME.out.
failed=0
run() {
	local name=$1; shift
	idle
	echo "host: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) before the run"
	set +e
	timeout 600 "$bin" loadgen --calls "$calls" --rate "$rate" --hold "$hold" --settle "$settle" --number "$number" \
		--first-ext "$first_ext" --password-prefix pw --supervisor-first-ext "$sup_first" --supervisor-password-prefix pw \
		--server "127.0.0.1:$sip_port" --server-pid "$pid" --metrics-url "$metrics" "$@" \
		2>"$tmp/$name.log" | tee "$tmp/$name.out"
	local rc=${PIPESTATUS[0]}
	set -e
	[ "$rc" -eq 0 ] || { failed=1; keep=1; echo "loadgen exited $rc (see $tmp/$name.log)"; tail -5 "$tmp/$name.log"; }
	idle
	echo "after hang-up: plateau_monitor_sessions_active $(gauge plateau_monitor_sessions_active), plateau_calls_active $(gauge plateau_calls_active)"
}

# Figures of a run, from loadgen's step row and detail lines ("-" if absent).
cpu_of() { awk '/^  plateau /{v=$2} END{print v == "" ? "-" : v}' "$tmp/$1.out"; }
gauge_of() { sed -n 's/^  plateau .*plateau_monitor_sessions_active \([0-9]*\).*/\1/p' "$tmp/$1.out" | tail -1; }
watched_of() { # loss% p50µs p99µs
	sed -n 's/^  watched .* loss \([0-9.]*\) % .* rtt p50 \([0-9]*\)µs p99 \([0-9]*\)µs.*/\1 \2 \3/p' "$tmp/$1.out" | tail -1
}
pace_of() { awk '$1 ~ /^[0-9]+$/ && NF >= 15 {v=$3} END{print v == "" ? "-" : v}' "$tmp/$1.out"; }
all_loss_of() { awk '$1 ~ /^[0-9]+$/ && NF >= 15 {v=$5} END{print v == "" ? "-" : v}' "$tmp/$1.out"; }
monitors_of() { # packets/s lost loss% maxgap up
	sed -n 's/^  monitors \([0-9]*\) up, [0-9]* receiving: \([0-9.]*\) packets\/s each .*lost \([0-9]*\) by sequence (\([0-9.]*\) %.*max gap \(.*\)$/\2 \3 \4 \5 \1/p' "$tmp/$1.out" | tail -1
}
diff_of() { [ "$1" != - ] && [ "$2" != - ] && [ -n "$1" ] && [ -n "$2" ] && printf "%+.${3:-1}f" "$(echo "$2 - $1" | bc -l)" || echo -; }

echo "== without monitors: $calls calls, the first $monitors watched"
run none --watched "$monitors"
echo
echo "== with $monitors monitor sessions ($mode): $calls calls, supervisor j on operator j's call"
run mon --monitors "$monitors" --monitor-mode "$mode"
if [ "$whisper" -gt 0 ]; then
	echo
	echo "== with $whisper monitor sessions (whisper): $calls calls"
	run whisper --monitors "$whisper" --monitor-mode whisper
fi
echo
echo "== without monitors again (drift of the host)"
run again --watched "$monitors"

read -r l0 p50_0 p99_0 _ <<<"$(watched_of none) - - -"
read -r l0b p50_0b p99_0b _ <<<"$(watched_of again) - - -"
read -r l1 p50_1 p99_1 _ <<<"$(watched_of mon) - - -"
read -r pps mlost mloss mgap mup _ <<<"$(monitors_of mon) - - - - -"
c0a=$(cpu_of none); c0b=$(cpu_of again); c1=$(cpu_of mon)
c0=$c0a
if [ "$c0a" != - ] && [ "$c0b" != - ]; then c0=$(printf '%.1f' "$(echo "($c0a + $c0b) / 2" | bc -l)"); fi
per="-"
if [ "$c0" != - ] && [ "$c1" != - ]; then
	per=$(printf '%.3f' "$(echo "($c1 - $c0) / $monitors" | bc -l)")
fi
# When the generator falls behind (pace < 100 %), Plateau relays fewer
# packets and spends less: scaled, the CPU without monitors at the pace of
# the run with them (assuming it follows the packets relayed).
p0a=$(pace_of none); p0b=$(pace_of again); p1=$(pace_of mon)
scaled() { # CPU of the runs without, at pace $1
	if [ "$c0a" != - ] && [ "$c0b" != - ] && [ "$p0a" != - ] && [ "$p0b" != - ] && [ "$1" != - ]; then
		printf '%.1f' "$(echo "($c0a * $1 / $p0a + $c0b * $1 / $p0b) / 2" | bc -l)"
	else echo -; fi
}
c0s=$(scaled "$p1"); pers="-"
if [ "$c0s" != - ] && [ "$c1" != - ]; then
	pers=$(printf '%.3f' "$(echo "($c1 - $c0s) / $monitors" | bc -l)")
fi
echo
echo "== monitor sessions: $calls calls, $monitors supervisors ($mode), window $hold"
f='%-46s %14s %18s %12s\n'
printf "$f" "" "without" "with $monitors $mode" "difference"
printf "$f" "Plateau CPU (% of a core)" "$c0" "$c1" "$(diff_of "$c0" "$c1")"
printf "$f" "  without: first run, last run" "$c0a, $c0b" "" "$(diff_of "$c0a" "$c0b")"
printf "$f" "CPU per monitor session (% of a core)" "" "" "$per"
printf "$f" "load generator pace (%; first, last without)" "$p0a, $p0b" "$p1" ""
printf "$f" "  Plateau CPU without, scaled to that pace" "$c0s" "$c1" "$(diff_of "$c0s" "$c1")"
printf "$f" "  CPU per monitor session, pace-scaled" "" "" "$pers"
printf "$f" "monitored calls ($monitors): loss (%)" "$l0" "$l1" "$(diff_of "$l0" "$l1" 3)"
printf "$f" "monitored calls: round trip p50 (µs)" "$p50_0" "$p50_1" "$(diff_of "$p50_0" "$p50_1" 0)"
printf "$f" "monitored calls: round trip p99 (µs)" "$p99_0" "$p99_1" "$(diff_of "$p99_0" "$p99_1" 0)"
printf "$f" "  without, last run: loss, p50, p99" "$l0b, $p50_0b, $p99_0b" "" ""
printf "$f" "all $calls calls: loss (%)" "$(all_loss_of none)" "$(all_loss_of mon)" "$(diff_of "$(all_loss_of none)" "$(all_loss_of mon)" 3)"
printf "$f" "packets/s per monitor session (expected 50)" "" "$pps" ""
printf "$f" "monitor packets lost by sequence (%)" "" "$mlost ($mloss %)" ""
printf "$f" "monitor longest gap between packets" "" "$mgap" ""
printf "$f" "sessions up / plateau_monitor_sessions_active" "$(gauge_of none)" "$mup / $(gauge_of mon)" ""
if [ "$whisper" -gt 0 ]; then
	read -r lw p50_w p99_w _ <<<"$(watched_of whisper) - - -"
	read -r wpps wlost wloss _ wup _ <<<"$(monitors_of whisper) - - - - -"
	cw=$(cpu_of whisper); perw="-"; pw=$(pace_of whisper); c0w=$(scaled "$pw"); perws="-"
	if [ "$c0" != - ] && [ "$cw" != - ]; then
		perw=$(printf '%.3f' "$(echo "($cw - $c0) / $whisper" | bc -l)")
	fi
	if [ "$c0w" != - ] && [ "$cw" != - ]; then
		perws=$(printf '%.3f' "$(echo "($cw - $c0w) / $whisper" | bc -l)")
	fi
	echo
	printf "$f" "" "without" "with $whisper whisper" "difference"
	printf "$f" "Plateau CPU (% of a core)" "$c0" "$cw" "$(diff_of "$c0" "$cw")"
	printf "$f" "CPU per whisper session (% of a core)" "" "" "$perw"
	printf "$f" "load generator pace (%)" "$p0a, $p0b" "$pw" ""
	printf "$f" "  Plateau CPU without, scaled to that pace" "$c0w" "$cw" "$(diff_of "$c0w" "$cw")"
	printf "$f" "  CPU per whisper session, pace-scaled" "" "" "$perws"
	printf "$f" "whispered calls ($whisper): loss (%)" "$l0" "$lw" "$(diff_of "$l0" "$lw" 3)"
	printf "$f" "whispered calls: round trip p50 (µs)" "$p50_0" "$p50_w" "$(diff_of "$p50_0" "$p50_w" 0)"
	printf "$f" "whispered calls: round trip p99 (µs)" "$p99_0" "$p99_w" "$(diff_of "$p99_0" "$p99_w" 0)"
	printf "$f" "packets/s per whisper session, lost" "" "$wpps, $wlost ($wloss %)" ""
	printf "$f" "sessions up / plateau_monitor_sessions_active" "" "$wup / $(gauge_of whisper)" ""
	echo "(without: the first $monitors calls, unmonitored; the whispered ones are the first $whisper)"
fi
echo "target (issue): 100 simultaneous monitor sessions while 1,000 calls run, no added loss or latency on the"
echo "                monitored calls; measured scaled to $calls calls (2 cores shared with the load generator)"
exit "$failed"
