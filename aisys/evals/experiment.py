"""Experiments: run a target over a dataset, score each output, write one run file.

Each case runs in its own trace (``eval <name>``), with at most ``concurrency`` at once:
async targets as tasks, sync ones on a thread pool (each in a copy of the caller's
context). Scores are recorded on the case's trace like any `aisys.score`, and the run
file (``out_dir/<name>-<UTC time>.json``) holds what DESIGN.md lists, so two runs can be
compared (``aisys eval compare``). Ctrl-C writes the cases that finished; ``resume=``
skips them next time.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from aisys._version import __version__
from aisys.context import Tally, tallying
from aisys.errors import ConfigError
from aisys.evals.datasets import Case, Dataset
from aisys.evals.scorers import is_async, sdk_text
from aisys.scoring import name_of, run_scorer, to_score
from aisys.types import ChatResponse, Score

__all__ = ["EvalRun", "aevaluate", "evaluate", "load_run"]


@dataclass
class EvalRun:
    """A finished (or interrupted) experiment: its run file and what it holds.

    Added in 0.2.
    """

    path: Path
    data: dict[str, Any] = field(repr=False)

    @property
    def name(self) -> str:
        """The run's name (the target's, unless given)."""
        return str(self.data["name"])

    @property
    def summary(self) -> dict[str, dict[str, Any]]:
        """Per scorer: ``mean`` (of the cases it scored), ``n`` and ``errors``."""
        return dict(self.data["summary"])

    @property
    def cases(self) -> list[dict[str, Any]]:
        """One record per case, in the dataset's order."""
        return list(self.data["cases"])

    @property
    def cost_usd(self) -> float | None:
        """What the target's calls cost (priced calls only)."""
        value = self.data.get("cost_usd")
        return None if value is None else float(value)

    @property
    def judge_cost_usd(self) -> float | None:
        """What the judges' calls cost, apart from the target's."""
        value = self.data.get("judge_cost_usd")
        return None if value is None else float(value)


