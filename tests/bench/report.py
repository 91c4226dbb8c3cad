#!/usr/bin/python3
"""report.py RESULTS.tsv OUT.md SECONDS SIZES: turns the bench's raw
results (one line per measurement: case variant run impl records seconds
cpu_s rss_kb extra) into bench/results.md, medians of the runs, ratios
against the bound and the peer, and a chart (OUT's directory/ratios.png,
with gnuplot)."""
import collections
import os
import platform
import statistics
import subprocess
import sys
import time


def num(s):
    try:
        return float(s)
    except ValueError:
        return None


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def f(x, fmt="{:,.0f}"):
    return "–" if x is None else fmt.format(x)


def kv(extra):
    """ "a=1 b=2" -> {"a": 1.0, "b": 2.0} (numbers only)"""
    out = {}
    for w in (extra or "").split():
        k, _, v = w.partition("=")
        if num(v) is not None:
            out[k] = num(v)
    return out


def fetch_cpu(rows):
    """The fetch case's CPU, run by run: the bound's curl and the fixture
    server meanwhile; sluice's sync and the fixture and broker meanwhile.
    All share the machine's cores, so no run can end before all their CPU
    divided by the cores: the floor under any fetcher that does this work."""
    bound = {r["run"]: r for r in rows.get(("fetch", "concurrency 4",
                                            "bound"), [])}
    sl = {r["run"]: r for r in rows.get(("fetch", "concurrency 4",
                                         "sluice"), [])}
    # curl then kcat: the into-Kafka peer (it was that case's bound)
    kafka = {r["run"]: r for r in rows.get(("fetch", "concurrency 4, "
                                            "into Kafka", "peer"), [])}
    runs = [k for k in sl if k in bound and "fixture_cpu_s" in
            kv(sl[k]["extra"]) and "fixture_cpu_s" in kv(bound[k]["extra"])]
    if not runs:
        return []
    cores = os.cpu_count() or 1
    b_cpu = med([(bound[k]["cpu"] or 0) + kv(bound[k]["extra"])
                 ["fixture_cpu_s"] for k in runs])
    b_fix = med([kv(bound[k]["extra"])["fixture_cpu_s"] for k in runs])
    b_curl = med([bound[k]["cpu"] for k in runs])
    b_sec = med([bound[k]["sec"] for k in runs])
    s_sync = med([kv(sl[k]["extra"]).get("sync_cpu_s") for k in runs])
    s_fix = med([kv(sl[k]["extra"])["fixture_cpu_s"] for k in runs])
    s_brk = med([kv(sl[k]["extra"]).get("broker_cpu_s") for k in runs])
    s_sec = med([sl[k]["sec"] for k in runs])
    s_all = med([kv(sl[k]["extra"]).get("sync_cpu_s", 0) +
                 kv(sl[k]["extra"])["fixture_cpu_s"] +
                 kv(sl[k]["extra"]).get("broker_cpu_s", 0) for k in runs])
    # the publish floor, one variant per codec: per run, the fastest
    codecs = {}
    for (c, v, i), rs in rows.items():
        if c == "fetch" and i == "floor" and v.startswith("publish floor, "):
            codecs[v[len("publish floor, "):]] = {
                r["run"]: r for r in rs if r["sec"]}
    pfl = {}
    for name, by_run in codecs.items():
        for k, r in by_run.items():
            if k not in pfl or r["sec"] < pfl[k]["sec"]:
                pfl[k] = dict(r, codec=name)
    k_rows = [kv(kafka[k]["extra"]) for k in runs if k in kafka]
    k_cpu = med([x.get("kcat_cpu_s") for x in k_rows])
    k_brk = med([x.get("broker_cpu_s") for x in k_rows])
    L = ["", f"**fetch: where the CPU goes** (medians of {len(runs)} runs; "
         f"CPU seconds from /usr/bin/time, the fetcher's own `cpu_ms` "
         f"from `sync_start` to `sync_done`, and the fixture server's and "
         f"the broker's /proc ticks over each run; the machine has "
         f"{cores} cores):", "",
         "| run | wall s | its own CPU s | fixture server CPU s | "
         "broker CPU s | all ÷ cores (s) |", "|---|---|---|---|---|---|",
         f"| bound: parallel curl to /dev/null | {f(b_sec, '{:.3f}')} | "
         f"{f(b_curl, '{:.2f}')} | {f(b_fix, '{:.2f}')} | – | "
         f"{f(b_cpu / cores if b_cpu is not None else None, '{:.3f}')} |",
         f"| sluice fetch (sync) | {f(s_sec, '{:.3f}')} | "
         f"{f(s_sync, '{:.2f}')} | {f(s_fix, '{:.2f}')} | "
         f"{f(s_brk, '{:.2f}')} | "
         f"{f(s_all / cores if s_all is not None else None, '{:.3f}')} |"]
    if k_rows:
        L.append(f"| kcat alone (the into-Kafka peer's second half) | – | "
                 f"{f(k_cpu, '{:.2f}')} | – | {f(k_brk, '{:.2f}')} | – |")
    p_runs = [k for k in runs if k in pfl]
    p_sec = med([pfl[k]["sec"] for k in p_runs])
    p_cpu = med([pfl[k]["cpu"] for k in p_runs])
    p_brk = med([kv(pfl[k]["extra"]).get("broker_cpu_s") for k in p_runs])
    if p_runs:
        p_all = med([(pfl[k]["cpu"] or 0) +
                     kv(pfl[k]["extra"]).get("broker_cpu_s", 0)
                     for k in p_runs])
        for name in sorted(codecs):
            br = [codecs[name][k] for k in p_runs if k in codecs[name]]
            L.append(f"| publish alone, {name}: the same bytes from memory "
                     f"into Kafka, nothing fetched (bench_publish_floor) | "
                     f"{f(med([r['sec'] for r in br]), '{:.3f}')} | "
                     f"{f(med([r['cpu'] for r in br]), '{:.2f}')} | – | "
                     f"{f(med([kv(r['extra']).get('broker_cpu_s') for r in br]), '{:.2f}')} | – |")
        L.append(f"| publish floor: the fastest codec of each run | "
                 f"{f(p_sec, '{:.3f}')} | {f(p_cpu, '{:.2f}')} | – | "
                 f"{f(p_brk, '{:.2f}')} | "
                 f"{f(p_all / cores if p_all is not None else None, '{:.3f}')} |")
    if s_all is not None and b_sec:
        floor = s_all / cores
        L.append("")
        L.append(f"Each run shares the cores with the fixture server and, "
                 f"for sluice, the broker. The bound used "
                 f"{(b_curl or 0) + (b_fix or 0):.2f} CPU s in all over "
                 f"{b_sec:.3f} s. sluice's sync used {s_sync or 0:.2f} s of "
                 f"its own CPU (HTTP, checking and splitting each page, "
                 f"LZ4 and the produce in librdkafka's threads), the broker "
                 f"{s_brk or 0:.2f} s and the fixture {s_fix or 0:.2f} s: on "
                 f"{cores} cores the run cannot end before {floor:.3f} s, "
                 f"a ratio of {b_sec / floor:.2f} to the bound at best, with perfect "
                 f"overlap; it took {s_sec:.3f} s. To reach 0.8 × the bound "
                 f"({b_sec / 0.8:.3f} s) the fetcher and the broker together "
                 f"could use at most "
                 f"{max(0.0, b_sec / 0.8 * cores - (s_fix or 0)):.2f} CPU s; "
                 f"they used {(s_sync or 0) + (s_brk or 0):.2f}.")
    if p_runs and p_sec and b_sec:
        ceil = [bound[k]["sec"] / pfl[k]["sec"] for k in p_runs
                if bound[k]["sec"]]
        own = [sl[k]["sec"] / pfl[k]["sec"] for k in p_runs
               if sl[k]["sec"]]
        L.append("")
        L.append(f"**The publish floor.** Publishing alone, with the pages "
                 f"already in memory and nothing fetched, checked, split or "
                 f"copied (the same pieces as kcat's, each message "
                 f"referencing its piece; sluice's producer settings, "
                 f"idempotence and linger 50 ms, with each of librdkafka's "
                 f"codecs, sluice's being LZ4; the producer id obtained "
                 f"before the clock starts) took {p_sec:.3f} s with the "
                 f"fastest codec of each run "
                 f"({', '.join(sorted(set(pfl[k]['codec'] for k in p_runs)))}), "
                 f"{p_sec / b_sec:.1f} × the bound's whole fetch. Whatever "
                 f"its HTTP side, a fetcher that publishes through "
                 f"librdkafka to this broker cannot end sooner, so against "
                 f"a bound that only fetches it cannot pass "
                 f"**{med(ceil):.2f} × the bound** here "
                 f"(bound ÷ floor run by run: {min(ceil):.2f}–"
                 f"{max(ceil):.2f}). sluice's whole sync, fetching "
                 f"included, took {med(own):.2f} × the floor (run by run "
                 f"{min(own):.2f}–{max(own):.2f}).")
    return L


