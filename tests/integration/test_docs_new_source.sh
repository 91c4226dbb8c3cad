#!/usr/bin/env bash
# test_docs_new_source: docs/new-source.md, the tutorial, works as written.
# Every file it shows is the file in docs/new-source/ byte for byte, and
# its ```sh blocks, run in order from the repository's root on those files
# (sluice on PATH, a broker, a database, the sample page served over HTTP),
# take the feed from nothing to its rows in PostgreSQL.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
cd "$SLUICE_ROOT" || exit 1
D=$(sl_tmpdir)
SL_LOGDIR=$D
doc=docs/new-source.md

# the files the page shows (a `docs/new-source/...` line, then its block)
# are the files, and the ```sh blocks become the script to run
python3 - "$doc" "$D/steps.sh" <<'PY'
import os, re, sys
text = open(sys.argv[1]).read()
def check(what, cond, detail=""):
    print(("ok - " if cond else "not ok - ") + what + ("" if cond else ": " + str(detail)))
blocks = list(re.finditer(r"^```(\w*)\n(.*?)^```$", text, re.M | re.S))
shown = {}
for b in blocks:
    before = text[:b.start()].rstrip().split("\n")[-1]
    m = re.fullmatch(r"`(docs/new-source/[^`]+)`:", before)
    if m:
        shown[m.group(1)] = b.group(2)
files = sorted(os.path.join(d, f) for d, _, fs in os.walk("docs/new-source") for f in fs)
for f in ("docs/new-source/sources/feodo.json", "docs/new-source/maps/feodo.json",
          "docs/new-source/tables/c2_server.sql"):
    check("the page shows %s" % f, f in shown)
for f, body in sorted(shown.items()):
    check("%s on the page is the file" % f, os.path.exists(f) and open(f).read() == body)
named = set(re.findall(r"docs/new-source/[A-Za-z0-9_./-]+[A-Za-z0-9]", text))
missing = sorted(n for n in named if not os.path.exists(n))
check("every docs/new-source path the page names exists", not missing, missing)
unused = sorted(f for f in files if f not in named)
check("every file in docs/new-source/ is on the page", not unused, unused)
steps = [b.group(2) for b in blocks if b.group(1) == "sh"]
check("the page has its commands to run (%d blocks)" % len(steps), len(steps) >= 8)
with open(sys.argv[2], "w") as out:
    out.write("set -e\n")
    for i, s in enumerate(steps):
        out.write("echo '### step %d' >&2\n%s\n" % (i + 1, s))
PY

# the environment the page asks for (its ```shell blocks)
mkdir -p "$D/bin"
ln -s "$SLUICE_BIN" "$D/bin/sluice"
new_db tutorial || { not_ok "database"; exit 1; }
broker_start || { not_ok "broker"; exit 1; }
python3 -u -m http.server 0 --bind 127.0.0.1 --directory docs/new-source/api \
	>"$D/http.out" 2>"$D/http.log" &
SL_PIDS+=($!)
wait_for 10 grep -q 'port [0-9]' "$D/http.out" || { not_ok "sample server"; exit 1; }
FEED_URL=http://127.0.0.1:$(grep -oE 'port [0-9]+' "$D/http.out" | grep -oE '[0-9]+')
export FEED_URL

PATH=$D/bin:$PATH timeout 150 bash "$D/steps.sh" >"$D/steps.out" 2>"$D/steps.err"
rc=$?
check_eq "the tutorial's commands run to the end, exit 0" "$rc" 0
[ "$rc" -eq 0 ] || { tail -20 "$D/steps.err"; grep -m3 -E 'ERROR|runtime error' "$D"/*.log; }
check "lint says both files are ok" grep -qx 'docs/new-source/maps/feodo.json: ok' "$D/steps.out"
check "check summarises as the page says" grep -q '5 records, 4 rows, 1 dead letters' "$D/steps.err"
check "check --expect matches the pinned outputs" grep -q 'check: matches docs/new-source/expected/feodo.jsonl' "$D/steps.err"
check_eq "lint --topics prints the topics the page says" \
	"$(grep -E '^(raw|mapped)\.' "$D/steps.out" | sort -u | tr '\n' ' ')" "mapped.c2_server raw.feodo "
# the rows, as the page shows them
python3 - "$doc" "$D/steps.out" <<'PY'
import re, sys
doc, out = open(sys.argv[1]).read(), open(sys.argv[2]).read()
strip = lambda t: "\n".join(l.rstrip() for l in t.split("\n"))  # psql pads the header
m = re.search(r"^```\n(  ip_address .*?\(4 rows\)\n)```$", doc, re.M | re.S)
ok = m is not None and strip(m.group(1)) in strip(out)
print(("ok - " if ok else "not ok - ") + "the rows are the ones the page shows")
PY
check_eq "the table holds the 4 servers" "$(q 'SELECT count(*) FROM c2_server')" 4
check_eq "a row's lineage names raw.feodo and the map" \
	"$(q "SELECT _lineage->>'topic', _lineage->>'map' FROM c2_server WHERE port = 2222")" "raw.feodo|feodo"
check "dlq list shows the bad address with its reason" grep -q 'bad inet' "$D/steps.out"
sl_done
