"""Scheduled jobs: definitions as data (``schedules/*.yaml``), run once per period anywhere.

=============  ================================================================================
``spec.py``    job definitions: what runs, when (cron or interval, Europe/Riga), parameters
``periods.py`` the unique key of a fire time (``2026-10``) and the fire times a trigger had
``runner.py``  claim a period in the runs table, run it under a lease, retry with backoff,
               take over a dead instance's runs, catch up missed periods; metrics
``ticker.py``  APScheduler 3 as each instance's clock in ``serve``
``registry.py`` the functions a job may run (open data, retention, classifier sync, noop)
``command.py`` ``plus-gateway jobs ls|run|history`` (progress bars)
=============  ================================================================================

The runs table is the store's jobs area (gateway/store/jobs.py); docs/JOBS.md describes the
guarantees.
"""

from gateway.jobs.runner import JobRunner, RunOutcome, load_jobs
from gateway.jobs.spec import JobSpec
from gateway.jobs.ticker import Ticker

__all__ = ["JobRunner", "JobSpec", "RunOutcome", "Ticker", "load_jobs"]
