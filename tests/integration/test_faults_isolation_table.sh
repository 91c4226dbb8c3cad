#!/usr/bin/env bash
# test_faults_isolation_table: one table the loader cannot write does not
# stall the others. One loader takes every mapped.* topic (no --topics):
# the real KEV catalog's rows and CWEs, a copy of the KEV map whose table
# (kev_shadow) does not exist, and a table whose unique index is not on the
# envelopes' key (t_wrongidx). Every KEV row lands while the two are parked
# (partitions paused; the start names kev_shadow first; /readyz, the
# sluice_load_table_parked gauge and sluice status name them and why);
# creating the table and the index lands their rows too, on the next look.
# Before the parking, the loader rolled every table back forever.
source "$SLUICE_ROOT/tests/lib.sh"
source "$SLUICE_ROOT/loaders/testdata/load_lib.sh"
trap sl_cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
D=$(sl_tmpdir)
KEV=$SLUICE_ROOT/data/kev/known_exploited_vulnerabilities.json
KT=known_exploited_vulnerability

new_db iso_table || { not_ok "database"; exit 1; }
broker_start --topic mapped.$KT:4 --topic mapped.${KT}_cwe:4 \
	--topic mapped.kev_shadow:4 --topic mapped.t_wrongidx:2 \
	--topic dlq.load:1 || { not_ok "broker"; exit 1; }

# the envelopes: KEV's as the bundled map makes them, kev_shadow's from the
# same map with its table renamed (a map that lints clean)
jq '.table = "kev_shadow" | del(.children)' \
	"$SLUICE_ROOT/transformers/maps/kev.json" >"$D/shadow.json"
"$SLUICE_BIN" lint "$D/shadow.json" >/dev/null 2>&1
check_eq "the map naming a missing table lints clean" "$?" 0
"$SLUICE_BIN" check "$SLUICE_ROOT/transformers/maps/kev.json" "$KEV" \
	>"$D/kev.jsonl" 2>/dev/null
"$SLUICE_BIN" check "$D/shadow.json" "$KEV" >"$D/shadow.jsonl" 2>/dev/null
want=$(jq -r "select(.table == \"$KT\") | .key.cve_id" "$D/kev.jsonl" | sort -u | wc -l)
want_cwe_msgs=$(jq -c "select(.table == \"${KT}_cwe\")" "$D/kev.jsonl" | wc -l)
nshadow=$(wc -l <"$D/shadow.jsonl")
check_eq "KEV envelopes for all 1404 records" "$want" 1404
check "kev_shadow envelopes ($nshadow)" test "$nshadow" -ge 1404
python3 - "$D" <<'PY'
import json, sys
d = sys.argv[1]
with open(d + "/wrong.jsonl", "w") as f:
    for i in range(50):
        f.write(json.dumps({"v": 1, "table": "t_wrongidx", "op": "upsert",
                            "key": {"id": "k%02d" % i},
                            "row": {"id": "k%02d" % i, "name": "n%02d" % i},
                            "lineage": {"source": "test", "record": i}}) + "\n")
PY
psql -qX -c "CREATE TABLE t_wrongidx (id text NOT NULL, name text UNIQUE)" ||
	not_ok "t_wrongidx"
for t in $KT ${KT}_cwe; do
	jq -c "select(.table == \"$t\")" "$D/kev.jsonl" >"$D/$t.jsonl"
	kcat -P -b "$SLUICE_BROKERS" -t "mapped.$t" -z lz4 -l "$D/$t.jsonl" 2>/dev/null
done
# the bad tables' messages come first in their partitions and interleave
# with KEV's in time: before the parking, every flush failed on them
kcat -P -b "$SLUICE_BROKERS" -t mapped.kev_shadow -z lz4 -l "$D/shadow.jsonl" 2>/dev/null
kcat -P -b "$SLUICE_BROKERS" -t mapped.t_wrongidx -l "$D/wrong.jsonl" 2>/dev/null

PORT=$(free_port)
bg load "$SLUICE_BIN" load --schemas "$SLUICE_ROOT/schemas" --linger-ms 200 \
	--http-port "$PORT"
LOADER=$LAST_PID
LOG=$SL_LOGDIR/load.log
kev_rows() { q "SELECT count(*) FROM $KT" 2>/dev/null; }
check "every KEV row lands while the other tables are parked" \
	wait_out 90 -eq "$want" kev_rows
