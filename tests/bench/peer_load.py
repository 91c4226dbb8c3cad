#!/usr/bin/python3
"""peer_load.py BROKERS GROUP TOPIC TARGET [BATCH]: the load stage's peer,
what a competent user would write instead of `sluice load` with the usual
Python tools, done well: confluent-kafka consumes mapped.vulnerability
envelopes in batches (each consume() sized to what is left, so the last
one returns when the last message arrives instead of waiting out its
timeout inside the timed window), the batch is deduplicated on cve_id
(newest last_modified wins) and written with psycopg2's copy_expert as
text COPY into a temp staging table, then one INSERT ... SELECT ... ON
CONFLICT DO UPDATE from it with the loader's rule (the newest
last_modified wins, unchanged rows are not rewritten), one transaction
per batch: the database commit, then the Kafka offsets (synchronous).
COPY + set-based upsert is the fastest way psycopg2 offers; the earlier
peer's execute_values was slower. Stops after TARGET messages.
PostgreSQL from the libpq environment. Prints one line:
  t_first=EPOCH t_done=EPOCH messages=N"""
import io
import json
import sys
import time

import psycopg2
from confluent_kafka import Consumer

COLS = ["cve_id", "source_identifier", "published", "last_modified",
        "vuln_status", "description", "cvss_version", "cvss_score",
        "cvss_severity", "cvss_vector", "cisa_exploit_add", "metrics"]
DATA = [c for c in COLS if c != "cve_id"]
STAGE = ("CREATE TEMP TABLE peer_stage ON COMMIT DELETE ROWS AS SELECT " +
         ", ".join(COLS) + ", _lineage FROM vulnerability WITH NO DATA")
COPY = "COPY peer_stage (" + ", ".join(COLS) + ", _lineage) FROM STDIN"
SQL = ("INSERT INTO vulnerability AS t (" + ", ".join(COLS) +
       ", _lineage, _loaded_at) SELECT " + ", ".join(COLS) +
       ", _lineage, now() FROM peer_stage ON CONFLICT (cve_id) DO UPDATE SET " +
       ", ".join(f"{c} = EXCLUDED.{c}" for c in DATA) +
       ", _lineage = EXCLUDED._lineage, _loaded_at = now() WHERE (" +
       ", ".join(f"t.{c}" for c in DATA) + ") IS DISTINCT FROM (" +
       ", ".join(f"EXCLUDED.{c}" for c in DATA) +
       ") AND EXCLUDED.last_modified >= t.last_modified")


def field(v):
    """A value in COPY's text format."""
    if v is None:
        return "\\N"
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, (dict, list)):
        v = json.dumps(v, separators=(",", ":"))
    elif not isinstance(v, str):
        v = str(v)
    return (v.replace("\\", "\\\\").replace("\t", "\\t")
            .replace("\n", "\\n").replace("\r", "\\r"))


def main():
    brokers, group, topic, target = sys.argv[1:5]
    target = int(target)
    batch_rows = int(sys.argv[5]) if len(sys.argv) > 5 else 5000
    db = psycopg2.connect("")
    with db.cursor() as cur:
        cur.execute(STAGE)
    db.commit()
    c = Consumer({"bootstrap.servers": brokers, "group.id": group,
                  "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    c.subscribe([topic])
    seen = 0
    t_first = None
    while seen < target:
        msgs = c.consume(num_messages=min(batch_rows, target - seen),
                         timeout=0.5)
        if not msgs:
            continue
        if t_first is None:
            t_first = time.time()
        rows = {}
        for m in msgs:
            if m.error():
                continue
            env = json.loads(m.value())
            r = env["row"]
            old = rows.get(r["cve_id"])
            if old is None or old[0] <= r["last_modified"]:
                rows[r["cve_id"]] = (r["last_modified"], "\t".join(
                    [field(r.get(col)) for col in COLS] +
                    [field(env.get("lineage"))]))
            seen += 1
        buf = io.StringIO("\n".join(v[1] for v in rows.values()) + "\n")
        with db.cursor() as cur:
            cur.copy_expert(COPY, buf)
            cur.execute(SQL)
        db.commit()
        c.commit(asynchronous=False)
    t_done = time.time()
    c.close()
    print(f"t_first={t_first:.3f} t_done={t_done:.3f} messages={seen}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
