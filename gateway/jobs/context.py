"""What a job function gets: settings, store, its period and parameters, progress, the lease."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from gateway.errors import RetryableError

if TYPE_CHECKING:
    from gateway.config import Settings
    from gateway.jobs.periods import Period
    from gateway.jobs.spec import JobSpec
    from gateway.store import Store

__all__ = ["JobContext", "JobFunction", "LeaseLostError", "Progress"]

#: ``progress(done, total, what)``: the CLI draws a bar, ``serve`` logs now and then.
Progress = Callable[[int, int, str], None]


class LeaseLostError(RetryableError):
    """The run's lease was lost (taken over after it expired) or the instance is stopping."""

    code = "JOB_LEASE_LOST"


def _no_progress(done: int, total: int, what: str) -> None:
    return None


@dataclass
class JobContext:
    """One run of one job for one period."""

    settings: Settings
    store: Store
    spec: JobSpec
    period: Period
    params: dict[str, Any]
    attempt: int = 1
    forced: bool = False
    actor: str | None = None
    #: The instance holding the run's lease (JobRunner.owner).
    owner: str = ""
    progress_fn: Progress = _no_progress
    #: Set when the lease could not be renewed or the instance stops: give up at once.
    lost: threading.Event = field(default_factory=threading.Event)
    #: Gives the instance's loaded runtime (schemas, channels, routes, the calendar), built on
    #: first use where the runner has none (the CLI); jobs of the store alone never call it.
    runtime_provider: Callable[[], Any] | None = None

    @property
    def runtime(self) -> Any:
        """The gateway's :class:`~gateway.runtime.Runtime` of this instance."""
        if self.runtime_provider is None:
            raise RuntimeError("this job runner has no runtime")
        return self.runtime_provider()

    def check(self) -> None:
        """Raise LeaseLostError when the run is no longer ours; call between steps."""
        if self.lost.is_set():
            raise LeaseLostError(f"{self.spec.name} {self.period.key}: lease lost or stopping")

    def progress(self, done: int, total: int, what: str = "") -> None:
        """Report progress (and check the lease)."""
        self.check()
        self.progress_fn(done, total, what)


class JobFunction(Protocol):
    """A job: does the period's work and returns a JSON-able summary (kept with the run)."""

    def __call__(self, ctx: JobContext) -> dict[str, Any]:
        """Run ``ctx.period``; raise RetryableError to retry, PermanentError to give up."""
        ...
