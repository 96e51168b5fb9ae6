# `make run` and `make test` each bootstrap first (Debian packages, .venv, the project).
# Paths are the Makefile's own, so `make -f PATH/Makefile run` runs a station in the current
# folder (its station-data/ there), as the tests of `make run` do.
ROOT := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
.PHONY: bootstrap run test bench faults lint clean messages

bootstrap:
	@$(ROOT)/scripts/bootstrap

run: bootstrap
	$(ROOT)/.venv/bin/python -m kiosk.tools.devstation $(if $(CATALOG),--catalog $(CATALOG))

test: bootstrap
	$(ROOT)/scripts/test

bench: bootstrap
	cd $(ROOT) && .venv/bin/python -m bench

faults: bootstrap
	cd $(ROOT) && .venv/bin/python -m faults

# the console's catalogs (assets/locales/*/LC_MESSAGES/console.po): add the keys the templates
# and fleet/console use, drop those no longer used; then fill in the empty translations
messages:
	cd $(ROOT) && .venv/bin/python -m fleet.console.messages update

clean:
	rm -rf station-data test-artifacts .pytest_cache .mypy_cache .ruff_cache
