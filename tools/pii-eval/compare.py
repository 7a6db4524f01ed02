#!/usr/bin/env python3
"""Compares shredlog's detector with Microsoft Presidio's pattern recognisers and
with libphonenumber's matcher (the `phonenumbers` package) on the labelled corpus.

Every tool turns each corpus line into a redacted line (each detected span
replaced by `<redacted>`), and all are scored the same way:

- recall per kind: share of labelled values that no longer appear in the
  redacted line;
- false alarms: share of PII-free lines that the tool changed.

Tools:
- shredlog: `shredlog redact-text` (default configuration), built with
  `cargo run --release --bin shredlog`, or the binary named by $SHREDLOG_BIN;
- presidio: EmailRecognizer + PhoneRecognizer + IpRecognizer (pattern
  recognisers, no NLP model), as `.analyze(text, entities, nlp_artifacts=None)`;
- phonenumbers(US): PhoneNumberMatcher(text, "US") + a typical email regex +
  a typical IPv4/IPv6 regex;
- phonenumbers(multi): the same, with the matcher run for each of
  US, GB, DE, FR, ES, IT, NL, PL, BR, IN, JP, CN and the matches united
  (more generous to it than a single-region setup).

Setup (once):   python3 -m venv .venv && .venv/bin/pip install presidio-analyzer phonenumbers
Run:            .venv/bin/python tools/pii-eval/compare.py [CORPUS.jsonl ...]
                (default: the tuning corpus crates/shredlog/tests/pii_corpus/corpus.jsonl and the
                held-out corpus crates/shredlog/tests/pii_heldout/heldout.jsonl)
"""
import json
import logging
import os
import re
import subprocess
import sys

logging.disable(logging.CRITICAL)  # tldextract complains that it is offline

