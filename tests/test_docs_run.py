"""Every example in README.md and docs/ runs as written, page by page, offline.

A page runs in a fresh git repository as a user following it would, every step in the
order the page shows it: a file it shows is written where it says (``# prices.yaml`` as
the block's first line, or "… `prompts/x.prompty`:" just before it); the ``aisys`` and
``git add``/``git commit`` lines of a shell block run (each must exit 0, after a flush,
as if the Python so far had been a script that ended); Python blocks run in one
namespace, top-level ``await`` included. The official SDKs and aisys's adapters reach the
loopback wire server through OPENAI_BASE_URL / ANTHROPIC_BASE_URL, and is priced as
those providers' own endpoints are (RUNNER's one patch). A block that shows the
error it ends with (``# aisys.BudgetExceededError: …``) must raise exactly that.

What the prose assumes and never writes down (the user's ``client``, ``messages``, their
``notes``…) is the PRELUDE: the only code here that is not in the docs. A block preceded
by ``<!-- not run: why -->`` is skipped; NOT_RUN lists them, so each is a decision.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.wire_server import Reply, WireServer

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^( *)```(\w*)\n(.*?)^\1```", re.DOTALL | re.MULTILINE)
FILE = r"([\w./-]+\.(?:prompty|yaml|yml|json|jsonl|csv|toml|py))"
PATH_HEADER = re.compile(rf"#\s*{FILE}\s*")
PATH_IN_PROSE = re.compile(rf"`{FILE}`.*:\s*$")
RAISES = re.compile(r"^# (aisys\.\w+Error):", re.MULTILINE)
NOT_RUN = re.compile(r"<!-- not run: (.+?) -->\s*$")

NOT_RUN_BLOCKS = {
    "prompts.md:153": "a rollback needs two promoted versions; tests/test_prompts.py",
}

PRELUDE = """
import os

import pydantic
from openai import OpenAI
from opentelemetry.sdk.trace import TracerProvider

import aisys

client = OpenAI()
question = "How long do refunds take?"
questions = [question, "Can I change my delivery address?"]
messages = [{"role": "user", "content": question}]
notes = "Refunds take five working days once the parcel is back."
summarise_again = "Summarise this thread again, please. " * 2000   # a long document
LOCAL = os.environ["OPENAI_BASE_URL"]                              # a local server
my_provider = TracerProvider()


def ask_backup(question: str) -> str:
    return "Refunds take five working days."


def my_pii_model(text: str) -> str:
    return text
"""

ACME = """
from aisys.providers.openai import OpenAIAdapter


class AcmeAdapter(OpenAIAdapter):
    name = "acme"
"""

RUNNER = """
import ast, asyncio, json, os, pathlib, subprocess, sys

import aisys.metering.prices as prices

