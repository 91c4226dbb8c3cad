#!/usr/bin/env bash
# test_ops_endpoints: every worker's /healthz, /readyz and /metrics. A
# loader, a transformer and a fetcher serve them; /metrics parses as
# Prometheus text 0.0.4 and its counters match the rows that landed and
# `sluice status --json`; /readyz turns 503 while the brokers are down
# (SIGUSR1 to `sluice broker`) or the database is stopped (pg_ctl), and 200
# again when they come back, while /healthz stays 200.
source "$SLUICE_ROOT/tests/lib.sh"
source "$SLUICE_ROOT/loaders/testdata/load_lib.sh"
trap sl_cleanup EXIT

pg_start || exit 1 # a private cluster: this test stops and starts it
broker_start --topic mapped.t_ops:2 --topic dlq.load:1 --topic raw.kev:2 || exit 1
D=$(sl_tmpdir)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# status URL: the HTTP status code only
status() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$1"; }
# wait_status SECONDS URL CODE
exec 9>&1
wait_status() {
	local i
	for ((i = 0; i < $1 * 5; i++)); do
		[ "$(status "$2")" == "$3" ] && return 0
		sleep 0.2
	done
	# the answer it kept giving, for the failure's report
	# (on fd 9, the test's output: check() silences the command's own)
	echo "# $2 still answers $(status "$2"): $(curl -s --max-time 5 "$2" | head -c 300)" >&9
	return 1
}

# prom_parse FILE: checks the text format strictly; prints "ok"/"bad: why"
# then one "name{labels} value" line per sample, labels sorted
prom_parse() {
	python3 - "$1" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
name_re = r'[a-zA-Z_:][a-zA-Z0-9_:]*'
label_re = r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\\\|\\"|\\n)*)"'
sample_re = re.compile(r'^(' + name_re + r')(\{(?:' + label_re + r'(?:,' + label_re + r')*)?\})? (\S+)$')
types, samples, errors = {}, [], []
for n, line in enumerate(text.split("\n"), 1):
    if line == "":
        continue
    if line.startswith("# HELP "):
        if not re.match(r'^# HELP ' + name_re + r' ', line):
            errors.append("line %d: bad HELP" % n)
        continue
    if line.startswith("# TYPE "):
        m = re.match(r'^# TYPE (' + name_re + r') (counter|gauge|histogram|summary|untyped)$', line)
        if not m:
            errors.append("line %d: bad TYPE" % n); continue
        if m.group(1) in types:
            errors.append("line %d: second TYPE for %s" % (n, m.group(1)))
        types[m.group(1)] = m.group(2)
        continue
    if line.startswith("#"):
        continue
    m = sample_re.match(line)
    if not m:
        errors.append("line %d: not a sample: %r" % (n, line)); continue
    name, value = m.group(1), m.group(len(m.groups()))
    try:
        v = float(value.replace("+Inf", "inf").replace("-Inf", "-inf"))
    except ValueError:
        errors.append("line %d: bad value %r" % (n, value)); continue
    labels = dict(re.findall(label_re, m.group(2) or ""))
    base = re.sub(r'_(bucket|sum|count)$', '', name)
    if name not in types and base not in types:
        errors.append("line %d: %s has no TYPE" % (n, name))
    samples.append((name, labels, v))
# histograms: cumulative buckets, +Inf == _count
for name, t in types.items():
    if t != "histogram":
        continue
    series = {}
    for s, l, v in samples:
        if s == name + "_bucket":
            key = tuple(sorted((k, x) for k, x in l.items() if k != "le"))
            series.setdefault(key, []).append((float(l["le"].replace("+Inf", "inf")), v))
    for key, bs in series.items():
        vals = [v for _, v in bs]
        if vals != sorted(vals):
            errors.append("%s%s: buckets not cumulative" % (name, key))
        count = [v for s, l, v in samples if s == name + "_count"
                 and tuple(sorted(l.items())) == key]
        if not bs or bs[-1][0] != float("inf") or count != [bs[-1][1]]:
            errors.append("%s%s: +Inf bucket != count" % (name, key))
print("ok" if not errors else "bad: " + "; ".join(errors[:5]))
for s, l, v in samples:
    print("%s{%s} %s" % (s, ",".join('%s="%s"' % kv for kv in sorted(l.items())), repr(v)))
PY
}
# metric FILE 'name{labels}': the value of one sample (labels sorted), or 0
metric() { awk -v k="$2" '$1 == k { print $2; f = 1 } END { if (!f) print 0 }' "$1" | sed 's/\.0$//'; }