import phonenumbers  # noqa: E402
from presidio_analyzer.predefined_recognizers import (  # noqa: E402
    EmailRecognizer,
    IpRecognizer,
    PhoneRecognizer,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLACEHOLDER = "<redacted>"

EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
IPV4_RE = re.compile(r"\b(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b")
IPV6_RE = re.compile(
    r"(?:(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}|(?:[0-9a-fA-F]{1,4}:){1,7}:|"
    r"(?:[0-9a-fA-F]{1,4}:){1,6}:[0-9a-fA-F]{1,4}|(?:[0-9a-fA-F]{1,4}:){1,5}(?::[0-9a-fA-F]{1,4}){1,2}|"
    r"(?:[0-9a-fA-F]{1,4}:){1,4}(?::[0-9a-fA-F]{1,4}){1,3}|(?:[0-9a-fA-F]{1,4}:){1,3}(?::[0-9a-fA-F]{1,4}){1,4}|"
    r"(?:[0-9a-fA-F]{1,4}:){1,2}(?::[0-9a-fA-F]{1,4}){1,5}|[0-9a-fA-F]{1,4}:(?::[0-9a-fA-F]{1,4}){1,6}|"
    r":(?:(?::[0-9a-fA-F]{1,4}){1,7}|:)|fe80:(?::[0-9a-fA-F]{0,4}){0,4}%[0-9a-zA-Z]+|"
    r"::(?:ffff(?::0{1,4})?:)?(?:(?:25[0-5]|(?:2[0-4]|1?\d)?\d)\.){3}(?:25[0-5]|(?:2[0-4]|1?\d)?\d)|"
    r"(?:[0-9a-fA-F]{1,4}:){1,4}:(?:(?:25[0-5]|(?:2[0-4]|1?\d)?\d)\.){3}(?:25[0-5]|(?:2[0-4]|1?\d)?\d))"
)
MULTI_REGIONS = ["US", "GB", "DE", "FR", "ES", "IT", "NL", "PL", "BR", "IN", "JP", "CN"]


def redact(text, spans):
    spans = sorted(spans)
    merged = []
    for s, e in spans:
        if merged and s < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    out, last = [], 0
    for s, e in merged:
        out.append(text[last:s])
        out.append(PLACEHOLDER)
        last = e
    out.append(text[last:])
    return "".join(out)


class Presidio:
    name = "presidio"

    def __init__(self):
        self.email = EmailRecognizer()
        self.phone = PhoneRecognizer()
        self.ip = IpRecognizer()

    def __call__(self, text):
        spans = []
        for rec, ent in ((self.email, "EMAIL_ADDRESS"), (self.phone, "PHONE_NUMBER"), (self.ip, "IP_ADDRESS")):
            for r in rec.analyze(text, [ent], nlp_artifacts=None) or []:
                spans.append((r.start, r.end))
        return redact(text, spans)


class PhoneNumbersMatcher:
    def __init__(self, regions, name):
        self.regions = regions
        self.name = name

    def __call__(self, text):
        spans = []
        for region in self.regions:
            for m in phonenumbers.PhoneNumberMatcher(text, region):
                spans.append((m.start, m.end))
        for rx in (EMAIL_RE, IPV4_RE, IPV6_RE):
            spans.extend((m.start(), m.end()) for m in rx.finditer(text))
        return redact(text, spans)


def shredlog_outputs(texts):
    env = dict(os.environ)
    env.setdefault("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    binary = os.environ.get("SHREDLOG_BIN")
    cmd = [binary] if binary else ["cargo", "run", "--quiet", "--release", "--bin", "shredlog", "--"]
    proc = subprocess.run(
        cmd + ["redact-text"],
        input="\n".join(texts) + "\n", capture_output=True, text=True, cwd=ROOT, env=env, check=True,
    )
    out = proc.stdout.split("\n")
    return out[: len(texts)]


def score(lines, outputs):
    kinds, clean, alarms = {}, 0, 0
    for line, red in zip(lines, outputs):
        if not line["spans"]:
            clean += 1
            alarms += red != line["text"]
            continue
        for label in line["spans"]:
            k = kinds.setdefault(label["kind"], [0, 0])
            k[0] += 1
            k[1] += label["value"] not in red
    return kinds, clean, alarms


def main():
    paths = sys.argv[1:] or [os.path.join(ROOT, "crates/shredlog/tests/pii_corpus/corpus.jsonl"),
                             os.path.join(ROOT, "crates/shredlog/tests/pii_heldout/heldout.jsonl")]
    summary = {}
    for path in paths:
        summary[os.path.relpath(path, ROOT)] = compare(path)
    out = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "pii-eval-compare.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(summary, f, indent=2)


def compare(path):
    lines = [json.loads(l) for l in open(path, encoding="utf-8")]
    # Lines are fed one per line; the corpus has no newlines inside a line.
    texts = [l["text"] for l in lines]
    results = [("shredlog", score(lines, shredlog_outputs(texts)))]
    for tool in (Presidio(), PhoneNumbersMatcher(["US"], "phonenumbers(US)"),
                 PhoneNumbersMatcher(MULTI_REGIONS, "phonenumbers(multi)")):
        results.append((tool.name, score(lines, [tool(t) for t in texts])))
    kinds = sorted({k for _, (ks, _, _) in results for k in ks})
    header = f"{'tool':<22}" + "".join(f"{k:>18}" for k in kinds) + f"{'false alarms':>22}"
    print(f"corpus: {path} ({len(lines)} lines)")
    print(header)
    summary = {}
    for name, (ks, clean, alarms) in results:
        row = f"{name:<22}"
        for k in kinds:
            total, found = ks.get(k, [0, 0])
            row += f"{found / total if total else 0:>18.4f}"
        row += f"{alarms:>10}/{clean} = {alarms / clean:.4f}"
        print(row)
        summary[name] = {"recall": {k: (ks[k][1] / ks[k][0]) for k in ks}, "false_alarms": alarms, "clean_lines": clean}
    counts = {k: results[0][1][0][k][0] for k in kinds}
    print("labelled values per kind:", counts)
    print()
    return summary


if __name__ == "__main__":
    main()
