#!/usr/bin/python3
"""kwait.py BROKERS TOPIC_REGEX TARGET [TIMEOUT_S]: polls the high
watermarks of the matching topics every 20 ms until their sum grew by
TARGET messages from the sum at start. Prints one line:
  base=N t_first=EPOCH n_first=N t_done=EPOCH n_done=N
t_first/n_first: the first poll that saw growth (and how much); t_done: the
first poll that saw all of it. Exit 1 on timeout (the line says how far it
got), so a lost message shows as a failure, not as a fast run.

One poll is one ListOffsets request for every partition at once (offset -1,
"latest", is the high watermark). It used to be a round trip per partition
(64 for the transform case's 4 topics of 16), which took about 0.12 CPU-s a
second in this process and 0.06 in the broker: CPU the measured worker lost
on 2 cores while the bound, timed in its own process, had it all. Now 100
polls take about 6 ms of CPU here."""
import re
import sys
import time

from confluent_kafka import Consumer, TopicPartition


def total(c, parts):
    n = 0
    for tp in c.offsets_for_times(parts, timeout=5):
        if tp.error or tp.offset < 0:
            raise RuntimeError(f"{tp.topic}[{tp.partition}]: no high watermark "
                               f"({tp.error})")
        n += tp.offset
    return n


def main():
    brokers, rx, target = sys.argv[1], re.compile(sys.argv[2]), int(sys.argv[3])
    timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 600
    c = Consumer({"bootstrap.servers": brokers, "group.id": "bench-kwait"})
    md = c.list_topics(timeout=10)
    parts = [TopicPartition(t, p, -1) for t, tm in md.topics.items()
             if rx.search(t) for p in tm.partitions]
    base = total(c, parts)
    print("ready", flush=True)
    t_first = n_first = None
    deadline = time.time() + timeout
    n = base
    while time.time() < deadline:
        n = total(c, parts) - base
        now = time.time()
        if n > 0 and t_first is None:
            t_first, n_first = now, n
        if n >= target:
            print(f"base={base} t_first={t_first:.3f} n_first={n_first} "
                  f"t_done={now:.3f} n_done={n}")
            return 0
        time.sleep(0.02)
    print(f"base={base} t_first={t_first} n_first={n_first} t_done=0 "
          f"n_done={n} timeout")
    return 1


if __name__ == "__main__":
    sys.exit(main())
