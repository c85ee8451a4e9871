# The README's two commands: `make run` and `make test`. Everything else is a step of those.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
REDIS_TEST_URL ?= redis://127.0.0.1:6379/0
PYTEST_ARGS ?=

.PHONY: run test venv migrate demo test-sqlite test-services browser nginx bench bench-province fuzz clean lock

run:
	@$(PYTHON) scripts/run_local.py --check-ports
	@$(MAKE) --no-print-directory venv migrate demo
	$(BIN)/python scripts/run_local.py

venv: $(VENV)/.installed

# Installs exactly the locked tree (every package pinned with its hashes): requirements-dev.txt
# is the runtime lock plus the test tools; production installs requirements.txt alone.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.txt
	touch $@

# After changing requirements.in or requirements-dev.in: recompile both locks (needs PyPI).
lock: venv
	$(BIN)/uv pip compile --quiet --generate-hashes --python-version 3.11 -o requirements.txt requirements.in
	$(BIN)/uv pip compile --quiet --generate-hashes --python-version 3.11 -o requirements-dev.txt requirements-dev.in

migrate: venv
	$(FLASK) db upgrade
	$(FLASK) regions import --builtin
	$(FLASK) stats rollups rebuild --if-missing

demo: migrate
	$(FLASK) seed demo

# SQLite first; then PostgreSQL and Redis when they answer (or DATABASE_URL/REDIS_URL are set).
test: venv browser
	$(MAKE) --no-print-directory test-sqlite
	@if [ -n "$$DATABASE_URL$$REDIS_URL" ] || ( pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 ); then \
		$(MAKE) --no-print-directory test-services; \
	else echo "PostgreSQL/Redis 未运行：跳过真实服务上的测试"; fi

test-sqlite:
	@echo "== 测试：SQLite，无 Redis =="
	env -u DATABASE_URL -u REDIS_URL $(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-services: nginx
	@echo "== 测试：PostgreSQL + Redis =="
	XGZ_OUTAGE_TESTS=1 DATABASE_URL=$${DATABASE_URL:-$(PG_URL)} REDIS_URL=$${REDIS_URL:-$(REDIS_TEST_URL)} $(BIN)/python -m pytest -q $(PYTEST_ARGS)

# Debian's chromium (and a CJK font, so screenshots show Chinese) for the H5 page test;
# installed when missing and we may install packages.
CJK_FONT := /usr/share/fonts/truetype/wqy/wqy-microhei.ttc
browser:
	@if ! command -v chromium >/dev/null 2>&1 || [ ! -e $(CJK_FONT) ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "安装 chromium 与中文字体（浏览器端到端测试需要）"; \
			{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null; } || echo "安装失败：浏览器测试将跳过"; \
		else echo "未找到 chromium：浏览器测试将跳过（sudo apt-get install chromium fonts-wqy-microhei）"; fi; \
	fi

# Debian's nginx for the two-host deployment test (tests/deploy): installed when missing and we may.
nginx:
	@if ! command -v nginx >/dev/null 2>&1 && ! [ -x /usr/sbin/nginx ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "安装 nginx（两台主机的部署测试需要）"; \
			{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null; } || echo "安装失败：部署测试将跳过"; \
		else echo "未找到 nginx：部署测试将跳过（sudo apt-get install nginx）"; fi; \
	fi

# Benchmarks (need wrk and, for P4, PostgreSQL): see scripts/bench/README.md
bench: venv
	@command -v wrk >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
	$(BIN)/python -m scripts.bench.run_all

# P10/P12 at province size (2,000,000 stalls seeded by COPY into its own xgz_province*
# databases, dropped afterwards; ~45 min on 2 cores, most of it `flask stats rollups rebuild`):
# kept out of `make bench`. `run_all --province` adds it.
bench-province: venv
	$(BIN)/python -m scripts.bench.bench_province

# R5: a few hundred generated requests per operation of the OpenAPI document.
fuzz: venv
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-300} $(BIN)/python -m pytest -q tests/test_api_fuzz.py

clean:
	rm -rf $(VENV) instance .pytest_cache
