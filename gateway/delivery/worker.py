"""The outbox worker: claim due messages, send them, record the outcome.

A message leaves the outbox only by being acknowledged by the partner (``delivered``) or by a
recorded decision (``dead``, with its reason). A crash between send and record leaves the row
``sending`` with a lease; when the lease expires the row is claimed again and resent with the
same message id, which the partner uses to drop the duplicate.

Delivery is concurrent across cases and bounded per endpoint: one pool of sending threads per
endpoint (the E-case platform, shared by every E-case institution; each direct institution;
each outbox transport such as the calendar), ``delivery.concurrency`` threads by default. A
dispatcher thread claims due messages for a pool only while it has free threads. The claim
takes at most one message per case (a later one is held while an earlier one is pending,
sending or dead), so two threads, or two gateways, never send two messages of one case at
once, and a case's messages leave in submission order.

Each partner has a circuit breaker (:mod:`gateway.delivery.breaker`): while it is open the
partner's messages are not claimed and wait without spending attempts; a trial message probes
the partner, and once one gets through every waiting message is due at once.
"""

from __future__ import annotations

import os
import queue
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog

from gateway.channels.ecase import ECASE_ENDPOINT
from gateway.config import BreakerSettings, RetrySettings
from gateway.delivery.backoff import next_attempt
from gateway.delivery.breaker import CLOSED, OPEN, PartnerBreaker
from gateway.delivery.push import InboxPusher
from gateway.delivery.recorder import DeliveryRecorder
from gateway.errors import GatewayError, PartnerRejectedError
from gateway.store.leases import release_leases
from gateway.store.schema import utcnow

if TYPE_CHECKING:
    from gateway.runtime import Runtime

__all__ = ["DeliveryWorker"]

log = structlog.get_logger(__name__)

#: The pool of rows whose partner nothing is configured for (sent one at a time; they fail
#: with a configuration error and wait in dead letter for an operator).
OTHER_POOL = "*"


@dataclass
class _Pool:
    """The sending threads of one endpoint."""

    key: str
    size: int
    #: Partners this pool sends to; None: every partner no other pool knows.
    partners: frozenset[str] | None
    queue: queue.SimpleQueue[dict[str, Any] | None] = field(default_factory=queue.SimpleQueue)
    threads: list[threading.Thread] = field(default_factory=list)
    #: Rows handed to this pool and not finished (queued or being sent); under the lock.
    busy: int = 0
    #: After a claim that found nothing, the next look waits until then (monotonic), unless
    #: a message of the pool finished, a breaker closed or :meth:`DeliveryWorker.wake`.
    idle_until: float = 0.0