wire = os.environ["OPENAI_BASE_URL"], os.environ["ANTHROPIC_BASE_URL"]
prices._DEFAULT_ENDPOINTS = frozenset({*prices._DEFAULT_ENDPOINTS, *wire})  # api.openai.com
namespace = {}
for step in json.load(open(sys.argv[1])):
    kind, where = step["kind"], step["where"]
    if kind == "file":
        path = pathlib.Path(step["path"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(step["code"])
    elif kind == "sh":
        if "aisys" in sys.modules:
            sys.modules["aisys"].flush()
        for command in step["commands"]:
            if "origin/" in command:  # what a CI checkout has: the branch as it is there
                subprocess.run(["git", "fetch", "-q", "origin"], check=True)
            done = subprocess.run(["bash", "-c", command], capture_output=True, text=True)
            if done.returncode:
                sys.exit(f"{where}: `{command}` exited {done.returncode}:\\n{done.stderr}")
    else:
        code = compile(step["code"], where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        try:
            result = eval(code, namespace)
            if asyncio.iscoroutine(result):
                asyncio.run(result)
        except BaseException as exc:
            if step["raises"] != "aisys." + type(exc).__name__:
                raise
        else:
            if step["raises"]:
                sys.exit(f"{where}: documented to raise {step['raises']}, did not")
sys.modules["aisys"].flush()
"""


@dataclass
class Step:
    """One thing a reader does: write a file, type shell lines, run Python."""

    kind: str
    where: str
    code: str = ""
    path: str | None = None
    commands: tuple[str, ...] = ()
    raises: str | None = None


def steps(page: Path) -> list[Step]:
    """The page's runnable blocks, in order."""
    text = page.read_text()
    found = [Step("python", "prelude", PRELUDE)]
    for match in FENCE.finditer(text):
        where = f"{page.name}:{text.count(chr(10), 0, match.start()) + 2}"
        lang, code = match.group(2), textwrap.dedent(match.group(3))
        before = text[: match.start()].rstrip().rsplit("\n", 1)[-1]
        if NOT_RUN.search(before):
            assert where in NOT_RUN_BLOCKS, (
                f"{where} is marked not run: add it to NOT_RUN_BLOCKS"
            )
            continue
        header = PATH_HEADER.fullmatch(code.partition("\n")[0])
        prose = PATH_IN_PROSE.search(before)
        if lang == "python" and prose:  # a module of the app ("`app/bot.py`:")
            found.append(Step("file", where, code, path=prose.group(1)))
        elif lang == "python":
            raises = RAISES.search(code)
            found.append(Step("python", where, code, raises=raises and raises.group(1)))
        elif lang == "sh":
            commands = tuple(
                line.split("  #")[0].strip()
                for line in code.splitlines()
                if line.startswith(("aisys ", "git add ", "git commit "))
            )
            if commands:
                found.append(Step("sh", where, commands=commands))
        elif (header or prose) and lang != "sh":
            path = (header or prose).group(1)  # type: ignore[union-attr]
            found.append(Step("file", where, code, path=path))
    return found


@pytest.fixture(name="page_dir")
def fixture_page_dir(tmp_path: Path) -> Path:
    """A fresh git repository with the acme plug-in of providers.md installed."""
    (tmp_path / "acme_llm.py").write_text(ACME)
    info = tmp_path / "acme_llm-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: acme-llm\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text(
        "[aisys.providers]\nacme = acme_llm:AcmeAdapter\n"
    )
    for command in (  # whose origin is itself, as a CI checkout has one
        "git init -q -b main",
        "git config user.email releaser@example.com",
        "git config user.name Releaser",
        "git remote add origin .",
    ):
        subprocess.run(command.split(), cwd=tmp_path, check=True)
    return tmp_path


def _env(cwd: Path, server: WireServer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AISYS_")}
    env.update(
        OPENAI_API_KEY="sk-docs-test-key",
        OPENAI_BASE_URL=server.base_url,
        ANTHROPIC_API_KEY="sk-ant-docs-test-key",
        ANTHROPIC_BASE_URL=server.root_url,
        PYTHONPATH=os.pathsep.join([str(cwd), str(ROOT)]),
        PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
        HOME=str(cwd),
        NO_COLOR="1",
        AISYS_EXPORTERS="jsonl",  # the reader's app writes traces, as getting-started says
    )
    return env


def _evaluation(body: dict[str, Any]) -> Reply:
    """evaluation.md: a judge (asked for JSON) gets a verdict; the bot, an answer."""
    if "response_format" in body:
        return Reply(text='{"score": 0.8, "explanation": "polite and to the point"}')
    return Reply(text="Refunds take five working days, back to the original card.")


def _review(body: dict[str, Any]) -> Reply:
    """review.md: a question about a card gets an answer holding a key (a handoff)."""
    if "4111" in json.dumps(body.get("messages", [])):
        return Reply(text="Charged, see key sk-proj-abcdef0123456789abcdef0123456789.")
    return Reply(text="Refunds go back to your card within five working days.")


REPLIES = {"security.md": Reply(text='{"number": "A1", "total": 12.5}')}  # the invoice
ANSWERERS = {"evaluation.md": _evaluation, "review.md": _review}


@pytest.mark.parametrize(
    "page", [p for p in PAGES if len(steps(p)) > 1], ids=lambda p: p.name
)
def test_page_examples_run(page: Path, page_dir: Path, server: WireServer) -> None:
    (page_dir / "steps.json").write_text(json.dumps([asdict(s) for s in steps(page)]))
    (page_dir / "runner.py").write_text(RUNNER)
    server.default = REPLIES.get(page.name, Reply())
    server.answerer = ANSWERERS.get(page.name)
    try:
        done = subprocess.run(
            [sys.executable, "runner.py", "steps.json"],
            cwd=page_dir,
            env=_env(page_dir, server),
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        server.default = Reply()
        server.answerer = None
    assert done.returncode == 0, done.stderr[-4000:]


def test_every_page_with_examples_is_run() -> None:
    """A page with a Python or shell example is collected (a new page cannot slip by)."""
    with_examples = {
        p.name for p in PAGES if re.search(r"```(python|sh)\n", p.read_text())
    }
    run = {p.name for p in PAGES if len(steps(p)) > 1}
    # performance.md: `make bench` takes minutes, not a test
    assert with_examples - run <= {"performance.md"}
