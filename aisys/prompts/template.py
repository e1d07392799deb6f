"""A ``.prompty`` file: YAML front matter and a Jinja2 body, rendered in a sandbox.

The layout is Prompty's: front matter between ``---`` lines (``name``, ``description``,
``model`` — a ``"provider:model"`` string or Prompty's object with ``configuration``
and ``parameters`` —, ``inputs``, ``metadata``), then a body whose ``system:``,
``user:`` and ``assistant:`` lines start messages. YAML is read with a safe loader only;
the body is rendered by Jinja2's `SandboxedEnvironment` with strict undefined variables.
The body is split into messages *before* rendering, so a value can never start a message
of its own, and values are text: braces or Jinja syntax inside them are not evaluated.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aisys.errors import PromptError

__all__ = ["PromptFile", "check_prompty", "parse_prompty"]

_ROLE_LINE = re.compile(r"^\s*(system|user|assistant)\s*:\s*$", re.IGNORECASE)
_TYPES: Mapping[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "array": (list, tuple),
    "object": (dict,),
}
# Prompty's configuration types that are OpenAI-compatible endpoints.
_OPENAI_TYPES = frozenset({"openai", "azure_openai", "azure", "serverless"})


@dataclass(frozen=True)
class PromptFile:
    """A parsed ``.prompty`` file: its facts, and its body split into message templates."""

    name: str
    text: str
    description: str = ""
    model: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    inputs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)
    sections: tuple[tuple[str, Any], ...] = ()
    """(role, compiled template) per message, in order."""

    @property
    def sha256(self) -> str:
        """SHA-256 of the file's content (front matter included: model, parameters)."""
        return hashlib.sha256(self.text.encode()).hexdigest()

    def render(self, values: Mapping[str, Any]) -> list[dict[str, Any]]:
        """OpenAI-style messages; `PromptError` naming missing, unknown or mistyped values."""
        given = dict(values)
        declared = self.inputs
        if declared:
            unknown = sorted(set(given) - set(declared))
            if unknown:
                msg = (
                    f"prompt {self.name!r} has no input(s) {', '.join(unknown)}; its "
                    f"inputs are {', '.join(sorted(declared)) or 'none'}"
                )
                raise PromptError(msg)
            for key, spec in declared.items():
                if key not in given and "default" in spec:
                    given[key] = spec["default"]
            missing = sorted(set(declared) - set(given))
            if missing:
                msg = f"prompt {self.name!r} needs input(s) {', '.join(missing)}"
                raise PromptError(msg)
            for key, value in given.items():
                wanted = _TYPES.get(str(declared[key].get("type", "")).lower())
                if wanted is not None and (
                    not isinstance(value, wanted)
                    or (isinstance(value, bool) and bool not in wanted)
                ):
                    msg = (
                        f"prompt {self.name!r}: input {key!r} must be "
                        f"{declared[key]['type']}, got {type(value).__name__}"
                    )
                    raise PromptError(msg)
        from jinja2 import TemplateError, UndefinedError
        from jinja2.exceptions import SecurityError

        messages = []
        for role, template in self.sections:
            try:
                content = template.render(**given)
            except UndefinedError as exc:
                msg = f"prompt {self.name!r}: {exc.message} (pass it to render())"
                raise PromptError(msg) from None
            except SecurityError as exc:
                msg = f"prompt {self.name!r} tried something the sandbox forbids: {exc}"
                raise PromptError(msg) from None
            except TemplateError as exc:
                msg = f"prompt {self.name!r} could not be rendered: {exc}"
                raise PromptError(msg) from None
            messages.append({"role": role, "content": content.strip()})
        return messages


def _environment() -> Any:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False
    )


def _model(raw: Any, where: str) -> tuple[str | None, dict[str, Any]]:
    """``"provider:model"`` and generation parameters from the front matter's ``model``."""
    if raw is None:
        return None, {}
    if isinstance(raw, str):
        return raw, {}
    if not isinstance(raw, Mapping):
        msg = f"{where}: model must be 'provider:model' or Prompty's model object"
        raise PromptError(msg)
    params = dict(raw.get("parameters") or {})
    config = raw.get("configuration") or {}
    if not isinstance(config, Mapping):
        msg = f"{where}: model.configuration must be a mapping"
        raise PromptError(msg)
    kind = str(config.get("type") or "openai")
    provider = "openai" if kind in _OPENAI_TYPES else kind
    name = config.get("name") or config.get("azure_deployment") or config.get("model")
    return (f"{provider}:{name}" if name else None), params


_FRONT_KEYS = (
    "name",
    "description",
    "version",
    "authors",
    "tags",
    "model",
    "sample",
    "inputs",
    "outputs",
    "template",
    "metadata",
)
"""The front-matter keys of a ``.prompty`` file (Prompty's, and ``metadata``)."""


