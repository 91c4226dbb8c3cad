#!/usr/bin/python3
"""peer_load.py BROKERS GROUP TOPIC TARGET [BATCH]: the load stage's peer,
what a user would write instead of `sluice load`: confluent-kafka consumes
mapped.vulnerability envelopes, psycopg2's execute_values upserts each
batch (newest last_modified wins, as sluice does), commits the database,
then the Kafka offsets. Stops after TARGET messages. PostgreSQL from the
libpq environment. Prints one line:
  t_first=EPOCH t_done=EPOCH messages=N"""
import json
import sys
import time

import psycopg2
import psycopg2.extras
from confluent_kafka import Consumer

COLS = ["cve_id", "source_identifier", "published", "last_modified",
        "vuln_status", "description", "cvss_version", "cvss_score",
        "cvss_severity", "cvss_vector", "cisa_exploit_add", "metrics"]
DATA = [c for c in COLS if c != "cve_id"]
SQL = ("INSERT INTO vulnerability AS t (" + ", ".join(COLS) +
       ", _lineage, _loaded_at) VALUES %s ON CONFLICT (cve_id) DO UPDATE SET " +
       ", ".join(f"{c} = EXCLUDED.{c}" for c in DATA) +
       ", _lineage = EXCLUDED._lineage, _loaded_at = now() WHERE (" +
       ", ".join(f"t.{c}" for c in DATA) + ") IS DISTINCT FROM (" +
       ", ".join(f"EXCLUDED.{c}" for c in DATA) +
       ") AND EXCLUDED.last_modified >= t.last_modified")
TEMPLATE = "(" + ", ".join(["%s"] * (len(COLS) + 1)) + ", now())"


def main():
    brokers, group, topic, target = sys.argv[1:5]
    target = int(target)
    batch_rows = int(sys.argv[5]) if len(sys.argv) > 5 else 5000
    db = psycopg2.connect("")
    c = Consumer({"bootstrap.servers": brokers, "group.id": group,
                  "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    c.subscribe([topic])
    seen = 0
    t_first = None
    while seen < target:
        msgs = c.consume(num_messages=batch_rows, timeout=0.5)
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
            if old is None or old[3] <= r["last_modified"]:
                vals = [r.get(col) for col in COLS]
                m = r.get("metrics")
                vals[COLS.index("metrics")] = (None if m is None
                                               else json.dumps(m))
                rows[r["cve_id"]] = vals + [json.dumps(env.get("lineage"))]
            seen += 1
        with db.cursor() as cur:
            psycopg2.extras.execute_values(cur, SQL, list(rows.values()),
                                           template=TEMPLATE,
                                           page_size=len(rows) or 1)
        db.commit()
        c.commit(asynchronous=False)
    t_done = time.time()
    c.close()
    print(f"t_first={t_first:.3f} t_done={t_done:.3f} messages={seen}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
