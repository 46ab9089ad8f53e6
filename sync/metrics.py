"""Process metrics, cheap on the hot path and exported to Prometheus.

Counters the message path touches thousands of times a second are plain
integer attributes (an attribute increment, no lock); a custom collector
turns them into Prometheus samples when ``/metrics`` is scraped. Rarer
measurements (tick duration) use prometheus-client's own types.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client import REGISTRY, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector


class Metrics:
    def __init__(self) -> None:
        self.frames_out = 0
        self.bytes_out = 0
        self.messages_in: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.connections = 0
        #: WebSocket connections by the writer they got (sync.writer.writer_for): "daphne"
        #: (the fast path, direct socket sends), "daphne_buffered" (daphne over TLS: Twisted's
        #: buffer), "generic" (the outbox: another server, or a daphne sync.compat refused).
        self.writer_connections: Counter[str] = Counter(
            {"daphne": 0, "daphne_buffered": 0, "generic": 0})
        #: WebSocket connections by how their frames arrive (sync.reader.reader_for):
        #: "daphne" (the fast reader, reading the socket itself), "daphne_reactor" (the
        #: fast reader behind Twisted's reads: TLS), "generic" (ASGI receive()).
        self.reader_connections: Counter[str] = Counter(
            {"daphne": 0, "daphne_reactor": 0, "generic": 0})
        #: client data frames by the parser that cut them: "fast" (the fast reader),
        #: "fast_inflated" (the fast reader, a permessage-deflate frame), "autobahn"
        self.reader_frames: Counter[str] = Counter({"fast": 0, "fast_inflated": 0, "autobahn": 0})
        #: client messages run in the protocol's data callback (fast reader, in-memory
        #: store) against those run by the connection's task after a queue hop
        self.messages_inline = 0
        self.messages_queued = 0
        self.rooms = lambda: 0
        self.players = lambda: 0
        self.persistence_queue = lambda: 0
        self.tick_seconds = Histogram(
            "kasagi_tick_seconds",
            "Duration of one room flush (compose, encode once, write to members).",
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1),
        )
        self.persistence_write_seconds = Histogram(
            "kasagi_persistence_write_seconds",
            "Duration of one background persistence write batch.",
        )
        self.events_out = 0
        #: (§13) per flush with changes: members of the room, and frame lists encoded
        #: (one per distinct view and codec): encodings per tick vs members per tick
        self.flush_members = 0
        self.flush_encodings = 0
        self.room_code_errors: Counter[str] = Counter()
        self.room_code_seconds = Histogram(
            "kasagi_room_code_seconds",
            "Duration of one call into a room type's code, by room type and hook.",
            labelnames=("room_type", "hook"),
            buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25),
        )
        self.room_tick_lateness = Histogram(
            "kasagi_room_tick_lateness_seconds",
            "How late a room's on_tick ran against its fixed grid.",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1),
        )


class _Collector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        m = self.metrics
        yield GaugeMetricFamily("kasagi_connections", "Open WebSocket connections.", m.connections)
        yield GaugeMetricFamily("kasagi_rooms", "Rooms loaded in this process.", m.rooms())
        yield GaugeMetricFamily("kasagi_players", "Players in loaded rooms.", m.players())
        yield GaugeMetricFamily(
            "kasagi_persistence_queue_depth", "Rooms and sessions waiting to be written.",
            m.persistence_queue(),
        )
        yield _counter("kasagi_frames_out", "WebSocket frames sent.", m.frames_out)
        yield _counter("kasagi_bytes_out", "Bytes of WebSocket payload sent.", m.bytes_out)
        yield _by_label(
            "kasagi_messages_in", "Client messages received, by type.", "type", m.messages_in)
        yield _by_label("kasagi_errors", "ERROR frames sent, by code.", "code", m.errors)
        yield _counter(
            "kasagi_view_flush_members", "Members of a room at each flush with changes.",
            m.flush_members)
        yield _counter(
            "kasagi_view_encodings", "Frame lists encoded by flushes (one per view and codec).",
            m.flush_encodings)
        yield _counter("kasagi_events_out", "EVENT frames sent.", m.events_out)
        yield _by_label(
            "kasagi_room_code_errors", "Exceptions raised by room code, by room type.",
            "room_type", m.room_code_errors)
        yield _by_label(
            "kasagi_writer_connections", "WebSocket connections by frame writer path.",
            "path", m.writer_connections)
        yield _by_label(
            "kasagi_reader_connections", "WebSocket connections by frame reader path.",
            "path", m.reader_connections)
        yield _by_label(
            "kasagi_reader_frames", "Client data frames by the parser that read them.",
            "parser", m.reader_frames)
        yield _counter(
            "kasagi_messages_inline",
            "Client messages handled in the socket's data callback (no queue hop).",
            m.messages_inline)
        yield _counter(
            "kasagi_messages_queued", "Client messages handled by the connection's task.",
            m.messages_queued)


def _counter(name: str, documentation: str, value: int) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation)
    family.add_metric([], value)
    return family


def _by_label(
    name: str, documentation: str, label: str, counts: Counter[str]
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=[label])
    for value, count in sorted(counts.items()):
        family.add_metric([value], count)
    return family


METRICS = Metrics()
REGISTRY.register(_Collector(METRICS))
