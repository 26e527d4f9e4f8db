# The pipeline, declared once. Each stage's output depends on its inputs, so `make demo`
# after an interruption skips the stages that are already complete and newer than their
# inputs; `make clean` starts over. Override any variable on the command line, e.g.
#   make demo CORPUS_DIR=~/my_corpus WORK=data/my_run TOKENIZER=mecab_wordpiece VOCAB_SIZE=32000

# Two stacks (docs/install.md). TensorFlow 2.15, which the TF pretraining backend needs, installs
# on Python 3.9-3.11 only: where one of those runs, take the newest (requirements.txt). Without one,
# take Python 3.13 or 3.12 and the TF-free stack (requirements-torch.txt), which pretrains with the
# PyTorch backend. Candidates are run, not just looked up: pyenv puts a shim for every version it
# knows on PATH, and the shim of an inactive version fails. Each is worked out once and only when
# a target needs it (`lazy`), so `make clean` runs no Python.
lazy          = $(eval $(1) := $(2))$($(1))
python_version = $(shell $(1) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
# "PATH VERSION" of the first of python3.X for X in $(1) that runs.
first_python  = $(if $(1),$(or $(shell p=$$(command -v python$(firstword $(1))) && v=$$("$$p" -c \
    'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) && echo "$$p $$v"),$(call \
    first_python,$(wordlist 2,9,$(1)))))
ifeq ($(origin PYTHON3),undefined)
FOUND_PYTHON  = $(call lazy,FOUND_PYTHON,$(call first_python,3.11 3.10 3.9 3.13 3.12))
PYTHON3       = $(call lazy,PYTHON3,$(or $(firstword $(FOUND_PYTHON)),python3))
PYTHON3_VERSION = $(call lazy,PYTHON3_VERSION,$(or $(word 2,$(FOUND_PYTHON)),$(call python_version,$(PYTHON3))))
else
PYTHON3_VERSION = $(call lazy,PYTHON3_VERSION,$(call python_version,$(PYTHON3)))
endif
# STACK=tf|torch: tf on Python 3.9-3.11, torch on 3.12 and newer; STACK=torch also runs on 3.11.
ifeq ($(origin STACK),undefined)
STACK         = $(call lazy,STACK,$(if $(filter 3.1 3.2 3.3 3.4 3.5 3.6 3.7 3.8 3.9 3.10 3.11,$(PYTHON3_VERSION)),tf,$(if \
    $(PYTHON3_VERSION),torch,tf)))
endif
# The pretraining backend, passed as run_pretraining.py --backend when set (empty: its default,
# TensorFlow where it is installed).
BACKEND      ?= $(if $(filter torch,$(STACK)),torch)
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
# BASE_MODEL=DIR continues pretraining a released model instead of starting from scratch: DIR holds
# discriminator/ and generator/ as transformers writes them (huggingface-cli download, or a
# conversion of ours). The vocab stage then extends that model's vocab with NUM_NEW of the corpus's
# pieces (build_vocab.py --extend), and pretraining warm-starts from it (saved_model,
# saved_generator) with conf/pretrain/continued.json, which leaves the sizes to the model.
BASE_MODEL   ?=
NUM_NEW      ?= 20
PRETRAIN_HPARAMS ?= $(if $(BASE_MODEL),conf/pretrain/continued.json,conf/pretrain/tiny.json)
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

.PHONY: setup demo continued-demo corpus vocab dataset pretrain convert finetune summary test test-torch-stack clean
.DELETE_ON_ERROR:

setup: $(VENV)/.installed

# The one line that says the TF-free stack was taken, and why.
comma := ,
TORCH_STACK_NOTE = stack: TF-free on Python $(PYTHON3_VERSION)$(if $(filter 3.9 3.10 3.11,$(PYTHON3_VERSION)), (STACK=torch),$(comma) as TensorFlow \
    2.15 needs 3.9-3.11): $(REQUIREMENTS), pretraining with --backend $(or $(BACKEND),torch) (docs/install.md)
# One `pip install -r` for everything: installing packages one by one lets nni pull numpy 2.
# Checked before the venv exists: on 3.12+ pip would fail deep inside with "Could not find a
# version that satisfies the requirement tensorflow-cpu==2.15.1". A PYTHON3 that does not run (an
# inactive pyenv shim, a missing name) is said to be that, not a Python of the wrong version.
# REQUIREMENTS=requirements-cpu.txt (requirements-torch-cpu.txt on the TF-free stack): torch's CPU
# wheel instead of PyPI's CUDA build (Linux); requirements-gpu.txt: TensorFlow's GPU build.
STACK_REQUIREMENTS = $(if $(filter torch,$(STACK)),requirements-torch.txt,requirements.txt)
REQUIREMENTS ?= $(STACK_REQUIREMENTS)
# Any requirements file changed reinstalls (naming the stack's own here would run Python for every target).
$(VENV)/.installed: $(wildcard requirements*.txt) $(if $(filter file,$(origin REQUIREMENTS)),,$(REQUIREMENTS))
	@case "$(STACK):$(PYTHON3_VERSION)" in \
	  *:) out=$$($(PYTHON3) -c pass 2>&1 | head -n 1); \
	      echo "error: PYTHON3=$(PYTHON3) does not run$${out:+ ($$out)}; with pyenv, a version's shim runs" \
	        "only while that version is active (pyenv shell, pyenv local): activate it or give the interpreter's path" >&2; exit 1;; \
	  tf:3.9|tf:3.10|tf:3.11|torch:3.1[1-9]|torch:3.[2-9][0-9]) ;; \
	  tf:*) echo "error: TensorFlow 2.15 needs Python 3.9-3.11, but PYTHON3=$(PYTHON3) is $$($(PYTHON3) -V 2>&1 || echo missing);" \
	        "install python3.11 and run e.g. make demo PYTHON3=python3.11, or take the TF-free stack: make demo STACK=torch" >&2; exit 1;; \
	  *) echo "error: the TF-free stack (requirements-torch.txt) needs Python 3.11 or newer, but PYTHON3=$(PYTHON3) is $$($(PYTHON3) -V 2>&1 || echo missing);" \
	        "install python3.13 and run e.g. make demo PYTHON3=python3.13" >&2; exit 1;; \
	esac
	@$(if $(filter torch,$(STACK)),echo "$(TORCH_STACK_NOTE)")
	$(PYTHON3) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install -r $(REQUIREMENTS) $(PIP_INSTALL_FLAGS)
	touch $@

$(CORPUS_FILE): $(CORPUS_INPUTS) | $(VENV)/.installed
	@mkdir -p $(WORK)
	$(TIMED) preprocess -- $(PY) preprocess.py --corpus_dir $(CORPUS_DIR) --output_file $@ \
	    --num_processes $(NUM_PROCESSES) --quiet

$(VOCAB_DIR)/vocab.txt: $(CORPUS_FILE) $(if $(BASE_MODEL),$(BASE_MODEL)/discriminator/vocab.txt)
ifeq ($(BASE_MODEL),)
	$(TIMED) build_vocab -- $(PY) build_vocab.py --corpus $< --output_dir $(VOCAB_DIR) --tokenizer $(TOKENIZER) \
	    --vocab_size $(VOCAB_SIZE) --min_frequency $(MIN_FREQUENCY) \
	    --limit_alphabet $(LIMIT_ALPHABET) --unused_size $(UNUSED_SIZE) --num_processes $(NUM_PROCESSES)
else
	$(TIMED) build_vocab -- $(PY) build_vocab.py --extend $(BASE_MODEL)/discriminator --corpus $< \
	    --num_new $(NUM_NEW) --min_frequency $(MIN_FREQUENCY) --output_dir $(VOCAB_DIR)
endif

$(TFRECORDS)/stats.json: $(VOCAB_DIR)/vocab.txt $(CORPUS_FILE)
	$(TIMED) dataset -- $(PY) build_pretraining_dataset.py --corpus_dir $(dir $(CORPUS_FILE)) \
	    --vocab_file $(VOCAB_DIR) --output_dir $(TFRECORDS) --max_seq_length $(MAX_SEQ_LENGTH) \
	    --num_processes $(NUM_PROCESSES) --num_out_files 4 --no_progress

# An interrupted run leaves checkpoints and no results file: the rerun resumes from them.
$(MODEL_DIR)/results/unsup_results.txt: $(TFRECORDS)/stats.json $(PRETRAIN_HPARAMS)
	$(TIMED) pretrain -- $(PY) run_pretraining.py --data_dir $(TFRECORDS) --model_name $(MODEL_DIR) \
	    --hparams $(PRETRAIN_HPARAMS) \
	    --hparams '{"num_train_steps": $(PRETRAIN_STEPS), "max_seq_length": $(MAX_SEQ_LENGTH), "do_eval": true}' \
	    $(if $(BASE_MODEL),--hparams '{"saved_model": "$(BASE_MODEL)/discriminator"$(comma) "saved_generator": "$(BASE_MODEL)/generator"}') \
	    $(if $(BACKEND),--backend $(BACKEND)) $(MIXED_PRECISION)

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

# The released-model path (README, "From a released model") on the bundled sample, on CPU. The
# stand-in for a released model is this chain's own, pretrained and converted at $(WORK)/released
# with a vocab of RELEASED_VOCAB_SIZE entries: the demo's vocab holds every word of the sample
# whole, which leaves its extension nothing to add. The chain at $(WORK)/continued then takes it
# as BASE_MODEL: vocab extension, dataset, continued pretraining for CONTINUED_STEPS, conversion,
# fine-tuning and the summary. On a real model and your own corpus, the same chain:
#   make demo BASE_MODEL=data/released CORPUS_DIR=~/my_dialogue WORK=data/my_continued
RELEASED_VOCAB_SIZE ?= 1000
CONTINUED_STEPS ?= 100
# The install is seen to here, once: make does not pass -o on to the two runs of the chain.
continued-demo: $(VENV)/.installed
	@$(MAKE) --no-print-directory -o $(VENV)/.installed convert WORK=$(WORK)/released \
	    VOCAB_SIZE=$(RELEASED_VOCAB_SIZE) BASE_MODEL=
	@$(MAKE) --no-print-directory -o $(VENV)/.installed summary WORK=$(WORK)/continued \
	    BASE_MODEL=$(WORK)/released/pytorch PRETRAIN_STEPS=$(CONTINUED_STEPS)

# pytest exits 5 when it collected nothing; a run that tested nothing is a failure here.
# On the TF-free stack, .venv has no TensorFlow: the suite there is test-torch-stack's selection.
RUN_PYTEST = $(1) -m pytest $(2) $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$status
test: $(VENV)/.installed
	$(if $(filter torch,$(STACK)),EXPECT_NO_TENSORFLOW=1) $(call RUN_PYTEST,$(PY),$(if $(filter torch,$(STACK)),-m torch_stack $(TORCH_STACK_TESTS)))

# The TF-free install's own checks, which CI runs after the full suite (.ci/run): a virtualenv
# from requirements-torch.txt, in which TensorFlow is not installed, runs the tests marked
# torch_stack: every stage without TensorFlow, the chain from the sample corpus to ONNX predictions
# with the PyTorch backend, and pip's resolution of requirements-torch.txt for Python 3.12 and 3.13.
# Built with PYTHON3 (3.11 here, where pip finds torch's CPU wheel in /opt/wheels; pip's cache
# serves what the main venv already downloaded). On the TF-free stack `make test` runs the same
# selection in .venv.
TORCH_VENV ?= .venv-torch
TORCH_REQUIREMENTS ?= requirements-torch.txt
# Only these files: some of the other test modules import TensorFlow when collected.
TORCH_STACK_TESTS ?= tests/test_without_tensorflow.py tests/test_install.py
# --no-compile: byte-compiling every installed file (torch's thousands) is a large share of the
# install's time; Python compiles what it imports.
test-torch-stack:
	@$(MAKE) --no-print-directory setup STACK=torch VENV=$(TORCH_VENV) REQUIREMENTS=$(TORCH_REQUIREMENTS) \
	    PYTHON3=$(PYTHON3) PIP_INSTALL_FLAGS=--no-compile
	EXPECT_NO_TENSORFLOW=1 $(call RUN_PYTEST,$(TORCH_VENV)/bin/python,-m torch_stack $(TORCH_STACK_TESTS))

clean:
	rm -rf $(WORK)
