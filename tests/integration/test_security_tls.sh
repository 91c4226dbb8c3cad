#!/usr/bin/env bash
# TLS verification is on by default: against an HTTPS server with a
# self-signed certificate the fetcher refuses (and names the certificate
# problem), succeeds when tls.ca_file trusts that certificate, and when a
# definition says "tls": {"verify": false} it succeeds and warns at start.
# A redirect to file:// is not followed.
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
srv = http.server.HTTPServer(("127.0.0.1", 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
PY
/usr/bin/python3 "$D/https.py" "$D/www" "$D/cert.pem" "$D/key.pem" >"$D/port" 2>"$D/https.log" &
SL_PIDS+=($!)
wait_file "$D/port" 10 || { not_ok "https server"; exit 1; }
base=https://127.0.0.1:$(head -1 "$D/port")
want=$(jq '.vulnerabilities | length' "$KEV")

def() { # NAME PATH EXTRA
	cat >"$D/$1.json" <<JSON
{"name": "$1", "base_url": "$base", "request": {"path": "$2"},
 "records": "\$.vulnerabilities",
 "retry": {"base_ms": 50, "max_ms": 100, "max_attempts": 2}$3}
JSON
}
run() { timeout 60 "$SLUICE_BIN" fetch "$D/$1.json" --once >"$D/$1.out" 2>"$D/$1.log"; }
records() {
	kcat -b "$SLUICE_BROKERS" -C -t "raw.$1" -e -q -J 2>/dev/null |
		/usr/bin/python3 -c 'import json,sys; print(sum(len(json.loads(json.loads(l)["payload"])["vulnerabilities"]) for l in sys.stdin))'
}

def tls_default /kev.json ""
run tls_default
check_eq "default: a self-signed server is refused (exit 1)" "$?" 1
grep -qi 'certificate' "$D/tls_default.log" && ok "default: the error names the certificate" ||
	not_ok "default: $(grep -m1 sync_failed "$D/tls_default.log")"
check_eq "default: nothing published" "$(records tls_default)" 0
check "default: no tls warning" bash -c "! grep -q event=tls_verify_off '$D/tls_default.log'"

def tls_ca /kev.json ", \"tls\": {\"ca_file\": \"$D/cert.pem\"}"
run tls_ca
check_eq "ca_file: verified against the given CA (exit 0)" "$?" 0
check_eq "ca_file: every record" "$(records tls_ca)" "$want"

def tls_off /kev.json ', "tls": {"verify": false}'
run tls_off
check_eq "verify false: fetched (exit 0)" "$?" 0
check_eq "verify false: every record" "$(records tls_off)" "$want"
grep -q 'level=warning.*event=tls_verify_off' "$D/tls_off.log" &&
	ok "verify false: a warning at start" || not_ok "verify false: no warning"

def tls_redirect /redirect ', "tls": {"verify": false}'
run tls_redirect
check_eq "a redirect to file:// fails the sync" "$?" 1
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
