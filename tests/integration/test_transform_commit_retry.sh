#!/usr/bin/env bash
# A transformer whose offset commit is refused with an error that brings no
# rebalance (INVALID_COMMIT_OFFSET_SIZE, through `sluice broker --faults`:
# librdkafka gives it straight to the application and does not rejoin)
# commits again until the commit goes through, then reads again what it
# dropped while refused, and ends with lag 0 and every record mapped once.
# Before, it paused its partitions "until the next assignment", which never
# came: the worker mapped nothing more and its lag stayed for good.
# The second part refuses commits while a second transformer joins a
# cooperative group (partitions kept through the rebalance) and checks the
# same end: lag 0, every record mapped.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
D=$(sl_tmpdir)
SL_LOGDIR=$D
KEV=$SLUICE_ROOT/data/kev/known_exploited_vulnerabilities.json
MAP=$SLUICE_ROOT/transformers/maps/kev.json
OUT=mapped.known_exploited_vulnerability

new_db commit_retry || { not_ok "database"; exit 1; }
broker_start --faults "$D/faults" --topic raw.kev:4 --topic $OUT:4 \
	--topic mapped.known_exploited_vulnerability_cwe:4 \
	--topic dlq.transform:1 || { not_ok "broker"; exit 1; }
BROKER_LOG=$(readlink "/proc/$SL_BROKER_PID/fd/2")

# the catalog in 40 keyed pages of whole records, spread over 4 partitions
/usr/bin/python3 - "$KEV" "$D/pages" <<'PY'
import json, sys
cat = json.load(open(sys.argv[1]))
recs = cat["vulnerabilities"]
n = 40
size = (len(recs) + n - 1) // n
with open(sys.argv[2], "w") as f:
    for i in range(n):
        page = dict(cat)
        page["vulnerabilities"] = recs[i * size:(i + 1) * size]
        f.write("page%d\t%s\n" % (i, json.dumps(page, separators=(",", ":"))))
PY
want=$(/usr/bin/python3 -c "import json; print(len(json.load(open('$KEV'))['vulnerabilities']))")
timeout 30 kcat -P -b "$SLUICE_BROKERS" -t raw.kev -K '	' -H source=kev \
	-H run=commit-retry -H 'records_path=$.vulnerabilities' \
	-X message.max.bytes=4000000 <"$D/pages" 2>"$D/kcat.log"
check_eq "40 pages published" "$?/$(wc -l <"$D/pages")" "0/40"

# lag GROUP: the transform lag of raw.kev that sluice status reports
lag() {
	"$SLUICE_BIN" status --json --group-transform "$1" 2>/dev/null |
		/usr/bin/python3 -c '
import json, sys
t = [x for x in json.load(sys.stdin)["topics"] if x["topic"] == "raw.kev"]
print(t[0].get("lag", "?") if t else "?")'
}
lag_zero() { [ "$(lag "$1")" == 0 ]; }
# ends: the end offsets of the output topic, one per partition
ends() {
	local p
	for p in 0 1 2 3; do
		kcat -Q -b "$SLUICE_BROKERS" -t "$OUT:$p:-1" 2>/dev/null | awk '{print $NF}'
	done | tr '\n' ' '
}
# since "E0 E1 E2 E3": the keys of the output messages after those offsets
since() {
	local p=0 o
	for o in $1; do
		kcat -C -b "$SLUICE_BROKERS" -t $OUT -p $p -o "$o" -e -q -f '%k\n' 2>/dev/null
		p=$((p + 1))
	done
}
inject() {
	local before
	before=$(grep -c event=faults_injected "$BROKER_LOG")
	echo "OffsetCommit $1 INVALID_COMMIT_OFFSET_SIZE" >"$D/faults"
	kill -HUP "$SL_BROKER_PID"
	wait_out 10 -gt "$before" grep -c event=faults_injected "$BROKER_LOG"
}

# --- 1. one transformer, its first commits refused ------------------------
check "the broker takes the faults (3 refused commits)" inject 3
bg t1 "$SLUICE_BIN" transform "$MAP" --group retry-eager --batch 2
T1=$LAST_PID
wait_for 60 lag_zero retry-eager
check_eq "the transformer caught up: raw.kev lag 0" "$(lag retry-eager)" 0
check "its commit was refused" grep -q 'event=commit_failed err=INVALID_COMMIT_OFFSET_SIZE' "$D/t1.log"
check "and went through on a retry" grep -q 'event=commit_retried' "$D/t1.log"
keys=$(since "0 0 0 0" | sort)
check_eq "every KEV record mapped" "$(sort -u <<<"$keys" | grep -c .)" "$want"
# nothing repeated: the refused batch was delivered, and what was dropped
# while refused was read again once
check_eq "each record mapped once" "$(grep -c . <<<"$keys")" "$want"
stop_pid "$T1"
check_eq "the transformer stops cleanly" "$?" 0

# --- 2. refused while a second transformer joins a cooperative group -------
start=$(ends)
export SLUICE_KAFKA_PARTITION_ASSIGNMENT_STRATEGY=cooperative-sticky
check "the broker takes the faults (5 refused commits)" inject 5
bg t2 "$SLUICE_BIN" transform "$MAP" --group retry-coop --batch 2
T2=$LAST_PID
wait_for 60 grep -q event=commit_failed "$D/t2.log"
bg t3 "$SLUICE_BIN" transform "$MAP" --group retry-coop --batch 2
T3=$LAST_PID
wait_for 90 lag_zero retry-coop
check_eq "two cooperative transformers caught up: raw.kev lag 0" "$(lag retry-coop)" 0
check "the rebalance was cooperative" grep -q 'event=assigned .*protocol=cooperative' "$D/t3.log"
keys=$(since "$start" | sort)
check_eq "every KEV record mapped again" "$(sort -u <<<"$keys" | grep -c .)" "$want"
echo "# cooperative part: $(grep -c . <<<"$keys") messages for $want records; refused: $(grep -c event=commit_failed "$D/t2.log" "$D/t3.log" | tr '\n' ' ')"
stop_pid "$T2"
check_eq "first transformer stops cleanly" "$?" 0
stop_pid "$T3"
check_eq "second transformer stops cleanly" "$?" 0
sl_done
