#!/usr/bin/env python3
"""Medians (and ranges) of `stampede storm --json` runs, side by side, one column per run set.

    scripts/storm-medians.py TITLE LABEL=FILE.jsonl [LABEL=FILE.jsonl ...]

Each FILE holds the JSON lines of several rounds of the same storm; each cell is the median of
one figure over those rounds, with its range. Cluster runs add the commands per master (the
busiest master's share) and the PUBLISH messages sent over the cluster bus per origin call.
"""
import json
import statistics
import sys

title, columns = sys.argv[1], [argument.split("=", 1) for argument in sys.argv[2:]]


def load(path):
    runs = {}
    for line in open(path):
        report = json.loads(line)
        runs.setdefault(report["scenario"], []).append(report)
    return runs


def busiest_share(report):
    nodes = report.get("commands_per_node")
    if not nodes or sum(nodes.values()) == 0:
        return None
    return 100 * max(nodes.values()) / sum(nodes.values())


def bus_per_call(report):
    """Per origin call; in the lock scenario, which calls no origin, per acquisition."""
    sent = report.get("cluster_bus_publish_messages")
    if sent is None:
        return None
    calls = report["requests"] if report["scenario"] == "lock" else report["origin_calls"]
    return sent / max(calls, 1)


figures = [
    ("origin calls per key", lambda r: r["origin_calls_per_key"]),
    ("p50 ms", lambda r: r["latency_ms"]["p50"]),
    ("p99 ms", lambda r: r["latency_ms"]["p99"]),
    ("Redis commands per request", lambda r: r["redis_commands"] / max(r["requests"], 1)),
    ("requests per second", lambda r: r["ops_per_sec"]),
    ("hand-off p50 ms", lambda r: (r.get("handoff_ms") or {}).get("p50")),
    ("hand-off p99 ms", lambda r: (r.get("handoff_ms") or {}).get("p99")),
    ("busiest master's share of commands, %", busiest_share),
    ("cluster-bus PUBLISH messages per origin call (lock: per acquisition)", bus_per_call),
    ("errors", lambda r: r["errors"]),
]


def cell(runs, figure):
    values = [v for v in map(figure, runs) if v is not None]
    if not values:
        return None
    median = statistics.median(values)

    def show(value):
        return f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:.4g}"

    return f"{show(median)} ({show(min(values))}-{show(max(values))})" if len(values) > 1 else show(median)


sets = [(label, load(path)) for label, path in columns]
print(title + "\n")
print("| scenario | figure | " + " | ".join(label for label, _ in sets) + " |")
print("|---|---|" + "---:|" * len(sets))
for scenario in sets[0][1]:
    for name, figure in figures:
        cells = [cell(runs.get(scenario, []), figure) for _, runs in sets]
        if all(c is None for c in cells):
            continue
        print(f"| {scenario} | {name} | " + " | ".join(c or "" for c in cells) + " |")
