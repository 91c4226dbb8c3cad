#!/usr/bin/env bash
# scripts/soak.sh BUILD_DIR: `make soak`. The whole pipeline left running:
# four fetchers syncing every SOAK_INTERVAL seconds (NVD paged in full,
# KEV, URLhaus, Tenable export jobs), a transformer and a loader, while
# upstream faults are injected every minute and, every few minutes, the
# brokers go down for 10 s or PostgreSQL restarts. Every SOAK_SAMPLE
# seconds each worker's /metrics is read (process_resident_memory_bytes,
# sluice_heap_in_use_bytes, process_open_fds, sluice_threads,
# process_cpu_seconds_total). At the end the fetchers stop, the loader
# drains, and the run must show:
#   - every worker alive to the end, every fetcher with successful syncs
#     all along (at least half the intervals);
#   - the tables equal to the data served (no record lost or doubled);
#   - per worker, the heap's idle floor (the lowest figure in the first full
#     minute after warm-up, and in the last 60 s) no higher at the end than
#     after warm-up, beyond max(8 MiB, 15 %), and the floors of the
#     descriptors (+4) and threads (+2) of the same windows no higher.
# Writes SOAK_OUT (default bench/soak.md) and the samples beside it (.csv).
#   SOAK_MINUTES (default 10), SOAK_SCALE (default 20), SOAK_INTERVAL
#   (default 20), SOAK_SAMPLE (default 5)
set -u
BUILD=${1:-build}
cd "$(dirname "$0")/.."
SLUICE_ROOT=$PWD SLUICE_BUILD=$BUILD
# shellcheck source=tests/lib.sh
. tests/lib.sh
trap 'sl_cleanup' EXIT
trap 'exit 130' INT TERM
MINUTES=${SOAK_MINUTES:-10}
SCALE=${SOAK_SCALE:-20}
INTERVAL=${SOAK_INTERVAL:-20}
SAMPLE=${SOAK_SAMPLE:-5}
OUT=${SOAK_OUT:-bench/soak.md}
CSV=${OUT%.md}.csv
W=$(sl_tmpdir)
SL_LOGDIR=$W/logs
mkdir -p "$SL_LOGDIR" "$W/sources" "$(dirname "$OUT")"
say() { printf '%s soak: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { say "$*"; exit 1; }
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

[ -x "$SLUICE_BIN" ] || die "$SLUICE_BIN is not built"
pg_start || die "PostgreSQL did not start"
new_db sluice_soak || die "no database"
# shellcheck disable=SC2046
broker_start $(pipeline_topics) >/dev/null || die "broker did not start"
fixture_start --scale "$SCALE" --nvd-rate 1000/1 || die "fixture did not start"
FIX=$SLUICE_FIXTURE_URL

# the bundled definitions, syncing every INTERVAL s; NVD without its date
# windows, so that every sync pages through every record again; Tenable
# in bigger chunks
/usr/bin/python3 - "$W/sources" "$INTERVAL" <<'PY' || die "source definitions"
import json, sys
out, interval = sys.argv[1], int(sys.argv[2])
for name in ("nvd", "kev", "urlhaus", "tenable"):
    d = json.load(open("producers/sources/%s.json" % name))
    d["interval_seconds"] = interval
    if name == "nvd":
        d.pop("incremental", None)
        d["request"].pop("query", None)
        d["rate_limit"] = {"requests": 100, "per_seconds": 1}
    if name == "tenable":
        # chunks of 1000 assets and 10 requests/s: an export of the scaled
        # data fits in an interval (50 per chunk at 50/min takes minutes)
        d["export"]["body"] = {"num_assets": 1000}
        d["rate_limit"] = {"requests": 10, "per_seconds": 1}
    json.dump(d, open("%s/%s.json" % (out, name), "w"), indent=1)
PY

declare -A PORT PID
start() { # NAME COMMAND...
	local name=$1
	shift
	PORT[$name]=$(free_port)
	bg "$name" "$@" --http-port "${PORT[$name]}"
	PID[$name]=$LAST_PID
}
start load "$SLUICE_BIN" load --schemas schemas
start transform "$SLUICE_BIN" transform transformers/maps/kev.json \
	transformers/maps/nvd_cve.json transformers/maps/urlhaus.json transformers/maps/tenable.json
start fetch_nvd "$SLUICE_BIN" fetch "$W/sources/nvd.json" --base-url "$FIX/nvd"
start fetch_kev "$SLUICE_BIN" fetch "$W/sources/kev.json" --base-url "$FIX/kev"
start fetch_urlhaus "$SLUICE_BIN" fetch "$W/sources/urlhaus.json" --base-url "$FIX/urlhaus"
start fetch_tenable "$SLUICE_BIN" fetch "$W/sources/tenable.json" --base-url "$FIX"
WORKERS="load transform fetch_nvd fetch_kev fetch_urlhaus fetch_tenable"

fault() { curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' \
	--data "$1" "$FIX/_fixture/faults" || say "could not queue fault $1"; }
# one sample line per worker: t,worker,alive,rss,heap,fds,threads,cpu,syncs_ok
sample() {
	local t=$1 w m
	for w in $WORKERS; do
		if ! kill -0 "${PID[$w]}" 2>/dev/null; then
			echo "$t,$w,0,,,,,,"
			continue
		fi
		m=$(curl -sf --max-time 5 "http://127.0.0.1:${PORT[$w]}/metrics") || m=
		awk -v t="$t" -v w="$w" '
			$1 == "process_resident_memory_bytes" { rss = $2 }
			$1 == "sluice_heap_in_use_bytes" { heap = $2 }
			$1 == "process_open_fds" { fds = $2 }
			$1 == "sluice_threads" { th = $2 }
			$1 == "process_cpu_seconds_total" { cpu = $2 }
			$1 ~ /^sluice_sync_runs_total\{.*result="ok"/ { ok += $2 }
			END { printf "%s,%s,1,%s,%s,%s,%s,%s,%d\n", t, w, rss, heap, fds, th, cpu, ok }' <<<"$m"
	done
}

echo "t,worker,alive,rss,heap,fds,threads,cpu,syncs_ok" >"$CSV"
say "running $MINUTES min: scale $SCALE, syncs every $INTERVAL s, samples every $SAMPLE s (logs: $SL_LOGDIR)"
T0=$(date +%s)
END=$((T0 + MINUTES * 60))
next_fault=$((T0 + 30))
next_outage=$((T0 + 150))
outage=0
EVENTS=$W/events
: >"$EVENTS"
while [ "$(date +%s)" -lt "$END" ]; do
	now=$(date +%s)
	sample $((now - T0)) >>"$CSV"
	if [ "$now" -ge "$next_fault" ]; then
		fault '{"path_prefix":"/nvd","kind":"status","status":503,"count":2,"retry_after":1}'
		fault '{"path_prefix":"/nvd","kind":"truncate","count":1}'
		fault '{"path_prefix":"/kev","kind":"reset","count":1}'
		fault '{"path_prefix":"/urlhaus","kind":"malformed","count":1}'
		fault '{"path_prefix":"/vulns/export","kind":"status","status":429,"count":1,"retry_after":1}'
		fault '{"path_prefix":"/nvd","kind":"latency","latency_ms":3000,"count":1}'
		echo "$((now - T0)) upstream faults queued" >>"$EVENTS"
		next_fault=$((now + 60))
	fi
	if [ "$now" -ge "$next_outage" ] && [ "$now" -lt $((END - 60)) ]; then
		if [ $((outage % 2)) -eq 0 ]; then
			kill -USR1 "$SL_BROKER_PID"
			echo "$((now - T0)) brokers down for 10 s" >>"$EVENTS"
			sleep 10
			kill -USR2 "$SL_BROKER_PID"
		else
			echo "$((now - T0)) PostgreSQL restarted" >>"$EVENTS"
			as_pg_owner "$PGBIN/pg_ctl" -D "$SL_PGDATA" -m fast -w restart >/dev/null 2>&1 ||
				echo "$((now - T0)) PostgreSQL restart FAILED" >>"$EVENTS"
		fi
		outage=$((outage + 1))
		next_outage=$((now + 150))
	fi
	sleep "$SAMPLE"
done
sample $(($(date +%s) - T0)) >>"$CSV"
ALIVE=1
for w in $WORKERS; do
	kill -0 "${PID[$w]}" 2>/dev/null || { say "$w died: see $SL_LOGDIR/$w.log"; ALIVE=0; }
done

say "stopping the fetchers, draining"
for w in fetch_nvd fetch_kev fetch_urlhaus fetch_tenable; do stop_pid "${PID[$w]}"; done
last=-1
for _ in $(seq 1 120); do
	n=$(q "SELECT coalesce(sum(messages),0) FROM sluice.load_batches" 2>/dev/null || echo 0)
	[ "$n" = "$last" ] && [ "$n" != 0 ] && break
	last=$n
	sleep 3
done
sample $(($(date +%s) - T0)) >>"$CSV"

# what the tables must hold: one row per distinct key the fixture serves
# (a one-shot fetch of each source into a scratch topic would need the
# whole pipeline again; the served data is static, so count it directly)
EXPECT=$W/expect
curl -sf -o /dev/null -X DELETE "$FIX/_fixture/faults" # faults still queued
/usr/bin/python3 - "$FIX" "$EXPECT" "$SCALE" <<'PY' || die "could not count the served data"
import json, sys, urllib.request
fix, out, scale = sys.argv[1], sys.argv[2], int(sys.argv[3])
def get(url):
    with urllib.request.urlopen(url) as r:
        return json.load(r)
n = get(fix + "/nvd/rest/json/cves/2.0?resultsPerPage=1")["totalResults"]
kev = get(fix + "/kev/known_exploited_vulnerabilities.json")
with open(out, "w") as f:
    f.write("vulnerability %d\n" % n)
    f.write("known_exploited_vulnerability %d\n" % len({v["cveID"] for v in kev["vulnerabilities"]}))
    uh = get(fix + "/urlhaus/v1/urls/recent/")
    f.write("threat_indicator %d\n" % len({u["url"] for u in uh["urls"]}))
    # the vulns export serves the recorded chunk's findings x scale
    vulns = json.load(open("data/tenable/test_exports_vulns_chunk_1.json"))
    f.write("finding %d\n" % (len(vulns) * scale))
PY
ROWS_OK=1
while read -r table want; do
	got=$(q "SELECT count(*) FROM $table")
	echo "$table $got $want" >>"$W/rows"
	[ "$got" = "$want" ] || ROWS_OK=0
done <"$EXPECT"
for table in asset; do
	got=$(q "SELECT count(*) FROM $table")
	echo "$table $got -" >>"$W/rows"
	[ "${got:-0}" -gt 0 ] || ROWS_OK=0
done
DLQ=$(for t in dlq.fetch dlq.transform dlq.load; do
	printf '%s %s\n' "$t" "$(kcat -C -b "$SLUICE_BROKERS" -t "$t" -o beginning -e -q -f 'x\n' 2>/dev/null | wc -l)"
done)

/usr/bin/python3 - "$CSV" "$OUT" "$W/rows" "$EVENTS" "$MINUTES" "$SCALE" "$INTERVAL" \
	"$ALIVE" "$ROWS_OK" "$DLQ" <<'PY'
import csv, statistics, sys
csvf, out, rowsf, eventsf, minutes, scale, interval, alive, rows_ok, dlq = sys.argv[1:]
interval = int(interval)
S = {}
for r in csv.DictReader(open(csvf)):
    S.setdefault(r["worker"], []).append(r)
MiB = 1 << 20
def num(x):
    try: return float(x)
    except (TypeError, ValueError): return None
fails = []
lines = []
for w, rs in S.items():
    live = [r for r in rs if r["alive"] == "1" and num(r["heap"]) is not None]
    if len(live) < 4:
        fails.append("%s: too few samples" % w)
        continue
    tmax = max(int(r["t"]) for r in live)
    warm = tmax * 0.25
    # a figure's floor between lo and hi: its lowest sample there (the
    # last sample counts in every window, so none is empty)
    def floor(key, lo, hi):
        return min(num(r[key]) for r in live
                   if lo <= int(r["t"]) < hi or int(r["t"]) == tmax)
    # the heap's idle floor: the lowest figure of the first full minute
    # after warm-up, and of the last 60 s (a clock-minute bucket could hold
    # one sample, taken mid-sync, at the end of a short run)
    first = floor("heap", warm, warm + 60)
    last = floor("heap", tmax - 60, tmax + 1)
    allow = max(8 * MiB, 0.15 * first)
    grew = last - first
    rss = [num(r["rss"]) for r in live]
    # the RSS while idle: the lowest in the last minute before the stop
    stop = max(int(r["t"]) for r in live if r is not live[-1]) if len(live) > 1 else tmax
    rss_idle = min(num(r["rss"]) for r in live if stop - 60 <= int(r["t"]) <= stop)
    # descriptors and threads the same way: their floors, the lowest
    # figure of the same two windows. A sync holds more of both while it
    # runs (connections, the state reader's consumer and its threads), and
    # a single sample taken mid-sync is no leak (a 3-min run failed on a
    # fetcher whose last sample fell in a sync: fds 42 -> 55, threads
    # 18 -> 24, while another's warm-up figure was the one mid-sync); a
    # leak raises the floor
    fds_w = floor("fds", warm, warm + 60)
    th_w = floor("threads", warm, warm + 60)
    fds_e = floor("fds", tmax - 60, tmax + 1)
    th_e = floor("threads", tmax - 60, tmax + 1)
    cpu = num(live[-1]["cpu"]) or 0
    syncs = int(live[-1]["syncs_ok"] or 0)
    verdict = []
    if grew > allow:
        verdict.append("heap floor +%.1f MiB" % (grew / MiB))
    if fds_e > fds_w + 4:
        verdict.append("fds floor %d -> %d" % (fds_w, fds_e))
    if th_e > th_w + 2:
        verdict.append("threads floor %d -> %d" % (th_w, th_e))
    if w.startswith("fetch_"):
        need = int(float(minutes) * 60 / interval / 2)
        if syncs < need:
            verdict.append("%d syncs ok, want >= %d" % (syncs, need))
    fails += ["%s: %s" % (w, v) for v in verdict]
    lines.append("| %s | %.0f | %.0f | %.0f | %.1f | %.1f | %+.1f | %d / %d | %d / %d | %.1f | %s | %s |" % (
        w, rss[0] / MiB, max(rss) / MiB, rss_idle / MiB, first / MiB, last / MiB, grew / MiB,
        fds_w, fds_e, th_w, th_e, cpu, syncs if w.startswith("fetch_") else "–",
        "ok" if not verdict else "**" + "; ".join(verdict) + "**"))
if alive != "1":
    fails.append("a worker died")
if rows_ok != "1":
    fails.append("the tables do not hold the served data")
with open(out, "w") as f:
    f.write("# make soak\n\n")
    f.write("%s min, scale %s, every fetcher syncing every %d s; written by "
            "`scripts/soak.sh` (`make soak`).\n\n" % (minutes, scale, interval))
    f.write("| worker | RSS first MiB | RSS max MiB | RSS lowest in the last minute MiB | "
            "heap floor after warm-up MiB | heap floor at the end MiB | growth MiB | "
            "fds floor after warm-up / end | threads floor after warm-up / end | CPU s | syncs ok | verdict |\n")
    f.write("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    f.write("\n".join(lines) + "\n\n")
    f.write("Rows at the end (table, rows, rows the fixture serves):\n\n")
    for l in open(rowsf):
        f.write("- %s\n" % l.strip())
    f.write("\nDead letters: %s.\n\n" % ", ".join(l.strip() for l in dlq.splitlines()))
    f.write("Events (seconds from the start):\n\n")
    for l in open(eventsf):
        f.write("- %s\n" % l.strip())
    f.write("\n**%s**\n" % ("PASS" if not fails else "FAIL: " + "; ".join(fails)))
print(open(out).read())
sys.exit(1 if fails else 0)
PY
