"""A scrape target for the bench scripts: serves on 127.0.0.1:PORT a text 0.0.4 exposition of
SERIES series whose values change on every request, so that every scrape appends new samples.

  gauges    bench_gauge{i="..."} with random values (bench/delivery.sh)
  counters  node_network_receive_bytes_total with node_exporter-like labels, each value one
            more than on the previous request (bench/footprint.sh)

Usage: python3 bench/exposition.py PORT SERIES gauges|counters
"""
import http.server
import random
import sys

port, n, kind = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
names = [f'node_network_receive_bytes_total{{device="eth{i % 64}",host="gw-{i // 64}",job_part="p{i % 7}"}} ' for i in range(n)]
k = [0]


def gauges():
    return "".join(f'bench_gauge{{i="{i}"}} {random.random()}\n' for i in range(n))


def counters():
    k[0] += 1
    return "# TYPE node_network_receive_bytes_total counter\n" + "".join(f"{s}{i * 1234.5 + k[0]}\n" for i, s in enumerate(names))


make = {"gauges": gauges, "counters": counters}[kind]


class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = make().encode()
        self.send_response(200); self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)

    def log_message(self, *a):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
