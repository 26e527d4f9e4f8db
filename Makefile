# The pipeline, declared once. Each stage's output depends on its inputs, so `make demo`
# after an interruption skips the stages that are already complete and newer than their
# inputs; `make clean` starts over. Override any variable on the command line, e.g.
#   make demo CORPUS_DIR=~/my_corpus WORK=data/my_run TOKENIZER=mecab_wordpiece VOCAB_SIZE=32000

# TensorFlow 2.15 installs only on Python 3.9-3.11: take the newest of those found on PATH.
PYTHON3      ?= $(firstword $(foreach v,3.11 3.10 3.9,$(shell command -v python$(v) 2>/dev/null)) python3)
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
MAX_SEQ_LENGTH ?= 64
PRETRAIN_HPARAMS ?= conf/pretrain/tiny.json
PRETRAIN_STEPS ?= 300
# Set MIXED_PRECISION=--mixed_precision for bf16 on AVX-512 BF16 CPUs (fp16 on GPUs).
MIXED_PRECISION ?=
FINETUNE_CONFIG ?= conf/nsmc/sample.yaml
FINETUNE_TASK ?= nsmc_sample
PYTEST_ARGS  ?=

CORPUS_FILE  := $(WORK)/corpus/preprocessed.txt
VOCAB_DIR    := $(WORK)/vocab
TFRECORDS    := $(WORK)/tfrecords
MODEL_DIR    := $(WORK)/model
PT_DIR       := $(WORK)/pytorch
FINETUNE_DIR := $(WORK)/finetune
CORPUS_INPUTS := $(shell find $(CORPUS_DIR) -type f 2>/dev/null)
# Each stage runs under the timer, which records its wall time for the summary.
TIMED        = $(PY) -m util.stage_timer --record $(WORK)/timings.json --stage

.PHONY: setup demo corpus vocab dataset pretrain convert finetune summary test clean
.DELETE_ON_ERROR:

setup: $(VENV)/.installed

# One `pip install -r` for everything: installing packages one by one lets nni pull numpy 2.
# Checked before the venv exists: on 3.12+ pip would fail deep inside with "Could not find a
# version that satisfies the requirement tensorflow-cpu==2.15.1".
# REQUIREMENTS=requirements-cpu.txt: torch's CPU wheel instead of PyPI's CUDA build (Linux);
# requirements-gpu.txt: TensorFlow's GPU build for pretraining on GPUs.
REQUIREMENTS ?= requirements.txt
$(VENV)/.installed: $(REQUIREMENTS) requirements.txt
	@$(PYTHON3) -c 'import sys; sys.exit(not (3, 9) <= sys.version_info[:2] <= (3, 11))' 2>/dev/null || { \
	    echo "error: TensorFlow 2.15 needs Python 3.9-3.11, but PYTHON3=$(PYTHON3) is $$($(PYTHON3) -V 2>&1 || echo missing);" \
	        "install python3.11 and run e.g. make demo PYTHON3=python3.11" >&2; exit 1; }
	$(PYTHON3) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install -r $(REQUIREMENTS)
	touch $@

$(CORPUS_FILE): $(CORPUS_INPUTS) | $(VENV)/.installed
	@mkdir -p $(WORK)
	$(TIMED) preprocess -- $(PY) preprocess.py --corpus_dir $(CORPUS_DIR) --output_file $@ \
	    --num_processes $(NUM_PROCESSES) --quiet

$(VOCAB_DIR)/vocab.txt: $(CORPUS_FILE)
	$(TIMED) build_vocab -- $(PY) build_vocab.py --corpus $< --output_dir $(VOCAB_DIR) --tokenizer $(TOKENIZER) \
	    --vocab_size $(VOCAB_SIZE) --min_frequency $(MIN_FREQUENCY) \
	    --limit_alphabet $(LIMIT_ALPHABET) --unused_size $(UNUSED_SIZE) --num_processes $(NUM_PROCESSES)

$(TFRECORDS)/stats.json: $(VOCAB_DIR)/vocab.txt $(CORPUS_FILE)
	$(TIMED) dataset -- $(PY) build_pretraining_dataset.py --corpus_dir $(dir $(CORPUS_FILE)) \
	    --vocab_file $(VOCAB_DIR) --output_dir $(TFRECORDS) --max_seq_length $(MAX_SEQ_LENGTH) \
	    --num_processes $(NUM_PROCESSES) --num_out_files 4 --no_progress

# An interrupted run leaves checkpoints and no results file: the rerun resumes from them.
$(MODEL_DIR)/results/unsup_results.txt: $(TFRECORDS)/stats.json $(PRETRAIN_HPARAMS)
	$(TIMED) pretrain -- $(PY) run_pretraining.py --data_dir $(TFRECORDS) --model_name $(MODEL_DIR) \
	    --hparams $(PRETRAIN_HPARAMS) \
	    --hparams '{"num_train_steps": $(PRETRAIN_STEPS), "max_seq_length": $(MAX_SEQ_LENGTH), "do_eval": true}' \
	    $(MIXED_PRECISION)

$(PT_DIR)/discriminator/model.safetensors: $(MODEL_DIR)/results/unsup_results.txt
	$(TIMED) convert -- $(PY) pytorch_convert.py --tf_ckpt_path $(MODEL_DIR) \
	    --pt_discriminator_path $(PT_DIR)/discriminator --pt_generator_path $(PT_DIR)/generator \
	    --onnx_path $(PT_DIR)/discriminator.onnx --overwrite

$(FINETUNE_DIR)/$(FINETUNE_TASK)/results.json: $(PT_DIR)/discriminator/model.safetensors $(FINETUNE_CONFIG)
	$(TIMED) finetune -- $(PY) run_finetune.py --config_file $(FINETUNE_CONFIG) \
	    --set model_name_or_path=$(PT_DIR)/discriminator --set ckpt_dir=$(FINETUNE_DIR) \
	    --set task=$(FINETUNE_TASK)

corpus: $(CORPUS_FILE)
vocab: $(VOCAB_DIR)/vocab.txt
dataset: $(TFRECORDS)/stats.json
pretrain: $(MODEL_DIR)/results/unsup_results.txt
convert: $(PT_DIR)/discriminator/model.safetensors
finetune: $(FINETUNE_DIR)/$(FINETUNE_TASK)/results.json

summary: $(FINETUNE_DIR)/$(FINETUNE_TASK)/results.json
	@$(PY) -m util.pipeline_summary --work $(WORK) --finetune_dir $(FINETUNE_DIR)/$(FINETUNE_TASK)

# The whole chain on the bundled sample corpus, on CPU; ends with the summary table.
demo: summary

# pytest exits 5 when it collected nothing; a run that tested nothing is a failure here.
test: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$status

clean:
	rm -rf $(WORK)
