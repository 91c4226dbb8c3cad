#!/usr/bin/python3
"""tests/tools/guarantee_gen.py: the data of tests/integration/
test_guarantee_order.sh, one round at a time, reproducible from a seed.

    guarantee_gen.py SEED ROUND STATE OUTDIR

A set of records (g_parent rows, each with two child sets: g_child and
g_tag) gets new versions every round. Each version is published as the
transformer would: an upsert of the parent carrying its version, and a
replace of each child set carrying the parent's version. The round's
messages are those of its new versions, replays of versions published in
earlier rounds (some or all of their three messages), and duplicates,
shuffled, each to a random partition of its topic, split into phases
between which the test restarts, kills or replays loaders. A version's
timestamp is written in one of several forms of the same instant (.000Z,
.000000Z, no fraction, another zone), as sources do.

STATE (JSON, created on the first round) remembers what was published.
OUTDIR gets:
  phase<K>.list   "topic partition file" lines, in publishing order
  m<N>.tsv        the messages of one kcat call: key TAB envelope
  actions         one action per gap between phases (kill9 L, term L,
                  down L, replay TOPIC, none)
  counts          "topic messages" published so far (all rounds)
  expected.<table> the rows every table must hold: the newest version of
                  every record, as the test's queries print them
Everything depends only on SEED and ROUND (and the rounds before).
"""
import json
import os
import random
import sys
from datetime import datetime, timedelta, timezone

RECORDS = 40
PARTITIONS = 4
PHASES = 3
TOPICS = ["mapped.g_parent", "mapped.g_child", "mapped.g_tag"]
KINDS = ["kill9", "term", "replay", "down"]
BASE = datetime(2024, 3, 1, tzinfo=timezone.utc)


def rid(i):
    return "R%02d" % i


def instant(i, v):
    return BASE + timedelta(seconds=v * 3600 + i * 7)


def version_text(t, rng):
    form = rng.randrange(5)
    if form == 0:
        return t.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    if form == 1:
        return t.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    if form == 2:
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")
    if form == 3:
        return t.astimezone(timezone(timedelta(hours=2))).strftime("%Y-%m-%dT%H:%M:%S+02:00")
    return t.astimezone(timezone(timedelta(hours=-5, minutes=-30))).strftime("%Y-%m-%dT%H:%M:%S.000-05:30")


def content(seed, i, v):
    """The rows of version v of record i."""
    rng = random.Random("%s/%d/%d" % (seed, i, v))
    val = "%s-v%d-%08x" % (rid(i), v, rng.getrandbits(32))
    items = sorted(rng.sample("abcdef", rng.randint(0, 4)))
    children = [(it, "v%d-%d" % (v, rng.randrange(1000))) for it in items]
    tags = sorted(rng.sample(["t1", "t2", "t3", "t4"], rng.randint(0, 3)))
    return val, children, tags


def envelopes(seed, rnd, i, v, rng):
    """The three messages of version v of record i, as (topic, env)."""
    val, children, tags = content(seed, i, v)
    key = {"id": rid(i)}
    lin = {"source": "guarantee", "round": rnd, "version": v}
    ver = version_text(instant(i, v), rng)
    parent = {"v": 1, "table": "g_parent", "op": "upsert", "key": key,
              "row": {"id": rid(i), "val": val, "n": v, "last_modified": ver},
              "version": ver, "version_column": "last_modified", "lineage": lin}
    ch = {"v": 1, "table": "g_child", "op": "replace", "key": key,
          "rows": [{"id": rid(i), "item": it, "note": note} for it, note in children],
          "version": version_text(instant(i, v), rng), "lineage": lin}
    tg = {"v": 1, "table": "g_tag", "op": "replace", "key": key,
          "rows": [{"id": rid(i), "tag": t} for t in tags],
          "version": version_text(instant(i, v), rng), "lineage": lin}
    return [("mapped.g_parent", parent), ("mapped.g_child", ch), ("mapped.g_tag", tg)]


def main():
    seed, rnd, state_path, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    rng = random.Random("%s/round/%d" % (seed, rnd))
    if os.path.exists(state_path):
        state = json.load(open(state_path))
    else:
        state = {"next_v": [1] * RECORDS, "published": [], "counts": {t: 0 for t in TOPICS}}
    msgs = []
    new = []
    for i in range(RECORDS):
        for _ in range(rng.choice([0, 1, 1, 2])):
            v = state["next_v"][i]
            state["next_v"][i] += 1
            new.append((i, v))
            msgs += envelopes(seed, rnd, i, v, rng)
    # replays: versions of earlier rounds, some or all of their messages
    older = [tuple(p) for p in state["published"]]
    for i, v in rng.sample(older, len(older) // 4):
        envs = envelopes(seed, rnd, i, v, rng)
        msgs += rng.sample(envs, rng.randint(1, 3))
    # duplicates
    msgs += [rng.choice(msgs) for _ in range(len(msgs) * 15 // 100)]
    rng.shuffle(msgs)
    state["published"] += [list(p) for p in new]
    # phases: cut the shuffled list in PHASES parts
    cuts = sorted(rng.sample(range(1, len(msgs)), PHASES - 1))
    parts = [msgs[a:b] for a, b in zip([0] + cuts, cuts + [len(msgs)])]
    nfile = 0
    for k, part in enumerate(parts):
        groups = {}
        for topic, env in part:
            p = rng.randrange(PARTITIONS)
            groups.setdefault((topic, p), []).append(env)
            state["counts"][topic] += 1
        order = sorted(groups)
        rng.shuffle(order)
        with open(os.path.join(out, "phase%d.list" % k), "w") as lst:
            for topic, p in order:
                name = os.path.join(out, "m%d.tsv" % nfile)
                nfile += 1
                with open(name, "w") as f:
                    for env in groups[(topic, p)]:
                        f.write(env["key"]["id"] + "\t" +
                                json.dumps(env, separators=(",", ":")) + "\n")
                lst.write("%s %d %s\n" % (topic, p, name))
    # actions: every kind comes round once in each 4 gaps, in a seeded order
    perm = KINDS[:]
    random.Random("%s/actions" % seed).shuffle(perm)
    with open(os.path.join(out, "actions"), "w") as f:
        for gap in range(PHASES - 1):
            kind = perm[((rnd - 1) * (PHASES - 1) + gap) % len(perm)]
            arg = rng.choice(TOPICS) if kind == "replay" else str(rng.randrange(2))
            f.write("%s %s %d\n" % (kind, arg, rng.randrange(400)))
    with open(os.path.join(out, "counts"), "w") as f:
        for t in TOPICS:
            f.write("%s %d\n" % (t, state["counts"][t]))
    # expected: the newest version of every record published so far
    newest = {}
    for i, v in state["published"]:
        newest[i] = max(newest.get(i, 0), v)
    par, chi, tag = [], [], []
    for i in sorted(newest):
        v = newest[i]
        val, children, tags = content(seed, i, v)
        par.append("%s|%s|%d|%d" % (rid(i), val, v, int(instant(i, v).timestamp())))
        chi += ["%s|%s|%s" % (rid(i), it, note) for it, note in children]
        tag += ["%s|%s" % (rid(i), t) for t in tags]
    for name, lines in (("g_parent", par), ("g_child", chi), ("g_tag", tag)):
        with open(os.path.join(out, "expected." + name), "w") as f:
            f.write("".join(line + "\n" for line in sorted(lines)))
    json.dump(state, open(state_path, "w"))
    print("round=%d messages=%d new_versions=%d records=%d" % (rnd, len(msgs), len(new), len(newest)))


if __name__ == "__main__":
    main()
