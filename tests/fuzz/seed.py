#!/usr/bin/env python3
"""tests/fuzz/seed.py: writes the seed inputs of every fuzz target into
tests/fuzz/corpus/<target>/seed-*, cut from the real sample data in data/
and the bundled maps. Run again after the data or the maps change; crash
inputs (crash-*) that `make fuzz` adds next to them are kept."""
import json
import os
import subprocess

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")


def data(*parts):
    with open(os.path.join(ROOT, "data", *parts), encoding="utf-8") as f:
        return json.load(f)


def put(target, name, content):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(content, str):
        content = content.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(content)


kev = data("kev", "known_exploited_vulnerabilities.json")
kev_page = dict(kev, vulnerabilities=kev["vulnerabilities"][:3])
nvd = data("nvd", "nvd_cves_combined_dedup.json")
nvd_recs = nvd["vulnerabilities"][:2] if isinstance(nvd, dict) else nvd[:2]
nvd_page = {"resultsPerPage": 2, "startIndex": 0, "totalResults": 2,
            "format": "NVD_CVE", "version": "2.0", "vulnerabilities": nvd_recs}
urlhaus = data("urlhaus", "urlhaus_recent_records.json")
uh_page = dict(urlhaus, urls=urlhaus["urls"][:3]) if isinstance(urlhaus, dict) \
    else urlhaus[:3]
tenable = data("tenable", "test_exports_vulns_chunk_1.json")[:2]

# the JSON-path evaluator: "PATH\nDOC"
for i, (path, doc) in enumerate([
        ("$.vulnerabilities[*].cveID", kev_page),
        ("$.vulnerabilities[0].cwes[1]", kev_page),
        ("$.vulnerabilities[?(@.knownRansomwareCampaignUse == 'Known')]",
         kev_page),
        ("$.vulnerabilities[*].cve.metrics.cvssMetricV31[0].cvssData.baseScore",
         nvd_page),
        ("$.vulnerabilities[*].cve.descriptions[?(@.lang == 'en')].value",
         nvd_page),
        ("$.urls[*].tags[*]", uh_page),
        ("$[*].plugin.cve", tenable),
        ("$", [1, "two", None, {"a": {"b": [True]}}]),
        ("$['a b'].c[-1]", {"a b": {"c": [1, 2, 3]}}),
        ("$..x", {"x": 1, "y": {"x": 2}})]):
    put("jsonpath", "%02d" % i, path + "\n" + json.dumps(doc))

# the map compiler and record mapping: "MAP\n----\nPAGE"
maps = os.path.join(ROOT, "transformers", "maps")
for name, page in [("kev", kev_page), ("nvd_cve", nvd_page),
                   ("urlhaus", uh_page), ("tenable", tenable)]:
    with open(os.path.join(maps, name + ".json"), encoding="utf-8") as f:
        put("map", name, f.read() + "\n----\n" + json.dumps(page))
golden = os.path.join(ROOT, "tests", "golden", "maps")
for case in sorted(os.listdir(golden)):
    m = os.path.join(golden, case, "map.json")
    i = os.path.join(golden, case, "input.json")
    if os.path.exists(m):
        text = open(m, encoding="utf-8").read()
        page = open(i, encoding="utf-8").read() if os.path.exists(i) else "{}"
        if len(page) > 20000:  # keep the corpus small: big pages teach little
            continue
        put("map", "golden-" + case, text + "\n----\n" + page)

# the header parsers: "LINK\nRETRY-AFTER\nRETRYAFTER-EPOCH\nRESET"
for i, lines in enumerate([
        ['<https://api.github.com/advisories?per_page=20&after=Y3Vyc29y>; '
         'rel="next", <https://api.github.com/advisories?per_page=20>; '
         'rel="first"', "1", "1700000005", "1700000010"],
        ['<http://127.0.0.1:8080/github/advisories?page=2>; rel="next"',
         "Wed, 21 Oct 2015 07:28:00 GMT", "", ""],
        ['<a>; rel="prev", <b>; rel="next"; title="x"', "120", "0", "1"],
        ['<https://x/?apiKey=SECRET&token=t>; rel=next', "-1", "abc", "99999999999"],
        ["", "Sun, 06 Nov 1994 08:49:37 GMT", "", ""]]):
    put("fetch_policy", "%02d" % i, "\n".join(lines))