# the bounds and peers as they were defined before issue 22, still measured
# beside the new ones where they still run: (case, variant match, impl,
# what it was)
OLD = [("fetch", "concurrency 4", "bound_old",
        "curl --parallel without --parallel-immediate"),
       ("fetch", "concurrency 4, over a 50 MB/s link", "bound_old",
        "curl --parallel without --parallel-immediate"),
       ("fetch", "concurrency 4, into Kafka", "peer",
        "curl into files, then kcat (no overlap): now the peer"),
       ("transform", None, "bound_jansson",
        "Jansson json_loadb of the pages + json_dumps of the rows"),
       ("load", None, "bound_t1",
        "the loader's statements on 1 psql session, text COPY")]


def redefined(rows, variants, rates_by_run, paired, spread, target):
    """sluice against the old and the new definition of each bound, run by
    run, in the same runs."""
    L = []
    for case, var, impl, what in OLD:
        for v in variants(case):
            if var is not None and v != var:
                continue
            sr = rates_by_run(case, v, "sluice")
            old = paired(sr, rates_by_run(case, v, impl))
            new = paired(sr, rates_by_run(case, v, "bound"))
            if not old or not new:
                continue
            if not L:
                L += ["", "**The bounds redefined (issue 22)**: sluice "
                      "against the old definition of each bound and the new "
                      "one, both measured in the same runs (run by run: "
                      "median, range):", "",
                      "| case | old bound: what it was | × old bound | "
                      "× new bound |", "|---|---|---|---|"]
            tb = target(case, v)[0]
            L.append(f"| {case}, {v} | {what} | {spread(old, None)} | "
                     f"{spread(new, tb)} |")
    return L


