#!/usr/bin/env bash
# test_ops_dlq_transform: records a map cannot convert go to dlq.transform;
# after the map is fixed, `sluice dlq replay --topic dlq.transform` puts
# each back as a one-record page of the original shape and headers, the
# fixed transformer maps it and the loader lands it once; a second replay
# publishes nothing.
source "$SLUICE_ROOT/tests/lib.sh"
source "$SLUICE_ROOT/loaders/testdata/load_lib.sh"
trap sl_cleanup EXIT

broker_start --topic raw.tx:1 --topic mapped.t_tx:1 --topic dlq.transform:1 \
	--topic dlq.load:1 || exit 1
new_db ops_dlq_tx || exit 1
D=$(sl_tmpdir)
load_schemas "$D/schemas" "CREATE TABLE IF NOT EXISTS t_tx (
	id integer PRIMARY KEY, score text, _lineage jsonb, _loaded_at timestamptz);"
map() { # map FILE SCORE_TYPE
	cat >"$1" <<JSON
{"name": "tx", "source": "tx", "records": "\$.items", "table": "t_tx",
 "coalesce": ["id"],
 "fields": {"id": {"path": "id", "type": "integer", "required": true},
            "score": {"path": "score", "type": "$2"}}}
JSON
}
map "$D/broken.json" integer
map "$D/fixed.json" text
python3 - "$D/page.json" <<'PY'
import json, sys
items = [{"id": i, "score": "high" if i in (2, 5, 7) else str(i)} for i in range(10)]
json.dump({"meta": {"total": 10}, "items": items}, open(sys.argv[1], "w"))
PY
kcat -P -b "$SLUICE_BROKERS" -t raw.tx -k tx:r1:0:0 -H source=tx -H run=r1 \
	-H page=0 -H chunk=0 -H 'records_path=$.items' -H fetched_at=2026-01-01T00:00:00.000Z \
	"$D/page.json" 2>/dev/null
bg load "$SLUICE_BIN" load --schemas "$D/schemas" --linger-ms 300
bg transform1 "$SLUICE_BIN" transform "$D/broken.json"
TX=$LAST_PID
check "the 7 convertible records land" wait_q 40 "SELECT count(*) FROM t_tx" 7
dlq_lines() { consume_all dlq.transform | wc -l; }
check "3 dead letters in dlq.transform" wait_out 20 -eq 3 dlq_lines
"$SLUICE_BIN" dlq list --topic dlq.transform >"$D/list"
check_eq "dlq list names map, field and raw lineage" \
	"$(grep -c 'stage=transform map=tx table=t_tx field=score .*raw=raw.tx:0:0 record=[257] ' "$D/list")" 3
stop_pid "$TX"

bg transform2 "$SLUICE_BIN" transform "$D/fixed.json"
sleep 2
"$SLUICE_BIN" dlq replay --topic dlq.transform --all >"$D/r1" 2>"$D/r1.err"
check_eq "replay exits 0" "$?" 0
check_eq "3 letters re-published to raw.tx" "$(grep -c '^replayed dlq.transform:0:[0-9]* -> raw.tx' "$D/r1")" 3
check "the fixed records land" wait_q 40 "SELECT count(*) FROM t_tx" 10
check_eq "with the values the fixed map gives" \
	"$(q "SELECT string_agg(id || '=' || score, ',' ORDER BY id) FROM t_tx WHERE id IN (2, 5, 7)")" "2=high,5=high,7=high"
kcat -C -b "$SLUICE_BROKERS" -t raw.tx -o 1 -e -q -f '%h|%s\n' 2>/dev/null >"$D/raw"
check_eq "each replayed page holds only its record, in the page's shape" \
	"$(cut -d'|' -f2- "$D/raw" | python3 -c '
import json, sys
print(sorted(json.loads(l)["items"][0]["id"] for l in sys.stdin if json.loads(l)["meta"] == {"total": 10} and len(json.loads(l)["items"]) == 1))')" "[2, 5, 7]"
check_eq "and keeps the original headers, plus sluice_dlq" \
	"$(grep -c 'source=tx,run=r1,.*records_path=\$.items.*sluice_dlq=dlq.transform:0:' "$D/raw")" 3

"$SLUICE_BIN" dlq replay --topic dlq.transform --all >"$D/r2" 2>"$D/r2.err"
check_eq "a second replay re-publishes nothing" "$(grep -c '^replayed ' "$D/r2")" 0
sleep 3
check_eq "raw.tx holds the page and 3 replays, no more" "$(consume_all raw.tx | wc -l)" 4
check_eq "10 rows inserted once each" \
	"$(q "SELECT sum(inserted) FROM sluice.load_batches")/$(q "SELECT count(*) FROM t_tx")" "10/10"
check_eq "dlq.transform gained no new letter" "$(consume_all dlq.transform | wc -l)" 3
sl_done