# --- loader: 60 rows, 6 rejected by a CHECK constraint -----------------
new_db ops_ep || exit 1
load_schemas "$D/schemas" "CREATE TABLE IF NOT EXISTS t_ops (
	id integer PRIMARY KEY, score integer CHECK (score >= 0),
	_lineage jsonb, _loaded_at timestamptz);"
python3 - "$D/in.tsv" <<'PY'
import json, sys
with open(sys.argv[1], "w") as f:
    for i in range(60):
        env = {"v": 1, "table": "t_ops", "op": "upsert", "key": {"id": i},
               "row": {"id": i, "score": -1 if i % 10 == 3 else i},
               "lineage": {"source": "test", "record": i}}
        f.write("%d\t%s\n" % (i, json.dumps(env)))
PY
produce mapped.t_ops "$D/in.tsv"
LP=$(free_port)
# only t_ops: the transformer below writes the KEV topics, whose tables
# this database lacks, and a loader that reads them parks those tables
# and is not ready (right, and tested in test_faults_isolation_table)
bg load "$SLUICE_BIN" load --schemas "$D/schemas" --topics '^mapped\.t_ops$' --linger-ms 300 --http-port "$LP"
LPID=$LAST_PID
L=http://127.0.0.1:$LP
check "loader /healthz answers 200" wait_status 15 "$L/healthz" 200
check "loader /readyz answers 200 (broker and database up)" wait_status 20 "$L/readyz" 200
check "54 rows land" wait_q 30 "SELECT count(*) FROM t_ops" 54
check_eq "an unknown path is 404" "$(status "$L/nosuch")" 404

# the counters are recorded after the commit: wait for the last batch
for _ in $(seq 50); do
	curl -s "$L/metrics" >"$D/m.txt"
	prom_parse "$D/m.txt" >"$D/m.parsed"
	[ "$(metric "$D/m.parsed" 'sluice_records_in_total{name="t_ops"}')" == 60 ] && break
	sleep 0.2
done
check_eq "/metrics parses as Prometheus text" "$(head -1 "$D/m.parsed")" ok
check "/metrics has the text format content type" \
	sh -c "curl -s -D - -o /dev/null '$L/metrics' | grep -qi '^content-type: text/plain; version=0.0.4'"
check_eq "records in = the 60 messages" "$(metric "$D/m.parsed" 'sluice_records_in_total{name="t_ops"}')" 60
check_eq "inserted = the rows in the table" \
	"$(metric "$D/m.parsed" 'sluice_records_out_total{name="t_ops",outcome="inserted"}')" \
	"$(q "SELECT count(*) FROM t_ops")"
check_eq "rejected = the dead letters" \
	"$(metric "$D/m.parsed" 'sluice_records_out_total{name="t_ops",outcome="rejected"}')" \
	"$(consume_all dlq.load | wc -l)"
check_eq "batch histogram counts the run reports" \
	"$(metric "$D/m.parsed" 'sluice_batch_size_count{name="t_ops"}')" \
	"$(q "SELECT count(*) FROM sluice.load_batches")"
check_eq "sluice_ready is 1" "$(metric "$D/m.parsed" 'sluice_ready{}')" 1
check_eq "sluice_db_up is 1" "$(metric "$D/m.parsed" 'sluice_db_up{}')" 1
check_eq "sluice_info names the role" \
	"$(grep -c '^sluice_info{instance="[^"]*",role="load",version="[^"]*"} 1' "$D/m.parsed")" 1
# the process figures, against what the kernel says of the same process
# (read right after the scrape; the loader is idle by now)
curl -s "$L/metrics" >"$D/m2.txt"
prom_parse "$D/m2.txt" >"$D/m2.parsed"
RSS_KB=$(awk '/^VmRSS:/ {print $2}' "/proc/$LPID/status")
THREADS=$(awk '/^Threads:/ {print $2}' "/proc/$LPID/status")
FDS=$(ls "/proc/$LPID/fd" | wc -l)
check "process_resident_memory_bytes is the loader's VmRSS (within 25 %)" python3 -c '
import sys; m, k = float(sys.argv[1]), float(sys.argv[2]) * 1024
sys.exit(not (k > 0 and abs(m - k) <= 0.25 * k))' \
	"$(metric "$D/m2.parsed" 'process_resident_memory_bytes{}')" "$RSS_KB"