def load_run(path: str | Path) -> EvalRun:
    """A run file read back (for ``resume=`` and ``aisys eval compare``)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        msg = f"no run file {str(path)!r}"
        raise ConfigError(msg, field="run") from None
    except ValueError as exc:
        msg = f"{path} is not a run file (not JSON: {exc})"
        raise ConfigError(msg, field="run") from None
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
        msg = f"{path} is not an aisys run file (no 'cases' list)"
        raise ConfigError(msg, field="run")
    return EvalRun(path, data)


def evaluate(
    dataset: Dataset | str | Path,
    target: Callable[..., Any],
    scorers: Sequence[Callable[..., Any]] = (),
    *,
    concurrency: int = 4,
    name: str | None = None,
    out_dir: str | Path = "aisys-runs",
    progress: bool = True,
    resume: str | Path | EvalRun | None = None,
) -> EvalRun:
    """Run ``target(**case.inputs)`` for every case, score it, and write a run file.

    Sync or async ``target`` and scorers; at most ``concurrency`` cases at once; a
    progress bar on a terminal unless ``progress=False``. A target that raises is
    recorded with its error and scored 0; a scorer that raises gives an error score.
    Ctrl-C writes the cases that finished and raises `KeyboardInterrupt`. Inside a
    running event loop, use ``await aisys.aevaluate(...)``.

    Added in 0.2.
    """
    experiment = _Experiment(
        dataset, target, scorers, concurrency, name, out_dir, progress, resume
    )
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        msg = "evaluate() was called inside a running event loop: use await aisys.aevaluate(...)"
        raise ConfigError(msg, field="target")
    try:
        asyncio.run(experiment.run())
    except KeyboardInterrupt:
        experiment.write(interrupted=True)
        raise
    return experiment.write(interrupted=False)


async def aevaluate(
    dataset: Dataset | str | Path,
    target: Callable[..., Any],
    scorers: Sequence[Callable[..., Any]] = (),
    *,
    concurrency: int = 4,
    name: str | None = None,
    out_dir: str | Path = "aisys-runs",
    progress: bool = True,
    resume: str | Path | EvalRun | None = None,
) -> EvalRun:
    """`evaluate`, awaited in the caller's event loop.

    Added in 0.2.
    """
    experiment = _Experiment(
        dataset, target, scorers, concurrency, name, out_dir, progress, resume
    )
    try:
        await experiment.run()
    except (KeyboardInterrupt, asyncio.CancelledError):
        experiment.write(interrupted=True)
        raise
    return experiment.write(interrupted=False)


class _Experiment:
    """One run's state: what is left, what finished, and how to write it."""

    def __init__(
        self,
        dataset: Dataset | str | Path,
        target: Callable[..., Any],
        scorers: Sequence[Callable[..., Any]],
        concurrency: int,
        name: str | None,
        out_dir: str | Path,
        progress: bool,
        resume: str | Path | EvalRun | None,
    ) -> None:
        import aisys._runtime as runtime

        self.dataset = (
            dataset if isinstance(dataset, Dataset) else Dataset.load(dataset)
        )
        if not callable(target):
            msg = f"evaluate(target=) takes a function, got {target!r:.60}"
            raise ConfigError(msg, field="target")
        if isinstance(scorers, str | bytes) or not isinstance(scorers, Iterable):
            msg = f"evaluate(scorers=) takes a list of scorers, got {scorers!r:.60}"
            raise ConfigError(msg, field="scorers")
        self.scorers = list(scorers)
        for scorer in self.scorers:
            if not callable(scorer):
                msg = f"evaluate(scorers=) takes callables (case, output), got {scorer!r:.60}"
                raise ConfigError(msg, field="scorers")
        names = [name_of(s) for s in self.scorers]
        if len(set(names)) != len(names):
            msg = f"evaluate(scorers=) has two scorers named alike: {names}; give one a name="
            raise ConfigError(msg, field="scorers")
        if (
            not isinstance(concurrency, int)
            or isinstance(concurrency, bool)
            or concurrency < 1
        ):
            msg = (
                f"evaluate(concurrency=) takes a whole number >= 1, got {concurrency!r}"
            )
            raise ConfigError(msg, field="concurrency")
        self.target = target
        self.concurrency = concurrency
        chosen = name or getattr(target, "__name__", None) or "run"
        if not isinstance(chosen, str):
            msg = f"evaluate(name=) takes a non-empty string, got {name!r}"
            raise ConfigError(msg, field="name")
        self.name: str = chosen
        self.out_dir = Path(out_dir)
        self.progress = progress
        self.runtime = runtime.DEFAULT_RUNTIME
        self.started = datetime.now(UTC)
        self.records: dict[str, dict[str, Any]] = {}
        self.target_tally = Tally()
        self.judge_tally = Tally()
        self.kept_costs: tuple[Decimal, Decimal] = (Decimal(0), Decimal(0))
        if resume is not None:
            earlier = resume if isinstance(resume, EvalRun) else load_run(resume)
            ids = {case.id for case in self.dataset}
            for record in earlier.cases:
                if record.get("id") in ids:
                    self.records[str(record["id"])] = record
            self.kept_costs = (
                Decimal(str(earlier.data.get("cost_usd") or 0)),
                Decimal(str(earlier.data.get("judge_cost_usd") or 0)),
            )
        self.async_target = inspect.iscoroutinefunction(
            target
        ) or inspect.iscoroutinefunction(
            getattr(target, "__call__", None)  # noqa: B004
        )

    # -- running -------------------------------------------------------------------

    async def run(self) -> None:
        todo = [case for case in self.dataset if case.id not in self.records]
        limit = asyncio.Semaphore(self.concurrency)
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="aisys-eval")
        bar = _Bar(len(self.dataset), len(self.records), self.progress, self.name)

        async def one(case: Case) -> None:
            async with limit:
                if self.async_target:
                    record = await self._acase(case, pool)
                else:
                    loop = asyncio.get_running_loop()
                    context = contextvars.copy_context()
                    record = await loop.run_in_executor(
                        pool, context.run, self._case, case
                    )
                self.records[case.id] = record
                bar.advance()

        try:
            with bar:
                await asyncio.gather(*(one(case) for case in todo))
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _case(self, case: Case) -> dict[str, Any]:
        """One case on a worker thread: target, scores, in the case's own trace."""
        tally, judges = Tally(), Tally()
        token = tallying(tally)
        try:
            with self.runtime.trace(
                f"eval {self.name}", tags=case.tags, metadata={"eval.case": case.id}
            ) as block:
                started = time.perf_counter()
                try:
                    output, error = self.target(**case.inputs), None
                except Exception as exc:
                    output, error = None, exc
                latency = (time.perf_counter() - started) * 1000
                tallying(judges)
                scores = [
                    self._score_sync(s, case, output, error) for s in self.scorers
                ]
                self._record(scores)
                trace_id = block.trace_id
        finally:
            _reset(token)
        return self._record_of(
            case, output, error, latency, scores, trace_id, tally, judges
        )

    async def _acase(self, case: Case, pool: ThreadPoolExecutor) -> dict[str, Any]:
        tally, judges = Tally(), Tally()
        token = tallying(tally)
        try:
            async with self.runtime.trace(
                f"eval {self.name}", tags=case.tags, metadata={"eval.case": case.id}
            ) as block:
                started = time.perf_counter()
                try:
                    output, error = await self.target(**case.inputs), None
                except Exception as exc:
                    output, error = None, exc
                latency = (time.perf_counter() - started) * 1000
                tallying(judges)
                scores = [
                    await self._score_async(s, case, output, error, pool)
                    for s in self.scorers
                ]
                self._record(scores)
                trace_id = block.trace_id
        finally:
            _reset(token)
        return self._record_of(
            case, output, error, latency, scores, trace_id, tally, judges
        )

    def _score_sync(
        self, scorer: Any, case: Case, output: Any, error: BaseException | None
    ) -> Score:
        name = name_of(scorer)
        if error is not None:
            return Score(name, 0.0, explanation="the target failed")
        try:
            return run_scorer(scorer, case, output)
        except Exception as exc:
            return _error_score(name, exc)

    async def _score_async(
        self,
        scorer: Any,
        case: Case,
        output: Any,
        error: BaseException | None,
        pool: ThreadPoolExecutor,
    ) -> Score:
        name = name_of(scorer)
        if error is not None:
            return Score(name, 0.0, explanation="the target failed")
        try:
            acall = getattr(scorer, "acall", None)
            if acall is not None:
                result = await acall(case, output)
            elif is_async(scorer):
                result = await scorer(case, output)
            else:
                context = contextvars.copy_context()
                result = await asyncio.get_running_loop().run_in_executor(
                    pool, context.run, scorer, case, output
                )
            return to_score(name, result)
        except Exception as exc:
            return _error_score(name, exc)

    def _record(self, scores: list[Score]) -> None:
        """Each score on the case's trace, as `aisys.score` records it."""
        for score in scores:
            shown = (
                score
                if score.value is not None or score.label
                else Score(score.name, None, "error", score.explanation, score.error)
            )
            try:
                self.runtime._record_score(shown, None, None, None, {})
            except ConfigError:
                return  # no trace recorded (no exporter): the run file holds the scores

    def _record_of(
        self,
        case: Case,
        output: Any,
        error: BaseException | None,
        latency_ms: float,
        scores: list[Score],
        trace_id: str | None,
        tally: Tally,
        judges: Tally,
    ) -> dict[str, Any]:
        self.target_tally.usd += tally.usd
        self.target_tally.unpriced += tally.unpriced
        self.judge_tally.usd += judges.usd  # the judges' calls, apart from the target's
        self.judge_tally.unpriced += judges.unpriced
        return {
            "id": case.id,
            "tags": list(case.tags),
            "output": _jsonable(output),
            "expected": case.expected,
            "scores": {
                s.name: {
                    "value": s.value,
                    "label": s.label,
                    "explanation": s.explanation,
                    **({"error": s.error} if s.error else {}),
                }
                for s in scores
            },
            "error": None if error is None else f"{type(error).__name__}: {error}",
            "latency_ms": round(latency_ms, 3),
            "cost_usd": (  # no aisys call seen, or one unpriced: not known, never $0
                None
                if not tally.calls or tally.cost_usd is None
                else float(tally.cost_usd)
            ),
            "trace_id": trace_id,
            "prompt": tally.prompts[0] if tally.prompts else None,
        }

    # -- the run file --------------------------------------------------------------

    def write(self, *, interrupted: bool) -> EvalRun:
        """Write the run file with every case that finished (in the dataset's order)."""
        cases = [self.records[c.id] for c in self.dataset if c.id in self.records]
        stamp = self.started.strftime("%Y%m%dT%H%M%SZ")
        safe = re.sub(r"[^\w.-]+", "-", self.name).strip("-") or "run"
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / f"{safe}-{stamp}.json"
        target_usd = self.kept_costs[0] + self.target_tally.usd
        judge_usd = self.kept_costs[1] + self.judge_tally.usd
        data = {
            "name": self.name,
            "target": _qualified(self.target),
            "dataset": {
                "path": str(self.dataset.path) if self.dataset.path else None,
                "sha256": self.dataset.sha256,
                "cases": len(self.dataset),
            },
            "started": self.started.isoformat(),
            "finished": datetime.now(UTC).isoformat(),
            "interrupted": interrupted,
            "git_commit": _git_commit(),
            "aisys_version": __version__,
            "scorers": [name_of(s) for s in self.scorers],
            "summary": summarise(cases, [name_of(s) for s in self.scorers]),
            "cost_usd": float(target_usd),
            "unpriced_calls": self.target_tally.unpriced,
            "judge_cost_usd": float(judge_usd),
            "cases": cases,
        }
        temporary = path.with_suffix(".json.part")
        temporary.write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
        temporary.replace(path)
        return EvalRun(path, data)


