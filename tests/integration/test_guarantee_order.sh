#!/usr/bin/env bash
# test_guarantee_order: the newest-wins guarantee (docs/contracts.md,
# Versions) in every order, property style. Each round, tests/tools/
# guarantee_gen.py makes new versions of 40 records (a g_parent row with a
# version column, and two child sets, g_child and g_tag, replaced whole
# with the parent's version), adds replays of older versions and
# duplicates, shuffles them and spreads them over the 4 partitions of each
# mapped topic, in 3 phases. Two loaders (2 lanes each) load them; between
# phases one of them is killed with SIGKILL and restarted, stopped with
# SIGTERM and restarted, left down while the next phase is published, or
# the loader group is replayed to the earliest offset of a topic (`sluice
# replay`, which also moves sluice.offsets). After each round, once every
# message is loaded, every table must equal the newest version of every
# record, children included, nothing rejected.
#
# SLUICE_GUARANTEE_SEED picks the data, orders and actions (default: a new
# seed each run, printed; every failure names it). SLUICE_GUARANTEE_ROUNDS
# (default 3) sets the rounds; scripts/reliability.sh runs more.
source "$SLUICE_ROOT/tests/lib.sh"
source "$SLUICE_ROOT/loaders/testdata/load_lib.sh"
trap sl_cleanup EXIT

SEED=${SLUICE_GUARANTEE_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
ROUNDS=${SLUICE_GUARANTEE_ROUNDS:-3}
echo "# seed=$SEED rounds=$ROUNDS (again: SLUICE_GUARANTEE_SEED=$SEED SLUICE_GUARANTEE_ROUNDS=$ROUNDS)"
D=$(sl_tmpdir)
SL_LOGDIR=$D
broker_start --topic mapped.g_parent:4 --topic mapped.g_child:4 --topic mapped.g_tag:4 \
	--topic dlq.load:1 || exit 1
new_db guarantee_order || exit 1
load_schemas "$D/schemas" "CREATE TABLE IF NOT EXISTS g_parent (
	id text PRIMARY KEY, val text NOT NULL, n integer NOT NULL,
	last_modified timestamptz NOT NULL, _lineage jsonb, _loaded_at timestamptz);
CREATE TABLE IF NOT EXISTS g_child (
	id text NOT NULL, item text NOT NULL, note text,
	_lineage jsonb, _loaded_at timestamptz, PRIMARY KEY (id, item));
CREATE TABLE IF NOT EXISTS g_tag (
	id text NOT NULL, tag text NOT NULL,
	_lineage jsonb, _loaded_at timestamptz, PRIMARY KEY (id, tag));"

STARTS=0
GAPS=0 # loaders stopped (killed or terminated) while running
LPID=("" "")
start_loader() { # start_loader L
	STARTS=$((STARTS + 1))
	bg "load$1-$STARTS" "$SLUICE_BIN" load --schemas "$D/schemas" --linger-ms 50 --batch-rows 16
	LPID[$1]=$LAST_PID
}
kill9() {
	[ -n "${LPID[$1]}" ] || return 0
	GAPS=$((GAPS + 1))
	kill -9 "${LPID[$1]}" 2>/dev/null
	wait "${LPID[$1]}" 2>/dev/null
	LPID[$1]=""
}
term() {
	[ -n "${LPID[$1]}" ] || return 0
	GAPS=$((GAPS + 1))
	stop_pid "${LPID[$1]}"
	LPID[$1]=""
}
up() { local l; for l in 0 1; do [ -n "${LPID[$l]}" ] || start_loader "$l"; done; }

# replay TOPIC: the group empty, then back to the earliest offsets (the
# embedded broker holds a departed member for its session: retry)
replay() {
	term 0
	term 1
	local i
	for ((i = 0; i < 10; i++)); do
		timeout 20 "$SLUICE_BIN" replay --group sluice-load --topic "$1" --to earliest --create --timeout-ms 10000 \
			>>"$D/replay.out" 2>>"$D/replay.err" && return 0
		sleep 0.5
	done
	return 1
}

