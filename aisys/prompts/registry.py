"""Released versions, labels, approvals and the hash-chained audit trail of prompts.

Everything lives in the application's repository, next to the prompts::

    prompts/support_answer.prompty           the file you edit (the draft)
    prompts/.versions/support_answer/3.prompty   released copies, never changed
    prompts/prompts.lock                     versions (sha256), labels, approvals, policy
    prompts/audit.jsonl                      every release, approval, promotion, rollback

Each audit record holds the SHA-256 of the record before it, so editing or deleting one
breaks the chain, and `Registry.verify` says where.
"""

from __future__ import annotations

import difflib
import getpass
import hashlib
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aisys.errors import PromptError
from aisys.prompts.signing import SIGNERS_FILE, sign, signer_of, signing_key
from aisys.prompts.template import PromptFile, check_prompty, parse_prompty

__all__ = ["GENESIS", "Prompt", "Registry", "who"]

GENESIS = "0" * 64
"""``prev_sha256`` of the first audit record."""
_DEFAULT_POLICY = {"protected": ["production"], "four_eyes": True}
_SIGNED = frozenset({"release", "approve"})
_PARSED: dict[tuple[str, int, int], PromptFile] = {}
_PARSED_LOCK = threading.Lock()


def who() -> str:
    """Who acts: ``git config user.email``, else the operating-system user."""
    try:
        email = subprocess.run(
            ["git", "config", "user.email"],  # noqa: S607 - git from PATH, as users run it
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        email = ""
    return email or getpass.getuser()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_UNHASHED = frozenset({"sha256", "signature", "signer"})


def _digest(record: dict[str, Any]) -> str:
    """A record's sha256: everything but itself and its signature (made over it)."""
    body = {key: value for key, value in record.items() if key not in _UNHASHED}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


class Prompt:
    """One prompt at one version: render it into messages, and know what it is.

    Attributes:
        name: The prompt's name.
        version: The released version (1, 2, …) or ``"draft"`` for an unreleased file.
        sha256: SHA-256 of its content (front matter included: model, parameters).
        model: ``"provider:model"`` from the front matter, if any.
        params: Generation parameters from the front matter.
        label: The label it was fetched by, if any.

    Added in 0.1.
    """

    __slots__ = ("file", "label", "model", "name", "params", "sha256", "version")

    def __init__(
        self, file: PromptFile, version: int | str, label: str | None = None
    ) -> None:
        self.file = file
        self.name = file.name
        self.version = version
        self.sha256 = file.sha256
        self.model = file.model
        self.params = dict(file.params)
        self.label = label

    def render(self, **values: Any) -> list[dict[str, Any]]:
        """OpenAI-style messages, rendered in Jinja2's sandbox (no file I/O).

        Raises `aisys.PromptError` naming missing, unknown or wrongly typed values.
        """
        return self.file.render(values)

    @property
    def description(self) -> str:
        """The front matter's description."""
        return self.file.description

    def __repr__(self) -> str:
        return f"Prompt({self.name!r}, version={self.version!r}, sha256={self.sha256[:12]}…)"


class Registry:
    """The prompts of one directory: files, released versions, lock file, audit trail."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self.lock_path = self.directory / "prompts.lock"
        self.audit_path = self.directory / "audit.jsonl"

    # -- reading ----------------------------------------------------------------------

    def file_path(self, name: str) -> Path:
        """The draft file of ``name``."""
        return self.directory / f"{name}.prompty"

    def version_path(self, name: str, version: int) -> Path:
        """The released copy of ``name`` at ``version``."""
        return self.directory / ".versions" / name / f"{version}.prompty"

    def parse(self, path: Path) -> PromptFile:
        """A prompt file, parsed once per content (re-read only when it changed)."""
        try:
            stat = path.stat()
        except FileNotFoundError:
            msg = (
                f"no prompt file {str(path)!r} (prompts_dir is {str(self.directory)!r}; "
                "a prompt is <prompts_dir>/<name>.prompty)"
            )
            raise PromptError(msg) from None
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        parsed = _PARSED.get(key)
        if parsed is None:
            parsed = parse_prompty(path.read_text(encoding="utf-8"), str(path))
            with _PARSED_LOCK:
                _PARSED[key] = parsed
        return parsed

    def lock(self) -> dict[str, Any]:
        """The lock file's content (an empty one if there is none yet)."""
        if not self.lock_path.exists():
            return {"policy": dict(_DEFAULT_POLICY), "prompts": {}}
        try:
            data = json.loads(self.lock_path.read_text(encoding="utf-8"))
        except ValueError as exc:
            msg = f"{self.lock_path} is not valid JSON: {exc}"
            raise PromptError(msg) from None
        data.setdefault("policy", dict(_DEFAULT_POLICY))
        data.setdefault("prompts", {})
        return dict(data)

    def entry(self, name: str, lock: dict[str, Any] | None = None) -> dict[str, Any]:
        """The lock file's entry for ``name`` (empty if never released)."""
        data = (lock or self.lock())["prompts"].get(name) or {}
        data.setdefault("versions", {})
        data.setdefault("labels", {})
        data.setdefault("history", {})
        return dict(data)

    def records(self) -> list[dict[str, Any]]:
        """The audit trail, oldest first."""
        if not self.audit_path.exists():
            return []
        records = []
        for number, line in enumerate(
            self.audit_path.read_text(encoding="utf-8").splitlines(), 1
        ):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except ValueError:
                records.append({"_broken": number})
        return records

    def get(
        self,
        name: str,
        *,
        version: int | None = None,
        label: str | None = None,
        require_approval: bool = False,
    ) -> Prompt:
        """The prompt: the draft file, a released version, or what a label points to."""
        if version is not None and label is not None:
            msg = "get_prompt takes version= or label=, not both"
            raise PromptError(msg)
        lock = self.lock()
        entry = self.entry(name, lock)
        if label is not None:
            if label not in entry["labels"]:
                known = ", ".join(sorted(entry["labels"])) or "none yet"
                msg = (
                    f"prompt {name!r} has no label {label!r} (labels: {known}); "
                    f"set it with: aisys prompts promote {name} --version N --label {label}"
                )
                raise PromptError(msg)
            version = int(entry["labels"][label])
            if require_approval and label in lock["policy"].get("protected", []):
                problems = self._label_problems(name, label, entry)
                if problems:
                    msg = (
                        f"prompt {name!r} label {label!r} cannot be used "
                        f"(require_approval is on): {'; '.join(problems)}"
                    )
                    raise PromptError(msg)
        if version is not None:
            data = entry["versions"].get(str(version))
            if data is None:
                msg = f"prompt {name!r} has no released version {version}"
                raise PromptError(msg)
            copy = self.version_path(name, version)
            released = self.parse(copy)
            if released.sha256 != data.get("sha256"):
                msg = (
                    f"prompt {name!r} version {version} is not served: its released "
                    f"copy {str(copy)!r} no longer matches the sha256 recorded in "
                    "prompts.lock (released versions are immutable: restore it from "
                    "git, and release your change as a new version)"
                )
                raise PromptError(msg)
            return Prompt(released, version, label)
        file = self.parse(self.file_path(name))
        for number, data in entry["versions"].items():
            if data.get("sha256") == file.sha256:
                return Prompt(file, int(number))
        return Prompt(file, "draft")

    def names(self) -> list[str]:
        """Every prompt with a file or a release."""
        files = {path.stem for path in self.directory.glob("*.prompty")}
        return sorted(files | set(self.lock()["prompts"]))

    # -- changing -----------------------------------------------------------------------

    def _write_lock(self, lock: dict[str, Any]) -> None:
        temporary = self.lock_path.with_suffix(".lock.tmp")
        temporary.write_text(json.dumps(lock, indent=2, sort_keys=True) + "\n")
        os.replace(temporary, self.lock_path)

    @property
    def signers_path(self) -> Path:
        """``allowed_signers``: when it exists, releases and approvals are signed."""
        return self.directory / SIGNERS_FILE

    def _record(self, key: str | None = None, **fields: Any) -> dict[str, Any]:
        """The next audit record, chained, and signed when the directory signs."""
        records = self.records()
        previous = records[-1].get("sha256", GENESIS) if records else GENESIS
        record: dict[str, Any] = {
            "at": _now(),
            "by": fields.pop("by"),
            "action": fields.pop("action"),
            "name": fields.pop("name"),
            "version": fields.pop("version", None),
            "label": fields.pop("label", None),
            "reason": fields.pop("reason", None),
            **fields,
            "prev_sha256": previous,
        }
        record["sha256"] = _digest(record)
        if record["action"] in _SIGNED and self.signers_path.exists():
            record["signature"], record["signer"] = sign(
                record["sha256"], signing_key(key), self.signers_path
            )
        return record

    def _write(self, record: dict[str, Any]) -> None:
        with self.audit_path.open("a", encoding="utf-8") as audit:
            audit.write(json.dumps(record, sort_keys=True) + "\n")

    def _append(self, key: str | None = None, **fields: Any) -> dict[str, Any]:
        record = self._record(key, **fields)
        self._write(record)
        return record

    def check(self, name: str) -> list[str]:
        """What is wrong with ``name``'s file (`check_prompty`), each with a fix."""
        path = self.file_path(name)
        if not path.exists():
            return [f"no prompt file {str(path)!r}"]
        return check_prompty(path.read_text(encoding="utf-8"), str(path), name)

    def release(
        self, name: str, *, by: str, reason: str | None = None, key: str | None = None
    ) -> int:
        """Make the current file the next immutable version; returns its number.

        A file with mistakes (`check`) is refused, naming each with its line.
        """
        problems = self.check(name)
        if problems:
            msg = f"prompt {name!r} is not released: " + "; ".join(problems)
            raise PromptError(msg)
        file = self.parse(self.file_path(name))
        lock = self.lock()
        entry = self.entry(name, lock)
        for number, data in entry["versions"].items():
            if data["sha256"] == file.sha256:
                msg = (
                    f"prompt {name!r} is unchanged since version {number}: nothing to "
                    "release (edit the file, its model or a parameter first)"
                )
                raise PromptError(msg)
        version = max((int(n) for n in entry["versions"]), default=0) + 1
        record = self._record(
            key,
            by=by,
            action="release",
            name=name,
            version=version,
            reason=reason,
            prompt_sha256=file.sha256,
        )  # signed first: a refused signature leaves nothing behind
        copy = self.version_path(name, version)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(file.text, encoding="utf-8")
        entry["versions"][str(version)] = {
            "sha256": file.sha256,
            "released_by": by,
            "released_at": _now(),
            "model": file.model,
            "params": dict(file.params),
            "approvals": [],
        }
        lock["prompts"][name] = entry
        self._write(record)
        self._write_lock(lock)
        return version

    def _released(
        self, name: str, version: int
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """The lock, ``name``'s entry and ``version``'s record (`PromptError` if none)."""
        lock = self.lock()
        entry = self.entry(name, lock)
        data = entry["versions"].get(str(version))
        if data is None:
            msg = f"prompt {name!r} has no released version {version}"
            raise PromptError(msg)
        return lock, entry, data

    def approve(
        self,
        name: str,
        version: int,
        *,
        by: str,
        reason: str | None = None,
        key: str | None = None,
    ) -> None:
        """Record ``by``'s approval of ``version`` (four eyes: not the releaser).

        With signing on, "not the releaser" compares who signed the two records.
        """
        lock, entry, data = self._released(name, version)
        four_eyes = lock["policy"].get("four_eyes", True)
        if four_eyes and by == data["released_by"]:
            msg = (
                f"{by} released {name} version {version} and cannot also approve it "
                "(four_eyes is on in prompts.lock): ask a reviewer"
            )
            raise PromptError(msg)
        record = self._record(
            key, by=by, action="approve", name=name, version=version, reason=reason
        )
        released = self._release_record(name, version)
        signer = record.get("signer")
        if (
            four_eyes
            and signer is not None
            and signer == (released or {}).get("signer")
        ):
            msg = (
                f"{signer} signed the release of {name} version {version} and cannot "
                "also sign its approval (four_eyes is on in prompts.lock)"
            )
            raise PromptError(msg)
        data["approvals"].append({"by": by, "at": _now(), "reason": reason})
        lock["prompts"][name] = entry
        self._write(record)
        self._write_lock(lock)

    def _release_record(self, name: str, version: int) -> dict[str, Any] | None:
        """The audit record of ``name`` ``version``'s release, if there is one."""
        found = None
        for record in self.records():
            if (
                record.get("action") == "release"
                and record.get("name") == name
                and record.get("version") == version
            ):
                found = record
        return found

    def promote(
        self,
        name: str,
        version: int,
        label: str,
        *,
        by: str,
        reason: str | None = None,
    ) -> None:
        """Point ``label`` at ``version`` (a protected label needs an approval first)."""
        lock, entry, data = self._released(name, version)
        if label in lock["policy"].get("protected", []) and not data["approvals"]:
            msg = (
                f"{label!r} is a protected label: {name} version {version} needs an "
                f"approval first (aisys prompts approve {name} --version {version} "
                "--by REVIEWER)"
            )
            raise PromptError(msg)
        entry["history"].setdefault(label, []).append(version)
        self._move(lock, entry, name, label, version, by, reason, "promote")

    def rollback(
        self, name: str, label: str, *, by: str, reason: str | None = None
    ) -> int:
        """Move ``label`` back to the version it pointed to before; returns it."""
        lock = self.lock()
        entry = self.entry(name, lock)
        history = entry["history"].get(label, [])
        if len(history) < 2:
            msg = f"prompt {name!r} label {label!r} has no earlier version to roll back to"
            raise PromptError(msg)
        history.pop()
        version = int(history[-1])
        self._move(lock, entry, name, label, version, by, reason, "rollback")
        return version

    def _move(
        self,
        lock: dict[str, Any],
        entry: dict[str, Any],
        name: str,
        label: str,
        version: int,
        by: str,
        reason: str | None,
        action: str,
    ) -> None:
        """Point ``label`` at ``version``, record it in the audit trail, save the lock."""
        entry["labels"][label] = version
        lock["prompts"][name] = entry
        self._append(
            by=by, action=action, name=name, version=version, label=label, reason=reason
        )
        self._write_lock(lock)

    # -- checking -----------------------------------------------------------------------

    def _label_problems(
        self, name: str, label: str, entry: dict[str, Any]
    ) -> list[str]:
        version = int(entry["labels"][label])
        data = entry["versions"].get(str(version), {})
        problems = []
        if not data.get("approvals"):
            problems.append(
                f"version {version} is not approved (aisys prompts approve {name} "
                f"--version {version} --by REVIEWER)"
            )
        copy = self.version_path(name, version)
        if not copy.exists():
            problems.append(f"the released copy {copy} is missing")
        elif hashlib.sha256(
            copy.read_text(encoding="utf-8").encode()
        ).hexdigest() != data.get("sha256"):
            problems.append(
                f"the released copy {copy} no longer matches its recorded sha256 "
                "(released versions are immutable: restore it from git)"
            )
        return problems

    def verify(self, against: str | None = None) -> list[str]:
        """Everything wrong, each with how to fix it; empty when all is well.

        Nothing to verify is a problem too (no directory, no lock file): "verified"
        must mean something. In a git repository the committed ``audit.jsonl`` (at
        ``against``, default ``HEAD``) must be where the working copy starts: the
        trail is append-only, and hashes alone cannot tell a rewritten chain.
        """
        if not self.directory.is_dir():
            return [f"{self.directory} is not a directory: there is nothing to verify"]
        records = self.records()
        if not self.lock_path.exists():
            if records:
                return [
                    f"{self.lock_path} is missing, but audit.jsonl records "
                    f"{len(records)} change(s): restore it from git"
                ]
            return [
                f"{self.lock_path} does not exist: no prompt has been released, so "
                "nothing is verified (aisys prompts release NAME)"
            ]
        problems: list[str] = []
        for path in sorted(self.directory.glob("*.prompty")):
            problems.extend(
                check_prompty(path.read_text(encoding="utf-8"), str(path), path.stem)
            )
        problems.extend(self._chain_problems(records))
        problems.extend(self._anchor_problems(against))
        problems.extend(self._signature_problems(records))
        lock = self.lock()
        four_eyes = lock["policy"].get("four_eyes", True)
        protected = lock["policy"].get("protected", [])
        for name in sorted(lock["prompts"]):
            entry = self.entry(name, lock)
            mine = [r for r in records if r.get("name") == name]
            for number, data in sorted(
                entry["versions"].items(), key=lambda x: int(x[0])
            ):
                version = int(number)
                copy = self.version_path(name, version)
                if not copy.exists():
                    problems.append(
                        f"{name} v{version}: released copy {copy} is missing"
                    )
                elif hashlib.sha256(copy.read_bytes()).hexdigest() != data["sha256"]:
                    problems.append(
                        f"{name} v{version}: {copy} no longer matches its sha256 in "
                        "prompts.lock (released versions are immutable: restore it "
                        "from git, and release your change as a new version)"
                    )
                releases = [
                    r
                    for r in mine
                    if r.get("action") == "release"
                    and r.get("version") == version
                    and r.get("prompt_sha256") == data["sha256"]
                ]
                if not releases:
                    problems.append(
                        f"{name} v{version}: prompts.lock has it, but audit.jsonl holds "
                        "no release record with its sha256 (was the lock edited by hand?)"
                    )
                elif releases[-1].get("by") != data.get("released_by"):
                    problems.append(
                        f"{name} v{version}: prompts.lock says {data.get('released_by')!r} "
                        f"released it, audit.jsonl says {releases[-1].get('by')!r}"
                    )
                approvers = [
                    r.get("by")
                    for r in mine
                    if r.get("action") == "approve" and r.get("version") == version
                ]
                problems.extend(
                    f"{name} v{version}: prompts.lock lists an approval by "
                    f"{approval.get('by')!r} that audit.jsonl does not record"
                    for approval in data.get("approvals", [])
                    if approval.get("by") not in approvers
                )
                releaser = releases[-1].get("by") if releases else None
                if four_eyes and releaser is not None and releaser in approvers:
                    problems.append(
                        f"{name} v{version}: approved by its own releaser {releaser!r} "
                        "(four_eyes is on in prompts.lock)"
                    )
            for label, version in sorted(entry["labels"].items()):
                moves = [
                    r
                    for r in mine
                    if r.get("action") in ("promote", "rollback")
                    and r.get("label") == label
                ]
                if not moves or moves[-1].get("version") != version:
                    problems.append(
                        f"{name}: label {label!r} -> v{version} in prompts.lock does not "
                        "match the last promotion in audit.jsonl"
                    )
                if label in protected:
                    problems.extend(
                        f"{name}: protected label {label!r}: {problem}"
                        for problem in self._label_problems(name, label, entry)
                    )
        return problems

    def _signature_problems(self, records: list[dict[str, Any]]) -> list[str]:
        """With ``allowed_signers``: every release and approval signed, and verified.

        Four eyes then compares signers: an approval signed by whoever signed the
        release is a problem.
        """
        if not self.signers_path.exists():
            return []
        problems = []
        releasers: dict[tuple[Any, Any], str | None] = {}
        four_eyes = self.lock()["policy"].get("four_eyes", True)
        for number, record in enumerate(records, 1):
            action = record.get("action")
            if action not in _SIGNED:
                continue
            what = f"audit.jsonl record {number} ({action} of {record.get('name')} v{record.get('version')})"
            signature = record.get("signature")
            if not signature:
                problems.append(f"{what} is not signed ({SIGNERS_FILE} exists)")
                continue
            signer = signer_of(
                str(record.get("sha256")), str(signature), self.signers_path
            )
            if signer is None or signer != record.get("signer"):
                problems.append(
                    f"{what}: its signature does not verify against {SIGNERS_FILE} "
                    f"(it says {record.get('signer')!r})"
                )
                continue
            key = (record.get("name"), record.get("version"))
            if action == "release":
                releasers[key] = signer
            elif four_eyes and releasers.get(key) == signer:
                problems.append(
                    f"{what}: signed by {signer}, who also signed the release "
                    "(four_eyes is on in prompts.lock)"
                )
        return problems

    def _anchor_problems(self, against: str | None) -> list[str]:
        """The committed audit trail must be where the working copy's starts."""
        where = self.audit_path.resolve()
        try:
            top = subprocess.run(
                ["git", "rev-parse", "--show-toplevel"],  # noqa: S607 - git from PATH
                cwd=where.parent,
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            if against is not None:
                return [f"--against {against}: {self.directory} is not in a git repo"]
            return []  # not in git: the hash chain is all there is
        reference = against or "HEAD"
        relative = where.relative_to(Path(top).resolve()).as_posix()
        shown = subprocess.run(  # noqa: S603 - git with a ref the user gave
            ["git", "show", f"{reference}:{relative}"],  # noqa: S607
            cwd=top,
            capture_output=True,
            timeout=10,
            check=False,
        )
        if shown.returncode != 0:
            if against is not None:
                return [
                    f"{relative} is not committed at {against}: nothing to anchor to"
                ]
            return []  # never committed yet
        current = self.audit_path.read_bytes() if self.audit_path.exists() else b""
        if not current.startswith(shown.stdout):
            return [
                f"audit.jsonl is not the one committed at {reference} with records "
                "added after it: committed records were changed or removed (the trail "
                f"is append-only; compare with: git diff {reference} -- {relative})"
            ]
        return []

    @staticmethod
    def _chain_problems(records: list[dict[str, Any]]) -> Iterator[str]:
        previous = GENESIS
        for number, record in enumerate(records, 1):
            if "_broken" in record:
                yield f"audit.jsonl line {record['_broken']} is not JSON"
                previous = "?"
                continue
            if record.get("prev_sha256") != previous:
                yield (
                    f"audit.jsonl record {number} does not follow record {number - 1} "
                    "(a record was edited, removed or inserted): the chain is broken"
                )
            if _digest(record) != record.get("sha256"):
                yield f"audit.jsonl record {number} was edited after it was written"
            previous = str(record.get("sha256"))

    def diff(self, name: str, a: str, b: str) -> str:
        """A unified diff of two versions (``draft`` is the current file)."""

        def text(version: str) -> tuple[str, str]:
            if version == "draft":
                return self.parse(self.file_path(name)).text, f"{name} (draft)"
            try:
                number = int(version)
            except ValueError:
                msg = f"a version is a number or 'draft', got {version!r}"
                raise PromptError(msg) from None
            return self.get(name, version=number).file.text, f"{name} v{number}"

        (left, left_name), (right, right_name) = text(a), text(b)
        return "".join(
            difflib.unified_diff(
                left.splitlines(keepends=True),
                right.splitlines(keepends=True),
                left_name,
                right_name,
            )
        )
