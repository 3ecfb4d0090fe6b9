"""The in-process ticker of ``serve``: APScheduler 3 fires each job; the runs table decides.

APScheduler 3 keeps its job store per process (it cannot share one between instances), so it is
used only as a clock: each instance schedules every enabled job with its trigger, in memory,
and on a fire asks :class:`~gateway.jobs.runner.JobRunner` to claim the period. A sweep every
``jobs.poll_interval`` seconds retries due runs, takes over runs of a dead instance, and
catches up periods missed while down (also right at start).
"""

from __future__ import annotations

from datetime import timedelta

import structlog
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from gateway.errors import GatewayError
from gateway.jobs.runner import JobRunner
from gateway.store.schema import utcnow

__all__ = ["Ticker"]

log = structlog.get_logger(__name__)

#: Catch-up runs at most this often (the sweep itself is more frequent).
_CATCH_UP_EVERY = timedelta(seconds=60)


class Ticker:
    """APScheduler as the clock of one instance's :class:`JobRunner`."""

    def __init__(self, runner: JobRunner) -> None:
        self.runner = runner
        settings = runner.settings.jobs
        self._scheduler = BackgroundScheduler(
            timezone=runner.tz,
            executors={"default": ThreadPoolExecutor(settings.max_workers + 1)},
            # coalesce: fires missed while busy collapse into one (the runs table would drop
            # the duplicates anyway); misfires within an hour still run, older ones are the
            # catch-up's job.
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
        )
        self._poll = settings.poll_interval
        self._last_catch_up = utcnow() - _CATCH_UP_EVERY
        self.started = False

    def start(self) -> None:
        """Schedule every enabled job and the sweep; catch up at once."""
        for spec in self.runner.specs.values():
            if spec.enabled:
                self._scheduler.add_job(
                    self._fire, trigger=spec.trigger, args=[spec.name], id=spec.name
                )
        self._scheduler.add_job(
            self._sweep,
            trigger=IntervalTrigger(seconds=self._poll, timezone=self.runner.tz),
            id="__sweep",
            next_run_time=utcnow(),
        )
        self._scheduler.start()
        self.started = True
        log.info("job ticker started", jobs=sorted(s.name for s in self.runner.specs.values()))

    def _fire(self, name: str) -> None:
        try:
            self.runner.tick(name)
        except GatewayError as exc:
            log.warning("job tick failed", job=name, code=exc.code, error=exc.message)
        except Exception:
            log.exception("job tick crashed", job=name)

    def _sweep(self) -> None:
        try:
            now = utcnow()
            if now - self._last_catch_up >= _CATCH_UP_EVERY:
                self._last_catch_up = now
                self.runner.catch_up(now)
            self.runner.sweep()
        except GatewayError as exc:
            log.warning("job sweep failed", code=exc.code, error=exc.message)
        except Exception:
            log.exception("job sweep crashed")

    @property
    def alive(self) -> bool:
        """Whether the scheduler thread runs."""
        return bool(self.started and self._scheduler.running)

    def stop(self, timeout: float) -> None:
        """Fire nothing more, let runs end within ``timeout``, give back what is held."""
        if self.started:
            self._scheduler.shutdown(wait=False)
        try:
            self.runner.stop(timeout)
        except GatewayError as exc:
            log.warning("could not give back job runs", code=exc.code, error=exc.message)
