"""Quality observability: drift between windows, and the HTML page in a real Chromium.

Traces are written as the JSONL exporter writes them, with start times spread over the
last eight days (a real exporter stamps "now"), so windows and baselines have data. The
page is opened by Debian's headless Chromium through selenium and chromedriver: it must
load with no console error and no network request, draw its charts, and show the totals
``--format json`` prints.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _traces(path: Path, *, drifting: bool, n: int = 1200, seed: int = 7) -> Path:
    """Calls of two models over eight days; with ``drifting``, the last day changes:
    claude-haiku gets slower and gpt-4o-mini's helpfulness drops."""
    rng = random.Random(seed)  # noqa: S311 - seeded test data
    now = time.time()
    lines = []
    for i in range(n):
        age = rng.uniform(60, 8 * 86400)
        start = now - age
        model = ("gpt-4o-mini", "claude-haiku")[i % 2]
        recent = age < 86400 and drifting
        latency_ms = rng.gauss(900 if recent and model == "claude-haiku" else 400, 40)
        span_id, trace_id = f"{i + 1:016x}", f"{i + 1:032x}"
        lines.append({
            "name": f"chat {model}", "trace_id": trace_id, "span_id": span_id,
            "parent_span_id": None, "kind": "CLIENT",
            "start_time_unix_nano": int(start * 1e9),
            "end_time_unix_nano": int((start + latency_ms / 1000) * 1e9),
            "status": {"code": "ERROR" if i % 50 == 0 else "UNSET", "description": None},
            "attributes": {
                "gen_ai.operation.name": "chat", "gen_ai.request.model": model,
                "aisys.cost.usd": 0.0002, "gen_ai.usage.input_tokens": 120,
                "gen_ai.usage.output_tokens": 30, "aisys.cache.hit": i % 5 == 0,
                "aisys.fallback.index": 1 if i % 40 == 0 else 0,
                "aisys.tags": ["vip"] if i % 3 == 0 else ["free"],
            },
            "events": [], "resource": {"service.name": "support-bot"},
        })  # fmt: skip
        helpful = rng.uniform(0.6, 1.0) * (
            0.4 if recent and model == "gpt-4o-mini" else 1
        )
        lines.append({
            "event": "gen_ai.evaluation.result", "trace_id": trace_id, "span_id": span_id,
            "time_unix_nano": int(start * 1e9),
            "attributes": {"gen_ai.evaluation.name": "helpfulness",
                           "gen_ai.evaluation.score.value": round(helpful, 4)},
        })  # fmt: skip
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _aisys(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aisys.cli", "report", *args],
        cwd=cwd, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip


# -- drift -----------------------------------------------------------------------------


def test_drift_finds_the_signals_that_moved_and_only_those(tmp_path: Path) -> None:
    _traces(tmp_path / "t.jsonl", drifting=True)
    done = _aisys("t.jsonl", "--drift", "--format", "json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert set(rows[0]) == {
        "group", "signal", "baseline_n", "window_n", "baseline_mean", "window_mean",
        "psi", "ks_p", "drift",
    }  # fmt: skip
    drifted = {(r["group"], r["signal"]) for r in rows if r["drift"]}
    assert drifted == {("claude-haiku", "latency_ms"), ("gpt-4o-mini", "helpfulness")}
    gate = _aisys("t.jsonl", "--drift", "--fail-on-drift", cwd=tmp_path)
    assert gate.returncode == 1
    assert "DRIFT" in gate.stdout


def test_no_drift_in_steady_traffic(tmp_path: Path) -> None:
    _traces(tmp_path / "t.jsonl", drifting=False)
    done = _aisys(
        "t.jsonl", "--drift", "--fail-on-drift", "--format", "json", cwd=tmp_path
    )
    assert done.returncode == 0
    assert not any(r["drift"] for r in json.loads(done.stdout))


def test_drift_needs_thirty_values_a_side(tmp_path: Path) -> None:
    _traces(tmp_path / "t.jsonl", drifting=True, n=40)
    rows = json.loads(
        _aisys("t.jsonl", "--drift", "--format", "json", cwd=tmp_path).stdout
    )
    assert rows
    assert not any(r["drift"] for r in rows)  # too few in the window to say


def test_drift_by_segment_and_a_bad_window(tmp_path: Path) -> None:
    _traces(tmp_path / "t.jsonl", drifting=True)
    rows = json.loads(
        _aisys(
            "t.jsonl", "--drift", "--group-by", "tag", "--format", "json", cwd=tmp_path
        ).stdout
    )
    assert {r["group"] for r in rows} == {"vip", "free"}
    bad = _aisys("t.jsonl", "--drift", "--window", "yesterday", cwd=tmp_path)
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr


# -- the HTML page in Chromium ---------------------------------------------------------


def _browser() -> Any:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        message = "Chromium is not installed (make test installs chromium and chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--window-size=1400,1800",
    ):
        options.add_argument(flag)
    options.set_capability(
        "goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"}
    )
    return webdriver.Chrome(service=Service(driver), options=options)


def test_the_html_page_in_a_real_browser(tmp_path: Path) -> None:
    _traces(tmp_path / "t.jsonl", drifting=True)
    written = _aisys("t.jsonl", "--html", "report.html", "--drift", cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    page = tmp_path / "report.html"
    assert page.stat().st_size <= 5 * 1024 * 1024
    expected = json.loads(_aisys("t.jsonl", "--format", "json", cwd=tmp_path).stdout)
    browser = _browser()
    try:
        browser.get(page.as_uri())
        for _ in range(100):  # plotly draws when its script has run
            drawn = browser.execute_script(
                "return document.querySelectorAll('.js-plotly-plot .main-svg').length"
            )
            if drawn:
                break
            time.sleep(0.05)
        assert drawn >= 7  # calls, cost, p95, errors, fallbacks, hit rate, a score
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
        requests = [
            json.loads(e["message"])["message"] for e in browser.get_log("performance")
        ]
        urls = {
            r["params"]["request"]["url"]
            for r in requests
            if r["method"] == "Network.requestWillBeSent"
        }
        assert urls <= {page.as_uri()}  # the page itself, and nothing else
        embedded = json.loads(
            browser.execute_script(
                "return document.getElementById('aisys-report').textContent"
            )
        )
        assert embedded["rows"] == expected  # the page's figures are --format json's
        totals = browser.execute_script(
            "return Object.fromEntries([...document.querySelectorAll('tr.total td[data-key]')]"
            ".map(td => [td.dataset.key, td.textContent]))"
        )
        assert int(totals["calls"]) == sum(r["calls"] for r in expected)
        assert int(totals["errors"]) == sum(r["errors"] for r in expected)
        assert float(totals["cost_usd"]) == pytest.approx(
            sum(r["cost_usd"] for r in expected)
        )
        drift_rows = browser.execute_script(
            "return document.querySelectorAll('#drift tr.drift').length"
        )
        assert drift_rows == 2
        shot = tmp_path / "report.png"
        browser.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
        if os.environ.get("AISYS_WRITE_DOCS_IMAGES"):  # refresh the picture in docs/
            (ROOT / "docs" / "images").mkdir(exist_ok=True)
            shutil.copy(shot, ROOT / "docs" / "images" / "report.png")
    finally:
        browser.quit()


def test_an_empty_selection_says_so_and_exits_0(tmp_path: Path) -> None:
    _traces(tmp_path / "t.jsonl", drifting=False, n=10)
    done = _aisys("t.jsonl", "--since", "1s", cwd=tmp_path)
    assert done.returncode == 0
    assert "no model calls in the last 1s" in done.stderr
