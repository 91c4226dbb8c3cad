#!/usr/bin/env bash
# gen-docs.sh SLUICE_BIN [DOCS_DIR]: rewrites the generated parts of the
# docs from the code, in place (DOCS_DIR defaults to docs/ next to this
# script): the metric table of metrics.md (`sluice health
# --metrics-reference`, from the catalog in common/sl_metrics.c), the
# option reference that ends sources.md (`sluice fetch --reference`, from
# the option tables in producers/fetch_source.c) and the option tables
# that end maps.md (`sluice check --reference`, from transformers/map.c). `make docs` runs it;
# tests/integration/test_docs.sh fails when the committed docs differ from
# what it writes.
set -euo pipefail
bin=${1:?usage: gen-docs.sh SLUICE_BIN [DOCS_DIR]}
dir=${2:-$(dirname "$0")/../docs}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$bin" health --metrics-reference >"$tmp/metrics"
"$bin" fetch --reference >"$tmp/sources"
"$bin" check --reference >"$tmp/maps"
[ -s "$tmp/metrics" ] && [ -s "$tmp/sources" ] && [ -s "$tmp/maps" ] || {
	echo "gen-docs.sh: $bin printed no reference" >&2
	exit 1
}

# metrics.md: the table from its header line to the first blank line
awk -v ref="$tmp/metrics" '
	!done && /^\| metric \| type \| labels \| meaning \|$/ {
		while ((getline l < ref) > 0) print l
		skip = 1; done = 1; next
	}
	skip && /^$/ { skip = 0 }
	!skip { print }
	END { if (!done) { print "gen-docs.sh: no metric table in metrics.md" > "/dev/stderr"; exit 1 } }
' "$dir/metrics.md" >"$tmp/metrics.md"

# sources.md: from the reference's first heading to the end
first=$(head -n 1 "$tmp/sources")
awk -v ref="$tmp/sources" -v first="$first" '
	$0 == first { while ((getline l < ref) > 0) print l; done = 1; exit }
	{ print }
	END { if (!done) { print "gen-docs.sh: no option reference in sources.md" > "/dev/stderr"; exit 1 } }
' "$dir/sources.md" >"$tmp/sources.md"

# maps.md: likewise, from the reference's first heading to the end
first=$(head -n 1 "$tmp/maps")
awk -v ref="$tmp/maps" -v first="$first" '
	$0 == first { while ((getline l < ref) > 0) print l; done = 1; exit }
	{ print }
	END { if (!done) { print "gen-docs.sh: no option tables in maps.md" > "/dev/stderr"; exit 1 } }
' "$dir/maps.md" >"$tmp/maps.md"

for f in metrics.md sources.md maps.md; do
	cmp -s "$tmp/$f" "$dir/$f" || cat "$tmp/$f" >"$dir/$f"
done