# loaded: every published message of every topic is behind sluice.offsets
loaded() {
	local topic n got
	while read -r topic n; do
		got=$(q "SELECT coalesce(sum(next_offset), 0) FROM sluice.offsets WHERE consumer_group = 'sluice-load' AND topic = '$topic'")
		[ "$got" == "$n" ] || return 1
	done <"$R/counts"
}

dump() {
	case $1 in
	g_parent) q "SELECT id || '|' || val || '|' || n || '|' || extract(epoch FROM last_modified)::bigint FROM g_parent ORDER BY 1" ;;
	g_child) q "SELECT id || '|' || item || '|' || note FROM g_child ORDER BY 1" ;;
	g_tag) q "SELECT id || '|' || tag FROM g_tag ORDER BY 1" ;;
	esac
}

actions=0
records=0
mismatches=0
up
for ((round = 1; round <= ROUNDS; round++)); do
	R=$D/round$round
	mkdir -p "$R"
	echo "# $(/usr/bin/python3 "$SLUICE_ROOT/tests/tools/guarantee_gen.py" "$SEED" "$round" "$D/state.json" "$R")"
	mapfile -t acts <"$R/actions"
	for ((ph = 0; ph < 3; ph++)); do
		while read -r topic part file; do
			kcat -P -b "$SLUICE_BROKERS" -t "$topic" -p "$part" -K $'\t' -l "$file" 2>/dev/null ||
				not_ok "seed $SEED round $round: kcat published $file"
		done <"$R/phase$ph.list"
		[ $ph -lt 2 ] || break
		read -r kind arg delay <<<"${acts[$ph]}"
		sleep "$(printf '0.%03d' "$delay")"
		echo "# round $round after phase $ph: $kind $arg"
		actions=$((actions + 1))
		case $kind in
		kill9) kill9 "$arg"; start_loader "$arg" ;;
		term) term "$arg"; start_loader "$arg" ;;
		down) kill9 "$arg" ;; # restarted after the next phase is published
		replay) replay "$arg" || not_ok "seed $SEED round $round: sluice replay $arg: $(tail -1 "$D/replay.err")"; up ;;
		esac
		[ "$kind" == "down" ] || up
	done
	up
	if ! wait_for 90 loaded; then
		not_ok "seed $SEED round $round: every message loaded: $(q "SELECT string_agg(topic || '=' || s, ' ') FROM (SELECT topic, sum(next_offset) AS s FROM sluice.offsets GROUP BY 1) x") of $(tr '\n' ' ' <"$R/counts")"
		break
	fi
	for t in g_parent g_child g_tag; do
		dump "$t" >"$R/actual.$t"
		if cmp -s "$R/expected.$t" "$R/actual.$t"; then
			ok "seed $SEED round $round: $t equals the newest version of every record ($(wc -l <"$R/expected.$t") rows)"
		else
			mismatches=$((mismatches + $(diff "$R/expected.$t" "$R/actual.$t" | grep -c '^[<>]')))
			not_ok "seed $SEED round $round: $t equals the newest version of every record (SLUICE_GUARANTEE_SEED=$SEED; < expected, > table): $(diff "$R/expected.$t" "$R/actual.$t" | grep '^[<>]' | head -6 | tr '\n' ' ')"
		fi
	done
	records=$(wc -l <"$R/expected.g_parent")
	check_eq "seed $SEED round $round: nothing rejected" \
		"$(q "SELECT coalesce(sum(rejected), 0) FROM sluice.load_batches")" "0"
done
check_eq "seed $SEED: no dead letters" "$(consume_all dlq.load | wc -l)" "0"
# A gap is a running loader stopped; a "down" followed by a "term" of the
# same loader is one gap and one start. Each round's first action stops a
# running loader, so there are at least ROUNDS gaps, and the final `up`
# restarted every one of them.
check_eq "seed $SEED: a gap a round at least ($GAPS gaps in $ROUNDS rounds)" "$((GAPS >= ROUNDS))" "1"
check_eq "seed $SEED: every gap restarted a loader (2 first starts + $GAPS gaps)" "$STARTS" "$((2 + GAPS))"
[ -n "${SLUICE_FIGURES:-}" ] &&
	echo "fault=guarantee_order injected=$actions checked=$records lost=$mismatches dup=0" >>"$SLUICE_FIGURES"
term 0
term 1
sl_done
