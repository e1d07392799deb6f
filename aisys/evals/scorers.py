"""Scorers: what makes an output good, as a value in [0, 1] (`aisys.Score`).

A scorer is any callable ``(case, output) -> Score | float | bool`` (sync or async),
named by its ``.name`` or its function's name. The built-ins here compare against the
case's ``expected`` (`Exact`, `Contains`, `Numeric`), check a form (`Regex`,
`JsonValid`, `Matches`, `Length`), spot refusals (`Refusal`), or ask a model (`Judge`).
Reference-free ones (everything but `Exact`, `Contains` without text, `Numeric`) also
score live calls (``LLM(scorers=..., score_sample=...)``), where ``case`` is ``None``.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from aisys.errors import ConfigError
from aisys.scoring import name_of, to_score
from aisys.types import ChatResponse, Score

if TYPE_CHECKING:
    from aisys.evals.datasets import Case

__all__ = [
    "BUILT_IN",
    "Contains",
    "Exact",
    "JsonValid",
    "Judge",
    "Length",
    "Matches",
    "Numeric",
    "Refusal",
    "Regex",
    "name_of",
    "output_text",
    "to_score",
]


def output_text(output: Any) -> str:
    """The text of an output: a response's text, a string, else its JSON (or repr)."""
    if isinstance(output, ChatResponse):
        return output.text
    if isinstance(output, str):
        return output
    text = sdk_text(output)
    if text is not None:
        return text
    try:
        return json.dumps(output, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(output)


def sdk_text(output: Any) -> str | None:
    """The answer's text from a provider SDK's result (OpenAI, Anthropic), if it is one."""
    for attr in ("text", "output_text"):  # aisys answers, OpenAI's Responses API
        value = getattr(output, attr, None)
        if isinstance(value, str):
            return value
    choices = getattr(output, "choices", None)  # OpenAI chat completions
    if isinstance(choices, list) and choices:
        content = getattr(getattr(choices[0], "message", None), "content", None)
        if isinstance(content, str):
            return content
    blocks = getattr(output, "content", None)  # Anthropic messages
    if isinstance(blocks, list) and blocks:
        texts = [getattr(b, "text", None) for b in blocks]
        if all(isinstance(t, str) for t in texts):
            return "".join(texts)  # type: ignore[arg-type]
    return None


def _expected(case: Case | None, scorer: str) -> Any:
    if case is None or case.expected is None:
        msg = (
            f"{scorer} compares with the case's expected output, and this case has none"
        )
        raise ValueError(msg)
    return case.expected


class Exact:
    """1 when the output equals the expected text (surrounding whitespace aside)."""

    name = "exact"

    def __call__(self, case: Case | None, output: Any) -> Score:
        """Score ``output`` (``case`` is ``None`` for a live call)."""
        expected = output_text(_expected(case, "Exact()"))
        return Score(self.name, float(output_text(output).strip() == expected.strip()))


class Contains:
    """1 when the output contains ``text`` (default: the expected text)."""

    name = "contains"

    def __init__(self, text: str | None = None, *, ignore_case: bool = False) -> None:
        if text is not None and not isinstance(text, str):
            msg = f"Contains(text=) takes a string or None, got {text!r}"
            raise ConfigError(msg, field="text")
        self.text = text
        self.ignore_case = ignore_case

    def __call__(self, case: Case | None, output: Any) -> Score:
        """Score ``output`` (``case`` is ``None`` for a live call)."""
        wanted = (
            self.text
            if self.text is not None
            else output_text(_expected(case, "Contains()"))
        )
        text = output_text(output)
        if self.ignore_case:
            wanted, text = wanted.lower(), text.lower()
        return Score(self.name, float(wanted in text))


class Regex:
    """1 when ``pattern`` matches somewhere in the output."""

    def __init__(self, pattern: str, *, name: str = "regex") -> None:
        try:
            self.pattern = re.compile(pattern)
        except (re.error, TypeError) as exc:
            msg = f"Regex(pattern=) takes a regular expression, got {pattern!r}: {exc}"
            raise ConfigError(msg, field="pattern") from None
        self.name = name

    def __call__(self, case: Case | None, output: Any) -> Score:
        """Score ``output`` (``case`` is ``None`` for a live call)."""
        return Score(
            self.name, float(self.pattern.search(output_text(output)) is not None)
        )


class JsonValid:
    """1 when the output is JSON."""

    name = "json_valid"

    def __call__(self, case: Case | None, output: Any) -> Score:
        """Score ``output`` (``case`` is ``None`` for a live call)."""
        try:
            json.loads(output_text(output))
        except ValueError as exc:
            return Score(self.name, 0.0, explanation=f"not JSON: {exc}")
        return Score(self.name, 1.0)


class Matches:
    """1 when the output validates as ``model`` (a pydantic model), JSON or parsed."""

    def __init__(self, model: type[Any], *, name: str | None = None) -> None:
        if not (isinstance(model, type) and hasattr(model, "model_validate_json")):
            msg = f"Matches(model=) takes a pydantic model class, got {model!r}"
            raise ConfigError(msg, field="model")
        self.model = model
        self.name = name or f"matches_{model.__name__.lower()}"

    def __call__(self, case: Case | None, output: Any) -> Score:
        """Score ``output`` (``case`` is ``None`` for a live call)."""
        import pydantic

        parsed = getattr(output, "parsed", None)
        if isinstance(parsed, self.model):
            return Score(self.name, 1.0)
        try:
            self.model.model_validate_json(output_text(output))
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "(root)"
            return Score(self.name, 0.0, explanation=f"{where}: {first.get('msg')}")
        return Score(self.name, 1.0)


_NUMBER = re.compile(r"-?\d+(?:[.,]\d+)?")


class Numeric:
    """1 when the first number in the output is within ``tolerance`` of the expected."""

    name = "numeric"

    def __init__(self, tolerance: float = 0.0) -> None:
        if not isinstance(tolerance, int | float) or tolerance < 0:
            msg = f"Numeric(tolerance=) takes a number >= 0, got {tolerance!r}"
            raise ConfigError(msg, field="tolerance")
        self.tolerance = float(tolerance)

    def __call__(self, case: Case | None, output: Any) -> Score:
        """Score ``output`` (``case`` is ``None`` for a live call)."""
        expected = float(str(_expected(case, "Numeric()")).replace(",", "."))
        found = _NUMBER.search(output_text(output))
        if found is None:
            return Score(self.name, 0.0, explanation="no number in the output")
        value = float(found.group().replace(",", "."))
        within = abs(value - expected) <= self.tolerance
        return Score(self.name, float(within), explanation=f"{value:g} vs {expected:g}")


_REFUSAL = re.compile(
    r"\b(?:I\s*(?:'m| am)\s*(?:sorry|afraid)[^.]{0,40}\b(?:can(?:no|')t|unable|not able)"
    r"|I\s*(?:can(?:no|')t|won't|will not|am unable to|'m unable to|am not able to)"
    r"\s+(?:help|assist|provide|do|answer|comply|share|give)"
    r"|as an AI(?: language model)?,? I"
    r"|I must (?:decline|refuse))",
    re.IGNORECASE,
)


class Refusal:
    """Whether the model declined: value 1 and label ``refused``, else 0 ``answered``.

    A heuristic over common refusal phrasings (English); its mean is the refusal rate.
    """

    name = "refusal"

    def __call__(self, case: Case | None, output: Any) -> Score:
        """Score ``output`` (``case`` is ``None`` for a live call)."""
        found = _REFUSAL.search(output_text(output))
        if found:
            return Score(self.name, 1.0, "refused", f"says {found.group()!r}")
        return Score(self.name, 0.0, "answered")


class Length:
    """1 when the output is at most ``max_chars`` characters."""

    name = "length"

    def __init__(self, max_chars: int) -> None:
        if (
            not isinstance(max_chars, int)
            or isinstance(max_chars, bool)
            or max_chars < 1
        ):
            msg = f"Length(max_chars=) takes a whole number >= 1, got {max_chars!r}"
            raise ConfigError(msg, field="max_chars")
        self.max_chars = max_chars

    def __call__(self, case: Case | None, output: Any) -> Score:
        """Score ``output`` (``case`` is ``None`` for a live call)."""
        size = len(output_text(output))
        return Score(
            self.name, float(size <= self.max_chars), explanation=f"{size} chars"
        )


class Judge:
    """An LLM as judge: a rubric prompt, answered with a score in [0, 1] and why.

    ``rubric`` is a ``.prompty`` name (in ``prompts_dir``) or an `aisys.Prompt`; it is
    rendered with the variables it declares among ``output``, ``expected`` and
    ``inputs``. The judge calls ``llm`` (an `aisys.LLM` or a ``"provider:model"``
    string; default: the rubric's own model) through aisys — traced, costed, cached and
    budgeted — with structured output, so its answer is validated. The label is
    ``pass`` at ``threshold`` or above, else ``fail``.
    """

    def __init__(
        self,
        rubric: Any,
        llm: Any = None,
        threshold: float = 0.5,
        *,
        name: str | None = None,
    ) -> None:
        if not isinstance(rubric, str) and not hasattr(rubric, "render"):
            msg = (
                f"Judge(rubric=) takes a prompt name or an aisys.Prompt, got {rubric!r}"
            )
            raise ConfigError(msg, field="rubric")
        if not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
            msg = f"Judge(threshold=) takes a number from 0 to 1, got {threshold!r}"
            raise ConfigError(msg, field="threshold")
        if llm is not None and not isinstance(llm, str) and not hasattr(llm, "chat"):
            msg = f"Judge(llm=) takes an aisys.LLM or a 'provider:model' string, got {llm!r}"
            raise ConfigError(msg, field="llm")
        self.rubric = rubric
        self.threshold = float(threshold)
        self.name = name or (rubric if isinstance(rubric, str) else str(rubric.name))
        self._llm = llm
        self._client: Any = None
        self._prompt: Any = None

    def _judge(self) -> tuple[Any, Any]:
        if self._client is None:
            import aisys

            prompt = (
                aisys.get_prompt(self.rubric)
                if isinstance(self.rubric, str)
                else self.rubric
            )
            llm = self._llm
            if llm is None:
                llm = aisys.LLM(prompt=prompt)
            elif isinstance(llm, str):
                llm = aisys.LLM(llm, prompt=prompt)
            self._prompt, self._client = prompt, llm
        return self._prompt, self._client

    def _messages(self, case: Case | None, output: Any) -> tuple[Any, list[Any]]:
        prompt, llm = self._judge()
        declared = set(getattr(getattr(prompt, "file", None), "inputs", None) or ())
        values: dict[str, Any] = {
            "output": output_text(output),
            "expected": ""
            if case is None or case.expected is None
            else output_text(case.expected),
            "inputs": json.dumps(dict(case.inputs) if case else {}, default=str),
        }
        return llm, prompt.render(**{k: v for k, v in values.items() if k in declared})

    def _score(self, response: Any) -> Score:
        verdict = response.parsed
        value = min(1.0, max(0.0, float(verdict.score)))
        cost = response.cost.usd
        return Score(
            self.name,
            value,
            "pass" if value >= self.threshold else "fail",
            verdict.explanation,
            cost_usd=cost,
        )

    def __call__(self, case: Case | None, output: Any) -> Score:
        """Score ``output`` (``case`` is ``None`` for a live call)."""
        llm, messages = self._messages(case, output)
        return self._score(llm.chat(messages, response_model=_verdict(), max_retries=1))

    async def acall(self, case: Case | None, output: Any) -> Score:
        """The judge, awaited (used by `aisys.aevaluate` for async runs)."""
        llm, messages = self._messages(case, output)
        return self._score(
            await llm.achat(messages, response_model=_verdict(), max_retries=1)
        )


def _verdict() -> type[Any]:
    global _VERDICT
    if _VERDICT is None:
        import pydantic

        class Verdict(pydantic.BaseModel):
            """A judge's answer: a score from 0 to 1 and why."""

            score: float = pydantic.Field(ge=0, le=1)
            explanation: str

        _VERDICT = Verdict
    return _VERDICT


_VERDICT: type[Any] | None = None


BUILT_IN: Mapping[str, Callable[[], Any]] = {
    "exact": Exact,
    "contains": Contains,
    "json_valid": JsonValid,
    "refusal": Refusal,
    "numeric": Numeric,
}
"""Scorers ``aisys eval run --scorer NAME`` knows by name (those with no argument)."""


def is_async(scorer: Any) -> bool:
    """Whether calling ``scorer`` gives a coroutine."""
    call = getattr(scorer, "__call__", None)  # noqa: B004 - classes with async __call__
    return inspect.iscoroutinefunction(scorer) or inspect.iscoroutinefunction(call)