check_eq "sluice_threads is the loader's thread count" \
	"$(metric "$D/m2.parsed" 'sluice_threads{}')" "$THREADS"
check "process_open_fds is the loader's descriptor count (within 2)" python3 -c '
import sys; sys.exit(not abs(float(sys.argv[1]) - float(sys.argv[2])) <= 2)' \
	"$(metric "$D/m2.parsed" 'process_open_fds{}')" "$FDS"
check "process_cpu_seconds_total and sluice_heap_in_use_bytes are positive" python3 -c '
import sys; sys.exit(not (float(sys.argv[1]) > 0 and float(sys.argv[2]) > 0))' \
	"$(metric "$D/m2.parsed" 'process_cpu_seconds_total{}')" \
	"$(metric "$D/m2.parsed" 'sluice_heap_in_use_bytes{}')"
"$SLUICE_BIN" status --json >"$D/status.json" 2>"$D/status.err"
check_eq "status --json: inserted and rejected of t_ops match /metrics" \
	"$(python3 -c '
import json, sys
st = json.load(open(sys.argv[1]))
t = [t for t in st["tables"] if t["table"] == "t_ops"][0]
print(t["inserted"], t["rejected"], t["rows"])' "$D/status.json")" \
	"$(metric "$D/m.parsed" 'sluice_records_out_total{name="t_ops",outcome="inserted"}') $(metric "$D/m.parsed" 'sluice_records_out_total{name="t_ops",outcome="rejected"}') $(q "SELECT count(*) FROM t_ops")"

# dozens of scrapes and probes above, one state: one line (it was a line
# per probe, every 2 s under a scraper)
check_eq "readiness is logged when it changes, not per probe" \
	"$(grep -c 'event=readiness ready=1 ' "$SL_LOGDIR/load.log")" 1

# --- a transformer and a fetcher serve the same endpoints --------------
TP=$(free_port)
bg transform "$SLUICE_BIN" transform "$SLUICE_ROOT/transformers/maps/kev.json" --http-port "$TP"
T=http://127.0.0.1:$TP
FP=$(free_port)
bg fetch "$SLUICE_BIN" fetch "$SLUICE_ROOT/producers/sources/kev.json" \
	--base-url "$SLUICE_FIXTURE_URL/kev" --http-port "$FP"
F=http://127.0.0.1:$FP
check "transformer /readyz answers 200" wait_status 20 "$T/readyz" 200
check "fetcher /readyz answers 200" wait_status 20 "$F/readyz" 200
KEV=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["vulnerabilities"]))' "$SLUICE_ROOT/data/kev/known_exploited_vulnerabilities.json")
for _ in $(seq 100); do
	curl -s "$F/metrics" >"$D/f.txt"
	prom_parse "$D/f.txt" >"$D/f.parsed"
	[ "$(metric "$D/f.parsed" 'sluice_sync_runs_total{result="ok",source="kev"}')" == 1 ] && break
	sleep 0.2
done
check_eq "fetcher /metrics parses" "$(head -1 "$D/f.parsed")" ok
check_eq "fetcher: one successful sync" "$(metric "$D/f.parsed" 'sluice_sync_runs_total{result="ok",source="kev"}')" 1
check_eq "fetcher: every KEV record published" \
	"$(metric "$D/f.parsed" 'sluice_records_out_total{name="kev",outcome="published"}')" "$KEV"
check "fetcher: HTTP 200 answers counted" \
	test "$(metric "$D/f.parsed" 'sluice_http_responses_total{source="kev",status="200"}')" -ge 1
for _ in $(seq 100); do
	curl -s "$T/metrics" >"$D/t.txt"
	prom_parse "$D/t.txt" >"$D/t.parsed"
	[ "$(metric "$D/t.parsed" 'sluice_records_in_total{name="kev"}')" == "$KEV" ] && break
	sleep 0.2
