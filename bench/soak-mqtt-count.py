#!/usr/bin/env python3
"""Counts the samples a magpie `mqtt` exporter (JSON encoding) delivered, for bench/soak.sh.

Reads the output of `mosquitto_sub` (one message payload per line) on stdin. Each payload is
`{"series":[{"labels":{...},"samples":[[t_ms, value], ...]}, ...]}`. A sample counts once per
series and timestamp: QoS 1 is at-least-once, so a batch the broker took but whose PUBACK was
lost in a restart comes again, and its samples are counted as duplicates, not twice. Within
a series samples arrive in time order (the exporter sends oldest first, one connection, one
topic), so the newest timestamp per series is all the state kept: a sample at or before it is
a duplicate.

Writes its totals to the stats file (argv[1]) as `key value` lines, atomically, after every
message:
  messages  samples  duplicates  stale (staleness markers among samples)  series  bad_messages
  last_message_unix
"""

import json
import os
import sys
import time


def write_stats(path, stats):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for k, v in stats.items():
            f.write(f"{k} {v}\n")
    os.replace(tmp, path)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: soak-mqtt-count.py STATS_FILE < mosquitto_sub output")
    path = sys.argv[1]
    newest = {}
    stats = {
        "messages": 0,
        "samples": 0,
        "duplicates": 0,
        "stale": 0,
        "series": 0,
        "bad_messages": 0,
        "last_message_unix": 0,
    }
    write_stats(path, stats)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        stats["messages"] += 1
        stats["last_message_unix"] = round(time.time(), 3)
        try:
            body = json.loads(line)
            series = body["series"]
        except (ValueError, KeyError, TypeError) as e:
            stats["bad_messages"] += 1
            print(f"soak-mqtt-count: unreadable message ({e}): {line[:120]}", file=sys.stderr)
            continue
        for s in series:
            key = tuple(sorted(s["labels"].items()))
            last = newest.get(key, -1)
            for t, v in s["samples"]:
                if t > last:
                    stats["samples"] += 1
                    stats["stale"] += v == "StaleNaN"
                    last = t
                else:
                    stats["duplicates"] += 1
            newest[key] = last
        stats["series"] = len(newest)
        write_stats(path, stats)
    write_stats(path, stats)


if __name__ == "__main__":
    main()
