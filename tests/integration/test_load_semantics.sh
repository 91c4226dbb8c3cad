#!/usr/bin/env bash
# test_load_semantics: duplicate keys inside one batch (the last, or the
# newest version, wins; no "cannot affect row a second time"), out-of-order
# versions across batches (an older NVD-like record never overwrites a newer
# one), deletes, and replace of a child collection (vanished children are
# deleted, the rest upserted; an empty set alone in its batch deletes them
# all).
source "$SLUICE_ROOT/tests/lib.sh"
source "$SLUICE_ROOT/loaders/testdata/load_lib.sh"
trap sl_cleanup EXIT

broker_start --topic mapped.t_cve:1 --topic mapped.t_ref:1 --topic dlq.load:1 || exit 1
new_db load_semantics || exit 1
D=$(sl_tmpdir)
load_schemas "$D/schemas" "CREATE TABLE IF NOT EXISTS t_cve (
	cve_id text NOT NULL, descr text, last_modified timestamptz,
	_lineage jsonb, _loaded_at timestamptz);
CREATE UNIQUE INDEX IF NOT EXISTS t_cve_key ON t_cve (cve_id);
CREATE TABLE IF NOT EXISTS t_ref (
	cve_id text NOT NULL, url text NOT NULL, source text,
	_lineage jsonb, _loaded_at timestamptz,
	PRIMARY KEY (cve_id, url));"

# mk FILE: python lines (cve, descr, lastmod) -> upsert envelopes
mk() {
	python3 -c '
import json, sys
out = open(sys.argv[1], "w")
for line in sys.stdin:
    parts = line.rstrip("\n").split("|")
    if parts[0] == "DEL":
        cve, ver = parts[1], parts[2]
        env = {"v": 1, "table": "t_cve", "op": "delete", "key": {"cve_id": cve}}
        if ver:
            env["version"] = ver
            env["version_column"] = "last_modified"
    else:
        cve, descr, ver = parts
        env = {"v": 1, "table": "t_cve", "op": "upsert", "key": {"cve_id": cve},
               "row": {"cve_id": cve, "descr": descr, "last_modified": ver},
               "version": ver, "version_column": "last_modified",
               "lineage": {"source": "nvd"}}
    out.write(cve + "\t" + json.dumps(env) + "\n")
' "$1"
}

# Batch 1 (one batch: linger is long, all produced before the loader
# starts): duplicates inside the batch.
mk "$D/b1.tsv" <<'L'
CVE-A|a1|2024-01-01T00:00:00Z
CVE-A|a2|2024-01-02T00:00:00Z
CVE-A|a3|2024-01-03T00:00:00Z
CVE-B|b-new|2024-05-01T00:00:00Z
CVE-B|b-old|2024-04-01T00:00:00Z
CVE-C|c1|2024-01-01T00:00:00Z
CVE-D|d1|2024-01-01T00:00:00Z
L
produce mapped.t_cve "$D/b1.tsv"
bg load "$SLUICE_BIN" load --schemas "$D/schemas" --linger-ms 1500
LOADER=$LAST_PID
check "batch with duplicate keys lands" wait_q 30 "SELECT count(*) FROM t_cve" 4
check_eq "last by offset wins within a batch" "$(q "SELECT descr FROM t_cve WHERE cve_id = 'CVE-A'")" "a3"
check_eq "newest version wins within a batch (older arrived later)" "$(q "SELECT descr FROM t_cve WHERE cve_id = 'CVE-B'")" "b-new"
check_eq "report: 4 inserted, 3 superseded, in one batch" \
	"$(q "SELECT count(*) || ':' || sum(inserted) || ':' || sum(superseded) FROM sluice.load_batches")" "1:4:3"
grep -q "cannot affect row a second time" "$SL_LOGDIR/load.log" &&
	not_ok "no cardinality error" || ok "no cardinality error"