def load_bounds(rows, variants):
    """The load bound's four ways, medians, and which was fastest how
    often (the bound is the fastest of each run)."""
    L = []
    ways = sorted({i for (c, _v, i) in rows if c == "load" and
                   i.startswith("bound_")})
    if not ways:
        return L
    L += ["", "**The load bound's ways** (the bound of each run is the "
          "fastest of them: t = text COPY, b = binary COPY, then the "
          "number of psql sessions; rec/s, medians):", "",
          "| load case | " + " | ".join(w[len("bound_"):] for w in ways) +
          " | fastest (runs) |",
          "|---|" + "---|" * len(ways) + "---|"]
    for v in variants("load"):
        cells = []
        for w in ways:
            rs = [r["recs"] / r["sec"] for r in rows.get(("load", v, w), [])
                  if r["recs"] and r["sec"]]
            cells.append(f(med(rs)))
        best = collections.Counter(
            r["extra"].split("=", 1)[1] for r in
            rows.get(("load", v, "bound"), []) if r["extra"].startswith("best="))
        L.append(f"| {v} | " + " | ".join(cells) + " | " +
                 ", ".join(f"{k} {n}" for k, n in best.most_common()) + " |")
    return L


def scale(rows, out):
    """The scale curve: the pipeline at several sizes, seconds per record
    and each worker's peak RSS, and a chart (scale.png beside OUT)."""
    sizes = []
    for (c, v, i), rs in rows.items():
        if c == "scale" and i == "sluice":
            sizes.append((rs[0]["recs"] or 0, v, rs))
    if not sizes:
        return []
    sizes.sort()
    L = ["", "## Scale (the pipeline at several sizes)\n",
         "The whole pipeline (fetch, transform, load, all four tables) at "
         "multiples of the stage cases' records, each size from an empty "
         "broker and database, the same partitions per topic at every "
         "size; seconds are the pipeline's (sync start to the last row "
         "loaded), per record in µs; RSS the peak of each worker (max over "
         "the runs). Target: µs per record within 20 % of the smallest "
         "size's, RSS flat.\n",
         "| size | records | runs | s (median) | µs / record | × smallest "
         "| fetch RSS | transform RSS | load RSS | raw.nvd partitions "
         "trimmed after reading | load avg |",
         "|---|---|---|---|---|---|---|---|---|---|---|"]
    base = None
    pts = []
    for recs, v, rs in sizes:
        ok = [r for r in rs if r["sec"]]
        lost = [r for r in rs if not r["sec"]]
        sec = med([r["sec"] for r in ok])
        us = sec / recs * 1e6 if sec and recs else None
        if base is None and us:
            base = us
        rss = {}
        for w in ("fetch", "transform", "load"):
            pr = rows.get(("scale_proc", f"{v} {w}", "sluice"), [])
            rss[w] = max([r["rss"] for r in pr if r["rss"]], default=None)
        trim = med([kv(r["extra"]).get("raw_trimmed_partitions")
                    for r in rs])
        note = (f" ({len(lost)} run(s) lost rows: "
                + ", ".join(r["extra"] for r in lost) + ")") if lost else ""
        L.append(f"| {v}{note} | {f(recs)} | {len(ok)} | "
                 f"{f(sec, '{:.1f}')} | {f(us, '{:.0f}')} | "
                 f"{f(us / base if us and base else None, '{:.2f}')} | "
                 + " | ".join(f(rss[w] / 1024 if rss[w] else None,
                                '{:.0f} MB') for w in rss)
                 + f" | {f(trim, '{:.0f}')} | "
                 f"{f(med([r['load'] for r in rs]), '{:.1f}')} |")
        if us:
            pts.append((recs, us, *[(rss[w] or 0) / 1024 for w in rss]))
    png = os.path.join(os.path.dirname(out) or ".", "scale.png")
    if len(pts) > 1 and scale_chart(pts, png):
        L.insert(2, "![seconds per record and RSS against size](scale.png)\n")
    return L


