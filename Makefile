# The two commands a fresh machine needs: `make demo` and `make test`.
# Each creates .venv with a real Python 3.10 when it is missing and installs the
# project once (the stamp file is newer than pyproject.toml afterwards).
SHELL   := /bin/bash
.SHELLFLAGS := -o pipefail -c
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.spikeship-installed
DEMO_OUT ?= demo-out
PYTEST_ARGS ?=
# SPEECH=0 leaves out the optional speech extra (eSpeak NG, GPL-3.0) that event-speech needs.
SPEECH  ?= 1
comma   := ,
EXTRAS  := $(if $(filter 0,$(SPEECH)),dev,dev$(comma)speech)

.PHONY: demo test venv clean figures

venv: $(STAMP)

$(STAMP): pyproject.toml
	@if [ ! -x $(PY) ]; then \
		PY310=$$(tools/find-python310.sh) || exit 2; \
		echo "creating $(VENV) with $$PY310"; \
		"$$PY310" -m venv $(VENV) || exit 2; \
	fi
	@echo "installing spikeship and its dependencies into $(VENV) (first time: about 3 minutes)"
	@$(PY) -m pip install -q --upgrade pip setuptools wheel 2>&1 | { grep -v "is ignored: it is neither" || true; }
	@$(PY) -m pip install -q -e '.[$(EXTRAS)]' 2>&1 | { grep -v "is ignored: it is neither" || true; }
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/spikeship demo --out $(DEMO_OUT)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

figures: $(STAMP)
	$(PY) bench/plot_event_digits.py --out docs/event-digits.png
	$(PY) bench/plot_event_speech.py --out docs/event-speech.png

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
