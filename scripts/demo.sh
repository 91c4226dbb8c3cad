#!/usr/bin/env bash
# scripts/demo.sh BUILD_DIR: the whole pipeline on this machine. Starts an
# embedded Kafka cluster (sluice broker), a throwaway PostgreSQL and the
# fixture API serving the bundled real data; runs one fetcher per source,
# two transformers and two loaders; prints what landed; stops everything.
set -u
BUILD=${1:-build}
cd "$(dirname "$0")/.."
export SLUICE_ROOT=$PWD SLUICE_BUILD=$BUILD
export SLUICE_BIN=$PWD/$BUILD/sluice SLUICE_FIXTURE=$PWD/$BUILD/sluice-fixture
# shellcheck source=tests/lib.sh
. tests/lib.sh
trap 'sl_cleanup' EXIT
trap 'exit 130' INT TERM
SL_LOGDIR=$(sl_tmpdir)
say() { printf '\n==> %s\n' "$*"; }

say "starting PostgreSQL, the embedded Kafka cluster and the fixture API"
pg_start || exit 1
new_db sluice_demo || exit 1
# shellcheck disable=SC2046
broker_start $(pipeline_topics) || exit 1
fixture_start --nvd-rate 1000/1 || exit 1
echo "PostgreSQL  $PGHOST:$PGPORT database $PGDATABASE"
echo "Kafka       $SLUICE_BROKERS"
echo "fixture API $SLUICE_FIXTURE_URL"

say "starting 2 loaders and 2 transformers (consumer groups share the partitions)"
MAPS=(transformers/maps/kev.json transformers/maps/nvd_cve.json
      transformers/maps/urlhaus.json transformers/maps/tenable.json)
for i in 1 2; do
	bg "loader$i" "$SLUICE_BIN" load --schemas schemas --linger-ms 300
	bg "transformer$i" "$SLUICE_BIN" transform "${MAPS[@]}" --stats-interval 5
done

say "fetching every source once (logs: $SL_LOGDIR)"
fetch() { # NAME BASE-URL [ARGS]
	local name=$1 base=$2 t0 rc
	shift 2
	t0=$(date +%s%N)
	"$SLUICE_BIN" fetch "producers/sources/$name.json" --once --base-url "$base" "$@" \
		>"$SL_LOGDIR/fetch-$name.out" 2>"$SL_LOGDIR/fetch-$name.log"
	rc=$?
	printf '%-8s exit %d  %6d ms  %s\n' "$name" "$rc" \
		$(( ($(date +%s%N) - t0) / 1000000 )) \
		"$(grep -o 'event=sync_done.*' "$SL_LOGDIR/fetch-$name.log" | tail -1 | cut -c1-90)"
}
fetch kev "$SLUICE_FIXTURE_URL/kev" &
fetch urlhaus "$SLUICE_FIXTURE_URL/urlhaus" &
fetch tenable "$SLUICE_FIXTURE_URL" &
fetch nvd "$SLUICE_FIXTURE_URL/nvd" &
wait $(jobs -p | tail -4) 2>/dev/null

say "waiting for the loaders to drain"
last=-1
for _ in $(seq 1 120); do
	n=$(q "SELECT coalesce(sum(messages),0) FROM sluice.load_batches" 2>/dev/null || echo 0)
	[ "$n" = "$last" ] && [ "$n" != 0 ] && break
	last=$n
	sleep 1.5
done

say "what landed (rows per table, from PostgreSQL)"
psql -X -P pager=off -c "
SELECT t.table_name AS \"table\",
       (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I', t.table_name), false, true, '')))[1]::text::int AS rows
  FROM information_schema.tables t
 WHERE t.table_schema = 'public' ORDER BY 1"
say "run reports (sluice.load_batches)"
psql -X -P pager=off -c "
SELECT table_name AS \"table\", count(*) AS batches, sum(inserted) AS inserted,
       sum(updated) AS updated, sum(unchanged) AS unchanged,
       sum(rejected) AS rejected
  FROM sluice.load_batches GROUP BY 1 ORDER BY 1"
say "a few KEV rows"
psql -X -P pager=off -c "
SELECT k.cve_id, k.vendor_project, k.product, k.date_added, k.due_date,
       k.known_ransomware_campaign_use AS ransomware,
       (SELECT string_agg(cwe_id, ',' ORDER BY cwe_id)
          FROM known_exploited_vulnerability_cwe c WHERE c.cve_id = k.cve_id) AS cwes
  FROM known_exploited_vulnerability k
 WHERE k.cve_id IN ('CVE-2021-44228', 'CVE-2023-4966', 'CVE-2017-0144', 'CVE-2024-3400')
 ORDER BY k.cve_id"
say "dead letters"
for t in dlq.fetch dlq.transform dlq.load; do
	printf '%-14s %s\n' "$t" "$(kcat -C -b "$SLUICE_BROKERS" -t "$t" -e -q 2>/dev/null | wc -l)"
done
if "$SLUICE_BIN" status >"$SL_LOGDIR/status.out" 2>&1; then
	say "sluice status"
	cat "$SL_LOGDIR/status.out"
fi
say "stopping the workers (SIGTERM) and the services"
