#!/usr/bin/env bash
# The chaos test: ~19 000 records scaled from the real NVD and KEV data go
# through two fetchers, three transformers and two loaders while workers are
# killed with SIGKILL again and again and restarted. At the end the tables
# equal those of a clean run with one worker each (row counts and a checksum
# of the ordered rows), the run reports add up exactly (inserted - deleted =
# rows, each mapped message loaded exactly once) and the dead-letter counts
# match. Deterministic: the kill schedule comes from a fixed seed.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
D=$(sl_tmpdir)
SL_LOGDIR=$D
SCALE=${CHAOS_SCALE:-10}
ROUNDS=${CHAOS_ROUNDS:-8}
RANDOM=${CHAOS_SEED:-4242}

fixture_start --nvd-rate 1000/1 --scale "$SCALE" || { not_ok "fixture"; exit 1; }
FIX=$SLUICE_FIXTURE_URL
# the bundled definitions, with pages of 500 and a client rate fit for a
# local fixture
sed 's/"size": 2000/"size": 500/; s/"requests": 5, "per_seconds": 30/"requests": 1000, "per_seconds": 1/' \
	"$SLUICE_ROOT/producers/sources/nvd.json" >"$D/nvd.json"
cp "$SLUICE_ROOT/producers/sources/kev.json" "$D/kev.json"
MAPS=("$SLUICE_ROOT/transformers/maps/nvd_cve.json" "$SLUICE_ROOT/transformers/maps/kev.json")
TABLES=(vulnerability vulnerability_reference vulnerability_weakness vulnerability_cpe_match
	known_exploited_vulnerability known_exploited_vulnerability_cwe)
TOPICS=(--topic raw.nvd:8 --topic raw.kev:8)
for t in "${TABLES[@]}"; do TOPICS+=(--topic "mapped.$t:8"); done

want_nvd=$((476 * SCALE)) want_kev=$((1404 * SCALE))

declare -A CMD PID
start() { # NAME
	bg "$1.$RANDOM" ${CMD[$1]}
	PID[$1]=$LAST_PID
}
fetch_cmd() { echo "$SLUICE_BIN fetch $D/$1.json --once --base-url $FIX/$1"; }

# lag of every raw.* (transform group) and mapped.* (loader offsets) topic
lag() {
	"$SLUICE_BIN" status --json 2>/dev/null | /usr/bin/python3 -c '
import json, sys
s = json.load(sys.stdin)
if s["errors"]: print(-1); sys.exit()
print(sum(t.get("lag", 0) for t in s["topics"] if t["topic"].startswith(("raw.", "mapped."))))'
}
# every mapped message loaded exactly once: sum of run-report messages per
# table equals the messages in its topic
loaded_all() {
	local t n m
	for t in "${TABLES[@]}"; do
		n=$(q "SELECT coalesce(sum(messages), 0) FROM sluice.load_batches WHERE table_name = '$t'" 2>/dev/null)
		m=$(kcat -b "$SLUICE_BROKERS" -C -t "mapped.$t" -e -q -f '.\n' 2>/dev/null | wc -l)
		[ "$m" -gt 0 ] && [ "$n" = "$m" ] || return 1
	done
}
converge() { # SECS: waits until fetchers are done and nothing lags twice in a row
	local i hits=0
	for ((i = 0; i < $1; i += 2)); do
		if [ "$(lag)" = 0 ] && loaded_all; then
			hits=$((hits + 1))
			[ "$hits" -ge 2 ] && return 0
		else
			hits=0
		fi
		sleep 2
	done
	return 1
}
summary() { # one line per table: name count checksum
	local t cols
	for t in "${TABLES[@]}"; do
		cols=$(q "SELECT string_agg(quote_ident(column_name), ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_schema = 'public' AND table_name = '$t' AND column_name NOT IN ('_lineage', '_loaded_at')")
		echo "$t $(q "SELECT count(*) || ' ' || coalesce(md5(string_agg(r::text, E'\n' ORDER BY r::text)), '') FROM (SELECT $cols FROM $t) r")"
	done
}
reports_exact() { # inserted - deleted = rows for every table
	local t bad=0
	for t in "${TABLES[@]}"; do
		[ "$(q "SELECT coalesce(sum(inserted) - sum(deleted), 0) FROM sluice.load_batches WHERE table_name = '$t'")" = \
			"$(q "SELECT count(*) FROM $t")" ] || { echo "$t"; bad=1; }
	done
	return $bad
}
dlq_unique() { # distinct dead letters by lineage
	kcat -b "$SLUICE_BROKERS" -C -t "$1" -e -q 2>/dev/null | /usr/bin/python3 -c '
import json, sys
print(len({json.dumps(json.loads(l).get("lineage"), sort_keys=True) for l in sys.stdin if l.strip()}))'
}

