#!/usr/bin/env python3
"""Scores shredlog on a labelled corpus and prints its misses and false alarms.

For development sets only: generate one with another seed, e.g.

    .venv/bin/python crates/shredlog/tests/pii_heldout/generate.py --seed 0xDE701 > target/dev1.jsonl
    .venv/bin/python tools/pii-eval/misses.py target/dev1.jsonl [--kind phone] [--limit 200]

It refuses the committed held-out corpus (crates/shredlog/tests/pii_heldout/heldout.jsonl):
printing that file's misses would turn it into a tuning corpus
(docs/PII.md, "Evaluation"). Runs `shredlog redact-text` like compare.py
($SHREDLOG_BIN, or `cargo run --release`).
"""
import argparse
import collections
import hashlib
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HELDOUT = os.path.join(ROOT, "crates", "shredlog", "tests", "pii_heldout", "heldout.jsonl")
PLACEHOLDER = "<redacted>"


def redact_all(texts):
    env = dict(os.environ)
    env.setdefault("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    binary = os.environ.get("SHREDLOG_BIN")
    cmd = [binary] if binary else ["cargo", "run", "--quiet", "--release", "--bin", "shredlog", "--"]
    proc = subprocess.run(cmd + ["redact-text"], input="\n".join(texts) + "\n", capture_output=True,
                          text=True, cwd=ROOT, env=env, check=True)
    return proc.stdout.split("\n")[: len(texts)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus")
    ap.add_argument("--kind", help="print misses of this kind only")
    ap.add_argument("--limit", type=int, default=100, help="misses and alarms to print (each)")
    ap.add_argument("--by-case", action="store_true", help="misses counted per case prefix")
    args = ap.parse_args()
    with open(args.corpus, "rb") as f:
        raw = f.read()
    with open(HELDOUT, "rb") as f:
        if hashlib.sha256(raw).digest() == hashlib.sha256(f.read()).digest():
            sys.exit("refusing to print the committed held-out corpus's misses (see docs/PII.md)")
    lines = [json.loads(l) for l in raw.decode().splitlines()]
    out = redact_all([l["text"] for l in lines])
    total, found = collections.Counter(), collections.Counter()
    misses, alarms, clean = [], [], 0
    per_case = collections.Counter()
    for line, red in zip(lines, out):
        if not line["spans"]:
            clean += 1
            if red != line["text"]:
                alarms.append(f'{line["case"]} | {line["text"]!r} -> {red!r}')
            continue
        for s in line["spans"]:
            total[s["kind"]] += 1
            if s["value"] not in red:
                found[s["kind"]] += 1
            else:
                misses.append((s["kind"], f'{line["case"]} | {s["value"]!r} in {line["text"]!r} -> {red!r}'))
                per_case["/".join(line["case"].split("/")[:3])] += 1
    for k in sorted(total):
        print(f"{k:<18} {total[k]:>6}  recall {found[k] / total[k]:.4f}  missed {total[k] - found[k]}")
    print(f"false alarms       {len(alarms)}/{clean} = {len(alarms) / max(clean, 1):.4f}")
    if args.by_case:
        for c, n in per_case.most_common():
            print(f"  {n:>4} {c}")
    shown = [m for k, m in misses if not args.kind or k == args.kind]
    for m in shown[: args.limit]:
        print("MISS ", m)
    for a in alarms[: args.limit]:
        print("ALARM", a)


if __name__ == "__main__":
    main()
