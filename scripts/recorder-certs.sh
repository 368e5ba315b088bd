#!/bin/sh
# recorder-certs.sh DIR RECORDER_HOST [NODE...]
#
# A small CA for the link between Plateau and `plateau recorder` (SIPREC
# over TLS with mutual authentication), made with openssl:
#   DIR/ca.crt, DIR/ca.key          the CA (created once, reused after;
#                                   keep ca.key off the servers)
#   DIR/recorder.crt, .key          the recorder's certificate, for
#                                   RECORDER_HOST (an IP address or a DNS
#                                   name: Plateau's recordings.remote.
#                                   server_name must be it)
#   DIR/plateau-NODE.crt, .key      a client certificate per Plateau node
#
# Recorder host:  recorder.tls: {cert_file: recorder.crt, key_file:
#                 recorder.key, client_ca_file: ca.crt}
# Plateau node:   recordings.remote: {transport: tls, ca_file: ca.crt,
#                 cert_file: plateau-NODE.crt, key_file: plateau-NODE.key}
#
# Existing files are never overwritten: run it again with a new NODE to
# add a node; delete a certificate and its key to renew it (then SIGHUP
# the process, or wait for it to notice the new files).
set -eu

if [ $# -lt 2 ]; then
	echo "usage: $0 DIR RECORDER_HOST [NODE...]" >&2
	exit 2
fi
dir=$1
host=$2
shift 2
umask 077
mkdir -p "$dir"
cd "$dir"

san() {
	case $1 in
	*[!0-9.]* | "")
		case $1 in
		*:*) echo "IP:$1" ;;
		*) echo "DNS:$1" ;;
		esac
		;;
	*) echo "IP:$1" ;;
	esac
}

# issue NAME CN EXTENSIONS: a P-256 key and a certificate the CA signs.
issue() {
	if [ -e "$1.crt" ] || [ -e "$1.key" ]; then
		echo "$1.crt: exists, kept"
		return
	fi
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null
	openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
	printf '%s\n' "$3" >"$1.ext"
	openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 825 -sha256 \
		-extfile "$1.ext" -out "$1.crt" 2>/dev/null
	rm -f "$1.csr" "$1.ext"
	echo "$1.crt: $2, $(openssl x509 -in "$1.crt" -noout -fingerprint -sha256)"
}

if [ ! -e ca.crt ]; then
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key 2>/dev/null
	openssl req -x509 -new -key ca.key -sha256 -days 3650 -subj "/CN=Plateau recorder link CA" \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.crt
	echo "ca.crt: new CA"
fi
issue recorder "$host" "subjectAltName=$(san "$host")
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth"
for node in "$@"; do
	issue "plateau-$node" "$node" "keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
done
