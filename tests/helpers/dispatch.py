"""Fakes for running the Dispatcher without waiting: time that moves only when it sleeps (one
clock for one worker, or one shared by workers taking turns) and a gateway that records what it
was sent, when and by which worker."""

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from calls.models import Campaign
from calls.provider.base import SendResult
from calls.tasks import Dispatcher
from tests.clock import pinned_now

START = datetime(2026, 11, 2, 5, 0, tzinfo=UTC)  # 10:30 in Kolkata


class FakeClock:
    """Time that only moves when the dispatcher sleeps."""

    def __init__(self, start: datetime = START) -> None:
        self.moment = start

    def now(self) -> datetime:
        return self.moment

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.moment += timedelta(seconds=seconds)


@dataclass(frozen=True)
class Sent:
    at: datetime
    worker: str
    payload: dict


def accepted() -> SendResult:
    return SendResult(
        status="queued",
        http_status=200,
        body='{"status": "OK"}',
        provider_id=str(uuid.uuid4()),
        provider_status="queued",
    )


def rate_limited(retry_after: float | None) -> SendResult:
    return SendResult(
        status="rejected",
        http_status=429,
        body='{"message": "Too Many Requests"}',
        error="The provider rejected the call (HTTP 429): Too Many Requests",
        retry_after=retry_after,
    )


class FakeGateway:
    """Records every payload with the (fake) time and the worker thread that sent it; answers
    from a script, then accepts. Thread-safe. `after_send` runs an action after the n-th send."""

    is_sandbox = False

    def __init__(
        self,
        now: Callable[[], datetime] = pinned_now,
        answers: tuple[SendResult, ...] = (),
        after_send: dict[int, Callable[[], object]] | None = None,
        delay: float = 0.0,
    ) -> None:
        self.now = now
        self.answers = list(answers)
        self.after_send = after_send or {}
        self.delay = delay
        self.sent: list[Sent] = []
        self._lock = threading.Lock()

    def send(self, payload: dict) -> SendResult:
        with self._lock:
            self.sent.append(Sent(self.now(), threading.current_thread().name, payload))
            count = len(self.sent)
            answer = self.answers.pop(0) if self.answers else accepted()
        if self.delay:
            time.sleep(self.delay)
        if action := self.after_send.get(count):
            action()
        return answer

    def call_status(self, **query: str) -> bytes:
        raise AssertionError("the dispatcher never looks calls up")

    @property
    def numbers(self) -> list[str]:
        return [sent.payload["to"] for sent in self.sent]

    def seconds(self, since: datetime = START) -> list[float]:
        return [(sent.at - since).total_seconds() for sent in self.sent]


def dispatcher(
    campaign: Campaign, gateway: FakeGateway, clock: "FakeClock | TurnClock"
) -> Dispatcher:
    return Dispatcher(
        campaign, gateway, now=clock.now, sleep=clock.sleep, budget=timedelta(hours=1)
    )


class TurnClock:
    """One fake clock shared by dispatcher threads taking turns: one runs at a time; when it
    sleeps, the turn goes to whoever wakes first, and time jumps to that wake-up."""

    def __init__(self, workers: int, start: datetime = START) -> None:
        self.moment = start
        self.live = workers
        self.wakes: dict[int, datetime] = {}
        self.turn: int | None = None
        self.cond = threading.Condition()

    def now(self) -> datetime:
        return self.moment

    def sleep(self, seconds: float) -> None:
        self._wait_for_turn(self.moment + timedelta(seconds=seconds))

    def enter(self) -> None:
        self._wait_for_turn(self.moment)

    def leave(self) -> None:
        with self.cond:
            self.live -= 1
            self._hand_over()

    def _wait_for_turn(self, wake: datetime) -> None:
        me = threading.get_ident()
        with self.cond:
            self.wakes[me] = wake
            if self.turn in (None, me):
                self._hand_over()
            if not self.cond.wait_for(lambda: self.turn == me, timeout=30):
                raise TimeoutError("the dispatchers stopped handing the turn over")

    def _hand_over(self) -> None:
        if not self.wakes or len(self.wakes) < self.live:
            self.turn = None  # not everyone has arrived yet
            return
        first = min(self.wakes, key=self.wakes.__getitem__)
        self.moment = max(self.moment, self.wakes.pop(first))
        self.turn = first
        self.cond.notify_all()
