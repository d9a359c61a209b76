"""Prometheus metrics of operations, read from the database at scrape time (so every server and the runner
count the same): files delivered per watcher, tasks run and aborted per suite, deliveries and their latency."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import func, select

from cubeport.db import Database
from cubeport.db.models import OpsDeliveryRecord, OpsFileRecord, OpsNodeRecord, OpsRunRecord, OpsWatcherRecord
from cubeport.ops.runs import utc

LATENCY_BUCKETS = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)


class OpsCollector:
    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        with self.db.session() as session:
            files = session.execute(
                select(OpsFileRecord.watcher, func.count()).group_by(OpsFileRecord.watcher)
            ).all()
            failing = session.execute(select(OpsWatcherRecord.name, OpsWatcherRecord.last_error)).all()
            tasks = session.execute(
                select(OpsRunRecord.suite, OpsNodeRecord.state, func.sum(OpsNodeRecord.try_no), func.count())
                .join(OpsRunRecord, OpsRunRecord.id == OpsNodeRecord.run_id)
                .where(OpsNodeRecord.try_no > 0)
                .group_by(OpsRunRecord.suite, OpsNodeRecord.state)
            ).all()
            deliveries = session.execute(
                select(
                    OpsDeliveryRecord.target,
                    OpsDeliveryRecord.state,
                    OpsDeliveryRecord.created,
                    OpsDeliveryRecord.delivered,
                )
            ).all()
        seen = CounterMetricFamily(
            "cubeport_ops_files", "files delivered to a watcher (recorded once)", labels=["watcher"]
        )
        for watcher, count in files:
            seen.add_metric([watcher], count)
        yield seen
        errors = GaugeMetricFamily(
            "cubeport_ops_watcher_failing", "1 when a watcher's last look failed", labels=["watcher"]
        )
        for name, error in failing:
            errors.add_metric([name], 1.0 if error else 0.0)
        yield errors
        runs = CounterMetricFamily("cubeport_ops_task_runs", "task tries started", labels=["suite"])
        aborted = GaugeMetricFamily("cubeport_ops_tasks_aborted", "tasks that stay aborted", labels=["suite"])
        tries: dict[str, float] = {}
        for suite, state, try_sum, count in tasks:
            tries[suite] = tries.get(suite, 0.0) + float(try_sum or 0)
            if state == "aborted":
                aborted.add_metric([suite], count)
        for suite, total in tries.items():
            runs.add_metric([suite], total)
        yield runs
        yield aborted
        by_state = GaugeMetricFamily(
            "cubeport_ops_deliveries", "deliveries by state", labels=["target", "state"]
        )
        counts: dict[tuple[str, str], int] = {}
        latencies: dict[str, list[float]] = {}
        for target, state, created, delivered in deliveries:
            counts[(target, state)] = counts.get((target, state), 0) + 1
            if delivered is not None:
                latencies.setdefault(target, []).append((utc(delivered) - utc(created)).total_seconds())  # type: ignore[operator]
        for (target, state), count in counts.items():
            by_state.add_metric([target, state], count)
        yield by_state
        latency = HistogramMetricFamily(
            "cubeport_ops_delivery_latency_seconds",
            "from a product offered to it delivered",
            labels=["target"],
        )
        for target, values in latencies.items():
            buckets = [(str(b), sum(v <= b for v in values)) for b in LATENCY_BUCKETS] + [
                ("+Inf", len(values))
            ]
            latency.add_metric([target], buckets, sum(values))
        yield latency


def exposition(db: Database) -> tuple[bytes, str]:
    """The metrics in Prometheus' text format, and its content type."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(OpsCollector(db))
    return generate_latest(registry), CONTENT_TYPE_LATEST