# Batch 2: an older record for CVE-A (out of order, e.g. another
# partition), a newer one for CVE-C, a same-version change for CVE-D.
mk "$D/b2.tsv" <<'L'
CVE-A|a-stale|2023-12-31T00:00:00Z
CVE-C|c2|2024-02-01T00:00:00Z
CVE-D|d1|2024-01-01T00:00:00Z
L
produce mapped.t_cve "$D/b2.tsv"
check "batch 2 reported" wait_q 20 "SELECT sum(messages) FROM sluice.load_batches" 10
check_eq "an older version never overwrites a newer row" "$(q "SELECT descr FROM t_cve WHERE cve_id = 'CVE-A'")" "a3"
check_eq "a newer version updates" "$(q "SELECT descr FROM t_cve WHERE cve_id = 'CVE-C'")" "c2"
check_eq "batch 2 counts: updated 1, unchanged 2" \
	"$(q "SELECT inserted || '/' || updated || '/' || unchanged FROM sluice.load_batches ORDER BY id DESC LIMIT 1")" "0/1/2"

# Deletes: CVE-D unconditionally; CVE-C with a version older than the
# row's (kept).
mk "$D/b3.tsv" <<'L'
DEL|CVE-D|
DEL|CVE-C|2024-01-15T00:00:00Z
L
produce mapped.t_cve "$D/b3.tsv"
check "delete batch reported" wait_q 20 "SELECT sum(messages) FROM sluice.load_batches" 12
check_eq "delete removes the row" "$(q "SELECT count(*) FROM t_cve WHERE cve_id = 'CVE-D'")" "0"
check_eq "an older delete does not remove a newer row" "$(q "SELECT count(*) FROM t_cve WHERE cve_id = 'CVE-C'")" "1"
check_eq "report counts the delete" "$(q "SELECT deleted FROM sluice.load_batches ORDER BY id DESC LIMIT 1")" "1"

# Replace: the children of CVE-A are {u1,u2,u3}, then {u2,u3'} (u3
# changed, u1 vanished), then an empty set for CVE-B after {v1}.
rep() { # rep CVE URL:SOURCE...
	local cve=$1; shift
	python3 -c '
import json, sys
cve = sys.argv[1]
rows = [{"cve_id": cve, "url": a.split(":", 1)[0], "source": a.split(":", 1)[1]} for a in sys.argv[2:]]
env = {"v": 1, "table": "t_ref", "op": "replace", "key": {"cve_id": cve}, "rows": rows, "lineage": {"source": "nvd"}}
print(cve + "\t" + json.dumps(env))
' "$cve" "$@"
}
{ rep CVE-A u1:nvd u2:nvd u3:nvd; rep CVE-B v1:x; } >"$D/r1.tsv"
produce mapped.t_ref "$D/r1.tsv"
check "first child set lands" wait_q 20 "SELECT count(*) FROM t_ref" 4
{ rep CVE-A u2:nvd u3:vendor; rep CVE-B; } >"$D/r2.tsv"
produce mapped.t_ref "$D/r2.tsv"
check "replace removes the vanished children" wait_q 20 \
	"SELECT string_agg(cve_id || ' ' || url || ' ' || source, ',' ORDER BY cve_id, url) FROM t_ref" \
	"CVE-A u2 nvd,CVE-A u3 vendor"
check_eq "replace report: deleted 2, updated 1, unchanged 1" \
	"$(q "SELECT deleted || '/' || updated || '/' || unchanged FROM sluice.load_batches WHERE table_name = 't_ref' ORDER BY id DESC LIMIT 1")" "2/1/1"
# A batch whose only replace has an empty set: every child of the parent
# goes (the staging table must still carry the child index's columns; it
# did not, and the envelope was dead-lettered as "column s.url does not
# exist" whenever a batch held only empty replaces, e.g. under Kafka faults).
rep CVE-A >"$D/r3.tsv"
produce mapped.t_ref "$D/r3.tsv"
check "a batch of one empty replace is reported" wait_q 20 \
	"SELECT sum(messages) FROM sluice.load_batches WHERE table_name = 't_ref'" 5
check_eq "an empty replace alone in its batch removes every child" \
	"$(q "SELECT count(*) FROM t_ref WHERE cve_id = 'CVE-A'")" "0"
check_eq "empty replace report: deleted 2, rejected 0" \
	"$(q "SELECT deleted || '/' || rejected FROM sluice.load_batches WHERE table_name = 't_ref' ORDER BY id DESC LIMIT 1")" "2/0"
check_eq "nothing dead-lettered" "$(consume_all dlq.load | wc -l)" "0"
stop_pid "$LOADER"
sl_done