check "every KEV CWE message is loaded" wait_q 30 \
	"SELECT coalesce(sum(messages), 0) FROM sluice.load_batches WHERE table_name = '${KT}_cwe'" \
	"$want_cwe_msgs"
check "the start names kev_shadow before it starts" \
	awk '/event=table_parked table=kev_shadow/ { p = NR } /event=started/ { s = NR }
		END { exit !(p && s && p < s) }' "$LOG"
check "t_wrongidx is parked by its flush, with the reason" \
	wait_for 30 grep -q 'event=table_parked table=t_wrongidx .*no unique index' "$LOG"
check_eq "no rollback_and_rewind" "$(grep -c 'action=rollback_and_rewind' "$LOG")" 0
readyz() { curl -s "http://127.0.0.1:$PORT/readyz"; }
both_named() { readyz | grep -q 'table t_wrongidx parked' && readyz | grep -q 'table kev_shadow parked'; }
wait_for 10 both_named
ready=$(readyz)
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/readyz")
check_eq "/readyz answers 503 while a table is parked" "$code" 503
check "/readyz names kev_shadow and why ($ready)" \
	grep -q 'table kev_shadow parked: table kev_shadow does not exist' <<<"$ready"
check "/readyz names t_wrongidx" grep -q 'table t_wrongidx parked' <<<"$ready"
check "the gauge says kev_shadow is parked" \
	grep -q '^sluice_load_table_parked{table="kev_shadow"} 1' \
	<(curl -s "http://127.0.0.1:$PORT/metrics")
check "sluice.parked_tables holds both" wait_q 10 \
	"SELECT string_agg(table_name, ',' ORDER BY table_name) FROM sluice.parked_tables" \
	"kev_shadow,t_wrongidx"
"$SLUICE_BIN" status >"$D/status.txt" 2>/dev/null
check "sluice status names the parked table and why" \
	grep -q 'kev_shadow.*does not exist' "$D/status.txt"
"$SLUICE_BIN" status --json >"$D/status.json" 2>/dev/null
check_eq "sluice status --json lists them" \
	"$(jq -r '[.parked_tables[].table] | sort | join(",")' "$D/status.json" 2>/dev/null)" \
	"kev_shadow,t_wrongidx"
check_eq "nothing of them was written or dead-lettered" \
	"$(kcat -C -b "$SLUICE_BROKERS" -t dlq.load -e -q 2>/dev/null | wc -l)" 0

# the operator fixes both: their rows land on the next look (5 s, 10 s,
# ... at most 60 s apart)
psql -qX -c "CREATE TABLE kev_shadow (LIKE $KT INCLUDING ALL)" ||
	not_ok "create kev_shadow"
psql -qX -c "CREATE UNIQUE INDEX ON t_wrongidx (id)" || not_ok "index"
check "kev_shadow's rows land once it exists" \
	wait_q 90 "SELECT count(*) FROM kev_shadow" "$want"
check "t_wrongidx's rows land once the index is there" \
	wait_q 90 "SELECT count(*) FROM t_wrongidx" 50
check "sluice.parked_tables is empty again" \
	wait_q 10 "SELECT count(*) FROM sluice.parked_tables" 0
readyok() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/readyz"; }
check "/readyz answers 200 again" wait_out 10 = 200 readyok
check "the gauge is 0 again" \
	grep -q '^sluice_load_table_parked{table="kev_shadow"} 0' \
	<(curl -s "http://127.0.0.1:$PORT/metrics")
check_eq "KEV rows unchanged ($want)" "$(kev_rows)" "$want"
kill -0 "$LOADER" 2>/dev/null && ok "the loader kept running" || not_ok "the loader exited"
stop_pid "$LOADER"
# make reliability's figures: 2 unwritable tables; the rows of all four
got=$(q "SELECT (SELECT count(*) FROM $KT) + (SELECT count(*) FROM kev_shadow) + (SELECT count(*) FROM t_wrongidx)")
[ -n "${SLUICE_FIGURES:-}" ] && echo "fault=table_parked injected=2 checked=$((want * 2 + 50)) lost=$((want * 2 + 50 - got)) dup=0" >>"$SLUICE_FIGURES"
sl_done
