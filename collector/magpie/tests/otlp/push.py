"""Pushes one collection of metrics to an OTLP/HTTP endpoint with the OpenTelemetry Python SDK
and its OTLP/HTTP (protobuf) exporter, as an instrumented service would.

    push.py URL [gzip|none] [cumulative|delta]

Instruments: an observable gauge, a counter, an up-down counter and a histogram with explicit
buckets, with attributes and resource attributes. Prints the export result (SUCCESS/FAILURE)
and the SDK version; exits 0 either way, so the caller judges the result.
"""

import sys

from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider, UpDownCounter
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExportResult,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.version import __version__

url = sys.argv[1]
compression = Compression.Gzip if sys.argv[2:3] == ["gzip"] else Compression.NoCompression
delta = sys.argv[3:4] == ["delta"]


class Recording(OTLPMetricExporter):
    """The exporter, keeping what each export returned."""

    results = []

    def export(self, metrics_data, timeout_millis=10_000, **kwargs):
        r = super().export(metrics_data, timeout_millis, **kwargs)
        self.results.append(r)
        return r


temporality = {}
if delta:
    temporality = {Counter: AggregationTemporality.DELTA}
exporter = Recording(
    endpoint=url, compression=compression, timeout=10, preferred_temporality=temporality
)
reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
resource = Resource.create(
    {
        "service.name": "pump",
        "service.namespace": "plant",
        "service.instance.id": "pump-7",
        "deployment.environment": "test",
        "site.floor": 3,
    }
)
views = [
    View(
        instrument_name="request.duration",
        aggregation=ExplicitBucketHistogramAggregation(boundaries=[0.1, 1.0]),
    )
]
# One export only: shutting the provider down (by hand or at exit) would collect and export
# a second time.
provider = MeterProvider(
    resource=resource, metric_readers=[reader], views=views, shutdown_on_exit=False
)
meter = provider.get_meter("magpie.test", "1.2.3")

meter.create_observable_gauge(
    "room.temperature",
    callbacks=[lambda _options: [Observation(21.5, {"room": "a"})]],
    unit="Cel",
)
starts = meter.create_counter("pump.starts", unit="{start}")
starts.add(3, {"pump": "p1"})
starts.add(4, {"pump": "p1"})
queue = meter.create_up_down_counter("queue.length")
queue.add(5, {"queue": "in"})
queue.add(-8, {"queue": "in"})
duration = meter.create_histogram("request.duration", unit="s")
for v in [0.05, 0.5, 0.7, 2, 3, 5]:
    duration.record(v, {"route": "/a", "http.method": "GET"})

provider.force_flush()
result = exporter.results[0] if exporter.results else MetricExportResult.FAILURE
print(result.name)
print(__version__)
