#!/usr/bin/env bash
# TLS verification is on by default: against an HTTPS server with a
# self-signed certificate the fetcher refuses at once (one attempt, counted
# by the server; the error names the source, the host, the problem and the
# fixes), as it does a certificate for another host name, while a refused
# connection is still retried. It succeeds when tls.ca_file trusts that
# certificate, and when a definition says "tls": {"verify": false} it
# succeeds and warns at start. A redirect to file:// is not followed, nor
# retried.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
D=$(sl_tmpdir)
SL_LOGDIR=$D
KEV=$SLUICE_ROOT/data/kev/known_exploited_vulnerabilities.json

broker_start || { not_ok "broker"; exit 1; }
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
	-addext "subjectAltName=IP:127.0.0.1" -keyout "$D/key.pem" \
	-out "$D/cert.pem" >/dev/null 2>&1 || { not_ok "openssl: a test certificate"; exit 1; }
mkdir -p "$D/www"
cp "$KEV" "$D/www/kev.json"
cat >"$D/https.py" <<'PY'
import http.server, ssl, sys, os
os.chdir(sys.argv[1])
class H(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", "file:///etc/passwd")
            self.end_headers()
            return
        super().do_GET()
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
class S(http.server.HTTPServer):
    # one line per TCP connection, before the handshake: the attempts a
    # client made, whether its TLS handshake then failed or not
    def get_request(self):
        sock, addr = self.socket.accept()
        with open(sys.argv[4], "a") as f:
            f.write("connection\n")
        return ctx.wrap_socket(sock, server_side=True), addr
srv = S(("127.0.0.1", 0), H)
print(srv.server_address[1], flush=True)
srv.serve_forever()
PY
: >"$D/conns"
/usr/bin/python3 "$D/https.py" "$D/www" "$D/cert.pem" "$D/key.pem" "$D/conns" \
	>"$D/port" 2>"$D/https.log" &
SL_PIDS+=($!)
wait_file "$D/port" 10 || { not_ok "https server"; exit 1; }
base=https://127.0.0.1:$(head -1 "$D/port")
want=$(jq '.vulnerabilities | length' "$KEV")

def() { # NAME PATH EXTRA [BASE_URL]: up to 4 attempts per request
	cat >"$D/$1.json" <<JSON
{"name": "$1", "base_url": "${4:-$base}", "request": {"path": "$2"},
 "records": "\$.vulnerabilities",
 "retry": {"base_ms": 50, "max_ms": 100, "max_attempts": 4}$3}
JSON
}
# run NAME: fetch --once; conns_NAME is the server's connections it made
run() {
	local before rc
	before=$(wc -l <"$D/conns")
	timeout 60 "$SLUICE_BIN" fetch "$D/$1.json" --once >"$D/$1.out" 2>"$D/$1.log"
	rc=$?
	eval "conns_$1=$(($(wc -l <"$D/conns") - before))"
	return $rc
}
retries() { grep -c 'event=retry ' "$D/$1.log"; }
# said NAME TEXT...: the sync_failed line holds every TEXT
said() {
	local name=$1 line t; shift
	line=$(grep -m1 event=sync_failed "$D/$name.log")
	for t in "$@"; do
		case $line in *"$t"*) ;; *) not_ok "$name: the error lacks '$t': $line"; return ;; esac
	done
	ok "$name: the error names $*"
}
records() {
	kcat -b "$SLUICE_BROKERS" -C -t "raw.$1" -e -q -J 2>/dev/null |
		/usr/bin/python3 -c 'import json,sys; print(sum(len(json.loads(json.loads(l)["payload"])["vulnerabilities"]) for l in sys.stdin))'
}

# A certificate failure is permanent: one attempt, not max_attempts, and
# an error that says which source, which host, why and how to fix it.
def tls_default /kev.json ""
run tls_default
check_eq "default: a self-signed server is refused (exit 1)" "$?" 1
said tls_default "source tls_default" "certificate of ${base#https://}" \
	"self-signed" '\"ca_file\"' '\"verify\": false'
check_eq "default: one attempt, no retry (retries logged)" "$(retries tls_default)" 0
check_eq "default: one attempt, no retry (connections seen by the server)" \
	"$conns_tls_default" 1
check_eq "default: nothing published" "$(records tls_default)" 0
check "default: no tls warning" bash -c "! grep -q event=tls_verify_off '$D/tls_default.log'"

def tls_ca /kev.json ", \"tls\": {\"ca_file\": \"$D/cert.pem\"}"
run tls_ca
check_eq "ca_file: verified against the given CA (exit 0)" "$?" 0
check_eq "ca_file: every record" "$(records tls_ca)" "$want"

# The CA is trusted but the certificate names 127.0.0.1, not localhost.
def tls_host /kev.json ", \"tls\": {\"ca_file\": \"$D/cert.pem\"}" \
	"https://localhost:${base##*:}"
run tls_host
check_eq "host mismatch: refused (exit 1)" "$?" 1
said tls_host "source tls_host" "certificate of localhost:${base##*:}" \
	"does not name this host" '\"ca_file\"'
check_eq "host mismatch: no retry (retries logged)" "$(retries tls_host)" 0
check_eq "host mismatch: no retry (connections seen by the server)" \
	"$conns_tls_host" 1

# ...while a transient fault (nothing listens) is still retried
port_closed=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
def tls_refused /kev.json "" "https://127.0.0.1:$port_closed"
run tls_refused
check_eq "refused connection: fails (exit 1)" "$?" 1
check_eq "refused connection: retried up to max_attempts (3 retries)" \
	"$(retries tls_refused)" 3

def tls_off /kev.json ', "tls": {"verify": false}'
run tls_off
check_eq "verify false: fetched (exit 0)" "$?" 0
check_eq "verify false: every record" "$(records tls_off)" "$want"
grep -q 'level=warning.*event=tls_verify_off' "$D/tls_off.log" &&
	ok "verify false: a warning at start" || not_ok "verify false: no warning"

def tls_redirect /redirect ', "tls": {"verify": false}'
run tls_redirect
check_eq "a redirect to file:// fails the sync" "$?" 1
check_eq "a redirect to file:// is not retried" "$(retries tls_redirect)" 0
check_eq "a redirect to file:// publishes nothing" "$(records tls_redirect)" 0
check "a redirect to file:// never reads the file" bash -c "! grep -rq 'root:x:0:0' '$D'/tls_redirect.*"
"$SLUICE_BIN" lint "$D/tls_off.json" >/dev/null 2>&1
check_eq "lint accepts tls.verify" "$?" 0
def tls_bad /kev.json ', "tls": {"verify": "no"}'
out=$("$SLUICE_BIN" lint "$D/tls_bad.json" 2>&1)
check_eq "lint refuses a non-boolean tls.verify" "$?" 2
case $out in *"tls.verify: expected boolean"*) ok "lint names tls.verify" ;;
*) not_ok "lint: $out" ;; esac
sl_done
