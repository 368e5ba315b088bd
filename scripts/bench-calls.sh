#!/usr/bin/env bash
# Call-setup load without media: SIPp operators (bench/sipp/uac_call_nomedia.xml,
# digest auth) → Plateau (policy, B2BUA, recording) → SIPp carrier
# (bench/sipp/uas_answer_nomedia.xml, answers at once), at increasing rates.
# Prints a table per rate and, for the highest rate with zero failed calls,
# the setups/s reached, the server's CPU per call and its peak RSS.
# Usage: scripts/bench-calls.sh [bin/plateau]
# Tunables (env): PROFILE=1 (keep a server CPU profile per step), KEEP=1 (keep the
# temporary directory), RATES ("50 100 250 500 1000 1500 2000"), SECONDS_PER_RATE (5),
# HOLD_MS (1000), USERS (4000).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
root=$PWD
bin=$(realpath "${1:-bin/plateau}")
rates=${RATES:-"50 100 250 500 1000 1500 2000"}
per=${SECONDS_PER_RATE:-5}
hold=${HOLD_MS:-1000}
users=${USERS:-4000}
number="+33240123456"
command -v sipp >/dev/null || { echo "bench-calls: sipp is not installed (make deps)"; exit 1; }

tmp=$(mktemp -d /tmp/plateau-bench-calls.XXXXXX)
pid=""; uas=""; keep=${KEEP:-}
cleanup() {
	stop "$uas"; stop "$pid"
	if [ -z "$keep" ]; then rm -rf "$tmp"; else echo "bench-calls: logs kept in $tmp"; fi
}
trap cleanup EXIT INT TERM

sip_port=$(free_port); http_port=$(free_port); uas_port=$(free_port)

# RTP ports: each call holds 2 pairs for its length plus media.port_drain.
{
	bench_sip_yaml bench
	cat <<YAML
media:
  ip: 127.0.0.1
  rtp_ports: "10000-59999"
  port_drain: 2s
  inactivity_timeout: 60s
http: {listen: "127.0.0.1:$http_port", pprof: true}
data_dir: $tmp/data
log: {level: warn}
trunks:
  - name: carrier
    address: "127.0.0.1:$uas_port"
    transport: udp
    caller_id: "+33240000000"
    options_interval: 0s       # SIPp's UAS does not answer OPTIONS
    number_format: e164
YAML
	bench_policy_yaml
	operator_users 100001 "$users"
} >"$tmp/plateau.yaml"
{
	echo SEQUENTIAL
	for i in $(seq 1 "$users"); do echo "$((100000 + i));pw$((100000 + i));$number"; done
} >"$tmp/users.csv"

"$bin" check-config -c "$tmp/plateau.yaml" >/dev/null
start_plateau
# The number, proposed and approved by two security users (serve created them).
"$bin" allowlist add --by 301 -c "$tmp/plateau.yaml" "$number" >/dev/null
"$bin" allowlist approve --by 302 -c "$tmp/plateau.yaml" --all >/dev/null

# One carrier for every step, bounded by the total number of calls.
total=0
for rate in $rates; do total=$((total + rate * per)); done
(cd "$tmp" && exec timeout 300 sipp -sf "$root/bench/sipp/uas_answer_nomedia.xml" \
	-i 127.0.0.1 -p "$uas_port" -ci 127.0.0.1 -cp "$(free_port)" -mp "$(free_port)" -nostdin \
	-buff_size 4194304 -m "$total" -timeout 280s >"$tmp/uas.out" 2>&1) &
uas=$!
sleep 0.5

tck=$(getconf CLK_TCK)
rss_start=$(awk '/VmRSS/{print $2 " " $3}' "/proc/$pid/status")

