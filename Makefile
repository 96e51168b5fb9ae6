# `make run` and `make test` each bootstrap first (Debian packages, .venv, the project).
.PHONY: bootstrap run test bench faults lint clean

bootstrap:
	@scripts/bootstrap

run: bootstrap
	.venv/bin/python -m kiosk.devstation

test: bootstrap
	scripts/test

bench: bootstrap
	.venv/bin/python -m bench

faults: bootstrap
	.venv/bin/python -m faults

clean:
	rm -rf station-data test-artifacts .pytest_cache .mypy_cache .ruff_cache
