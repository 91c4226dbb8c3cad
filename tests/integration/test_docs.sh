#!/usr/bin/env bash
# test_docs: the docs stand on their own and say what the code does.
# - docs/metrics.md's metric table and docs/sources.md's option reference
#   are what scripts/gen-docs.sh (make docs) writes from the code: a metric
#   or option added, changed or removed without regenerating fails here;
# - nothing cites files that are not in the repository (../shared,
#   DESIGN.md, STYLE.md);
# - README.md links every page of docs/, and every docs/X.md named
#   anywhere exists.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
cd "$SLUICE_ROOT" || exit 1
d=$(sl_tmpdir)

cp -r docs "$d/docs"
scripts/gen-docs.sh "$SLUICE_BIN" "$d/docs" 2>"$d/gen.err"
check_eq "gen-docs.sh exits 0" "$?" 0
for f in metrics.md sources.md; do
	if diff -u "docs/$f" "$d/docs/$f" >"$d/$f.diff"; then
		ok "docs/$f is what make docs generates from the code"
	else
		not_ok "docs/$f is out of date (run make docs): $(grep -m3 '^[-+]|' "$d/$f.diff" | tr '\n' ' ')"
	fi
done
check "the metric table lists sluice_info with its version label" \
	grep -qF '| `sluice_info` | gauge | `role`, `instance`, `version` |' docs/metrics.md
# the check can fail: a metric the docs do not have is a difference
cat >"$d/sluice" <<SH
#!/bin/sh
"$SLUICE_BIN" "\$@"
[ "\$2" = --metrics-reference ] && echo '| \`sluice_new_total\` | counter |  | new |'
exit 0
SH
chmod +x "$d/sluice"
cp -r docs "$d/docs2"
scripts/gen-docs.sh "$d/sluice" "$d/docs2" 2>/dev/null
check "a metric added in the code is a difference in docs/metrics.md" \
	grep -qF '`sluice_new_total`' "$d/docs2/metrics.md"
if cmp -s docs/metrics.md "$d/docs2/metrics.md"; then
	not_ok "gen-docs.sh rewrote metrics.md with the new metric"
else
	ok "gen-docs.sh rewrote metrics.md with the new metric"
fi
check_eq "the rest of metrics.md is kept" \
	"$(diff "$d/docs/metrics.md" "$d/docs2/metrics.md" | grep -c '^[<>]')" 1

# nothing cites what a user of the repository does not have
cites=$(grep -rlE '\.\./shared|DESIGN\.md|STYLE\.md' --exclude-dir=.git \
	--exclude-dir='build*' --exclude=test_docs.sh \
	README.md docs common producers transformers loaders cli tests scripts \
	deploy Dockerfile docker-compose.yml Makefile 2>/dev/null)
check_eq "no doc or code cites ../shared, DESIGN.md or STYLE.md" "$cites" ""

for f in docs/*.md; do
	check "README.md links $f" grep -qF "$f" README.md
done
missing=""
for f in $(grep -rhoE 'docs/[a-z0-9_-]+\.md' README.md docs | sort -u); do
	[ -e "$f" ] || missing="$missing $f"
done
check_eq "every docs/X.md named in README.md and docs/ exists" "$missing" ""
sl_done
