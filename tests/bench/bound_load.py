#!/usr/bin/python3
"""bound_load.py PGLOG ENVELOPES.kv BATCH_ROWS OUTDIR: writes the load
stage's bound as psql scripts. It replays the exact statements `sluice
load` sent (read back from PostgreSQL's statement log of a warm-up run:
the staging table, made once per session, the COPY column list, the
INSERT ... ON CONFLICT) over the same envelopes, cut into the same
batches, one transaction each, with the COPY data prepared beforehand so
that only PostgreSQL's work is timed, and with PostgreSQL's default
durability, as the loader has (it sets no synchronous_commit or other
session setting). Two forms of the same batches:

  OUTDIR/bound.sql      text COPY of OUTDIR/b*.copy
  OUTDIR/bound.bin.sql  binary COPY of OUTDIR/b*.bin (no text parsing of
                        timestamps, numerics, jsonb in the server), which
                        OUTDIR/convert.sql makes from the text files once,
                        untimed: PostgreSQL itself writes them (COPY ... TO
                        ... FORMAT binary) from the same staging rows

run.sh cuts each into N session scripts (batch i on session i mod N, each
session with its own staging table), N the loader's connections, and the
bound is the fastest of 1 and N sessions, text and binary: the fastest
known way to do the loader's statements with the same resources. Exit 1
when the log lacks them.

What the bound leaves out, all of it work the loader must do, so that it
can only be faster than any loader: consuming the envelopes from Kafka,
decoding and checking them, deduplicating a batch (the captured keys are
distinct, so its batches need none) and encoding the COPY text; the
savepoint each batch is written under (to isolate rejected rows); and
the sluice.offsets and sluice.load_batches rows written in each batch's
transaction (the offsets committed with the rows). Its upsert is the
loader's own statement, so the lineage column and the newest-wins rule
are the same work."""
import json
import os
import re
import sys


def statements(path, table):
    """The last CREATE TEMP, COPY and upsert statements seen for table."""
    want = {}
    rx = re.compile(r"LOG:  (?:statement|execute <unnamed>): (.*)$")
    with open(path, errors="replace") as fh:
        lines = fh.readlines()
    for line in lines:
        m = rx.search(line)
        if not m:
            continue
        s = m.group(1)
        if s.startswith("DROP TABLE IF EXISTS pg_temp.") and \
                re.search(f'FROM ("?public"?\\.)?"?{table}"? WITH NO DATA', s):
            want["create"] = s
        elif re.match(f'COPY pg_temp\\."_sl_stage_{table}" ', s):
            want["copy"] = s
        elif re.match(f'WITH up AS \\(INSERT INTO ("?public"?\\.)?"?{table}"? AS t', s):
            want["upsert"] = s
    return want


def field(v):
    if v is None:
        return "\\N"
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, (dict, list)) and not (isinstance(v, list) and
                                            all(isinstance(x, str) for x in v)):
        v = json.dumps(v, separators=(",", ":"), ensure_ascii=False)
    elif isinstance(v, list):  # text[]
        v = "{" + ",".join('"' + x.replace("\\", "\\\\").replace('"', '\\"') +
                           '"' for x in v) + "}"
    elif not isinstance(v, str):
        v = json.dumps(v)
    return (v.replace("\\", "\\\\").replace("\t", "\\t")
            .replace("\n", "\\n").replace("\r", "\\r"))


def main():
    log, kv, batch, outdir = sys.argv[1], sys.argv[2], int(sys.argv[3]), \
        sys.argv[4]
    st = statements(log, "vulnerability")
    if len(st) != 3:
        print(f"bound_load: statements not found in {log}: {sorted(st)}",
              file=sys.stderr)
        return 1
    cols = re.search(r"COPY \S+ \((.*)\) FROM STDIN", st["copy"])
    cols = [c.strip().strip('"') for c in cols.group(1).split(",")][2:]
    envs = []
    with open(kv) as fh:
        for line in fh:
            line = line.rstrip("\n")
            if line:
                envs.append(json.loads(line.split("\t", 1)[1]))
    os.makedirs(outdir, exist_ok=True)
    copy_cols = st["copy"][len("COPY "):st["copy"].rindex(" FROM STDIN")]
    stage = copy_cols.split(" (")[0]
    head = "\\set ON_ERROR_STOP on\n" + st["create"] + ";\n"
    with open(os.path.join(outdir, "bound.sql"), "w") as sql, \
            open(os.path.join(outdir, "bound.bin.sql"), "w") as bsql, \
            open(os.path.join(outdir, "convert.sql"), "w") as conv:
        sql.write(head)
        bsql.write(head)
        conv.write(head)
        for b in range(0, len(envs), batch):
            path = os.path.join(outdir, f"b{b // batch:05d}.copy")
            with open(path, "w") as f:
                for i, env in enumerate(envs[b:b + batch]):
                    row = dict(env["row"])
                    row["_lineage"] = env.get("lineage")
                    f.write("u\t%d\t" % i +
                            "\t".join(field(row.get(c)) for c in cols) + "\n")
            bpath = path[:-len(".copy")] + ".bin"
            sql.write("BEGIN;\n" +
                      f"\\copy {copy_cols} FROM '{path}'\n" +
                      st["upsert"] + ";\nCOMMIT;\n")
            bsql.write("BEGIN;\n" +
                       f"\\copy {copy_cols} FROM '{bpath}' "
                       "WITH (FORMAT binary)\n" +
                       st["upsert"] + ";\nCOMMIT;\n")
            conv.write(f"BEGIN;\nTRUNCATE {stage};\n" +
                       f"\\copy {copy_cols} FROM '{path}'\n" +
                       f"\\copy {copy_cols} TO '{bpath}' "
                       "WITH (FORMAT binary)\nCOMMIT;\n")
    print(f"batches={(len(envs) + batch - 1) // batch} rows={len(envs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
