"""Runs jobs: claims a period in the runs table, executes it under a lease, records the outcome.

Every path into a run goes through the runs table (gateway/store/jobs.py): the ticker's fire
(:meth:`JobRunner.tick`), catch-up of periods missed while no instance ran
(:meth:`JobRunner.catch_up`), retries and takeovers (:meth:`JobRunner.sweep`), and operators
(:meth:`JobRunner.run_now`, from the CLI and ``/v1/admin/jobs``). So a period runs once
whichever instances tick, however often, and whatever the clocks do: a clock that jumps back
computes a period that already has its row; one that jumps forward is caught up once.

Outcomes: success stores the function's summary; a :class:`~gateway.errors.PermanentError`
fails the run for good (journaled); anything else is retried after a backoff (``retry:`` of
the job) on whichever instance sweeps first, until ``max_attempts``.
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.config import Settings
from gateway.errors import ConfigError, GatewayError, PermanentError
from gateway.jobs.context import JobContext, JobFunction, LeaseLostError, Progress
from gateway.jobs.periods import LOOKBACK, Period, fire_times, period_at, period_named, zone
from gateway.jobs.registry import FUNCTIONS, resolve
from gateway.jobs.spec import JobSpec, load_schedules
from gateway.store import Store
from gateway.store.jobs import Claim, JobRuns
from gateway.store.schema import utcnow

__all__ = ["JobRunner", "RunOutcome", "backoff_delay", "load_jobs"]

log = structlog.get_logger(__name__)


def load_jobs(settings: Settings) -> dict[str, JobSpec]:
    """The job definitions of ``jobs.schedules`` (ConfigError names a bad file and key)."""
    return load_schedules(
        settings.jobs.schedules, zone(settings.jobs.timezone), frozenset(FUNCTIONS)
    )


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Seconds before retry number ``attempt``: half fixed, half jitter, up to ``cap``."""
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    # Half fixed so a retry never comes back at once; half jitter so instances and jobs that
    # failed together (a CKAN outage) do not all come back at the same second.
    return ceiling / 2 + random.uniform(0, ceiling / 2)


@dataclass
class RunOutcome:
    """What became of one run."""

    job: str
    period: str
    status: str  # succeeded | retry | failed | skipped | lost
    attempt: int = 0
    result: dict[str, Any] = field(default_factory=dict)
    error_code: str | None = None
    error: str | None = None
    retry_at: datetime | None = None


class _JobMetrics(Collector):
    """Counters of outcomes, durations, and the state of each job read at scrape time."""

    def __init__(self, registry: CollectorRegistry, runs: JobRuns) -> None:
        self._runs = runs
        self.outcomes = Counter(
            "plusgw_job_runs_total",
            "Job runs by outcome (succeeded, retry, failed, lost)",
            ["job", "outcome"],
            registry=registry,
        )
        self.seconds = Histogram(
            "plusgw_job_run_seconds",
            "Duration of job runs",
            ["job"],
            buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600),
            registry=registry,
        )
        registry.register(self)

    def collect(self) -> list[Metric]:
        """Last success time and runs waiting to retry or failed, per job (from the store)."""
        success = GaugeMetricFamily(
            "plusgw_job_last_success_timestamp_seconds",
            "When each job last succeeded (Unix time)",
            labels=["job"],
        )
        failing = GaugeMetricFamily(
            "plusgw_job_runs_failing",
            "Runs of each job waiting to retry (state=retry) or given up on (state=failed)",
            labels=["job", "state"],
        )
        try:
            summary = self._runs.summary()
        except GatewayError:
            summary = {}
        for job, info in sorted(summary.items()):
            if info.get("last_success_at") is not None:
                success.add_metric([job], info["last_success_at"].timestamp())
            failing.add_metric([job, "retry"], info.get("retry_runs", 0))
            failing.add_metric([job, "failed"], info.get("failed_runs", 0))
        return [success, failing]


