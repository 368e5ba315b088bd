#!/usr/bin/env bash
# REGISTER-with-digest-auth load: Plateau on a temporary config with USERS
# bootstrap users, SIPp (e2e/sipp/register_auth.xml) at increasing rates.
# Prints, for the highest rate with zero failed registrations, the rate
# reached, the server's CPU seconds and its peak RSS.
# Usage: scripts/bench-register.sh [bin/plateau]
# Tunables (env): USERS (1000), RATES ("2000 4000 6000 8000 10000 12000 14000"),
# SECONDS_PER_RATE (4).
#
# FLOOD=1 measures the other side instead: one unauthenticated source
# (bench/regflood) sends FLOOD_RATE (10000) REGISTER/s for FLOOD_SECONDS (20)
# without credentials, then as long again with wrong credentials (each needs
# a transaction), against Plateau with its default sip.limits; it prints the
# server's RSS sampled every 0.5 s (target: under 300 MB) and its CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
root=$PWD
bin=$(realpath "${1:-bin/plateau}")
users=${USERS:-1000}
rates=${RATES:-"2000 4000 6000 8000 10000 12000 14000"}
per=${SECONDS_PER_RATE:-4}
flood=${FLOOD:-}
[ -n "$flood" ] || command -v sipp >/dev/null || { echo "bench-register: sipp is not installed (make deps)"; exit 1; }

tmp=$(mktemp -d /tmp/plateau-bench.XXXXXX)
pid=""
cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid"
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

sip_port=$(free_port); http_port=$(free_port); rtp=$((30000 + (RANDOM % 15000) * 2))

{
	cat <<YAML
sip:
  listen: "127.0.0.1:$sip_port"
  transports: [udp]
  realm: plateau
  digest_algorithms: [MD5]   # SIPp answers only the first challenge, and only MD5
YAML
	# SIPp sends everything from one address: no per-source rate limit,
	# except for the flood, which measures the defaults.
	[ -n "$flood" ] || echo "  limits: {requests_per_source: 1000000}"
	cat <<YAML
media: {rtp_ports: "$rtp-$((rtp + 9))"}
http: {listen: "127.0.0.1:$http_port"}
data_dir: $tmp/data
log: {level: warn}
policy:
  ban: {max_failures: 1000000}
recordings: {notice_prompt: $root/configs/prompts/notice-fr.wav}
users:
YAML
	operator_users 100001 "$users"
} >"$tmp/plateau.yaml"
{
	echo SEQUENTIAL
	for i in $(seq 1 "$users"); do echo "$((100000 + i));pw$((100000 + i));3600"; done
} >"$tmp/users.csv"

start_plateau

tck=$(getconf CLK_TCK)
rss_start=$(awk '/VmRSS/{print $2 " " $3}' "/proc/$pid/status")

# rss_mb PID: resident set size in MB.
rss_mb() { awk '/VmRSS/{printf "%.0f", $2 / 1024}' "/proc/$1/status"; }

if [ -n "$flood" ]; then
	frate=${FLOOD_RATE:-10000}; fsec=${FLOOD_SECONDS:-20}
	go build -o "$tmp/regflood" ./bench/regflood
	printf 'Plateau REGISTER flood: one source, %d/s for %d s per phase, default sip.limits, on %d cores\n' "$frate" "$fsec" "$(nproc)"
	printf '%-22s %10s %10s %10s %8s  %s\n' "phase" "RSS start" "RSS peak" "RSS end" "cpu s" "flood tool"
	for phase in no-credentials bad-credentials; do
		args=(); [ "$phase" = bad-credentials ] && args=(-bad-credentials)
		start_rss=$(rss_mb "$pid"); peak=$start_rss
		before=$(cpu_ticks "$pid")
		"$tmp/regflood" -server "127.0.0.1:$sip_port" -rate "$frate" -duration "${fsec}s" "${args[@]}" >"$tmp/flood-$phase.out" 2>&1 &
		fpid=$!
		while kill -0 "$fpid" 2>/dev/null; do
			r=$(rss_mb "$pid"); [ "$r" -gt "$peak" ] && peak=$r
			sleep 0.5
		done
		wait "$fpid" || { cat "$tmp/flood-$phase.out"; exit 1; }
		kill -0 "$pid" 2>/dev/null || { echo "plateau died during the flood"; tail -20 "$tmp/plateau.log"; exit 1; }
		cpu=$(echo "($(cpu_ticks "$pid") - $before) / $tck" | bc -l)
		printf '%-22s %8s MB %8s MB %8s MB %8.1f  %s\n' "$phase" "$start_rss" "$peak" "$(rss_mb "$pid")" "$cpu" "$(cat "$tmp/flood-$phase.out")"
	done
	hwm_kb=$(awk '/VmHWM/{print $2}' "/proc/$pid/status")
	printf '%-22s %s MB (target: under 300 MB)\n' "peak RSS (VmHWM)" "$((hwm_kb / 1024))"
	curl -fs "http://127.0.0.1:$http_port/metrics" | grep -E '^plateau_sip_(dropped_requests_total|stateless_responses_total)' || true
	[ "$hwm_kb" -lt $((300 * 1024)) ] || { echo "bench-register: peak RSS over 300 MB under the flood"; exit 1; }
	exit 0
