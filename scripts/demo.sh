#!/usr/bin/env bash
# make run: Plateau on the example config beside the simulated outside world.
set -euo pipefail
bin=${1:-bin/plateau}
cfg=${2:-configs/plateau.yaml}
cd "$(dirname "$0")/.."

"$bin" check-config -c "$cfg"
"$bin" pstn-sim -c configs/pstn-sim.yaml &
sim=$!
trap 'kill $sim 2>/dev/null; wait $sim 2>/dev/null' EXIT

# Demo numbers, approved by two different security officers (301 proposes,
# 302 approves). Re-running finds them already there, which is fine.
"$bin" allowlist add --by 301 -c "$cfg" --label "Cabinet d'architectes (démo)" +33240123456 +33240120183 +33240120486 >/dev/null 2>&1 || true
"$bin" allowlist approve --by 302 -c "$cfg" --all >/dev/null 2>&1 || true

cat <<'MSG'

  Plateau demo — SIP 127.0.0.1:5060 (UDP/TCP), web http://127.0.0.1:8080
  The outside world is simulated (pstn-sim on 127.0.0.2:5070, echo).

  Place a real, policy-checked, recorded call from another terminal:
      bin/plateau dial --as 101 -c configs/plateau.yaml '02 40 12 34 56'
  A refused one (not on the allowlist):
      bin/plateau dial --as 101 -c configs/plateau.yaml '02 40 99 99 99'
  Or register a softphone (baresip account line):
      <sip:101@127.0.0.1:5060;transport=udp>;auth_pass=demo101
  Calls are allowed Mon-Fri 07:30-12:00 and 13:30-18:00 (Europe/Paris, see
  policy.windows); outside them the answer is 403 OUTSIDE_WINDOW.
  Recordings: data/recordings/   Audit: bin/plateau audit list -c configs/plateau.yaml

MSG
"$bin" serve -c "$cfg"
