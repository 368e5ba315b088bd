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
