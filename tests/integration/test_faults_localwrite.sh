#!/usr/bin/env bash
# The few files sluice writes locally (sluice broker --bootstrap-file, the
# fixture's --url-file) fail clearly on a full disk and on a refused
# permission: exit non-zero, one message naming the file and the reason,
# and no half-written file left behind.
source "$SLUICE_ROOT/tests/lib.sh"
trap 'umount "$FULL" 2>/dev/null; sl_cleanup' EXIT
D=$(sl_tmpdir)
FULL=$D/full
mkdir -p "$FULL"

# a full disk: a 64 KiB tmpfs filled up; where mounting is not allowed,
# a file size limit of 0 makes every write fail the same way (EFBIG)
full_disk=tmpfs
if mount -t tmpfs -o size=64k tmpfs "$FULL" 2>/dev/null; then
	dd if=/dev/zero of="$FULL/filler" bs=4k 2>/dev/null
else
	full_disk=ulimit
fi
# as_denied CMD...: runs CMD where writing $D/ro is refused. Root writes
# through permission bits (CAP_DAC_OVERRIDE), so as root CMD runs without
# that capability (setpriv): still root, it reaches the binaries, the data
# and the sanitizers' log files wherever the checkout lies. (It ran as
# nobody once, which cannot execute a binary under /root or a mktemp -d
# directory.)
mkdir -p "$D/ro"
chmod 0555 "$D/ro"
as_denied() {
	if [ "$(id -u)" -eq 0 ]; then
		setpriv --inh-caps=-dac_override --bounding-set=-dac_override -- timeout 20 "$@"
	else
		timeout 20 "$@"
	fi
}
# the refusal is real: the same write from the shell fails
if as_denied touch "$D/ro/probe" 2>"$D/e"; then
	not_ok "a write to $D/ro is not refused, the permission checks below prove nothing"
else
	ok "a write to $D/ro is refused: $(cat "$D/e")"
fi
run_full() { # CMD...: with the disk full
	if [ "$full_disk" = tmpfs ]; then timeout 20 "$@"
	else (trap '' XFSZ; ulimit -f 0; exec timeout 20 "$@"); fi
}

injected=0
for who in broker fixture; do
	case $who in
	broker) cmd=("$SLUICE_BIN" broker --brokers 1) flag=--bootstrap-file ;;
	fixture) cmd=("$SLUICE_FIXTURE" --port 0 --data "$SLUICE_ROOT/data") flag=--url-file ;;
	esac
	target=$FULL/out
	[ "$full_disk" = ulimit ] && target=$D/out_$who
	run_full "${cmd[@]}" "$flag" "$target" >"$D/o" 2>"$D/e"
	rc=$?
	injected=$((injected + 1))
	[ "$rc" -ne 0 ] && [ "$rc" -lt 124 ] && ok "$who, disk full ($full_disk): exit $rc" ||
		not_ok "$who, disk full: exit $rc"
	grep -q "could not write .*$(basename "$target").*: \(No space left on device\|File too large\)" "$D/e" &&
		ok "$who, disk full: the message names the file and the reason" ||
		not_ok "$who, disk full: $(cat "$D/e")"
	check "$who, disk full: no file left behind" bash -c "! ls '$(dirname "$target")' | grep -q '^$(basename "$target")'"

	as_denied "${cmd[@]}" "$flag" "$D/ro/out" >"$D/o" 2>"$D/e"
	rc=$?
	injected=$((injected + 1))
	[ "$rc" -ne 0 ] && [ "$rc" -lt 124 ] && ok "$who, permission denied: exit $rc" ||
		not_ok "$who, permission denied: exit $rc"
	grep -q "could not write .*ro/out.*: Permission denied" "$D/e" &&
		ok "$who, permission denied: the message names the file and the reason" ||
		not_ok "$who, permission denied: $(cat "$D/e")"
	check_eq "$who, permission denied: nothing written" "$(ls -A "$D/ro")" ""

	"${cmd[@]}" "$flag" "$D/no/such/dir/out" >"$D/o" 2>"$D/e"
	rc=$?
	injected=$((injected + 1))
	check_eq "$who, missing directory: exit non-zero" "$([ "$rc" -ne 0 ] && [ "$rc" -lt 124 ] && echo yes)" yes
	grep -q "could not write .*no/such/dir/out.*: No such file or directory" "$D/e" &&
		ok "$who, missing directory: the message says so" || not_ok "$who, missing directory: $(cat "$D/e")"
done
[ -n "${SLUICE_FIGURES:-}" ] && echo "bad=local_writes tried=$injected crashes=0" >>"$SLUICE_FIGURES"
sl_done
