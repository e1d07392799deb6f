"""Online scoring: a sample of live calls scored off the caller's path.

``LLM(scorers=[...], score_sample=0.05)`` and ``@traced_llm(scorers=..., score_sample=...)``
hand a sampled call's answer to one bounded background worker per runtime, which runs
the (reference-free) scorers and records each result as `aisys.score` does, on the
call's span. An unsampled call pays one random draw. `aisys.flush()` and exit wait for
the queue; a scorer that raises is counted and warned about once; a full queue drops
and counts, never blocks the caller.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from aisys.errors import ConfigError
from aisys.types import Score

__all__ = ["OnlineScoring", "ScoringWorker", "check_scoring", "name_of", "to_score"]

_log = logging.getLogger("aisys")


def name_of(scorer: Any) -> str:
    """A scorer's name: its ``.name``, else its function's (or class's) name."""
    name = getattr(scorer, "name", None)
    if isinstance(name, str) and name:
        return name
    name = getattr(scorer, "__name__", None) or type(scorer).__name__
    return str(name)


def to_score(name: str, result: Any) -> Score:
    """What a scorer returned, as a `Score` named ``name`` (a bool is 1 or 0)."""
    if isinstance(result, Score):
        return result
    if isinstance(result, bool):
        return Score(name, 1.0 if result else 0.0)
    if isinstance(result, int | float | Decimal) and 0 <= float(result) <= 1:
        return Score(name, float(result))
    msg = (
        f"scorer {name!r} returned {result!r:.60}; a scorer returns an aisys.Score, a "
        "number from 0 to 1, or a bool"
    )
    raise TypeError(msg)


def run_scorer(scorer: Any, case: Any, output: Any) -> Score:
    """Call a sync or async scorer (on this thread) and make its result a `Score`."""
    result = scorer(case, output)
    if inspect.isawaitable(result):
        result = asyncio.run(_awaited(result))
    return to_score(name_of(scorer), result)


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def check_scoring(
    owner: str, scorers: Any, sample: Any
) -> tuple[tuple[Any, ...], float] | None:
    """``scorers=`` and ``score_sample=`` checked; None when nothing is to be scored."""
    if scorers is None or scorers == ():
        if sample not in (None, 0, 0.0):
            msg = f"{owner}(score_sample=) needs scorers= to score with"
            raise ConfigError(msg, field="score_sample")
        return None
    if isinstance(scorers, str | bytes) or not isinstance(scorers, list | tuple):
        msg = f"{owner}(scorers=) takes a list of scorers, got {scorers!r:.60}"
        raise ConfigError(msg, field="scorers")
    for scorer in scorers:
        if not callable(scorer):
            msg = (
                f"{owner}(scorers=) takes callables (case, output), got {scorer!r:.60}"
            )
            raise ConfigError(msg, field="scorers")
    if sample is None:
        sample = 1.0
    if (
        not isinstance(sample, int | float)
        or isinstance(sample, bool)
        or not 0 <= sample <= 1
    ):
        msg = f"{owner}(score_sample=) takes a fraction from 0 to 1, got {sample!r}"
        raise ConfigError(msg, field="score_sample")
    return tuple(scorers), float(sample)


class OnlineScoring:
    """The scorers of one `LLM` or decorated function, and the fraction they see."""

    __slots__ = ("_worker", "review", "sample", "scorers")

    def __init__(
        self,
        scorers: Sequence[Any],
        sample: float,
        worker: Callable[[], ScoringWorker],
        review: Any = None,
    ) -> None:
        self.scorers = tuple(scorers)
        self.sample = sample
        self._worker = worker
        self.review = review
        """An `aisys.Review` whose ``below`` thresholds queue low-scored calls."""

    def sampled(self) -> bool:
        """Whether this call is in the sample: one draw, before anything else is done."""
        return self.sample >= 1.0 or random.random() < self.sample  # noqa: S311

    def offer(self, output: Any, trace_id: str | None, span_id: str | None) -> None:
        """Queue a sampled call's ``output`` for scoring (never raises)."""
        if trace_id is None:
            return  # no span recorded: nothing to put the score on
        try:
            self._worker().submit(self.scorers, output, trace_id, span_id, self.review)
        except Exception:  # scoring never fails the call it scores
            _log.warning("aisys could not queue a call for scoring", exc_info=True)


class ScoringWorker:
    """One daemon thread that scores queued answers; bounded, drained by flush."""

    def __init__(
        self,
        record: Callable[[Score, str, str | None], object],
        max_pending: int = 1024,
    ) -> None:
        self._record = record
        self._max_pending = max_pending
        self._jobs: collections.deque[Callable[[], object]] = collections.deque()
        self._busy = 0
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.dropped = 0
        """Answers not scored because the queue was full."""
        self.failures = 0
        """Scorer calls that raised."""
        self._warned: set[str] = set()

    def submit(
        self,
        scorers: Sequence[Any],
        output: Any,
        trace_id: str,
        span_id: str | None,
        review: Any = None,
    ) -> None:
        """Queue one answer; when the queue is full it is dropped and counted."""

        def job() -> None:
            scores = [self._score(s, output, trace_id, span_id) for s in scorers]
            if review is not None and review.below:
                kept = [s for s in scores if s is not None]
                reasons = review.low_scores(kept)
                if reasons:
                    review.queue.submit(
                        reason="; ".join(reasons),
                        output=output,
                        trace_id=trace_id,
                        span_id=span_id,
                        scores={s.name: s.value for s in kept},
                    )

        self.defer(job)

    def defer(self, job: Callable[[], object]) -> None:
        """Run ``job`` on the worker, off the caller's path (dropped when full)."""
        with self._condition:
            if self._closed:
                return
            if len(self._jobs) >= self._max_pending:
                self.dropped += 1
                self._warn_once(
                    "full",
                    "aisys: the online scoring queue is full; answers are dropped "
                    "unscored (counted) — lower score_sample or make scorers faster",
                )
                return
            self._jobs.append(job)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="aisys-scoring", daemon=True
                )
                self._thread.start()
            self._condition.notify()

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._jobs and not self._closed:
                    self._condition.wait()
                if not self._jobs:
                    return
                job = self._jobs.popleft()
                self._busy += 1
            try:
                job()
            except Exception:
                _log.warning("aisys: a background scoring job failed", exc_info=True)
            finally:
                with self._condition:
                    self._busy -= 1
                    self._condition.notify_all()

    def _score(
        self, scorer: Any, output: Any, trace_id: str, span_id: str | None
    ) -> Score | None:
        name = name_of(scorer)
        try:
            score = run_scorer(scorer, None, output)
        except Exception as exc:
            with self._condition:
                self.failures += 1
            self._warn_once(
                f"scorer:{name}",
                f"aisys: online scorer {name!r} raised {type(exc).__name__}: {exc}; "
                "its failures are counted and not said again",
            )
            return None
        try:
            self._record(score, trace_id, span_id)
        except Exception:
            _log.warning("aisys could not record an online score", exc_info=True)
        return score

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            _log.warning(message)

    def flush(self, timeout: float) -> bool:
        """Wait until every queued answer is scored; False if ``timeout`` ran out."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while self._jobs or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._condition.wait(left)
        return True

    def close(self, timeout: float) -> bool:
        """Score what is queued (within ``timeout``), then stop the thread."""
        done = self.flush(timeout)
        with self._condition:
            self._closed = True
            self._condition.notify_all()
        return done
