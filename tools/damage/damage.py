#!/usr/bin/env python3
"""Damage campaign: byte flips and truncations at random offsets of every file
of a store, then `verify`, `show` and `transcripts --email` with the release
binary. Counts, per file and kind of damage:

- panics (exit 101, or "panicked" on stderr): must be 0;
- silent loss: a command that exits 0 with less or different output than on
  the undamaged store: must be 0;
- writes: a read-only command that changed a byte of any file: must be 0.

Usage (from the repository root, after `cargo build --release --examples`):

    python3 tools/damage/damage.py --visitors 2000 --trials 300 [--seed 1] [--keep DIR]

The store is built once (import of a generated workload, a few erasures and a
compaction, closed cleanly); every trial works on a fresh copy of it.
"""

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, "target", "release", "shredlog")
GEN = os.path.join(ROOT, "target", "release", "examples", "gen_workload")


def run(data, *args, check=False):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHREDLOG_")}
    p = subprocess.run([BIN, "--data", data, *args], capture_output=True, env=env)
    if check and p.returncode != 0:
        sys.exit(f"shredlog {' '.join(args)} failed: {p.stderr.decode()}")
    return p


def hashes(d):
    out = {}
    for name in sorted(os.listdir(d)):
        p = os.path.join(d, name)
        if os.path.isfile(p):
            with open(p, "rb") as f:
                out[name] = hashlib.sha256(f.read()).hexdigest()
    return out


def build(base, visitors, seed):
    work = os.path.join(base, "workload.jsonl")
    truth = os.path.join(base, "truth.json")
    with open(work, "wb") as f:
        subprocess.run([GEN, "--seed", str(seed), "--visitors", str(visitors),
                        "--truth", truth], stdout=f, check=True)
    data = os.path.join(base, "store")
    run(data, "import", work, check=True)
    with open(truth) as f:
        t = json.load(f)
    emails = [v["email"] for v in t]
    for e in emails[:5]:
        run(data, "redact", "--email", e, "--reference", "DMG-1", check=True)
    for e in emails[5:8]:
        run(data, "delete", "--email", e, "--reference", "DMG-2", check=True)
    run(data, "compact", check=True)
    return data, emails[8:]


def probes(data, emails, rng):
    """The commands each trial runs, and their outputs on the undamaged store."""
    picked = rng.sample(emails, 6)
    out = []
    for e in picked:
        p = run(data, "transcripts", "--email", e)
        out.append((("transcripts", "--email", e), p.stdout))
        for line in p.stdout.decode().splitlines()[:2]:
            t = line.split("\t")[0]
            q = run(data, "show", t)
            out.append((("show", t), q.stdout))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--visitors", type=int, default=2000)
    ap.add_argument("--trials", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    base = a.keep or tempfile.mkdtemp(prefix="shredlog-damage-")
    os.makedirs(base, exist_ok=True)
    data, emails = build(base, a.visitors, a.seed)
    files = sorted(n for n in os.listdir(data) if os.path.isfile(os.path.join(data, n)) and n != "LOCK")
    sizes = {n: os.path.getsize(os.path.join(data, n)) for n in files}
    print(f"store: {sum(sizes.values())} bytes in {len(files)} files", flush=True)
    results = {"trials": 0, "panics": 0, "silent_loss": 0, "writes": 0,
               "refused": 0, "unchanged_ok": 0}
    failures = []
    for trial in range(a.trials):
        name = files[trial % len(files)]
        size = sizes[name]
        if size == 0:
            continue
        kind = "flip" if rng.random() < 0.5 else "cut"
        at = rng.randrange(size)
        copy = os.path.join(base, "trial")
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(data, copy)
        p = os.path.join(copy, name)
        with open(p, "r+b") as f:
            if kind == "flip":
                f.seek(at)
                b = f.read(1)
                f.seek(at)
                f.write(bytes([b[0] ^ (1 << rng.randrange(8))]))
            else:
                f.truncate(at)
        want = probes(data, emails, random.Random(trial))
        results["trials"] += 1
        for args, expected in [(("verify",), None)] + want:
            before = hashes(copy)
            r = run(copy, *args)
            after = hashes(copy)
            err = r.stderr.decode(errors="replace")
            where = f"{kind} {name}@{at}: {' '.join(args)}"
            if r.returncode == 101 or "panicked" in err:
                results["panics"] += 1
                failures.append(f"PANIC {where}: {err.strip()[:300]}")
            if before != after:
                results["writes"] += 1
                failures.append(f"WRITE {where}")
            if r.returncode != 0:
                results["refused"] += 1
                continue
            if expected is None:
                # verify said ok: the damage must be somewhere harmless.
                continue
            if r.stdout != expected:
                results["silent_loss"] += 1
                failures.append(f"SILENT {where}: exit 0 with different output")
            else:
                results["unchanged_ok"] += 1
        if trial % 25 == 0:
            print(f"trial {trial}: {results}", flush=True)
    print(json.dumps(results, indent=2))
    for f in failures[:40]:
        print(f)
    if not a.keep:
        shutil.rmtree(base, ignore_errors=True)
    return 1 if results["panics"] or results["silent_loss"] or results["writes"] else 0


if __name__ == "__main__":
    sys.exit(main())
