#!/usr/bin/env bash
# A large XML report through the fetcher in bounded memory (issue 27): a
# Nessus v2 report generated from the real sample's hosts, at a small and
# a large size, published with `sluice fetch --page` (the file is streamed
# by libxml2's reader in pages of about 8 MiB, each delivered before the
# next is read). Every host is published, and the peak RSS stays under
# the 256 MB worker budget whatever the size: the large report's peak is
# within 24 MB of the small one's. In make test the large size is 72 MB
# (above the 64 MiB limits.max_page_bytes that a report held in memory
# would hit); `make reliability` runs it at 1 GB
# (SLUICE_XML_LARGE_MB=1024).
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
D=$(sl_tmpdir)
SMALL_MB=12
LARGE_MB=${SLUICE_XML_LARGE_MB:-72}
BUDGET_KB=$((256 * 1024))
GROWTH_KB=$((24 * 1024))
NX=$SLUICE_ROOT/data/nessus/nessus_v_unknown.nessus

broker_start || { not_ok "broker"; exit 1; }
# ASan keeps freed memory in quarantine (256 MB by default), which is not
# the program's: a small one, so the sanitized build's RSS means something
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=4:thread_local_quarantine_size_kb=64

# run_page NAME FILE: publishes FILE; prints "EXIT MAXRSS_KB"
run_page() {
	/usr/bin/python3 - "$SLUICE_BIN" "$2" "$D/$1.log" <<'PY'
import resource, subprocess, sys, os
bin, page, log = sys.argv[1:4]
src = os.environ["SLUICE_ROOT"] + "/producers/sources/nessus.json"
with open(log, "w") as err:
    rc = subprocess.run(["timeout", "600", bin, "fetch", src, "--page", page],
                        stdout=subprocess.DEVNULL, stderr=err).returncode
# timeout is the direct child; RUSAGE_CHILDREN covers its waited-for child
print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
PY
}

for size in small:$SMALL_MB large:$LARGE_MB; do
	name=${size%%:*}
	mb=${size#*:}
	hosts=$(/usr/bin/python3 "$SLUICE_ROOT/tests/tools/gen_nessus.py" "$NX" "$D/$name.nessus" "$mb")
	bytes=$(stat -c %s "$D/$name.nessus")
	read -r rc rss < <(run_page "$name" "$D/$name.nessus")
	rm -f "$D/$name.nessus"
	check_eq "$name ($bytes bytes, $hosts hosts): --page exit 0" "$rc" 0
	check "$name: every host published" \
		grep -q "event=sync_done source=nessus .*records=$hosts " "$D/$name.log"
	check "$name: peak RSS ${rss} kB under the 256 MB budget" test "$rss" -lt "$BUDGET_KB"
	echo "# $name: $bytes bytes, $hosts hosts, peak RSS $rss kB," \
		"$(grep -o ' pages=[0-9]*' "$D/$name.log" | tail -1)," \
		"$(grep -o ' ms=[0-9]*' "$D/$name.log" | tail -1)"
	eval "rss_$name=$rss"
done
check "peak RSS does not grow with the report (${rss_small} kB at ${SMALL_MB} MB, ${rss_large} kB at ${LARGE_MB} MB)" \
	test "$rss_large" -lt $((rss_small + GROWTH_KB))

sl_done
