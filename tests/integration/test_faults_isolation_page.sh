#!/usr/bin/env bash
# test_faults_isolation_page: what one bad page costs the fetcher, against
# a small HTTP server of the test's own. An answer announcing a 2 GiB
# Content-Length is refused from its header at once, with no limit set
# (the default limit, inside the 256 MB worker budget, is named), not
# read up to the limit first (peak RSS 309 MB before). A page with a
# member name repeated (two "vulnerabilities" arrays) says so: a warning
# naming the page, and sluice_fetch_duplicate_members_total.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
D=$(sl_tmpdir)
raw_msgs() { kcat -b "$SLUICE_BROKERS" -C -t "$1" -e -q 2>/dev/null | grep -c .; }

broker_start || { not_ok "broker"; exit 1; }

# the server: /huge announces 2 GiB, sends 64 KiB, then holds the
# connection 30 s; it logs how many body bytes it got out
/usr/bin/python3 - "$D" >"$D/srv.out" 2>"$D/srv.log" <<'PY' &
import http.server, socketserver, sys, time
d = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def do_GET(self):
        if self.path.startswith("/huge"):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(2 << 30))
            self.end_headers()
            sent = 0
            try:
                self.wfile.write(b'{"vulnerabilities": [' + b" " * 65536)
                self.wfile.flush()
                sent = 65536
                time.sleep(30)
            except Exception:
                pass
            open(d + "/huge.sent", "a").write("%d\n" % sent)
            return
        if self.path.startswith("/dup"):
            # two "vulnerabilities" arrays: JSON keeps the second
            body = (b'{"count": 3, "vulnerabilities": [{"cveID": "CVE-1"}, '
                    b'{"cveID": "CVE-2"}], "vulnerabilities": [{"cveID": "CVE-3"}]}')
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(404)
        self.end_headers()
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
s = S(("127.0.0.1", 0), H)
print("port", s.server_address[1], flush=True)
s.serve_forever()
PY
SL_PIDS+=($!)
wait_for 10 grep -q '^port' "$D/srv.out"
base=http://127.0.0.1:$(awk '/^port/ {print $2}' "$D/srv.out")

cat >"$D/huge.json" <<JSON
{"name": "huge", "base_url": "$base", "request": {"path": "/huge"},
 "records": "\$.vulnerabilities",
 "retry": {"base_ms": 50, "max_ms": 100, "max_attempts": 3}}
JSON
t0=$(date +%s%N)
timeout 60 "$SLUICE_BIN" fetch "$D/huge.json" --once >"$D/huge.out" 2>"$D/huge.log"
rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
check_eq "a 2 GiB announcement fails the sync (exit 1)" "$rc" 1
check "... at once from the header (${ms} ms, the server holds 30 s)" test "$ms" -lt 15000
check "... naming the announcement and the default limit (64 MiB)" \
	grep -q 'page larger than limits.max_page_bytes (67108864 bytes): Content-Length announces 2147483648' "$D/huge.log"
check_eq "... tried once: it will be as large next time" \
	"$(grep -c 'event=retry' "$D/huge.log")" 0
check_eq "nothing published" "$(raw_msgs raw.huge)" 0

# a member name repeated in one object: said (warning naming the page and
# where), not silently last-wins
cat >"$D/dup.json" <<JSON
{"name": "dup", "base_url": "$base", "request": {"path": "/dup"},
 "records": "\$.vulnerabilities"}
JSON
timeout 60 "$SLUICE_BIN" fetch "$D/dup.json" --once >"$D/dup.out" 2>"$D/dup.log"
check_eq "a page with a repeated member still syncs (exit 0)" "$?" 0
check "a warning names the source, the page and the repeated name" \
	grep -q 'level=warning.*event=duplicate_members source=dup page=0 .*vulnerabilities' "$D/dup.log"
check_eq "the page is published once" "$(raw_msgs raw.dup)" 1
sl_done