def scale_chart(pts, png):
    dat = png + ".dat"
    with open(dat, "w") as fh:
        for p in pts:
            fh.write(" ".join(f"{x:.3f}" for x in p) + "\n")
    script = f"""
set terminal pngcairo size 1000,420 font ",9"
set output "{png}"
set multiplot layout 1,2 title "the pipeline at several sizes"
set logscale x
set xlabel "records"
set grid
set yrange [0:*]
set ylabel "µs per record (end to end)"
plot "{dat}" using 1:2 with linespoints pt 7 title "sluice pipeline", \\
     {pts[0][1] * 1.2:.1f} with lines dt 2 title "target: 1.2 x the smallest size's"
set ylabel "peak RSS, MB"
plot "{dat}" using 1:3 with linespoints pt 7 title "fetch", \\
     "" using 1:4 with linespoints pt 7 title "transform", \\
     "" using 1:5 with linespoints pt 7 title "load"
unset multiplot
"""
    try:
        subprocess.run(["gnuplot"], input=script, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return False
    finally:
        os.unlink(dat)
    return True


def main():
    res, out, secs, sizes = sys.argv[1:5]
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    rows = collections.defaultdict(list)
    for line in open(res):
        p = line.rstrip("\n").split("\t")
        if len(p) < 9:
            continue
        case, var, run, impl, recs, sec, cpu, rss, extra = p[:9]
        rows[(case, var, impl)].append(dict(
            run=run, recs=num(recs), sec=num(sec), cpu=num(cpu),
            rss=num(rss), extra=extra,
            load=num(p[9]) if len(p) > 9 else None))

    def stat(case, var, impl):
        rs = rows.get((case, var, impl), [])
        if not rs:
            return None
        rates = [r["recs"] / r["sec"] for r in rs
                 if r["recs"] and r["sec"]]
        return dict(n=len(rs), rate=med(rates), sec=med([r["sec"] for r in rs]),
                    load=med([r["load"] for r in rs]),
                    cpu=med([r["cpu"] for r in rs]),
                    rss=max([r["rss"] for r in rs if r["rss"] is not None],
                            default=None),
                    extra=[r["extra"] for r in rs])

    def variants(case):
        seen = []
        for (c, v, _i) in rows:
            if c == case and v not in seen:
                seen.append(v)
        return seen

    L = []
    chart = []  # (label, ratio to bound, target)
    L.append("# sluice benchmark results\n")
    L.append("Written by `make bench` (tests/bench/run.sh) from one real run "
             "on this machine; do not edit by hand.\n")
    L.append(f"- command: `make bench` with {sizes}")
    L.append(f"- when: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
             f"host: {platform.node()}, {os.cpu_count()} cores, "
             f"cases took {secs} s")
    L.append("- every figure is the median of the runs (n); rates are "
             "NVD records per second (the xml case: Nessus ReportHosts per "
             "second); a ratio compares sluice with the "
             "bound or the peer measured in the same run on the same input;"
             " CPU is user+system seconds of the whole process, RSS its peak "
             "(/usr/bin/time)")
    L.append("- the machine is shared (2 cores, other engineers' builds "
             "and tests run beside): read the ratios, not the absolute "
             "rates; the machine's 1-minute load average when each figure "
             "was taken is in the raw table and, as a median, beside each "
             "case (above 2 the cores were oversubscribed)\n")

    L.append("## Summary\n")
    L.append("| case | sluice rec/s | bound rec/s | × bound | target | "
             "peer rec/s | × peer | target | sluice CPU s | sluice peak RSS "
             "| load avg |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|")
    # issue 22's targets; bare curl on loopback is information without a
    # target: a fetcher that must publish cannot beat a bound that does not
    # transform_script: "bound" is the same map without its one script
    # field (tests/bench/run.sh, case_script)
    targets = {"fetch": (0.8, None), "transform": (0.7, 3.0),
               "transform_script": (0.8, None),
               "load": (0.8, 1.5), "xml": (0.7, None)}
    # issue 27's target is the conversion's; the whole fetcher into Kafka
    # beside the same bound is information
    no_target = {("fetch", "concurrency 4"),
                 ("xml", "Nessus report, sluice fetch --page into Kafka")}

    def target(case, v):
        tb, tp = targets[case]
        return (None if (case, v) in no_target else tb), tp
    for case in ("fetch", "transform", "transform_script", "load", "xml"):
        for v in variants(case):
            s, b, p = (stat(case, v, i) for i in ("sluice", "bound", "peer"))
            if not s:
                continue
            rb = s["rate"] / b["rate"] if b and b["rate"] and s["rate"] else None
            rp = s["rate"] / p["rate"] if p and p["rate"] and s["rate"] else None
            tb, tp = target(case, v)
            L.append(f"| {case}, {v} (n={s['n']}) | {f(s['rate'])} | "
                     f"{f(b['rate'] if b else None)} | {f(rb, '{:.2f}')} | "
                     f"{'≥ ' + str(tb) if tb else '–'} | "
                     f"{f(p['rate'] if p else None)} | "
                     f"{f(rp, '{:.2f}')} | {'≥ ' + str(tp) if tp else '–'} | "
                     f"{f(s['cpu'], '{:.1f}')} | "
                     f"{f(s['rss'] / 1024 if s['rss'] else None, '{:.0f} MB')} "
                     f"| {f(s['load'], '{:.1f}')} |")
            if rb is not None:
                chart.append((f"{case} {v}", rb, tb))
    # the same ratios taken run by run: each run's sluice against the
    # bound and the peer measured beside it (seconds apart, in the same
    # iteration), then the median of those ratios. The machine's load
    # drifts over a case's minutes; a ratio of medians can pair a quiet
    # sluice run with a busy bound run, a paired ratio cannot.
    def rates_by_run(case, var, impl):
        return {r["run"]: r["recs"] / r["sec"]
                for r in rows.get((case, var, impl), [])
                if r["recs"] and r["sec"]}

    def paired(a, b):
        return [a[k] / b[k] for k in a if k in b and b[k]]

    def spread(xs, target):
        if not xs:
            return "–"
        met = sum(1 for x in xs if target is not None and x >= target)
        return (f"{med(xs):.2f} ({min(xs):.2f}–{max(xs):.2f}"
                + (f", {met} of {len(xs)} ≥ {target}" if target else "")
                + ")")

    prow = []
    for case in ("fetch", "transform", "transform_script", "load", "xml"):
        for v in variants(case):
            sr = rates_by_run(case, v, "sluice")
            pb = paired(sr, rates_by_run(case, v, "bound"))
            pp = paired(sr, rates_by_run(case, v, "peer"))
            if len(pb) > 1 or len(pp) > 1:
                tb, tp = target(case, v)
                prow.append(f"| {case}, {v} | {spread(pb, tb)} | "
                            f"{spread(pp, tp)} |")
    if prow:
        L.append("")
        L.append("The same ratios run by run (each sluice run against the "
                 "bound and the peer measured beside it in the same "
                 "iteration; median, range, and how many runs meet the "
                 "target). The table above divides medians taken over all "
                 "runs, which can pair a quiet run of one with a busy run "
                 "of the other when the machine's load drifts:\n")
        L.append("| case | × bound, run by run | × peer, run by run |")
        L.append("|---|---|---|")
        L.extend(prow)
    L.extend(redefined(rows, variants, rates_by_run, paired, spread, target))
    L.extend(load_bounds(rows, variants))
    L.extend(fetch_cpu(rows))
    fr = stat("fetch_rate", "limit 10/s", "sluice")
    fg = stat("fetch_rate_gap", "limit 10/s", "sluice")
    if fr:
        L.append("")
        thr = ", ".join(fr["extra"])
        L.append(f"**fetch with a rate limit** (fixture and source both at "
                 f"10 requests/s, pages of 100, concurrency 4): "
                 f"throttle answers per run: {thr} (target 0).")
        L.append("")
        if fg and fg["rate"]:
            L.append(f"- slot reuse: a request arrives on average "
                     f"{f(10 / fg['rate'] * 1000, '{:.0f}')} ms after the "
                     f"one {10} requests before it (the window is 1000 ms): "
                     f"**{f(fg['rate'] / 10, '{:.3f}')} × the limit** "
                     f"(target ≥ 0.95). This is the rate limiter's own "
                     f"figure: an ideal client reuses each slot the moment "
                     f"the server's window frees it.")
            chart.append(("fetch rate limit", fg["rate"] / 10, 0.95))
        L.append(f"- whole run: (requests − limit) / (last accepted − first "
                 f"accepted) = {f(fr['rate'], '{:.2f}')} requests/s = "
                 f"{f(fr['rate'] / 10 if fr['rate'] else None, '{:.2f}')} × "
                 f"the limit. This also counts how fast 4 connections can "
                 f"send each window's 10 requests (the concurrency cap "
                 f"spreads every burst over ~100 ms), not only the "
                 f"limiter; it was the only figure before.")
    pl = stat("pipeline", "end to end", "sluice")
    if pl:
        slow = []
        for case, var in (("fetch", "concurrency 4"),
                          ("transform", "linger.ms 50 (default)"),
                          ("load_all", "4 tables")):
            s = stat(case, var, "sluice")
            if s and s["rate"]:
                slow.append((s["rate"], case if case != "load_all"
                             else "load (all 4 tables)"))
        slow.sort()
        # the same stages alone on the pipeline's own data (same run)
        same = []
        for w in ("transform", "load"):
            s = stat("pipeline_alone", w, "sluice")
            if s and s["rate"]:
                same.append((s["rate"], w if w != "load" else
                             "load (all 4 tables)", s["n"]))
        same.sort()
        L.append("")
        L.append("## Pipeline (API → rows)\n")
        L.append("| records | runs | rec/s end to end | slowest stage alone "
                 "(rec/s) | × slowest | target | p50 fetch→commit | p99 |")
        L.append("|---|---|---|---|---|---|---|---|")
        p50 = med([num(e.split()[0].split("=")[1]) for e in pl["extra"]])
        p99 = med([num(e.split()[1].split("=")[1]) for e in pl["extra"]])
        recs = rows[("pipeline", "end to end", "sluice")][0]["recs"]
        ratio = pl["rate"] / same[0][0] if same and pl["rate"] else None
        ratio_small = pl["rate"] / slow[0][0] if slow and pl["rate"] else None
        n_stage = (rows.get(("load_all", "4 tables", "sluice")) or [{}])[0].get("recs")
        if same:
            L.append(f"| {f(recs)} | {pl['n']} | {f(pl['rate'])} | "
                     f"{f(same[0][0])} ({same[0][1]}, alone on the "
                     f"pipeline's data, n={same[0][2]}) | "
                     f"{f(ratio, '{:.2f}')} | ≥ 0.5 | "
                     f"{f(p50, '{:.1f} s')} | {f(p99, '{:.1f} s')} |")
        L.append(f"| {f(recs)} | {pl['n']} | {f(pl['rate'])} | "
                 f"{f(slow[0][0]) + ' (' + slow[0][1] + ', the stage case, ' + f(n_stage) + ' records)' if slow else '–'} |"
                 f" {f(ratio_small, '{:.2f}')} | – | {f(p50, '{:.1f} s')} | "
                 f"{f(p99, '{:.1f} s')} |")
        # run by run: each pipeline run against its own stages alone
        pr = rates_by_run("pipeline", "end to end", "sluice")
        alone_r = [rates_by_run("pipeline_alone", w, "sluice")
                   for w in ("transform", "load")]
        per = [pr[k] / min(a[k] for a in alone_r if k in a)
               for k in pr if any(k in a for a in alone_r)]
        if len(per) > 1:
            L.append(f"\nRun by run (each pipeline run against its slowest "
                     f"stage alone on the same data right after it): "
                     f"{spread(per, 0.5)}; the runs: "
                     + ", ".join(f"{x:.2f}" for x in per) + ".")
        if ratio is None:
            ratio = ratio_small
        if ratio is not None:
            chart.append(("pipeline vs slowest", ratio, 0.5))
        L.append("")
        L.append("Workers of the pipeline runs (median CPU, max RSS over the "
                 "runs; each must stay ≤ 256 MB):\n")
        L.append("| worker | CPU s | peak RSS |")
        L.append("|---|---|---|")
        for w in ("fetch", "transform", "load"):
            s = stat("pipeline_proc", w, "sluice")
            if s:
                L.append(f"| {w} | {f(s['cpu'], '{:.1f}')} | "
                         f"{f(s['rss'] / 1024 if s['rss'] else None, '{:.0f} MB')} |")
        alone = [(w, stat("pipeline_alone", w, "sluice"))
                 for w in ("transform", "load")]
        if any(a for _, a in alone):
            L.append("\nThe stages alone on the pipeline's data (after each "
                     "pipeline run, on the same topics: the loader into an "
                     "empty database, then the transformer over raw.nvd; "
                     "median of the runs):\n")
            L.append("| stage | runs | rec/s | CPU s | peak RSS |")
            L.append("|---|---|---|---|---|")
            for w, a in alone:
                if a:
                    L.append(f"| {w} | {a['n']} | {f(a['rate'])} | "
                             f"{f(a['cpu'], '{:.1f}')} | "
                             f"{f(a['rss'] / 1024 if a['rss'] else None, '{:.0f} MB')} |")
        L.append("\nThe target compares the pipeline with its slowest stage "
                 "run alone on the same data in the same run (the fetch "
                 "stage, far faster, is not rerun); the second row compares "
                 "it with the stage cases above, whose loads fill small "
                 "tables (20k records, not 200k). Latency is `_loaded_at − "
                 "_lineage.fetched_at` of every vulnerability row.")

    L.extend(scale(rows, out))
    L.append("\n## Sweeps\n")
    L.append("| knob | value | sluice rec/s | CPU s | peak RSS |")
    L.append("|---|---|---|---|---|")
    for case, knob in (("load", "loader --batch-rows"),
                       ("load_batch", "loader --batch-rows"),
                       ("transform", "transformer --kafka linger.ms")):
        for v in variants(case):
            if case == "load" and v != "0 % conflicts":
                continue
            s = stat(case, v, "sluice")
            if s:
                label = (os.environ.get("BENCH_LOAD_ROWS", "1000") +
                         " (default)") if case == "load" else v
                L.append(f"| {knob} | {label} | {f(s['rate'])} | "
                         f"{f(s['cpu'], '{:.1f}')} | "
                         f"{f(s['rss'] / 1024 if s['rss'] else None, '{:.0f} MB')} |")
    if la := stat("load_all", "4 tables", "sluice"):
        L.append(f"| loader --connections, all 4 tables | 2 (default) | "
                 f"{f(la['rate'])} | {f(la['cpu'], '{:.1f}')} | "
                 f"{f(la['rss'] / 1024 if la['rss'] else None, '{:.0f} MB')} |")
    for v in variants("load_conn"):
        s = stat("load_conn", v, "sluice")
        L.append(f"| loader --connections, all 4 tables | {v} | "
                 f"{f(s['rate'])} | {f(s['cpu'], '{:.1f}')} | "
                 f"{f(s['rss'] / 1024 if s['rss'] else None, '{:.0f} MB')} |")
    la = stat("load_all", "4 tables", "sluice")
    if la:
        L.append(f"\nLoading all four tables of the NVD map (parent + "
                 f"3 child replaces per CVE): {f(la['rate'])} rec/s, "
                 f"CPU {f(la['cpu'], '{:.1f}')} s, peak RSS "
                 f"{f(la['rss'] / 1024 if la['rss'] else None, '{:.0f} MB')}.")

    L.append("\n## Raw measurements\n")
    L.append("| case | variant | run | impl | records | seconds | CPU s | "
             "RSS kB | note | load avg |")
    L.append("|---|---|---|---|---|---|---|---|---|---|")
    for line in open(res):
        p = line.rstrip("\n").split("\t")
        if len(p) >= 9:
            L.append("| " + " | ".join(x.replace("|", "/") for x in
                                        (p + ["–"])[:10]) + " |")
    png = os.path.join(os.path.dirname(out) or ".", "ratios.png")
    if chart and make_chart(chart, png):
        L.insert(L.index("## Summary\n"),
                 "![sluice against its bound, per case](ratios.png)\n")
    with open(out, "w") as fh:
        fh.write("\n".join(L) + "\n")
    return 0


def make_chart(chart, png):
    dat = png + ".dat"
    with open(dat, "w") as fh:
        for i, (label, ratio, target) in enumerate(chart):
            fh.write(f'{i} "{label}" {ratio:.3f} '
                     f'{"NaN" if target is None else target}\n')
    script = f"""
set terminal pngcairo size 1000,420 font ",9"
set output "{png}"
set title "sluice throughput / its bound (bars) and the target (marks)"
set style fill solid 0.6
set boxwidth 0.6
set yrange [0:*]
set xtics rotate by -30
set grid ytics
plot "{dat}" using 1:3:xtic(2) with boxes title "sluice / bound", \\
     "" using 1:4 with points pt 7 ps 1.5 title "target"
"""
    try:
        subprocess.run(["gnuplot"], input=script, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return False
    finally:
        os.unlink(dat)
    return True


if __name__ == "__main__":
    sys.exit(main())