def check_prompty(text: str, where: str, name: str) -> list[str]:
    """Mistakes a file parses with but should not be released with, each with a fix.

    An unknown front-matter key, a ``name`` other than the file's, an unknown input
    type, a model without its provider, and a template variable ``inputs`` does not
    declare. A file that does not parse at all gives its one parse error.
    """
    import difflib

    import yaml
    from jinja2 import meta

    try:
        parsed = parse_prompty(text, where)
    except PromptError as exc:
        return [str(exc)]
    normalised = text.replace("\r\n", "\n")
    front_text = normalised.split("\n---", 1)[0]
    front = yaml.safe_load(front_text.removeprefix("---")) or {}

    def line_of(key: str) -> int:
        for number, line in enumerate(normalised.split("\n"), 1):
            if re.match(rf"\s*{re.escape(key)}\s*:", line):
                return number
        return 1

    def close(word: str, choices: Sequence[str]) -> str:
        found = difflib.get_close_matches(word, choices, n=1)
        return f" (did you mean {found[0]!r}?)" if found else ""

    problems = [
        f"{where}:{line_of(str(key))}: unknown front-matter key {key!r}"
        f"{close(str(key), _FRONT_KEYS)}; known: {', '.join(_FRONT_KEYS)}"
        for key in front
        if key not in _FRONT_KEYS
    ]
    if "name" in front and str(front["name"]) != name:
        problems.append(
            f"{where}:{line_of('name')}: name {front['name']!r} differs from the file's "
            f"name {name!r}; rename one of them"
        )
    for key, spec in parsed.inputs.items():
        kind = spec.get("type")
        if kind is not None and kind not in _TYPES:
            problems.append(
                f"{where}:{line_of(key)}: input {key!r} has unknown type {kind!r}"
                f"{close(str(kind), tuple(_TYPES))}; known: {', '.join(_TYPES)}"
            )
    if parsed.model is not None and ":" not in parsed.model:
        problems.append(
            f"{where}:{line_of('model')}: model {parsed.model!r} names no provider; "
            f"write 'provider:model', e.g. 'openai:{parsed.model}'"
        )
    environment = _environment()
    used: set[str] = set()
    for source in _section_sources(normalised.split("\n---", 1)[1]):
        used |= meta.find_undeclared_variables(environment.parse(source))
    problems.extend(
        f"{where}: the template uses {{{{ {variable} }}}}, which inputs does not "
        "declare; add it under inputs (with a type, and a default if optional)"
        for variable in sorted(used - set(parsed.inputs))
    )
    return problems


def _section_sources(body: str) -> list[str]:
    """The template source of each message of a file's body."""
    parts: list[list[str]] = []
    for line in body.split("\n")[1:]:
        if _ROLE_LINE.match(line):
            parts.append([])
        elif parts:
            parts[-1].append(line)
        elif line.strip():
            parts.append([line])
    return ["\n".join(lines).strip() for lines in parts]


def parse_prompty(text: str, where: str = "<prompt>") -> PromptFile:
    """Parse a ``.prompty`` file's text (`PromptError` saying what is wrong, and where)."""
    import yaml

    normalised = text.replace("\r\n", "\n")
    match = re.match(r"^---\s*\n(.*?)\n---\s*\n?(.*)$", normalised, re.DOTALL)
    if match is None:
        msg = f"{where}: a .prompty file starts with YAML front matter between '---' lines"
        raise PromptError(msg)
    try:
        front = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as exc:
        msg = f"{where}: the front matter is not valid YAML: {exc}"
        raise PromptError(msg) from None
    if not isinstance(front, Mapping):
        msg = f"{where}: the front matter must be a mapping of fields"
        raise PromptError(msg)
    model, params = _model(front.get("model"), where)
    inputs = front.get("inputs") or {}
    if not isinstance(inputs, Mapping):
        msg = f"{where}: inputs must map names to {{type, default}}"
        raise PromptError(msg)
    declared = {
        str(key): dict(value) if isinstance(value, Mapping) else {"default": value}
        for key, value in inputs.items()
    }
    name = str(front.get("name") or where.rsplit("/", 1)[-1].removesuffix(".prompty"))
    return PromptFile(
        name=name,
        text=normalised,
        description=str(front.get("description") or ""),
        model=model,
        params=params,
        inputs=declared,
        metadata=dict(front.get("metadata") or {}),
        sections=_sections(match.group(2), where),
    )


def _sections(body: str, where: str) -> tuple[tuple[str, Any], ...]:
    """The body's messages as (role, compiled template); text before a role is system."""
    from jinja2 import TemplateSyntaxError

    environment = _environment()
    parts: list[tuple[str, list[str]]] = []
    for line in body.split("\n"):
        found = _ROLE_LINE.match(line)
        if found is not None:
            parts.append((found.group(1).lower(), []))
        elif parts:
            parts[-1][1].append(line)
        elif line.strip():
            parts.append(("system", [line]))
    sections = []
    for role, lines in parts:
        source = "\n".join(lines).strip()
        try:
            sections.append((role, environment.from_string(source)))
        except TemplateSyntaxError as exc:
            msg = f"{where}: the {role} message is not a valid template: {exc}"
            raise PromptError(msg) from None
    if not sections:
        msg = f"{where}: the body has no message (start one with a 'user:' line)"
        raise PromptError(msg)
    return tuple(sections)
