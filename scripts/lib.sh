# Shared helpers of the load scripts (bench-*.sh, soak.sh); source it.

# stop PID [SIGNAL]: TERM (or SIGNAL), then KILL after 20 s (Plateau closes
# its recordings on the way out).
stop() {
	local p=$1
	[ -n "$p" ] && kill -0 "$p" 2>/dev/null || return 0
	kill "-${2:-TERM}" "$p" 2>/dev/null || true
	for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
	kill -KILL "$p" 2>/dev/null || true
}

# free_port: a free port on 127.0.0.1 for both UDP and TCP (checked with ss).
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 40000))
		ss -Hlnu "sport = :$p" | grep -q . && continue
		ss -Hlnt "sport = :$p" | grep -q . && continue
		echo "$p"; return
	done
}

# cpu_ticks PID: user + system CPU time in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# operator_users FIRST COUNT: YAML users: entries of operators FIRST.. with
# SIP password pw<ext> (no web password: argon2 would slow the start).
operator_users() {
	local ext
	for ext in $(seq "$1" $(($1 + $2 - 1))); do
		echo "  - {extension: \"$ext\", role: operator, sip_password: \"pw$ext\"}"
	done
}

# bench_sip_yaml NAME: the load scripts' site (named NAME) and SIP listener
# on 127.0.0.1:$sip_port, UDP, digest MD5 (SIPp answers only MD5), 4 MB
# socket buffers, no per-source rate limit (SIPp is one source).
bench_sip_yaml() {
	cat <<YAML
site: {name: $1, timezone: Europe/Paris, default_region: FR}
sip:
  listen: "127.0.0.1:$sip_port"
  transports: [udp]
  realm: plateau
  external_address: 127.0.0.1
  digest_algorithms: [MD5]
  digest_uri_check: server      # SIPp's digest uri is the server's address
  udp_buffer_bytes: 4194304
  limits: {requests_per_source: 1000000}   # SIPp sends everything from one address
YAML
}

# bench_policy_yaml: the load scripts' policy — open round the clock, one
# call per operator, no site limit, no bans — the notice, and the two
# security users who approve the numbers.
bench_policy_yaml() {
	cat <<YAML
policy:
  windows: [{days: mon-sun, from: "00:00", to: "24:00"}]
  max_call_duration: 4h
  limits: {per_operator: 1, per_site: 100000}
  ban: {max_failures: 1000000}
recordings: {notice_prompt: $root/configs/prompts/notice-fr.wav, min_free_mb: 10}
users:
  - {extension: "301", role: security}
  - {extension: "302", role: security}
YAML
}

# start_plateau: serve $tmp/plateau.yaml with $bin (log in $tmp/plateau.log)
# and wait until /readyz on $http_port answers. Sets pid; exits 1 with the
# log when Plateau stops or is not ready in 60 s (keep=1 keeps $tmp).
start_plateau() {
	"$bin" serve -c "$tmp/plateau.yaml" >"$tmp/plateau.log" 2>&1 &
	pid=$!
	for _ in $(seq 300); do
		curl -fs "http://127.0.0.1:$http_port/readyz" >/dev/null 2>&1 && return
		kill -0 "$pid" 2>/dev/null || { cat "$tmp/plateau.log"; exit 1; }
		sleep 0.2
	done
	echo "plateau not ready"; tail -20 "$tmp/plateau.log"; keep=1; exit 1
}

# start_echo_world: the media benchmarks' world in $tmp — pstn-sim echoing
# every call, and Plateau relaying and recording every call to it (ports
# 10000-25999: 2 RTP pairs per call, 4,000 calls) — with the users:
# entries the caller's bench_users function prints. Sets sip_port,
# http_port, sim_port, sim and pid.
start_echo_world() {
	sip_port=$(free_port); http_port=$(free_port); sim_port=$(free_port)
	cat >"$tmp/pstn-sim.yaml" <<YAML
listen: "127.0.0.1:$sim_port"
media: {ip: 127.0.0.1, rtp_ports: "26000-32699"}   # 3,350 pairs, one per call
ring_time: 10ms
answer: {mode: echo}
no_default_rules: true
YAML
	{
		bench_sip_yaml bench
		cat <<YAML
media:
  ip: 127.0.0.1
  rtp_ports: "10000-25999"
  inactivity_timeout: 60s
http: {listen: "127.0.0.1:$http_port", pprof: true}
data_dir: $tmp/data
log: {level: warn}
trunks:
  - name: sim
    address: "127.0.0.1:$sim_port"
    transport: udp
    caller_id: "+33240000000"
    options_interval: 0s
    number_format: e164
YAML
		bench_policy_yaml
		bench_users
	} >"$tmp/plateau.yaml"
	"$bin" pstn-sim -c "$tmp/pstn-sim.yaml" >"$tmp/pstn-sim.log" 2>&1 &
	sim=$!
	start_plateau
	kill -0 "$sim" 2>/dev/null || { cat "$tmp/pstn-sim.log"; exit 1; }
}
