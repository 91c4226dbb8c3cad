#!/usr/bin/python3
"""validate_json.py SCHEMA [FILE|-]...: validates JSON documents (one per
line for `-` or *.jsonl, else one per file) against a JSON Schema. With only
SCHEMA, validates the schema's own "examples". Prints one line per problem;
exits 1 when any document is invalid."""
import json
import sys

import jsonschema


def docs(arg):
    if arg == "-" or arg.endswith(".jsonl"):
        src = sys.stdin if arg == "-" else open(arg, encoding="utf-8")
        for n, line in enumerate(src, 1):
            if line.strip():
                yield f"{arg}:{n}", json.loads(line)
    else:
        with open(arg, encoding="utf-8") as f:
            yield arg, json.load(f)


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        schema = json.load(f)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    v = cls(schema)
    if len(sys.argv) == 2:
        items = [(f"{sys.argv[1]}#examples/{i}", d)
                 for i, d in enumerate(schema.get("examples", []))]
        if not items:
            print(f"{sys.argv[1]}: no examples")
            return 1
    else:
        items = [d for a in sys.argv[2:] for d in docs(a)]
    bad = 0
    for where, d in items:
        for e in v.iter_errors(d):
            bad += 1
            print(f"{where}: {'/'.join(map(str, e.absolute_path))}: {e.message}")
    print(f"# {len(items)} documents, {bad} problems")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
