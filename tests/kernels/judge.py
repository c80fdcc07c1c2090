#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Judges one kernel's run of tests/kernels/roundtrip.sh from its output.

Prints one line, "kernel NAME: N programs loaded (max Nk insns, N B stack),
capture ok", or the same with what failed, and exits 0 or 1. Every program
must load within the project's budget (stack, instructions), and again
with SHADOWD_PROFILE=1 (make bench's timed regions). The capture
is ok when every fetch was answered, every exchange was captured and
replayed, nothing was lost, and each divergence record's primary response
is, byte for byte, the file the primary served (the candidate serves
another one, so every replay diverges and is stored whole).
Usage: judge.py LOG NAME
"""
import json
import re
import sys

GETS = 4
SERVED = "request-shadow kernel matrix: primary\nline two\n"
CANDIDATE = "request-shadow kernel matrix: candidate\n"


def sections(text):
    out, name = {}, None
    for line in text.splitlines():
        line = line.rstrip("\r")
        m = re.match(r"^=== (\S+)(.*)$", line)
        if m:
            name = m.group(1)
            out.setdefault(name, []).append(m.group(2).strip())
            continue
        if name:
            out[name].append(line)
    return out


def check_problems(lines, rc, what, prefix):
    """What a `shadowd --check` section says went wrong: a nonzero exit
    (the programs refused), or programs that loaded over the project's
    budget (stack, instructions): headroom is part of loading, so those
    fail the kernel too."""
    problems = []
    if rc != "0":
        refused = [l.strip() for l in lines if l.strip().startswith("refused")]
        problems.append(what + " failed: " +
                        ("; ".join(refused) or " ".join(lines[-3:])))
    over = [l.split()[1] for l in lines if l.strip().startswith("loaded")
            and l.rstrip().endswith("over the budget")]
    if over:
        problems.append(prefix + "over the budget: " + ", ".join(over))
    return problems


def judge(text):
    s = sections(text)
    problems = []
    check = s.get("check", [])
    summary = next((l for l in check if re.match(r"^\d+ programs loaded", l)), None)
    if summary is None:
        summary = "no programs loaded"
    problems += check_problems(check, s.get("check-rc", ["missing"])[0],
                               "shadowd --check", "")
    problems += check_problems(s.get("profile-check", []),
                               s.get("profile-check-rc", ["missing"])[0],
                               "shadowd --check with SHADOWD_PROFILE=1",
                               "profiled, ")
    if "attach" in s and "end" in s and "shadowd" not in s:
        problems.append("shadowd did not attach: " + " ".join(s["attach"][1:])[:300])
        return summary, problems
    fetched = s.get("fetched", [""])[0]
    if fetched != f"{GETS} of {GETS}":
        problems.append(f"fetched {fetched or 'nothing'}")
    try:
        stats = json.loads("\n".join(s.get("stats", [])[1:]))
    except ValueError:
        problems.append("no stats from shadow-dump")
        return summary, problems
    t, cap = stats["totals"], stats["capture"]
    for k in ("captured", "replayed", "diverged"):
        if t[k] != GETS:
            problems.append(f"{k} {t[k]}, not {GETS}")
    for k in ("lost_events", "gaps", "parse_errors", "truncated"):
        if cap[k]:
            problems.append(f"{k} {cap[k]}")
    records = [json.loads(l) for l in s.get("export", [])[1:] if l.strip()]
    if len(records) != GETS:
        problems.append(f"{len(records)} divergence records, not {GETS}")
    for r in records:
        if r["request"]["target"] != "/file.txt":
            problems.append("a record of target " + r["request"]["target"])
        elif r["primary"]["status"] != 200 or r["primary"].get("body") != SERVED:
            problems.append("a captured response is not the bytes served: " +
                            json.dumps(r["primary"])[:200])
        elif r["candidate"].get("body") != CANDIDATE:
            problems.append("a replay's answer is not the candidate's file")
    if "end" not in s:
        problems.append("the run did not finish")
    return summary, problems


def main():
    log, name = sys.argv[1], sys.argv[2]
    with open(log, errors="replace") as f:
        text = f.read()
    summary, problems = judge(text)
    if problems:
        print(f"kernel {name}: {summary}, capture FAILED: " + "; ".join(problems[:4]))
        sys.exit(1)
    print(f"kernel {name}: {summary}, capture ok")


if __name__ == "__main__":
    main()
