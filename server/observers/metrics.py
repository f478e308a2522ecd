"""Prometheus metrics of a running world server (``--metrics HOST:PORT``).

Needs the optional ``prometheus-client`` package (``pip install 'tickwire[metrics]'``). The
metrics live in their own registry (never the process-global default one) and are served over
HTTP from a background thread. The loop hands :meth:`MetricsServer.observe` its
:class:`~.report.TickReport` after each tick (ticks counter, tick-duration histogram) and
nothing per message; the per-player counters, rejections and player statuses are read from
the newest report when Prometheus scrapes (a frozen snapshot: the scrape thread never reads
the server's own state).

Metrics: ``tickwire_ticks_total``, ``tickwire_tick_duration_seconds`` (histogram),
``tickwire_player_answered_total``, ``tickwire_player_missed_total``,
``tickwire_player_late_total`` (labels ``player``, ``name``), ``tickwire_rejected_total``
(label ``reason``), ``tickwire_players`` (label ``status``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from tickwire.protocol import ConfigError
from tickwire.protocol.server_rules import Rejection
from tickwire.protocol.server_status import Status

if TYPE_CHECKING:
    from .report import TickReport

log = logging.getLogger(__name__)

#: Tick durations from 50 µs to 10 s: local ipc ticks take well under a millisecond.
BUCKETS = (5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
INSTALL_HINT = "pip install 'tickwire[metrics]' (or pip install prometheus-client)"


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[::1]:PORT`` or ``PORT`` (all interfaces) → (host, port)."""
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]") if sep else "0.0.0.0"
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise ConfigError(
            f"--metrics (TICKWIRE_METRICS) must be HOST:PORT or PORT, e.g. 0.0.0.0:9100, got {text!r}",
            "--metrics",
        )
    return host or "0.0.0.0", number


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (stdlib signature)
        log.debug("metrics: " + format, *args)


class MetricsServer:
    """Serves one server's metrics at ``http://HOST:PORT/metrics`` until :meth:`close`."""

    def __init__(self, address: str) -> None:
        try:
            import prometheus_client as prom
            from prometheus_client.exposition import ThreadingWSGIServer
        except ImportError:
            raise ConfigError(
                f"--metrics needs the prometheus-client package, which is not installed: {INSTALL_HINT}",
                "--metrics",
            ) from None
        host, port = parse_address(address)
        self.registry = prom.CollectorRegistry(auto_describe=True)
        self._ticks = prom.Counter("tickwire_ticks", "Ticks played", registry=self.registry)
        self._duration = prom.Histogram(
            "tickwire_tick_duration_seconds",
            "Wall time of one tick: publish, barrier, world step",
            buckets=BUCKETS,
            registry=self.registry,
        )
        self._report: TickReport | None = None  # the newest; replaced whole (no lock needed)
        self.registry.register(_RosterCollector(self))
        try:
            self._httpd = make_server(
                host,
                port,
                prom.make_wsgi_app(self.registry),
                ThreadingWSGIServer,
                handler_class=_QuietHandler,
            )
        except OSError as e:
            raise ConfigError(
                f"cannot serve metrics on {host}:{port} (--metrics, "
                f"TICKWIRE_METRICS): {e}; choose a free port",
                "--metrics",
            ) from e
        self.url = f"http://{host}:{self._httpd.server_port}/metrics"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, daemon=True, name="tickwire-metrics"
        )
        self._thread.start()
        log.info("metrics on %s", self.url)

    def observe(self, report: TickReport) -> None:
        """The loop's newest report; one that ends a tick counts the tick and its duration."""
        self._report = report
        if report.tick_s is not None:
            self._ticks.inc()
            self._duration.observe(report.tick_s)

    def close(self) -> None:
        """Stop serving and close the listening socket."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


class _RosterCollector:
    """Reads the per-player counters, rejections and statuses at scrape time."""

    def __init__(self, owner: MetricsServer) -> None:
        self._owner = owner

    def describe(self) -> list:
        return []  # families are built at collect time; nothing to check at registration

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        report = self._owner._report
        players = report.players if report else ()
        rejected = report.rejected if report else {}
        labels = ["player", "name"]
        for what in ("answered", "missed", "late"):
            family = CounterMetricFamily(
                f"tickwire_player_{what}",
                f"Ticks a player {what}" if what != "late" else "Actions that came after their tick closed",
                labels=labels,
            )
            for p in players:
                family.add_metric([str(p.id), p.name], getattr(p, what))
            yield family
        family = CounterMetricFamily("tickwire_rejected", "Messages rejected, by reason", labels=["reason"])
        for reason in Rejection:
            family.add_metric([reason.value], rejected.get(reason, 0))
        yield family
        statuses = GaugeMetricFamily("tickwire_players", "Players by status", labels=["status"])
        for status in Status:
            statuses.add_metric([status.value], sum(p.status is status for p in players))
        yield statuses