def summarise(
    cases: list[dict[str, Any]], names: list[str]
) -> dict[str, dict[str, Any]]:
    """Per scorer: the mean of its values, how many cases it scored, how many errors."""
    summary = {}
    for name in names:
        values = []
        errors = 0
        for case in cases:
            score = case.get("scores", {}).get(name)
            if score is None:
                continue
            if score.get("error"):
                errors += 1
            elif score.get("value") is not None:
                values.append(float(score["value"]))
        summary[name] = {
            "mean": round(sum(values) / len(values), 6) if values else None,
            "n": len(values),
            "errors": errors,
        }
    return summary


def _reset(token: contextvars.Token[Tally | None]) -> None:
    from aisys.context import _TALLY

    _TALLY.reset(token)


def _error_score(name: str, exc: Exception) -> Score:
    return Score(
        name,
        None,
        explanation=f"{type(exc).__name__}: {exc}"[:500],
        error=type(exc).__name__,
    )


def _jsonable(output: Any) -> Any:
    """The output as the run file keeps it: JSON as is, an answer as its text, else repr."""
    if output is None or isinstance(output, str | int | float | bool | ChatResponse):
        return output.text if isinstance(output, ChatResponse) else output
    try:
        json.dumps(output)
    except (TypeError, ValueError):
        text = sdk_text(output)
        return text if text is not None else repr(output)
    return output


def _qualified(target: Any) -> str:
    module = getattr(target, "__module__", None) or "?"
    name = getattr(target, "__qualname__", None) or type(target).__name__
    return f"{module}:{name}"


def _git_commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],  # noqa: S607 - git from PATH, as a user runs it
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


class _Bar:
    """A rich progress bar on a terminal; nothing elsewhere."""

    def __init__(self, total: int, done: int, wanted: bool, name: str) -> None:
        self._progress: Any = None
        self._task: Any = None
        if wanted and sys.stderr.isatty():
            from rich.progress import Progress

            self._progress = Progress(transient=True)
            self._task = self._progress.add_task(
                f"eval {name}", total=total, completed=done
            )

    def __enter__(self) -> _Bar:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def advance(self) -> None:
        if self._progress is not None:
            self._progress.advance(self._task)
