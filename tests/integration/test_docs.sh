#!/usr/bin/env bash
# test_docs: the docs stand on their own and say what the code does.
# - docs/metrics.md's metric table, docs/sources.md's option reference and
#   docs/maps.md's option tables are what scripts/gen-docs.sh (make docs)
#   writes from the code: a metric or option added, changed or removed
#   without regenerating fails here;
# - nothing cites files that are not in the repository (../shared,
#   DESIGN.md, STYLE.md);
# - docs/sources.md has one paging table with every style and its loop
#   guards;
# - README.md links every page of docs/, and every docs/X.md named
#   anywhere exists.
source "$SLUICE_ROOT/tests/lib.sh"
trap sl_cleanup EXIT
cd "$SLUICE_ROOT" || exit 1
d=$(sl_tmpdir)

cp -r docs "$d/docs"
scripts/gen-docs.sh "$SLUICE_BIN" "$d/docs" 2>"$d/gen.err"
check_eq "gen-docs.sh exits 0" "$?" 0
for f in metrics.md sources.md maps.md; do
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
# docs/sources.md's paging table: one unbroken table with a row for every
# style the option reference lists, and the loop guards each listed
styles=$("$SLUICE_BIN" fetch --reference | grep -m1 '^| `style` |' | cut -d'|' -f6 |
	sed 's/ or /, /' | tr -d ' ' | tr ',' ' ')
python3 - docs/sources.md "$styles" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
styles = sys.argv[2].split()
def check(what, cond, detail=""):
    print(("ok - " if cond else "not ok - ") + what + ("" if cond else ": " + str(detail)))
check("the option reference lists the paging styles", len(styles) >= 7, styles)
sec = text.split("## Paging styles\n", 1)[-1].split("\n## ", 1)[0]
lines = sec.split("\n")
start = next((i for i, l in enumerate(lines) if l.startswith("| style |")), None)
table = []
for l in lines[start or 0:] if start is not None else []:
    if not l.startswith("|"):
        break
    table.append(l)
rows = {m.group(1): l for l in table for m in [re.match(r"\| `([a-z_]+)` \|", l)] if m}
check("the paging table is one unbroken table", start is not None and len(table) == len(styles) + 2,
      "%d rows for %d styles" % (len(table), len(styles)))
missing = [s for s in styles if s not in rows]
check("the paging table has a row for every style (%s)" % " ".join(styles), not missing, missing)
cols = [len(re.sub(r"`[^`]*`", "", l).split("|")) - 2 for l in table]
check("every row of the paging table has its 5 columns", all(c == 5 for c in cols), cols)
for g in ("repeated URL", "identical page", "`paging.max_pages`", "total-derived limit",
          "`paging.resend_query`"):
    check("the loop guards table lists %s" % g, re.search(r"^\| %s \|" % re.escape(g), sec, re.M))
PY
sl_done
