#!/usr/bin/env bash
# sluice replay and sluice status on a cluster that serves the Admin API for
# consumer groups, which the embedded broker cannot: tests/tools/fake_kafka.py
# answers as a Kafka broker would (DescribeGroups, OffsetFetch, OffsetCommit,
# watermarks) from a JSON file, and logs every request it gets. Read-only
# commands read committed offsets and lag without joining the group (no
# JoinGroup, SyncGroup, Heartbeat or LeaveGroup ever arrives); offsets print
# as numbers, none or earliest; a group with members is refused, each member
# named by client id and host; an unknown group is an error; an Empty group
# is moved by AlterConsumerGroupOffsets (an OffsetCommit without membership),
# and a move the cluster refuses prints nothing as moved.
#
# Not covered: the fallback to joining where the cluster answers
# "unsupported". librdkafka 2.0.2 asserts (eonce->refcnt) when
# DescribeConsumerGroups goes to a cluster that does not advertise
# DescribeGroups, so replay only falls back on the embedded broker, known by
# its cluster id; test_replay.sh covers that path.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
d=$(sl_tmpdir)
fake=$SLUICE_ROOT/tests/tools/fake_kafka.py

# raw.a: 3 partitions, 175 messages, 5 lost to retention on partition 1
cat >"$d/cluster.json" <<'EOF'
{"cluster_id": "fakeKafka",
 "topics": {"raw.a": [{"low": 0, "high": 100}, {"low": 5, "high": 50},
                      {"low": 0, "high": 30}]},
 "groups": {
  "live": {"state": "Stable",
           "members": [{"client_id": "worker-1", "host": "/10.0.0.7"},
                       {"client_id": "worker-2", "host": "/10.0.0.8"}],
           "offsets": {"raw.a": {"0": 40, "1": 10}}},
  "idle": {"state": "Empty", "offsets": {"raw.a": {"0": 60, "1": "earliest"}}},
  "locked": {"state": "Empty", "commit_error": 30,
             "offsets": {"raw.a": {"0": 7}}}}}
EOF
python3 "$fake" "$d/cluster.json" --port-file "$d/port" --log "$d/requests" \
	2>"$d/fake.err" &
SL_PIDS+=($!)
wait_file "$d/port" 30 || { not_ok "fake kafka started: $(cat "$d/fake.err")"; exit 1; }
export SLUICE_BROKERS=127.0.0.1:$(cat "$d/port")
replay() { "$SLUICE_BIN" replay --topic raw.a --timeout-ms 10000 "$@" >"$d/out" 2>"$d/err"; }
# from here, the requests of the next commands alone (all: every one)
mark() { cat "$d/requests" >>"$d/all"; : >"$d/requests"; }
# requests (by name) of one command
asked() { grep -c "^$1 " "$d/requests"; }

# a dry run reads the group through the Admin API, and changes nothing
mark
replay --group idle --to earliest --dry-run
check_eq "dry run of an Empty group: exit 0" "$?" 0
check_eq "dry run: committed offsets as a number, earliest and none" \
	"$(cat "$d/out")" "raw.a[0] 60 -> 0
raw.a[1] earliest -> 5
raw.a[2] none -> 0
dry run: nothing changed"
check_eq "dry run: nothing on stderr (no fallback note on a real cluster)" "$(cat "$d/err")" ""
check "dry run: the group is described (DescribeGroups)" grep -q "^DescribeGroups v[0-9]* groups=idle$" "$d/requests"
check "dry run: its committed offsets are fetched (OffsetFetch)" grep -q "^OffsetFetch v[0-9]* group=idle$" "$d/requests"
check_eq "dry run: nothing committed" "$(asked OffsetCommit)" 0

# status: the transform group's lag from its committed offsets
mark
"$SLUICE_BIN" status --json --group-transform live >"$d/status.json" 2>"$d/err"
check_eq "status: the lag of raw.a from live's offsets (60 + 40 + 30)" \
	"$(jq -r '.topics[] | select(.topic == "raw.a") | .lag' "$d/status.json")" 130
check "status: live's offsets are fetched (OffsetFetch)" grep -q "^OffsetFetch v[0-9]* group=live$" "$d/requests"
check_eq "status: nothing committed" "$(asked OffsetCommit)" 0

# a group with members: refused, each member named
mark
replay --group live --to earliest
check_eq "live members: refused with exit 2" "$?" 2
check "live members: the message names worker-1 and its host" grep -q "worker-1@10\.0\.0\.7[,)]" "$d/err"
check "live members: the message names worker-2 and its host" grep -q "worker-2@10\.0\.0\.8[,)]" "$d/err"
check "live members: a host prints without Kafka's leading /" bash -c "! grep -q '@/' '$d/err'"
check_eq "live members: nothing printed as moved" "$(cat "$d/out")" ""
check_eq "live members: nothing committed" "$(asked OffsetCommit)" 0
replay --group live --to earliest --dry-run
check_eq "live members, dry run: exit 0" "$?" 0
check "live members, dry run: says a replay would be refused" grep -q "2 live members.*a replay would be refused" "$d/err"

# an unknown group (Kafka describes it as Dead)
replay --group nosuch --to earliest --dry-run
check_eq "an unknown group: exit 1" "$?" 1
check "an unknown group: the message says so" grep -q "group nosuch .*the cluster does not know it.*unknown group" "$d/err"
check_eq "an unknown group: nothing on stdout" "$(cat "$d/out")" ""

# the move: AlterConsumerGroupOffsets on an Empty group
mark
replay --group idle --to 20 --partition 1
check_eq "move of an Empty group: exit 0" "$?" 0
check_eq "move: one line, the partition moved" "$(cat "$d/out")" "raw.a[1] moved earliest -> 20"
check "move: one OffsetCommit of partition 1 at 20, outside any generation" \
	grep -q "^OffsetCommit v[0-9]* group=idle generation=-1 raw.a\[1\]=20$" "$d/requests"
replay --group idle --to earliest --dry-run
check "move: the group's offset is now 20" grep -q "^raw.a\[1\] 20 -> 5$" "$d/out"

# a move the cluster refuses is not printed as done
mark
replay --group locked --to earliest
check_eq "a refused move: exit 1" "$?" 1
check "a refused move: the error names the group and the cause" \
	grep -q "alter offsets of group locked: .*authorization" "$d/err"
check_eq "a refused move: nothing printed as moved" "$(grep -c moved "$d/out")" 0
check_eq "a refused move: the OffsetCommit was asked" "$(asked OffsetCommit)" 1

# nobody joined, ever; and every request was one the fake serves
mark
check "the fake logged every command's requests" grep -q "^OffsetFetch v5 group=live$" "$d/all"
check_eq "no JoinGroup, SyncGroup, Heartbeat or LeaveGroup was sent" \
	"$(grep -c '^\(JoinGroup\|SyncGroup\|Heartbeat\|LeaveGroup\) ' "$d/all")" 0
check_eq "no request of a version the fake does not serve" "$(grep -c 'not served' "$d/all")" 0

# the fake's own configuration errors name the file and the field
printf '{"groups": {"g": {"offsets": {"t": {"0": "yesterday"}}}}}' >"$d/bad.json"
python3 "$fake" "$d/bad.json" --port-file "$d/port2" --log "$d/log2" 2>"$d/bad.err"
check_eq "fake: a bad offset in its configuration: exit 2" "$?" 2
check "fake: the error names the file and field" grep -q "bad.json: groups.g.offsets.t.0" "$d/bad.err"
sl_done
