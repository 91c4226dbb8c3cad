#!/usr/bin/env bash
# test_faults_isolation_page: what one bad page costs the fetcher, against
# a small HTTP server of the test's own. An answer announcing a 2 GiB
# Content-Length is refused from its header at once, with no limit set
# (the default limit, inside the 256 MB worker budget, is named), not
# read up to the limit first (peak RSS 309 MB before). A page with a
# member name repeated (two "vulnerabilities" arrays) says so: a warning
# naming the page, and sluice_fetch_duplicate_members_total. A page with
# one record of invalid UTF-8 and one number out of range (1e400) is
# published with its other records; the two go to dlq.fetch with the
# reason and byte offsets, the sync completes (exit 0, bad_records=2): it
# failed, and failed again on every sync, before. A page whose envelope is
# not JSON still fails.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
D=$(sl_tmpdir)
raw_msgs() { kcat -b "$SLUICE_BROKERS" -C -t "$1" -e -q 2>/dev/null | grep -c .; }
KEV=$SLUICE_ROOT/data/kev/known_exploited_vulnerabilities.json
# 20 real KEV records: record 3 holds invalid UTF-8 in a string, record 11
# a number out of range (1e400); and the same page with invalid UTF-8 in
# the envelope (outside the records array)
/usr/bin/python3 - "$D" "$KEV" <<'PY'
import json, sys
d, kev = sys.argv[1], json.load(open(sys.argv[2]))
recs = [json.dumps(r) for r in kev["vulnerabilities"][:20]]
recs[3] = recs[3].replace('"vendorProject": "', '"vendorProject": "@BAD@', 1)
recs[11] = recs[11][:-1] + ', "score": 1e400}'
head = '{"title": "CISA KEV", "count": 20, "vulnerabilities": ['
page = (head + ", ".join(recs) + "]}").encode()
page = page.replace(b"@BAD@", b"\xff\xfe")
open(d + "/badrec.json", "wb").write(page)
open(d + "/badenv.json", "wb").write(page.replace(b"CISA KEV", b"CISA \xff KEV", 1))
open(d + "/offsets", "w").write("%d %d\n" % (page.index(b"\xff"), page.index(b"1e400")))
PY

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
        if self.path.startswith("/badrec") or self.path.startswith("/badenv"):
            body = open(d + self.path.split("?")[0] + ".json", "rb").read()
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

# one bad record (invalid UTF-8, 1e400) does not stop the source: the
# page's 18 good records are published, the 2 bad ones go to dlq.fetch
# with the reason and their byte offsets, the sync completes and says so
for name in badrec badenv; do
	cat >"$D/$name.json.src" <<JSON
{"name": "$name", "base_url": "$base", "request": {"path": "/$name"},
 "records": "\$.vulnerabilities",
 "retry": {"base_ms": 50, "max_ms": 100, "max_attempts": 2}}
JSON
	mv "$D/$name.json.src" "$D/src_$name.json"
done
read -r utf8_at num_at <"$D/offsets"
timeout 60 "$SLUICE_BIN" fetch "$D/src_badrec.json" --once >"$D/badrec.out" 2>"$D/badrec.log"
check_eq "a page with 2 bad records syncs (exit 0)" "$?" 0
check "the sync says so (bad_records=2)" grep -q 'event=sync_done source=badrec .*bad_records=2' "$D/badrec.log"
check_eq "two warnings, one per record" "$(grep -c 'level=warning.*event=record_dead_lettered source=badrec' "$D/badrec.log")" 2
check_eq "tried once: nothing to retry" "$(grep -c 'event=retry' "$D/badrec.log")" 0
kcat -b "$SLUICE_BROKERS" -C -t raw.badrec -e -q 2>/dev/null >"$D/raw.badrec"
check_eq "the page is published" "$(grep -c . "$D/raw.badrec")" 1
"$SLUICE_BIN" check "$SLUICE_ROOT/transformers/maps/kev.json" "$D/raw.badrec" \
	2>/dev/null >"$D/rows"
check_eq "its 18 good records map to rows" \
	"$(jq -r 'select(.table == "known_exploited_vulnerability") | .key.cve_id' "$D/rows" | sort -u | wc -l)" 18
kcat -b "$SLUICE_BROKERS" -C -t dlq.fetch -e -q 2>/dev/null >"$D/dlq"
check_eq "2 dead letters on dlq.fetch" "$(grep -c . "$D/dlq")" 2
check "the UTF-8 one: record 3, its reason and the offending byte ($utf8_at)" \
	grep -q "record 3 of page 0 (bytes [0-9]*-[0-9]*) is not JSON: invalid UTF-8 in string at byte $utf8_at" "$D/dlq"
check "the 1e400 one: record 11, real number overflow at byte $num_at" \
	grep -q "record 11 of page 0 (bytes [0-9]*-[0-9]*) is not JSON: real number overflow at byte $num_at" "$D/dlq"
check_eq "each dead letter holds its record's bytes" \
	"$(jq -r '.page_base64' "$D/dlq" | while read -r b; do base64 -d <<<"$b" | head -c 14; echo; done | sort -u)" '{"cveID": "CVE'
timeout 60 "$SLUICE_BIN" fetch "$D/src_badenv.json" --once >"$D/badenv.out" 2>"$D/badenv.log"
check_eq "a page whose envelope is not JSON still fails (exit 1)" "$?" 1
check "... as not JSON" grep -q 'body is not JSON (invalid UTF-8 in string' "$D/badenv.log"
check_eq "... nothing published" "$(raw_msgs raw.badenv)" 0
[ -n "${SLUICE_FIGURES:-}" ] && echo "bad=isolation_pages tried=5 crashes=0" >>"$SLUICE_FIGURES"
sl_done