done
check_eq "transformer /metrics parses" "$(head -1 "$D/t.parsed")" ok
check_eq "transformer: every KEV record read" "$(metric "$D/t.parsed" 'sluice_records_in_total{name="kev"}')" "$KEV"
# rows are counted when mapped; their batch is delivered (and committed)
# right after: the topics catch up with the counter within moments
mapped_now() {
	local t n=0
	for t in $(kcat -L -J -b "$SLUICE_BROKERS" 2>/dev/null | python3 -c '
import json, sys
print(" ".join(t["topic"] for t in json.load(sys.stdin)["topics"]
               if t["topic"].startswith("mapped.") and t["topic"] != "mapped.t_ops"))'); do
		n=$((n + $(consume_all "$t" | wc -l)))
	done
	echo "$n"
}
ROWS=$(metric "$D/t.parsed" 'sluice_records_out_total{name="kev",outcome="mapped"}')
for _ in $(seq 50); do
	MAPPED=$(mapped_now)
	[ "$MAPPED" == "$ROWS" ] && break
	sleep 0.2
done
check_eq "transformer: rows counted = messages in its mapped topics" "$ROWS" "$MAPPED"
check_eq "transformer: dead letters counted = dlq.transform" \
	"$(metric "$D/t.parsed" 'sluice_records_out_total{name="kev",outcome="dead_letter"}')" \
	"$(consume_all dlq.transform | wc -l)"

# --- brokers down, then back -------------------------------------------
kill -USR1 "$SL_BROKER_PID"
check "brokers down: loader /readyz 503" wait_status 30 "$L/readyz" 503
check "brokers down: transformer /readyz 503" wait_status 30 "$T/readyz" 503
check "brokers down: fetcher /readyz 503" wait_status 30 "$F/readyz" 503
check_eq "brokers down: loader /healthz still 200" "$(status "$L/healthz")" 200
check_eq "brokers down: transformer /healthz still 200" "$(status "$T/healthz")" 200
check "the reason names kafka" sh -c "curl -s '$L/readyz' | grep -q kafka"
kill -USR2 "$SL_BROKER_PID"
check "brokers back: loader /readyz 200" wait_status 60 "$L/readyz" 200
check "brokers back: transformer /readyz 200" wait_status 60 "$T/readyz" 200
check "brokers back: fetcher /readyz 200" wait_status 60 "$F/readyz" 200

# --- database down, then back ------------------------------------------
as_pg_owner "$PGBIN/pg_ctl" -D "$SL_PGDATA" -m fast -w stop >/dev/null 2>&1
check "database down: loader /readyz 503" wait_status 30 "$L/readyz" 503
check "the reason names the database" sh -c "curl -s '$L/readyz' | grep -q database"
check_eq "database down: loader /healthz still 200" "$(status "$L/healthz")" 200
check_eq "database down: the transformer does not care" "$(status "$T/readyz")" 200
"$SLUICE_BIN" health "$L/readyz" >/dev/null 2>&1
check_eq "sluice health exits 1 on 503" "$?" 1
as_pg_owner "$PGBIN/pg_ctl" -D "$SL_PGDATA" -l "$(dirname "$SL_PGDATA")/pg.log" -w -t 30 \
	-o "-p $PGPORT -k $PGHOST -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null 2>&1
check "database back: loader /readyz 200" wait_status 60 "$L/readyz" 200
"$SLUICE_BIN" health "$L/readyz" >/dev/null 2>&1
check_eq "sluice health exits 0 on 200" "$?" 0
"$SLUICE_BIN" health "http://127.0.0.1:$(free_port)/healthz" >/dev/null 2>&1
check_eq "sluice health exits 1 when nothing answers" "$?" 1
# every Kafka client of each worker has its events served: each reports
# its statistics (every 5 s) and so appears in sluice_kafka_replyq; a
# client never polled (the loader's dead-letter producer used to be, while
# no row was rejected) never appears, and its events pile up in memory
clients() { curl -s "$1/metrics" | grep -c '^sluice_kafka_replyq{client='; }
for w in "loader $L 2" "transformer $T 2" "fetcher $F 2"; do
	read -r name url want <<<"$w"
	check "$name: its $want Kafka clients report their statistics (events served)" \
		wait_out 20 -ge "$want" clients "$url"
	echo "# $name: $(curl -s "$url/metrics" | grep '^sluice_kafka_replyq' | tr '\n' ' ')"
done
sl_done
