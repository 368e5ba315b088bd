#!/usr/bin/env bash
# make run: Plateau on the example config beside the simulated outside world.
set -euo pipefail
bin=${1:-bin/plateau}
cfg=${2:-configs/plateau.yaml}
cd "$(dirname "$0")/.."

"$bin" check-config -c "$cfg"
echo "demo: starting pstn-sim, the simulated carrier (its log lines say component=pstn-sim)"
"$bin" pstn-sim -c configs/pstn-sim.yaml &
sim=$!
trap 'kill $sim 2>/dev/null; wait $sim 2>/dev/null' EXIT

# Demo numbers, approved by two different security officers (301 proposes,
# 302 approves). Re-running finds them already there, which is fine.
# 02 40 12 34 56 answers round the clock (its own hours in policy.number_windows:
# configuration, not code); 02 40 12 07 30 keeps the site's hours (from 07:30).
echo "demo: approving the demo numbers (security officers 301 and 302)"
"$bin" allowlist add --by 301 -c "$cfg" --label "Cabinet d'architectes (démo)" +33240123456 +33240120183 +33240120486 >/dev/null 2>&1 || true
"$bin" allowlist add --by 301 -c "$cfg" --label "Bureau d'études (démo, heures du site)" +33240120730 >/dev/null 2>&1 || true
"$bin" allowlist approve --by 302 -c "$cfg" --all >/dev/null 2>&1 || true

cat <<'MSG'

  Plateau demo — SIP 127.0.0.1:5060 (UDP/TCP), consoles https://127.0.0.1:8443
  (http://127.0.0.1:8080 redirects there). The certificate is self-signed,
  made at the first start: data/tls/https.crt. Its SHA-256 fingerprint is
  the msg="https certificate" line below; trust it in the browser or use
      curl --cacert data/tls/https.crt https://127.0.0.1:8443/healthz
  The outside world is simulated (pstn-sim on 127.0.0.2:5070, echo).

  From another terminal, a real, policy-checked, recorded call (any hour):
      bin/plateau dial --as 101 '02 40 12 34 56'
  The 07:30 rule: this approved number keeps the site's hours (Mon-Fri
  07:30-12:00, 13:30-18:00, Europe/Paris); outside them it is refused
  403 OUTSIDE_WINDOW with the time calling opens next:
      bin/plateau dial --as 101 '02 40 12 07 30'
  Refused at any hour (not on the allowlist):
      bin/plateau dial --as 101 '02 40 99 99 99'
  Or register a softphone (baresip account line):
      <sip:101@127.0.0.1:5060;transport=udp>;auth_pass=demo101
  Recordings: data/recordings/   Audit: bin/plateau audit list
  Every decision is also a line below (msg="call allowed" / "call refused").

MSG
"$bin" serve -c "$cfg"
