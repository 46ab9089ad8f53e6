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
        out = CounterMetricFamily("kasagi_frames_out", "WebSocket frames sent.")
        out.add_metric([], m.frames_out)
        yield out
        out = CounterMetricFamily("kasagi_bytes_out", "Bytes of WebSocket payload sent.")
        out.add_metric([], m.bytes_out)
        yield out
        inbound = CounterMetricFamily(
            "kasagi_messages_in", "Client messages received, by type.", labels=["type"])
        for kind, count in sorted(m.messages_in.items()):
            inbound.add_metric([kind], count)
        yield inbound
        errors = CounterMetricFamily(
            "kasagi_errors", "ERROR frames sent, by code.", labels=["code"]
        )
        for code, count in sorted(m.errors.items()):
            errors.add_metric([code], count)
        yield errors
        views = CounterMetricFamily(
            "kasagi_view_flush_members", "Members of a room at each flush with changes.")
        views.add_metric([], m.flush_members)
        yield views
        views = CounterMetricFamily(
            "kasagi_view_encodings", "Frame lists encoded by flushes (one per view and codec).")
        views.add_metric([], m.flush_encodings)
        yield views
        events = CounterMetricFamily("kasagi_events_out", "EVENT frames sent.")
        events.add_metric([], m.events_out)
        yield events
        failures = CounterMetricFamily(
            "kasagi_room_code_errors", "Exceptions raised by room code, by room type.",
            labels=["room_type"])
        for room_type, count in sorted(m.room_code_errors.items()):
            failures.add_metric([room_type], count)
        yield failures
        paths = CounterMetricFamily(
            "kasagi_writer_connections", "WebSocket connections by frame writer path.",
            labels=["path"],
        )
        for path, count in sorted(m.writer_connections.items()):
            paths.add_metric([path], count)
        yield paths
        paths = CounterMetricFamily(
            "kasagi_reader_connections", "WebSocket connections by frame reader path.",
            labels=["path"],
        )
        for path, count in sorted(m.reader_connections.items()):
            paths.add_metric([path], count)
        yield paths
        inline = CounterMetricFamily(
            "kasagi_messages_inline",
            "Client messages handled in the socket's data callback (no queue hop).")
        inline.add_metric([], m.messages_inline)
        yield inline
        queued = CounterMetricFamily(
            "kasagi_messages_queued", "Client messages handled by the connection's task.")
        queued.add_metric([], m.messages_queued)
        yield queued


METRICS = Metrics()
REGISTRY.register(_Collector(METRICS))