# Other jobs on the host skew every figure: say how busy it was.
echo "host: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) before the run"
printf 'Plateau call-setup benchmark: SIPp UAC (digest MD5) -> Plateau (policy, B2BUA, recording) -> SIPp UAS, no RTP from the peers,\n'
printf '%d s per rate, calls held %d ms, UDP, SIPp on the same %d cores\n' "$per" "$hold" "$(nproc)"
printf '%9s %8s %7s %8s %10s %9s %12s %9s\n' "target/s" "calls" "failed" "wall s" "setups/s" "cpu s" "cpu ms/call" "setup ms"
best=0; best_line=""; peak=0; peak_line=""
for rate in $rates; do
	n=$((rate * per))
	prof=""
	if [ -n "${PROFILE:-}" ]; then # a CPU profile of the server over the step
		curl -fs -o "$tmp/cpu-$rate.pprof" "http://127.0.0.1:$http_port/debug/pprof/profile?seconds=$per" &
		prof=$!
	fi
	before=$(cpu_ticks "$pid")
	start=$(date +%s.%N)
	set +e
	(cd "$tmp" && timeout 120 sipp "127.0.0.1:$sip_port" -sf "$root/bench/sipp/uac_call_nomedia.xml" \
		-inf "$tmp/users.csv" -r "$rate" -rp 1000 -m "$n" -l 100000 -d "$hold" \
		-i 127.0.0.1 -p "$(free_port)" -mp "$(free_port)" -ci 127.0.0.1 -cp "$(free_port)" -nostdin \
		-buff_size 4194304 -timeout 60s -timeout_error -recv_timeout 10000 \
		-default_behaviors all,-abortunexp \
		-trace_stat -stf "$tmp/stat-$rate.csv" -fd 1 -trace_err -error_file "$tmp/err-$rate.log" >"$tmp/sipp-$rate.out" 2>&1)
	rc=$?
	set -e
	end=$(date +%s.%N)
	sleep 0.5 # the last BYEs' transactions and recordings close
	[ -z "$prof" ] || wait "$prof" || true
	after=$(cpu_ticks "$pid")
	read -r ok failed < <(awk -F';' 'NR==1{for(i=1;i<=NF;i++){if($i=="SuccessfulCall(C)")s=i;if($i=="FailedCall(C)")f=i}} END{print $s+0, $f+0}' "$tmp/stat-$rate.csv" 2>/dev/null || echo "0 $n")
	# Mean time from the first INVITE to the 200 (407 round included), ms:
	# SIPp's cumulative ResponseTime1 (HH:MM:SS:microseconds).
	setup=$(awk -F';' 'NR==1{for(i=1;i<=NF;i++)if($i=="ResponseTime1(C)")r=i} END{split($r,t,":"); if (r) printf "%.1f", (t[1]*3600+t[2]*60+t[3])*1000+t[4]/1000; else print "-"}' "$tmp/stat-$rate.csv" 2>/dev/null || echo -)
	wall=$(echo "$end - $start - $hold / 1000" | bc -l)
	cpu=$(echo "($after - $before) / $tck" | bc -l)
	achieved=$(echo "$ok / $wall" | bc -l)
	per_call=$(echo "if ($ok > 0) $cpu * 1000 / $ok else 0" | bc -l)
	printf '%9d %8d %7d %8.2f %10.0f %9.2f %12.3f %9s\n' "$rate" "$ok" "$failed" "$wall" "$achieved" "$cpu" "$per_call" "$setup"
	if [ "$rc" -ne 0 ] || [ "$failed" -ne 0 ] || [ "$ok" -ne "$n" ]; then
		keep=1
		echo "  stopped at $rate/s: sipp exit $rc, $failed failed, $ok of $n completed (see $tmp/err-$rate.log)"
		break
	fi
	if [ "$(echo "$achieved > $peak" | bc -l)" -eq 1 ]; then
		peak=$(printf %.0f "$achieved")
		peak_line=$(printf '%.0f setups/s at target %d/s, %.3f ms server CPU per call, mean setup %s ms' "$achieved" "$rate" "$per_call" "$setup")
	fi
	# A target counts as sustained when 90 % of it is reached; below half
	# of it, higher targets are pointless (calls only queue in SIPp).
	if [ "$(echo "$achieved < 0.5 * $rate" | bc -l)" -eq 1 ]; then
		echo "  stopped at $rate/s: no failures, but only $(printf %.0f "$achieved")/s reached (calls queue in SIPp)"
		break
	fi
	if [ "$(echo "$achieved >= 0.9 * $rate" | bc -l)" -eq 1 ]; then
		best=$rate
		best_line=$(printf '%.0f setups/s (%d calls in %.2f s), %.3f ms server CPU per call' "$achieved" "$ok" "$wall" "$per_call")
	fi
	sleep 2 # ports drain (media.port_drain) before the next step
done
hwm=$(awk '/VmHWM/{print $2 " " $3}' "/proc/$pid/status")
recs=$(find "$tmp/data/recordings" -name '*.wav' 2>/dev/null | wc -l)
echo
if [ "$peak" -eq 0 ]; then
	echo "no rate completed without failures"; keep=1; exit 1
fi
if [ "$best" -gt 0 ]; then
	printf '%-42s %s\n' "highest target rate sustained, 0 failures" "$best/s"
	printf '%-42s %s\n' "at that rate" "$best_line"
else
	printf '%-42s %s\n' "highest target rate sustained, 0 failures" "none (the lowest target was not reached)"
fi
printf '%-42s %s\n' "most setups/s with 0 failures" "$peak_line"
printf '%-42s %s (%s after start-up)\n' "server peak RSS (VmHWM, whole run)" "$hwm" "$rss_start"
printf '%-42s %s\n' "recordings written (WAV files)" "$recs"
echo "targets: >= 1000 setups/s with 0 failures (then 2000). Reference (FIELD-NOTES): Asterisk 20 275/s, Kamailio 5.6 + dialog 2000/s"