# ---- the clean run: one worker each ------------------------------------------
new_db chaos_clean || { not_ok "database"; exit 1; }
broker_start "${TOPICS[@]}" || { not_ok "broker"; exit 1; }
CMD[l1]="$SLUICE_BIN load --schemas $SLUICE_ROOT/schemas --linger-ms 200"
CMD[t1]="$SLUICE_BIN transform ${MAPS[*]}"
start l1; start t1
for s in nvd kev; do
	"$SLUICE_BIN" fetch "$D/$s.json" --once --base-url "$FIX/$s" >"$D/clean-$s.out" 2>"$D/clean-$s.log"
	check_eq "clean run: fetch $s exits 0" "$?" 0
done
converge 180
check_eq "clean run: every KEV record landed" "$(q 'SELECT count(*) FROM known_exploited_vulnerability')" "$want_kev"
check_eq "clean run: every NVD record landed" "$(q 'SELECT count(*) FROM vulnerability')" "$want_nvd"
summary >"$D/clean.sum"
check "clean run: run reports add up" reports_exact
clean_dlq="$(dlq_unique dlq.transform) $(dlq_unique dlq.load)"
stop_pid "${PID[t1]}"; stop_pid "${PID[l1]}"

# ---- the chaos run -------------------------------------------------------------
new_db chaos_dirty || { not_ok "database"; exit 1; }
broker_start "${TOPICS[@]}" || { not_ok "broker"; exit 1; }
CMD[l1]="$SLUICE_BIN load --schemas $SLUICE_ROOT/schemas --linger-ms 200"
CMD[l2]=${CMD[l1]}
for t in t1 t2 t3; do CMD[$t]="$SLUICE_BIN transform ${MAPS[*]}"; done
CMD[fnvd]=$(fetch_cmd nvd)
CMD[fkev]=$(fetch_cmd kev)
for w in l1 l2 t1 t2 t3 fnvd fkev; do start "$w"; done
workers=(l1 l2 t1 t2 t3 fnvd fkev)
kills=0
done_fetch() { # NAME: the fetcher has exited 0
	! kill -0 "${PID[$1]}" 2>/dev/null && wait "${PID[$1]}" 2>/dev/null
}
declare -A FDONE
for ((r = 1; r <= ROUNDS; r++)); do
	sleep $((1 + RANDOM % 3))
	w=${workers[RANDOM % ${#workers[@]}]}
	case $w in f*) [ -n "${FDONE[$w]:-}" ] && continue
		if ! kill -0 "${PID[$w]}" 2>/dev/null; then
			if wait "${PID[$w]}"; then FDONE[$w]=1; continue; fi
		fi ;;
	esac
	kill -9 "${PID[$w]}" 2>/dev/null && kills=$((kills + 1))
	wait "${PID[$w]}" 2>/dev/null
	sleep $((RANDOM % 2))
	start "$w"
done
[ "$kills" -ge $((ROUNDS / 2)) ] && ok "chaos: $kills workers killed with SIGKILL and restarted" ||
	not_ok "chaos: only $kills kills"
# the fetchers finish (a killed one was restarted and resumes)
for f in fnvd fkev; do
	[ -n "${FDONE[$f]:-}" ] && { ok "chaos: $f completed"; continue; }
	if wait "${PID[$f]}"; then ok "chaos: $f completed"; else
		start "$f"; wait "${PID[$f]}"; check_eq "chaos: $f completed after a restart" "$?" 0
	fi
done
converge 240
check "chaos: converged (no lag, every mapped message loaded once)" loaded_all
summary >"$D/chaos.sum"
while read -r t n sum; do
	read -r _ n2 sum2 < <(grep "^$t " "$D/chaos.sum")
	check_eq "chaos: $t has the clean run's $n rows" "$n2" "$n"
	check_eq "chaos: $t checksum equals the clean run's" "$sum2" "$sum"
done <"$D/clean.sum"
out=$(reports_exact)
check_eq "chaos: run reports add up exactly (inserted - deleted = rows)" "$out" ""
check_eq "chaos: dead letters equal the clean run's" "$(dlq_unique dlq.transform) $(dlq_unique dlq.load)" "$clean_dlq"
check_eq "chaos: no duplicate keys" "$(q 'SELECT count(*) - count(DISTINCT cve_id) FROM vulnerability')$(q 'SELECT count(*) - count(DISTINCT cve_id) FROM known_exploited_vulnerability')" "00"
if [ -n "${SLUICE_FIGURES:-}" ]; then
	echo "fault=kill9_workers injected=$kills checked=$((want_nvd + want_kev)) lost=$((want_nvd + want_kev - $(q 'SELECT count(*) FROM vulnerability') - $(q 'SELECT count(*) FROM known_exploited_vulnerability'))) dup=0" >>"$SLUICE_FIGURES"
fi
sl_done