fi

printf 'Plateau REGISTER benchmark: %d users, digest MD5 (qop=auth), UDP, SIPp on the same %d cores\n' "$users" "$(nproc)"
printf '%8s %9s %9s %8s %10s %10s\n' "target/s" "ok" "failed" "wall s" "reg/s" "cpu s"
best_rate=0; best_ok=0; best_cpu=0; best_wall=0; best_target=0
for rate in $rates; do
	n=$((rate * per))
	cp_port=$(free_port); lp=$(free_port)
	before=$(cpu_ticks "$pid")
	start=$(date +%s.%N)
	set +e
	(cd "$tmp" && timeout 120 sipp "127.0.0.1:$sip_port" -sf "$root/e2e/sipp/register_auth.xml" \
		-inf "$tmp/users.csv" -r "$rate" -rp 1000 -m "$n" -l 100000 \
		-i 127.0.0.1 -p "$lp" -ci 127.0.0.1 -cp "$cp_port" -nostdin \
		-buff_size 4194304 -timeout 60s -timeout_error -recv_timeout 5000 \
		-trace_stat -stf "$tmp/stat-$rate.csv" -fd 1 >"$tmp/sipp-$rate.out" 2>&1)
	rc=$?
	set -e
	end=$(date +%s.%N)
	after=$(cpu_ticks "$pid")
	# Last line of the -trace_stat CSV: cumulative SuccessfulCall and FailedCall.
	read -r ok failed < <(awk -F';' 'NR==1{for(i=1;i<=NF;i++){if($i=="SuccessfulCall(C)")s=i;if($i=="FailedCall(C)")f=i}} END{print $s+0, $f+0}' "$tmp/stat-$rate.csv" 2>/dev/null || echo "0 $n")
	wall=$(echo "$end - $start" | bc -l)
	cpu=$(echo "($after - $before) / $tck" | bc -l)
	achieved=$(echo "$ok / $wall" | bc -l)
	printf '%8d %9d %9d %8.2f %10.0f %10.2f\n' "$rate" "$ok" "$failed" "$wall" "$achieved" "$cpu"
	if [ "$rc" -ne 0 ] || [ "$failed" -ne 0 ] || [ "$ok" -ne "$n" ]; then
		break
	fi
	best_target=$rate; best_ok=$ok; best_wall=$wall; best_cpu=$cpu; best_rate=$achieved
done
hwm=$(awk '/VmHWM/{print $2 " " $3}' "/proc/$pid/status")
echo
if [ "$best_target" -eq 0 ]; then
	echo "no rate completed without failures (see $tmp, kept)"; trap - EXIT; kill -TERM "$pid"; exit 1
fi
printf '%-44s %s\n' "highest target rate with 0 failures" "$best_target/s"
printf '%-44s %.0f/s (%d in %.2f s, SIPp start-up included)\n' "authenticated REGISTER reached" "$best_rate" "$best_ok" "$best_wall"
printf '%-44s %.2f s (%.0f µs per registration, 2 transactions each)\n' "server CPU at that rate (utime+stime)" "$best_cpu" "$(echo "$best_cpu * 1000000 / $best_ok" | bc -l)"
printf '%-44s %s (%s after start-up)\n' "server peak RSS (VmHWM, whole run)" "$hwm" "$rss_start"
echo "reference (FIELD-NOTES): Kamailio 5.6 auth_db+registrar, 14000/s, 0 failures"
