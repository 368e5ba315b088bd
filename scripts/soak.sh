#!/usr/bin/env bash
# Soak: `make soak`. SIPp places operator calls through Plateau at a steady
# rate (each digest-authenticated, policy-checked, relayed and recorded) to
# pstn-sim, which echoes the RTP; SIPp plays its G.711 pcap on every call
# (a thread per call for the pcap's ~7 s, hence a moderate default rate).
# Prints calls placed/failed, recordings missing (answered vs completed),
# RSS after 2 minutes vs at the end, goroutines and RTP ports in use at the
# start and the end.
# Usage: scripts/soak.sh [bin/plateau]
# Tunables (env): SOAK_MINUTES (10), SOAK_RATE (calls/s, 10),
# SOAK_CALL_SECONDS (30), KEEP=1 to keep the files.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
root=$PWD
bin=$(realpath "${1:-bin/plateau}")
minutes=${SOAK_MINUTES:-10}
rate=${SOAK_RATE:-10}
call_s=${SOAK_CALL_SECONDS:-30}
number="+33240123456"
first_ext=1000
calls=$((rate * minutes * 60))
# One call per operator at a time: a SEQUENTIAL list long enough that an
# operator comes round again only after its previous call has ended.
users=$((rate * (call_s + 15) * 2))
concurrent=$((rate * (call_s + 5)))

command -v sipp >/dev/null || { echo "soak: sipp is not installed (make deps)"; exit 1; }
[ "$(id -u)" = 0 ] || echo "soak: warning: SIPp's pcap play needs root; calls will carry no operator RTP"

tmp=$(mktemp -d /tmp/plateau-soak.XXXXXX)
pid=""; sim=""; sp=""; keep=${KEEP:-}
cleanup() {
	stop "$sp"; stop "$pid"; stop "$sim"
	if [ -z "$keep" ]; then rm -rf "$tmp"; else echo "soak: files kept in $tmp"; fi
}
trap cleanup EXIT INT TERM

sip_port=$(free_port); http_port=$(free_port); sim_port=$(free_port); sipp_port=$(free_port); sipp_media=$(free_port); sipp_ctl=$(free_port)

cat >"$tmp/pstn-sim.yaml" <<YAML
listen: "127.0.0.1:$sim_port"
media: {ip: 127.0.0.1, rtp_ports: "40000-47999"}
ring_time: 100ms
answer: {mode: echo}
no_default_rules: true
YAML

{
	bench_sip_yaml soak
	cat <<YAML
media:
  ip: 127.0.0.1
  rtp_ports: "10000-29999"
  inactivity_timeout: 120s
http: {listen: "127.0.0.1:$http_port"}
data_dir: $tmp/data
log: {level: warn}
trunks:
  - name: sim
    address: "127.0.0.1:$sim_port"
    transport: udp
    caller_id: "+33240000000"
    options_interval: 10s
YAML
	bench_policy_yaml
	operator_users "$first_ext" "$users"
} >"$tmp/plateau.yaml"
{
	echo SEQUENTIAL
	for i in $(seq 0 $((users - 1))); do echo "$((first_ext + i));pw$((first_ext + i));$number"; done
} >"$tmp/ops.csv"

"$bin" pstn-sim -c "$tmp/pstn-sim.yaml" >"$tmp/pstn-sim.log" 2>&1 &
sim=$!
start_plateau
"$bin" allowlist add --by 301 -c "$tmp/plateau.yaml" "$number" >/dev/null
"$bin" allowlist approve --by 302 -c "$tmp/plateau.yaml" --all >/dev/null

metric() { # metric NAME: one unlabelled sample, 0 when absent
	curl -fs "http://127.0.0.1:$http_port/metrics" | awk -v n="$1" '$1 == n {print $2; f=1} END {if (!f) print 0}'
}
rss() { awk '/VmRSS/{print $2}' "/proc/$pid/status"; }
# plateau_media_ports_in_use as exported, and the UDP sockets the process
# really holds (SIP, RTP and RTCP): the gauge alone is not trusted.
ports() { echo "$(metric plateau_media_ports_in_use)/$(ss -Huanp 2>/dev/null | grep -c "pid=$pid," || true)"; }

echo "soak: $minutes min, $rate calls/s of ${call_s} s with RTP (SIPp pcap), $calls calls, ~$concurrent concurrent, $users operators"
echo "host: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) before the run"
g0=$(metric go_goroutines); ports0=$(ports); rss0=$(rss)