class JobRunner:
    """Claims and executes job runs for one instance."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        specs: Mapping[str, JobSpec] | None = None,
        functions: Mapping[str, JobFunction] | None = None,
        metrics_registry: CollectorRegistry | None = None,
        owner: str | None = None,
        runtime: Any | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        #: ``serve`` passes its Runtime; elsewhere (the CLI) one is built on first need.
        self._runtime = runtime
        self._runtime_lock = threading.Lock()
        self._own_runtime = False
        self.specs: dict[str, JobSpec] = dict(specs if specs is not None else load_jobs(settings))
        self._functions = dict(functions or {})
        self.runs = JobRuns(store.db, store.journal)
        self.tz = zone(settings.jobs.timezone)
        self.lease = timedelta(seconds=settings.jobs.lease_seconds)
        #: Who holds leases: the instance, host, process and a random part (restarts differ).
        self.owner = (
            owner
            or (
                f"{settings.instance_name[:24]}:{socket.gethostname()[:16]}:{os.getpid()}:"
                f"{uuid.uuid4().hex[:6]}"
            )[:64]
        )
        self.metrics = _JobMetrics(metrics_registry or CollectorRegistry(), self.runs)
        self._stopping = threading.Event()
        self._active: dict[int, threading.Event] = {}
        self._active_lock = threading.Lock()

    def runtime(self) -> Any:
        """The loaded runtime jobs over the channels or the calendar need (built once)."""
        with self._runtime_lock:
            if self._runtime is None:
                from gateway.runtime import Runtime

                # The CLI: the store is migrated already (the runner's own store is open).
                self._runtime = Runtime(self.settings, run_migrations=False)
                self._own_runtime = True
            return self._runtime

    # -- periods -------------------------------------------------------------------------

    def spec(self, name: str) -> JobSpec:
        """The definition of job ``name``; ConfigError if there is none."""
        try:
            return self.specs[name]
        except KeyError:
            raise ConfigError(
                f"no job {name!r} in {self.settings.jobs.schedules} (known: {sorted(self.specs)})"
            ) from None

    def period_of_fire(self, spec: JobSpec, fire: datetime) -> Period:
        """The period a fire time of ``spec`` runs."""
        return period_at(spec.period, fire, self.tz, spec.lag)

    def current_period(self, spec: JobSpec, now: datetime | None = None) -> Period:
        """The period the schedule ran (or would have run) most recently."""
        now = now or utcnow()
        if spec.period == "slot":
            fires = fire_times(spec.trigger, now - self._lookback(spec), now)
            return self.period_of_fire(spec, fires[-1] if fires else now)
        return period_at(spec.period, now, self.tz, spec.lag)

    def _lookback(self, spec: JobSpec) -> timedelta:
        if spec.period in LOOKBACK:
            return LOOKBACK[spec.period]
        interval = getattr(spec.trigger, "interval", None)
        return 2 * interval if isinstance(interval, timedelta) else timedelta(days=2)

    # -- entry points ----------------------------------------------------------------------

    def tick(self, name: str, now: datetime | None = None) -> RunOutcome | None:
        """The ticker fired ``name``: run its period unless any instance already has it."""
        spec = self.spec(name)
        now = now or utcnow()
        fires = fire_times(spec.trigger, now - self._lookback(spec), now + timedelta(seconds=1))
        if not fires:
            return None
        return self._claim_and_run(spec, fires[-1])

    def catch_up(self, now: datetime | None = None) -> list[RunOutcome]:
        """Run periods whose fire time passed while no instance ran (each at most once).

        ``catch_up: latest`` runs only the most recent missed period (a monthly job after a
        week's outage runs that month once); ``all`` runs up to ``catch_up_limit`` of them, in
        order; ``none`` runs nothing. Without any run yet, only fire times within one period
        back count, so a new installation does not replay history.
        """
        now = now or utcnow()
        outcomes: list[RunOutcome] = []
        for spec in self.specs.values():
            if not spec.enabled or spec.catch_up == "none" or self._stopping.is_set():
                continue
            # Only the periods catch-up may run are looked at: fine-grained triggers after a
            # long outage would otherwise mean millions of fire times.
            window = self._lookback(spec) * (spec.catch_up_limit if spec.catch_up == "all" else 1)
            last = self.runs.last_scheduled(spec.name)
            since = max(last, now - window) if last else now - self._lookback(spec)
            fires = fire_times(spec.trigger, since, now)
            fires = fires[-1:] if spec.catch_up == "latest" else fires[-spec.catch_up_limit :]
            for fire in fires:
                outcome = self._claim_and_run(spec, fire)
                if outcome is not None:
                    outcomes.append(outcome)
        return outcomes

    def sweep(self) -> list[RunOutcome]:
        """Retry runs whose backoff is over and take over runs whose instance died."""
        if self._stopping.is_set():
            return []
        outcomes = []
        for claim in self.runs.take_due(owner=self.owner, lease=self.lease):
            spec = self.specs.get(claim.job)
            if spec is None:
                # A job removed from schedules/ while a run of it was pending: give it up.
                self.runs.fail(
                    claim,
                    code="JOB_UNKNOWN",
                    error="the job is no longer defined",
                    retry_at=None,
                    journal=True,
                )
                continue
            period = period_named(spec.period, claim.period, self.tz)
            log.info(
                "job run taken over", job=claim.job, period=claim.period, attempt=claim.attempt
            )
            outcomes.append(self.execute(spec, period, claim))
        return outcomes

    def run_now(
        self,
        name: str,
        *,
        period: str | None = None,
        force: bool = False,
        actor: str,
        reason: str | None = None,
        progress: Progress | None = None,
        background: bool = False,
    ) -> RunOutcome:
        """An operator's run (CLI, admin API): this period or ``period``, ``force`` to rerun.

        A run for a past period, or forced over an earlier run, is journaled with ``actor``
        and ``reason`` (required then). ``skipped`` says why nothing ran (the period ran
        already, or runs right now). ``background`` returns once claimed (the API's 202).
        """
        spec = self.spec(name)
        actor = actor[:64]  # the width of the journal's and the runs table's actor
        current = self.current_period(spec)
        chosen = period_named(spec.period, period, self.tz) if period else current
        past = chosen.key != current.key
        existing = self.runs.get(spec.name, chosen.key)
        journal_status = None
        if force and existing is not None:
            journal_status = "job_forced"
        elif past:
            journal_status = "job_past_period"
        if journal_status is not None and not (reason and reason.strip()):
            raise ConfigError(
                f"a {'forced' if force else 'past-period'} run needs a reason (journaled)"
            )
        claim, row = self.runs.claim_operator(
            spec.name,
            chosen.key,
            owner=self.owner,
            lease=self.lease,
            actor=actor,
            reason=(reason or "operator run")[:500],
            force=force,
            journal_status=journal_status,
        )
        if claim is None:
            assert row is not None
            why = (
                "it is running right now"
                if row["status"] == "running"
                else f"it already ran ({row['status']}); use --force with a reason to run it again"
            )
            return RunOutcome(spec.name, chosen.key, "skipped", int(row["attempts"]), error=why)
        if background:
            threading.Thread(
                target=self.execute,
                args=(spec, chosen, claim),
                kwargs={"actor": actor},
                name=f"job-{spec.name}",
                daemon=True,
            ).start()
            return RunOutcome(spec.name, chosen.key, "running", claim.attempt)
        return self.execute(spec, chosen, claim, progress=progress, actor=actor)

    # -- execution -----------------------------------------------------------------------

    def _claim_and_run(self, spec: JobSpec, fire: datetime) -> RunOutcome | None:
        if self._stopping.is_set():
            return None
        period = self.period_of_fire(spec, fire)
        claim = self.runs.claim(
            spec.name, period.key, owner=self.owner, lease=self.lease, scheduled_for=fire
        )
        if claim is None:
            return None  # another instance (or an earlier tick) has this period
        log.info("job run claimed", job=spec.name, period=period.key)
        return self.execute(spec, period, claim)

    def _function(self, spec: JobSpec) -> JobFunction:
        return self._functions.get(spec.run) or resolve(spec.run)

    def execute(
        self,
        spec: JobSpec,
        period: Period,
        claim: Claim,
        *,
        progress: Progress | None = None,
        actor: str | None = None,
    ) -> RunOutcome:
        """Run a claimed period under its lease and record the outcome."""
        lost = threading.Event()
        with self._active_lock:
            self._active[claim.id] = lost
        if self._stopping.is_set():
            lost.set()
        ctx = JobContext(
            settings=self.settings,
            store=self.store,
            spec=spec,
            period=period,
            params=dict(spec.params),
            attempt=claim.attempt,
            forced=claim.forced,
            actor=actor,
            owner=claim.owner,
            progress_fn=progress or self._log_progress(spec, period),
            lost=lost,
            runtime_provider=self.runtime,
        )
        heartbeat = threading.Thread(
            target=self._heartbeat, args=(claim, lost), name=f"lease-{spec.name}", daemon=True
        )
        heartbeat.start()
        started = time.monotonic()
        try:
            result = self._function(spec)(ctx)
        except LeaseLostError as exc:
            self.metrics.outcomes.labels(spec.name, "lost").inc()
            log.warning("job run lost its lease", job=spec.name, period=period.key)
            return RunOutcome(spec.name, period.key, "lost", claim.attempt, error=exc.message)
        except Exception as exc:
            return self._failed(spec, period, claim, exc)
        finally:
            lost.set()  # stops the heartbeat
            heartbeat.join(timeout=5)
            with self._active_lock:
                self._active.pop(claim.id, None)
            self.metrics.seconds.labels(spec.name).observe(time.monotonic() - started)
        if not self.runs.succeed(claim, result):
            self.metrics.outcomes.labels(spec.name, "lost").inc()
            return RunOutcome(spec.name, period.key, "lost", claim.attempt, result=result)
        self.metrics.outcomes.labels(spec.name, "succeeded").inc()
        log.info("job run succeeded", job=spec.name, period=period.key, attempt=claim.attempt)
        return RunOutcome(spec.name, period.key, "succeeded", claim.attempt, result=result)

    def _failed(self, spec: JobSpec, period: Period, claim: Claim, exc: Exception) -> RunOutcome:
        if isinstance(exc, GatewayError):
            code, message = exc.code, exc.message
        else:
            # An unexpected crash half-way: retried like a transient fault, and logged whole.
            code, message = "JOB_CRASHED", f"{type(exc).__name__}: {exc}"
            log.exception("job run crashed", job=spec.name, period=period.key)
        permanent = isinstance(exc, PermanentError)
        retry_at = None
        if not permanent and claim.attempt < spec.retry.max_attempts:
            delay = backoff_delay(claim.attempt, spec.retry.base_delay, spec.retry.max_delay)
            retry_at = utcnow() + timedelta(seconds=delay)
        self.runs.fail(claim, code=code, error=message, retry_at=retry_at, journal=True)
        outcome = "retry" if retry_at is not None else "failed"
        self.metrics.outcomes.labels(spec.name, outcome).inc()
        log.warning(
            "job run failed",
            job=spec.name,
            period=period.key,
            attempt=claim.attempt,
            code=code,
            error=message,
            retry_at=retry_at.isoformat() if retry_at else None,
        )
        return RunOutcome(
            spec.name,
            period.key,
            outcome,
            claim.attempt,
            error_code=code,
            error=message,
            retry_at=retry_at,
        )

    def _heartbeat(self, claim: Claim, lost: threading.Event) -> None:
        every = max(0.05, self.lease.total_seconds() / 3)
        while not lost.wait(every):
            try:
                if not self.runs.renew(claim, self.lease):
                    lost.set()
            except GatewayError:
                # The store is away; the lease may run out, and then another instance takes
                # the run over. Keep trying while the function works.
                continue

    def _log_progress(self, spec: JobSpec, period: Period) -> Progress:
        last = [0.0]

        def report(done: int, total: int, what: str) -> None:
            now = time.monotonic()
            if now - last[0] >= 10 or (total and done >= total):
                last[0] = now
                log.info(
                    "job progress",
                    job=spec.name,
                    period=period.key,
                    done=done,
                    total=total,
                    step=what,
                )

        return report

    # -- stopping ------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Claim nothing more; runs in progress are told to give up at their next check."""
        self._stopping.set()
        with self._active_lock:
            for lost in self._active.values():
                lost.set()

    def stop(self, timeout: float) -> int:
        """Stop, wait up to ``timeout`` for runs to end, give back what is still held."""
        self.request_stop()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._active_lock:
                if not self._active:
                    break
            time.sleep(0.05)
        released = self.runs.release(self.owner)
        if released:
            log.info("job runs given back", runs=released)
        with self._runtime_lock:
            if self._own_runtime and self._runtime is not None:
                self._runtime.close()
                self._runtime, self._own_runtime = None, False
        return released

    def describe(self) -> list[dict[str, Any]]:
        """Every job with its schedule, next fire time and latest run (``jobs ls``)."""
        summary = self.runs.summary()
        now = utcnow()
        out = []
        for spec in sorted(self.specs.values(), key=lambda s: s.name):
            nxt = spec.trigger.get_next_fire_time(None, now) if spec.enabled else None
            out.append(
                {
                    "name": spec.name,
                    "run": spec.run,
                    "schedule": spec.schedule,
                    "period": spec.period,
                    "enabled": spec.enabled,
                    "description": spec.description,
                    "next_fire": nxt,
                    "next_period": self.period_of_fire(spec, nxt).key if nxt else None,
                    "latest": summary.get(spec.name, {}),
                }
            )
        return out

    def health(self) -> dict[str, Any]:
        """Per job for ``/ready``: latest period and status, waiting retries, failures."""
        summary = self.runs.summary()
        return {
            name: {
                "status": summary.get(name, {}).get("status", "never"),
                "period": summary.get(name, {}).get("period"),
                "retrying": summary.get(name, {}).get("retry_runs", 0),
                "failed": summary.get(name, {}).get("failed_runs", 0),
                "last_error_code": summary.get(name, {}).get("last_error_code"),
            }
            for name in sorted(self.specs)
        }
