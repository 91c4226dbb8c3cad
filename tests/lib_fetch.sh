# tests/lib_fetch.sh: helpers the fetcher's integration tests share (sourced
# after tests/lib.sh): counting raw topics, asking the fixture, one sync.

# raw_count TOPIC: prints "PAGES RECORDS MESSAGES" of a raw topic, counting
# records in each message at its records_path header; distinct pages are
# (run, page) pairs.
raw_count() {
	kcat -b "$SLUICE_BROKERS" -C -t "$1" -e -q -J 2>/dev/null |
		/usr/bin/python3 -c '
import json, sys
pages, records, msgs = set(), 0, 0
for line in sys.stdin:
    m = json.loads(line)
    h = m.get("headers") or []
    hd = dict(zip(h[0::2], h[1::2]))
    doc = json.loads(m["payload"])
    for part in hd["records_path"].lstrip("$").split("."):
        if part:
            doc = doc[part]
    records += len(doc)
    msgs += 1
    pages.add((hd["run"], hd["page"]))
print(len(pages), records, msgs)'
}

# raw_ids TOPIC FIELD: every record's FIELD (a dotted path), one a line
raw_ids() {
	kcat -b "$SLUICE_BROKERS" -C -t "$1" -e -q -J 2>/dev/null |
		/usr/bin/python3 -c '
import json, sys
field = sys.argv[1].split(".")
for line in sys.stdin:
    m = json.loads(line)
    h = m.get("headers") or []
    hd = dict(zip(h[0::2], h[1::2]))
    doc = json.loads(m["payload"])
    for part in hd["records_path"].lstrip("$").split("."):
        if part:
            doc = doc[part]
    for r in doc:
        for f in field:
            r = r[f]
        print(r)' "$2"
}

# fx_get PATH [CURL ARGS]: a fixture answer
fx_get() { local p=$1; shift; curl -sf "$@" "$SLUICE_FIXTURE_URL$p"; }

# fx_fault JSON: queues a fault on the fixture
fx_fault() { curl -sf -X POST -d "$1" "$SLUICE_FIXTURE_URL/_fixture/faults" >/dev/null; }

# fetch_once NAME DEF BASE: runs one sync, logs to $SL_LOGDIR/NAME.log
fetch_once() {
	: "${SL_LOGDIR:=$(sl_tmpdir)}"
	timeout 120 "$SLUICE_BIN" fetch "$2" --once --base-url "$3" \
		>"$SL_LOGDIR/$1.out" 2>"$SL_LOGDIR/$1.log"
}
