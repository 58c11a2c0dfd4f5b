#!/usr/bin/env python3
"""Publishes Sparkplug B messages built with Python protobuf from sparkplug_b.proto.

  publish.py HOST PORT < messages.jsonl
      One JSON object per line: {"topic": ..., "seq": n, "timestamp": ms, "metrics": [
      {"name": ..., "alias": n, "datatype": code, "timestamp": ms, "value": v}, ...]}
      (every key but "topic" optional). Each is published at QoS 1 and acknowledged by the
      broker before the next; prints "published N".

  publish.py HOST PORT --bench TOPICS MESSAGES
      Publishes a DBIRTH of one Double metric to each of TOPICS devices
      (spBv1.0/bench/DBIRTH/gw/dev<i>), then MESSAGES DDATA round-robin over them at QoS 1 with
      up to 1000 in flight; prints "published N in S s (R messages/s)".
"""

import json
import os
import subprocess
import sys
import tempfile
import time

import paho.mqtt.client as mqtt

HERE = os.path.dirname(os.path.abspath(__file__))

# Signed types travel in the unsigned fields as two's complement.
INT_TYPES = {1, 2, 3, 5, 6, 7}
LONG_TYPES = {4, 8, 13}


def load_proto():
    out = tempfile.mkdtemp(prefix="sparkplug-pb2-")
    subprocess.run(
        ["protoc", f"--proto_path={HERE}", f"--python_out={out}", "sparkplug_b.proto"],
        check=True,
    )
    sys.path.insert(0, out)
    import sparkplug_b_pb2  # noqa: E402 (generated just now)

    return sparkplug_b_pb2


def build(pb, msg):
    p = pb.Payload()
    if "timestamp" in msg:
        p.timestamp = msg["timestamp"]
    if "seq" in msg:
        p.seq = msg["seq"]
    for m in msg.get("metrics", []):
        pm = p.metrics.add()
        if "name" in m:
            pm.name = m["name"]
        if "alias" in m:
            pm.alias = m["alias"]
        if "timestamp" in m:
            pm.timestamp = m["timestamp"]
        dt = m.get("datatype")
        if dt is not None:
            pm.datatype = dt
        if "value" not in m:
            continue
        v = m["value"]
        kind = m.get("kind")  # for data messages, which carry no datatype
        if kind is None:
            kind = {9: "float", 10: "double", 11: "boolean", 12: "string", 14: "string"}.get(
                dt, "int" if dt in INT_TYPES else "long" if dt in LONG_TYPES else "double"
            )
        if kind == "int":
            pm.int_value = v & 0xFFFFFFFF
        elif kind == "long":
            pm.long_value = v & 0xFFFFFFFFFFFFFFFF
        elif kind == "float":
            pm.float_value = v
        elif kind == "double":
            pm.double_value = v
        elif kind == "boolean":
            pm.boolean_value = bool(v)
        elif kind == "string":
            pm.string_value = v
        else:
            raise SystemExit(f"unknown value kind {kind!r}")
    return p.SerializeToString()


def connect(host, port):
    try:
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION1, client_id="", clean_session=True)
    except AttributeError:  # paho-mqtt 1.x
        c = mqtt.Client(client_id="", clean_session=True)
    c.max_inflight_messages_set(1000)
    c.connect(host, port)
    c.loop_start()
    return c


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    pb = load_proto()
    c = connect(host, port)
    if len(sys.argv) > 3 and sys.argv[3] == "--bench":
        topics, messages = int(sys.argv[4]), int(sys.argv[5])
        for i in range(topics):
            body = build(pb, {"metrics": [{"name": "Value", "alias": 1, "datatype": 10, "value": 0.0}]})
            c.publish(f"spBv1.0/bench/DBIRTH/gw/dev{i}", body, qos=1)
        infos = []
        start = time.monotonic()
        for n in range(messages):
            body = build(pb, {"metrics": [{"alias": 1, "kind": "double", "value": float(n)}]})
            infos.append(c.publish(f"spBv1.0/bench/DDATA/gw/dev{n % topics}", body, qos=1))
        for i in infos:
            i.wait_for_publish()
        secs = time.monotonic() - start
        print(f"published {messages} in {secs:.2f} s ({messages / secs:.0f} messages/s)")
    else:
        n = 0
        for line in sys.stdin:
            if not line.strip():
                continue
            msg = json.loads(line)
            c.publish(msg["topic"], build(pb, msg), qos=1).wait_for_publish()
            n += 1
        print(f"published {n}")
    c.loop_stop()
    c.disconnect()


if __name__ == "__main__":
    main()