(cd "$tmp" && exec sipp 127.0.0.1:"$sip_port" -sf "$root/e2e/sipp/sec_soak_uac.xml" -inf "$tmp/ops.csv" \
	-i 127.0.0.1 -p "$sipp_port" -mi 127.0.0.1 -mp "$sipp_media" -ci 127.0.0.1 -cp "$sipp_ctl" \
	-r "$rate" -l "$((concurrent * 2))" -m "$calls" -d "$((call_s * 1000))" \
	-timeout "$((minutes * 60 + call_s + 120))s" -timeout_error -nostdin -buff_size 4194304 \
	-trace_err -trace_screen -default_behaviors all,-abortunexp >"$tmp/sipp.out" 2>&1) &
sp=$!
start=$(date +%s)
rss2=""; g2=""; ports2=""
while kill -0 "$sp" 2>/dev/null; do
	sleep 5
	el=$(($(date +%s) - start))
	if [ -z "$rss2" ] && [ "$el" -ge 120 ]; then
		rss2=$(rss); g2=$(metric go_goroutines); ports2=$(ports)
	fi
	if [ $((el % 60)) -lt 5 ]; then
		printf 'soak: %4ds active %s answered %s rss %s kB goroutines %s ports %s\n' "$el" \
			"$(metric plateau_calls_active)" "$(metric plateau_calls_answered_total)" "$(rss)" "$(metric go_goroutines)" "$(ports)"
	fi
	kill -0 "$pid" 2>/dev/null || { echo "soak: plateau died"; keep=1; break; }
done
set +e; wait "$sp"; sipp_rc=$?; set -e; sp=""
[ -n "$rss2" ] || { rss2=$(rss); g2=$(metric go_goroutines); ports2=$(ports); }
rss_end=$(rss)
# Let the last calls, recordings and port drains finish.
for _ in $(seq 150); do
	[ "$(metric plateau_calls_active)" = 0 ] && [ "$(metric plateau_recordings_active)" = 0 ] && break
	sleep 0.2
done
sleep 6 # media.port_drain (5 s)
g_end=$(metric go_goroutines); ports_end=$(ports)

screen=$(ls "$tmp"/*_screen.log 2>/dev/null | head -1 || true)
[ -n "$screen" ] || screen="$tmp/sipp.out"
ok=$(awk -F'|' '/Successful call/ {v=$NF} END {gsub(/ /, "", v); print v}' "$screen")
failed=$(awk -F'|' '/Failed call/ {v=$NF} END {gsub(/ /, "", v); print v}' "$screen")
answered=$(metric plateau_calls_answered_total)
completed=$(metric plateau_recordings_completed_total)
wavs=$(find "$tmp/data/recordings" -name '*.wav' | wc -l)
verify=$("$bin" recordings verify -c "$tmp/plateau.yaml" 2>&1 | tail -1 || true)
audit=$("$bin" audit verify -c "$tmp/plateau.yaml" 2>&1 | head -1 || true)
missing=$(awk -v a="$answered" -v c="$completed" 'BEGIN {print a - c}')
growth=$(awk -v a="$rss2" -v b="$rss_end" 'BEGIN {printf "%+.1f", (b - a) * 100 / a}')

echo
printf '%-40s %s (SIPp exit %s)\n' "calls placed" "$calls" "$sipp_rc"
printf '%-40s %s\n' "calls successful (SIPp)" "${ok:-?}"
printf '%-40s %s\n' "calls failed (SIPp)" "${failed:-?}"
printf '%-40s %s\n' "calls answered (Plateau)" "$answered"
printf '%-40s %s completed, %s WAV files: %s missing\n' "recordings" "$completed" "$wavs" "$missing"
printf '%-40s %s kB at start, %s kB after 2 min, %s kB at the end (%s %%)\n' "RSS" "$rss0" "$rss2" "$rss_end" "$growth"
printf '%-40s %s at start, %s after 2 min, %s at the end\n' "goroutines (go_goroutines)" "$g0" "$g2" "$g_end"
printf '%-40s %s at start, %s after 2 min, %s at the end\n' "RTP port pairs (metric/UDP sockets)" "$ports0" "$ports2" "$ports_end"
printf '%-40s %s\n' "recordings verify" "$verify"
printf '%-40s %s\n' "audit verify" "$audit"
echo "targets: 0 failed, 0 missing, RSS at the end within 10 % of RSS after 2 min, goroutines and ports back to the start"
if [ "${failed:-1}" != 0 ] || [ "$missing" != 0 ]; then keep=1; exit 1; fi