# the COPY encoder: KIND-BYTE + JSON value (kinds: 0 scalar 1 bool 2 json
# 3 array), values from the data and the hostile ones
v0 = kev["vulnerabilities"][0]
values = [(0, v0["shortDescription"]), (0, v0["cveID"]), (2, v0),
          (3, v0.get("cwes", [])), (1, True), (0, None), (0, 7.5),
          (0, "'); DROP TABLE x; --"), (0, "\\."), (0, "\\N"),
          (0, "a\tb\nc\\d\re"), (3, ["a,b", "c\"d", None, ["x"]]),
          (2, nvd_recs[0]), (0, "\u00e9\u4e2d\U0001f600"), (0, "nul\u0000")]
for i, (kind, v) in enumerate(values):
    put("copy_encode", "%02d" % i, bytes([kind]) + json.dumps(v).encode())

# the envelope decoder: "KEY\n----\nVALUE", envelopes from sluice check
try:
    out = subprocess.run(
        [os.path.join(ROOT, "build", "sluice"), "check",
         os.path.join(maps, "kev.json"), "/dev/stdin"],
        input=json.dumps(kev_page).encode(), capture_output=True,
        check=True).stdout.decode().splitlines()
except (OSError, subprocess.CalledProcessError):
    out = []
for i, line in enumerate(out[:4]):
    env = json.loads(line)
    put("envelope", "%02d" % i, "\x1f".join(str(v) for v in
                                           env["key"].values())
        + "\n----\n" + line)
for i, value in enumerate([
        '{"v":1,"table":"fuzz_table","op":"delete","key":{"id":"a"}}',
        '{"v":1,"table":"fuzz_table","op":"replace","key":{"pid":"p"},'
        '"rows":[{"pid":"p","x":1},{"pid":"p","x":2}],"version":"2024"}',
        '{"v":2,"table":"other","op":"upsert"}', "not json", "",
        '{"v":1,"table":"fuzz_table","op":"upsert","key":{"id":"x"},'
        '"row":{"id":"x","v":"\\u0000"},"version":null,"lineage":[]}']):
    put("envelope", "x%02d" % i, "k\n----\n" + value)

# the JSON writer: FLAGS-BYTE (bit 0: sorted keys) + JSON; records with
# reals from the data, and the edges of reals, escapes and keys
for i, (flag, doc) in enumerate([(0, nvd_recs[0]), (1, nvd_recs[1]),
                                 (1, kev_page["vulnerabilities"][0]),
                                 (0, tenable[0])]):
    put("jsondump", "%02d" % i, bytes([flag]) + json.dumps(doc).encode())
for i, text in enumerate([
        '[7.3, 0.30000000000000004, 1.0, -0.0, 1e300, 5e-324, 1.5e-7, '
        '123456789012345678.0, 1e16, 0.7999999999999999, 1e-5]',
        '{"z\\"q\\\\": 1, "\\t\\u0001/": 2, "a\\u0000b": 3, "a": 4, '
        '"\\u00e9": 5, "": [{}, []]}',
        '["\\u0000\\u001f\\u007f/\\"\\\\", "\\ud83d\\ude00 \u00e9\u4e2d"]',
        '[9223372036854775807, -9223372036854775808, 0, -1]']):
    put("jsondump", "x%02d" % i, b"\x01" + text.encode())

# the page validator: whole pages, and the edges of the JSON grammar
for i, page in enumerate([kev_page, nvd_page, uh_page, tenable]):
    put("jsonscan", "%02d" % i, json.dumps(page, ensure_ascii=i % 2 == 0))
for i, text in enumerate([
        '[1e309, -0, 0.5e-400, 9223372036854775807, -9223372036854775808]',
        '["\\ud83d\\ude00", "\\u00e9", "\u00e9\u4e2d\U0001f600", "\\/\\b"]',
        '{"a": [[[[[[[[{"b": [true, false, null]}]]]]]]]]}',
        '[9223372036854775808]', '["\\ud83d"]', '{"a":1,}',
        b'["\xed\xa0\x80", "\xf4\x90\x80\x80", "\xc0\x80"]']):
    put("jsonscan", "x%02d" % i, text)

# a page's first bytes: the head of a real NVD page, and the member paths
# the target asks for ($.a, $.a.b) behind values of every kind
put("jsonprefix", "00", json.dumps(nvd_page)[:4096])
for i, text in enumerate([
        '{"x": [1, "]}\\"", {"y": {}}], "a": {"c": null, "b": -12.5e3}}',
        '{"a" : "str\\"ing", "totalResults": 42, "a": 7}',
        '{"m": true, "a": [1, 2], "z": {"a": {"b": 1}}}']):
    put("jsonprefix", "x%02d" % i, text)