class DeliveryWorker:
    """Sends outbox messages: a dispatcher thread, a pool per endpoint, breakers per partner."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        name: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.runtime = runtime
        self.settings = runtime.settings.delivery
        self.owner = name or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._push_wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._push_thread: threading.Thread | None = None
        self.last_cycle_at: float | None = None
        self.pusher = (
            InboxPusher(runtime, self.owner, runtime.session) if runtime.settings.push.url else None
        )
        self._lock = threading.Condition()
        #: Ids handed to a pool and not finished yet; ids of trial messages among them.
        self._handed: set[int] = set()
        self._trials: set[int] = set()
        #: Deliveries of all sending threads are committed together (group commit).
        self.recorder = DeliveryRecorder(runtime.store, self.owner)
        self.breakers: dict[str, PartnerBreaker] = {}
        self.pools: dict[str, _Pool] = {}
        self._pool_of: dict[str, _Pool] = {}
        self._build(clock)
        runtime.metrics.watch_delivery(self.health)

    # -- configuration ---------------------------------------------------------------------

    def _build(self, clock: Callable[[], float]) -> None:
        settings = self.runtime.settings
        members: dict[str, tuple[int, set[str]]] = {}
        for partner, transport in self.runtime.transports.items():
            # A transport sends one at a time unless it says it can do more.
            size = int(getattr(transport, "concurrency", 1))
            members[partner] = (size, {partner})
            self.breakers[partner] = PartnerBreaker(
                partner,
                getattr(transport, "breaker", BreakerSettings()),
                transport.retry,
                clock=clock,
            )
        for institution in self.runtime.directory.all():
            name = institution.name
            if name in self.runtime.transports:
                continue
            cfg = settings.institution(name)
            key = self.runtime.channels.endpoint_of(name)
            if key == ECASE_ENDPOINT:
                size = settings.ecase.concurrency or self.settings.concurrency
            else:
                size = cfg.concurrency or self.settings.concurrency
            members.setdefault(key, (size, set()))[1].add(name)
            self.breakers[name] = PartnerBreaker(name, cfg.breaker, cfg.retry, clock=clock)
        for key, (size, partners) in sorted(members.items()):
            pool = _Pool(key, size, frozenset(partners))
            self.pools[key] = pool
            for partner in partners:
                self._pool_of[partner] = pool
        self.pools[OTHER_POOL] = _Pool(OTHER_POOL, 1, None)

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the dispatcher (and the push thread when push is configured)."""
        self._thread = threading.Thread(target=self._loop, name="delivery", daemon=True)
        self._thread.start()
        if self.pusher is not None:
            self._push_thread = threading.Thread(
                target=self._push_loop, name="delivery-push", daemon=True
            )
            self._push_thread.start()

    def request_stop(self) -> None:
        """Claim nothing more; messages being sent may finish (returns at once)."""
        self._stop.set()
        self._wake.set()
        self._push_wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Let the messages being sent finish for up to ``timeout`` s, then give back every lease.

        Rows still queued in a pool are given back unsent. Leases are released even when a
        thread is still stuck in a send: the process is about to go, and a row left leased
        would wait ``lease_seconds`` for any other worker.
        """
        self.request_stop()
        deadline = time.monotonic() + timeout
        for thread in (self._thread, self._push_thread):
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            while self._handed and time.monotonic() < deadline:
                self._lock.wait(min(0.05, max(0.0, deadline - time.monotonic())))
            unfinished = len(self._handed)
        for pool in self.pools.values():
            for _ in pool.threads:
                pool.queue.put(None)  # idle threads end; a stuck one is a daemon
        try:
            released = release_leases(self.runtime.store, self.owner)
        except GatewayError as exc:
            log.warning("leases not released; they expire", code=exc.code, error=exc.message)
            return
        if released.outbox or released.push:
            log.info(
                "leases released",
                outbox=released.outbox,
                push=released.push,
                finished=not self.alive and not unfinished,
            )

    def wake(self) -> None:
        """Look at the outbox (and the inbox to push) now instead of after the poll interval."""
        self._rouse()
        self._push_wake.set()

    def _rouse(self) -> None:
        with self._lock:
            for pool in self.pools.values():
                pool.idle_until = 0.0
        self._wake.set()

    @property
    def alive(self) -> bool:
        """True while the dispatcher runs."""
        return bool(self._thread and self._thread.is_alive())

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                busy = len(self._dispatch())
            except Exception:
                log.exception("delivery cycle failed")
                busy = 0
            self.last_cycle_at = time.monotonic()
            if not busy:
                # Woken early by wake(), by a pool thread that finished, or a breaker change.
                self._wake.wait(self.settings.poll_interval)
                self._wake.clear()

    def _push_loop(self) -> None:
        assert self.pusher is not None
        while not self._stop.is_set():
            try:
                busy = self.pusher.run_once()
            except Exception:
                log.exception("push cycle failed")
                busy = 0
            if not busy:
                self._push_wake.wait(self.settings.poll_interval)
                self._push_wake.clear()

    def run_once(self) -> int:
        """Claim one round for every pool, wait until it is sent, push once; how many handled.

        The synchronous form of what the dispatcher does continuously (tools and tests).
        """
        ids = set(self._dispatch())
        with self._lock:
            while ids & self._handed:
                self._lock.wait(0.05)
        pushed = self.pusher.run_once() if self.pusher and not self._stop.is_set() else 0
        return len(ids) + pushed

    # -- dispatching -----------------------------------------------------------------------

    def _dispatch(self) -> list[int]:
        """Claim due messages for every pool with free threads and hand them over."""
        store = self.runtime.store
        handed: list[int] = []
        for pool in self.pools.values():
            if self._stop.is_set():
                break
            with self._lock:
                free = pool.size - pool.busy
                # Refill in batches rather than one claim per finished message, and do not ask
                # again at once after a claim that found nothing.
                if (
                    free <= 0
                    or (pool.busy and free < max(1, pool.size // 4))
                    or time.monotonic() < pool.idle_until
                ):
                    continue
            limit = min(free, self.settings.batch_size)
            if pool.partners is None:
                rows = store.outbox.claim_due(
                    self.owner, limit, self.settings.lease_seconds, exclude=set(self._pool_of)
                )
                self._hand(pool, rows, ())
                handed += [r["id"] for r in rows]
                continue
            closed: list[str] = []
            trials: list[dict[str, Any]] = []
            for partner in sorted(pool.partners):
                breaker = self.breakers[partner]
                state = breaker.state
                if state == CLOSED:
                    closed.append(partner)
                elif len(trials) < limit and breaker.take_trial():
                    # The health probe: the oldest waiting message of the partner.
                    got = store.outbox.claim_due(
                        self.owner,
                        1,
                        self.settings.lease_seconds,
                        partners=[partner],
                        any_time=True,
                    )
                    if got:
                        trials += got
                    else:
                        breaker.release_trial()
            rows = []
            if closed and limit > len(trials):
                rows = store.outbox.claim_due(
                    self.owner, limit - len(trials), self.settings.lease_seconds, partners=closed
                )
            self._hand(pool, trials + rows, [r["id"] for r in trials])
            handed += [r["id"] for r in trials + rows]
        return handed

    def _hand(self, pool: _Pool, rows: list[dict[str, Any]], trials: Any) -> None:
        if not rows:
            with self._lock:
                pool.idle_until = time.monotonic() + self.settings.poll_interval
            return
        with self._lock:
            pool.busy += len(rows)
            self._handed.update(r["id"] for r in rows)
            self._trials.update(trials)
            missing = pool.size - len(pool.threads)
        for _ in range(max(0, missing)):
            thread = threading.Thread(
                target=self._serve,
                args=(pool,),
                name=f"delivery-{pool.key}-{len(pool.threads)}",
                daemon=True,  # a send hung at exit must not keep the process
            )
            pool.threads.append(thread)
            thread.start()
        for row in rows:
            pool.queue.put(row)

    def _serve(self, pool: _Pool) -> None:
        while True:
            row = pool.queue.get()
            if row is None:
                return
            try:
                self._send(row)
            except Exception:
                log.exception("delivery failed unexpectedly", message_id=row.get("message_id"))
            finally:
                with self._lock:
                    pool.busy -= 1
                    # The next message of its case may be due now.
                    pool.idle_until = 0.0
                    self._handed.discard(row["id"])
                    self._trials.discard(row["id"])
                    self._lock.notify_all()
                self._wake.set()

    def _send(self, row: dict[str, Any]) -> None:
        with self._lock:
            trial = row["id"] in self._trials
        breaker = self.breakers.get(row["partner"])
        if (
            self._stop.is_set()
            or not self._lease_lasts(row)
            # Claimed before the partner's breaker opened: wait with the others, unsent.
            or (breaker is not None and not trial and breaker.state != CLOSED)
        ):
            # Give it back now rather than let it wait for the lease to expire; sending after
            # our lease ran out could overlap with another worker.
            self.runtime.store.outbox.release([row["id"]], self.owner)
            if trial and breaker is not None:
                breaker.release_trial()
            return
        try:
            self.deliver(row, trial=trial)
        except BaseException:
            if trial and breaker is not None:
                breaker.release_trial()
            raise

    def _lease_lasts(self, row: dict[str, Any]) -> bool:
        transport = self.runtime.transports.get(row["partner"])
        if transport is not None:
            connect, operation = transport.timeouts
        elif row["partner"] in self.runtime.settings.institutions:
            connect, operation = self.runtime.settings.timeouts(row["partner"])
        else:
            connect, operation = 0.0, 0.0
        worst = timedelta(seconds=connect + operation + 1)
        return bool(utcnow() + worst < row["lease_until"])

    # -- one message -----------------------------------------------------------------------

    def _policy(self, row: dict[str, Any]) -> RetrySettings:
        transport = self.runtime.transports.get(row["partner"])
        if transport is not None:
            return transport.retry
        found = self.runtime.settings.institutions.get(row["partner"])
        if found is None:
            return RetrySettings()
        return found.retry_for(row["operation"], row["message_type"])

    def deliver(self, row: dict[str, Any], *, trial: bool = False) -> None:
        """Send one claimed row and record what happened (the breaker learns from it too).

        ``trial``: the row is its partner's health probe (the breaker is half-open).
        """
        store = self.runtime.store
        partner = row["partner"]
        bound = log.bind(message_id=row["message_id"], partner=partner, operation=row["operation"])
        breaker = self.breakers.get(partner)
        policy = self._policy(row)
        try:
            ack = self._transmit(row)
        except GatewayError as exc:
            now = utcnow()
            # A replay restarts the clock of max_age.
            created = row.get("replayed_at") or row["created_at"]
            partner_down = False
            if breaker is not None:
                if exc.retryable:
                    partner_down = self._failed(breaker)
                elif isinstance(exc, PartnerRejectedError):
                    self._succeeded(breaker)  # it answered: the partner is up
                elif trial:
                    breaker.release_trial()  # our own error says nothing about the partner
            if partner_down:
                assert breaker is not None
                # The partner's failure, not the message's: no attempt is spent. It waits for
                # the next trial (or the pull forward), and gives up only at max_age.
                when = now + timedelta(seconds=breaker.retry_after())
                waits = (when - created).total_seconds() <= policy.max_age
                outcome = "waiting" if waits else "dead"
                store.outbox.mark_failed(
                    row,
                    owner=self.owner,
                    code=exc.code,
                    error=exc.message,
                    next_attempt_at=when if waits else None,
                    counted=not waits,
                )
            else:
                when_or_none = next_attempt(
                    exc,
                    attempts_done=row["attempts"] + 1,
                    created_at=created,
                    now=now,
                    policy=policy,
                )
                outcome = "retry" if when_or_none else "dead"
                store.outbox.mark_failed(
                    row,
                    owner=self.owner,
                    code=exc.code,
                    error=exc.message,
                    next_attempt_at=when_or_none,
                )
            self.runtime.metrics.deliveries.labels(partner, row["operation"], outcome).inc()
            if outcome == "dead":
                self.runtime.metrics.dead_letters.labels(partner, row["operation"], exc.code).inc()
            bound.warning("delivery failed", code=exc.code, error=exc.message, outcome=outcome)
            return
        if breaker is not None:
            self._succeeded(breaker)
        if not self.recorder.delivered(row, ack or {}):
            bound.warning("delivered, but the lease was taken over meanwhile")
        self.runtime.metrics.deliveries.labels(partner, row["operation"], "delivered").inc()
        bound.info("delivered", attempts=row["attempts"] + 1)

    def _transmit(self, row: dict[str, Any]) -> dict[str, Any] | None:
        partner = row["partner"]
        # A partner on another channel (the calendar: CalDAV) delivers its own way, with the
        # same leases, backoff, breaker, dead letters and replay.
        transport = self.runtime.transports.get(partner)
        if transport is not None:
            return transport.deliver(row)
        channels = self.runtime.channels
        client = channels.client_for(partner)
        header = channels.header_for(
            partner, row["operation"], row["message_id"], row.get("user_id")
        )
        ack: dict[str, Any] | None = client.send(
            row["operation"],
            row["payload"],
            header=header.serialize(),
            message_id=row["message_id"],
            # A signed receipt from the institution itself (through E-case too): an
            # unsigned, altered or untrusted acknowledgement is not a delivery.
            trust=self.runtime.directory.get(partner).trust,
            limits=self.runtime.limits,
        )
        return ack

    # -- the breakers ----------------------------------------------------------------------

    def _failed(self, breaker: PartnerBreaker) -> bool:
        before = breaker.state
        down = breaker.failed()
        if down and before != OPEN:
            self.runtime.metrics.breaker_transitions.labels(breaker.partner, OPEN).inc()
            if before == CLOSED:
                log.warning(
                    "partner down: its messages wait",
                    partner=breaker.partner,
                    probe_every_seconds=breaker.reset_timeout,
                )
        return down

    def _succeeded(self, breaker: PartnerBreaker) -> None:
        if not breaker.succeeded():
            return
        self.runtime.metrics.breaker_transitions.labels(breaker.partner, CLOSED).inc()
        try:
            pulled = self.runtime.store.outbox.pull_forward(breaker.partner)
        except GatewayError as exc:
            log.warning("waiting messages not pulled forward", code=exc.code, error=exc.message)
            pulled = 0
        self.runtime.metrics.pulled_forward.labels(breaker.partner).inc(pulled)
        log.info("partner back: waiting messages are due", partner=breaker.partner, pulled=pulled)
        self._rouse()

    # -- health ----------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """Breakers (state, failures, waiting messages) per partner and pools per endpoint."""
        partners = {name: b.snapshot() for name, b in sorted(self.breakers.items())}
        down = [name for name, snap in partners.items() if snap["state"] != CLOSED]
        try:
            waiting = self.runtime.store.outbox.waiting(down) if down else {}
        except GatewayError:
            waiting = {}
        for name, snap in partners.items():
            snap["waiting"] = waiting.get(name, 0)
        with self._lock:
            pools = {
                key: {
                    "concurrency": pool.size,
                    "in_flight": pool.busy,
                    "partners": sorted(pool.partners),
                }
                for key, pool in self.pools.items()
                if pool.partners is not None
            }
        return {"partners": partners, "pools": pools}
