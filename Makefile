# The pipeline, declared once. Each stage's output depends on its inputs, so `make demo`
# after an interruption skips the stages that are already complete and newer than their
# inputs; `make clean` starts over. Override any variable on the command line, e.g.
#   make demo CORPUS_DIR=~/my_corpus WORK=data/my_run TOKENIZER=mecab_wordpiece VOCAB_SIZE=32000

PYTHON3      ?= python3
VENV         ?= .venv
PY           := $(VENV)/bin/python
CORPUS_DIR   ?= data/sample
WORK         ?= data/demo
TOKENIZER    ?= wordpiece
VOCAB_SIZE   ?= 3000
MIN_FREQUENCY ?= 1
LIMIT_ALPHABET ?= 6000
UNUSED_SIZE  ?= 50
NUM_PROCESSES ?= 1
PYTEST_ARGS  ?=

CORPUS_FILE  := $(WORK)/corpus/preprocessed.txt
VOCAB_DIR    := $(WORK)/vocab
CORPUS_INPUTS := $(shell find $(CORPUS_DIR) -type f 2>/dev/null)

.PHONY: setup demo test clean
.DELETE_ON_ERROR:

setup: $(VENV)/.installed

# One `pip install -r` for everything: installing packages one by one lets nni pull numpy 2.
$(VENV)/.installed: requirements.txt
	$(PYTHON3) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install -r requirements.txt
	touch $@

$(CORPUS_FILE): $(CORPUS_INPUTS) | $(VENV)/.installed
	$(PY) preprocess.py --corpus_dir $(CORPUS_DIR) --output_file $@ --num_processes $(NUM_PROCESSES)

$(VOCAB_DIR)/vocab.txt: $(CORPUS_FILE)
	$(PY) build_vocab.py --corpus $< --output_dir $(VOCAB_DIR) --tokenizer $(TOKENIZER) \
	    --vocab_size $(VOCAB_SIZE) --min_frequency $(MIN_FREQUENCY) \
	    --limit_alphabet $(LIMIT_ALPHABET) --unused_size $(UNUSED_SIZE) --num_processes $(NUM_PROCESSES)

demo: $(VOCAB_DIR)/vocab.txt
	@echo "demo finished: cleaned corpus $(CORPUS_FILE), vocab $(VOCAB_DIR)/"

# pytest exits 5 when it collected nothing; a run that tested nothing is a failure here.
test: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$status

clean:
	rm -rf $(WORK)
