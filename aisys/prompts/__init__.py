"""Versioned prompts kept in the application's repository, with approvals and an audit.

`get_prompt` reads ``<prompts_dir>/<name>.prompty`` (or a released version, or what a
label points to); `Prompt.render` fills it in. Releases, approvals, promotions and
rollbacks are made with ``aisys prompts …`` (see docs/prompts.md).
"""

from __future__ import annotations

from pathlib import Path

from aisys.prompts.registry import Prompt, Registry

__all__ = ["Prompt", "Registry", "get_prompt"]


def get_prompt(
    name: str,
    version: int | None = None,
    label: str | None = None,
    *,
    directory: Path | str,
    require_approval: bool = False,
) -> Prompt:
    """A prompt from ``directory`` (`aisys.get_prompt` passes the settings' own).

    No version or label: the file as it is now (`Prompt.version` is the released number
    whose hash it matches, else ``"draft"``). With ``require_approval`` a protected
    label (``production`` by default) must point to an approved version whose released
    copy still matches its hash, else `aisys.PromptError` — before any request is made.
    The file is parsed once per change; rendering does no file I/O.
    """
    return Registry(directory).get(
        name, version=version, label=label, require_approval=require_approval
    )
