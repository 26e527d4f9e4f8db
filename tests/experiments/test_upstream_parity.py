"""The parity data is built from an NSMC ratings file by the project's own scripts."""
import json
import os

import pytest

from experiments.upstream_parity import build_data

REVIEWS = ["아 더빙.. 진짜 짜증나네요 목소리", "흠...포스터보고 초딩영화줄....오버연기조차 가볍지 않구나",
           "너무재밓었다그래서보는것을추천한다", "교도소 이야기구먼 ..솔직히 재미는 없다..평점 조정",
           "사이몬페그의 익살스런 연기가 돋보였던 영화!스파이더맨에서 늙어보이기만 했던 커스틴 던스트가 너무나도 이뻐보였다"]


def small_parity_data(tmp_path, reviews=200):
    """The parity data built from a ratings file of ``reviews`` reviews; returns its directory."""
    ratings = tmp_path / "ratings_train.txt"
    rows = [f"{i}\t{REVIEWS[i % len(REVIEWS)]} {i}\t{i % 2}" for i in range(reviews)]
    ratings.write_text("id\tdocument\tlabel\n" + "\n".join(rows) + "\n", encoding="utf-8")
    data_dir = str(tmp_path / "data")
    build_data(str(ratings), data_dir, reviews=reviews)
    return data_dir


def test_one_document_per_review_and_one_directory_for_both_systems(tmp_path):
    ratings = tmp_path / "ratings_train.txt"
    rows = [f"{i}\t{REVIEWS[i % len(REVIEWS)]} {i}\t{i % 2}" for i in range(120)]
    rows.insert(7, "999\t\t1")  # an empty review is skipped, not an empty document
    ratings.write_text("id\tdocument\tlabel\n" + "\n".join(rows) + "\n", encoding="utf-8")
    data_dir = tmp_path / "data"
    build_data(str(ratings), str(data_dir), reviews=100)

    stats = json.loads((data_dir / "stats.json").read_text(encoding="utf-8"))
    assert stats["documents"] == 100 and stats["max_seq_length"] == 64
    assert os.path.isfile(data_dir / "vocab.txt")
    assert len([n for n in os.listdir(data_dir) if n.startswith("pretrain_data.tfrecord")]) == stats["num_out_files"]
    corpus = (data_dir / "corpus" / "nsmc.txt").read_text(encoding="utf-8")
    assert corpus.startswith(REVIEWS[0] + " 0\n\n") and corpus.count("\n\n") == 100
    build_data(str(ratings), str(data_dir), reviews=100)  # a second call finds the data and keeps it


@pytest.mark.slow
def test_every_checkpoint_is_evaluated_on_the_same_masks(tmp_path):
    import shutil
    import subprocess
    import sys

    from experiments.upstream_parity import ROOT, evaluation_hparams, vocab_size

    data_dir = small_parity_data(tmp_path)
    tiny = {"model_size": "small", "max_seq_length": 64, "train_batch_size": 8, "eval_batch_size": 8,
            "num_train_steps": 2, "num_warmup_steps": 1, "num_eval_steps": 4, "generator_hidden_size": 0.25,
            "save_checkpoints_steps": 2, "iterations_per_loop": 2, "vocab_size": vocab_size(data_dir),
            "model_hparam_overrides": {"num_hidden_layers": 1, "hidden_size": 64, "num_attention_heads": 1,
                                       "intermediate_size": 128, "max_position_embeddings": 64}}

    def pretrain(model_dir, hparams):
        subprocess.check_call([sys.executable, "run_pretraining.py", "--data_dir", data_dir, "--model_name",
                               model_dir, "--hparams", json.dumps(hparams)], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=open(os.path.join(str(tmp_path), "stderr.log"), "w"))
        results = os.path.join(model_dir, "results", "unsup_results.txt")
        return open(results, encoding="utf-8").read() if os.path.exists(results) else None

    trained = str(tmp_path / "trained")
    pretrain(trained, dict(tiny, seed=1, vocab_file=os.path.join(data_dir, "vocab.txt")))
    results = []
    for k in range(2):
        copy = str(tmp_path / f"eval{k}")
        shutil.copytree(trained, copy, ignore=shutil.ignore_patterns("results", "eval*"))
        results.append(pretrain(copy, evaluation_hparams(tiny, data_dir)))
    assert "masked_lm_loss" in results[0] and results[0] == results[1]

    # The second evaluation, with upstream's masking, goes to a subdirectory from the same checkpoint.
    from experiments.upstream_parity import EVAL_SEED, UPSTREAM_MASKING_EVAL, evaluate_with_upstreams_masking

    evaluated = str(tmp_path / "eval0")
    evaluate_with_upstreams_masking(evaluated, tiny, data_dir)
    crossed = open(os.path.join(evaluated, UPSTREAM_MASKING_EVAL, "results", "unsup_results.txt"), encoding="utf-8").read()
    config = json.load(open(os.path.join(evaluated, UPSTREAM_MASKING_EVAL, "pretrain_config.json"), encoding="utf-8"))
    assert config["mask_with_replacement"] is True and config["seed"] == EVAL_SEED
    assert "masked_lm_loss" in crossed and crossed != results[0]
    assert open(os.path.join(evaluated, "results", "unsup_results.txt"), encoding="utf-8").read() == results[0]


def test_seeds_alternate_between_systems_and_can_start_later():
    from experiments.upstream_parity import planned_runs

    assert planned_runs("ours,upstream", "real_t2", 1, 2) == [
        ("ours", "real_t2", 1), ("upstream", "real_t2", 1), ("ours", "real_t2", 2), ("upstream", "real_t2", 2)]
    # Two processes can share one setting: seeds 1-3 in one, 4-6 in the other.
    assert [seed for _, _, seed in planned_runs("ourswr", "real_t2", 4, 3)] == [4, 5, 6]


@pytest.mark.slow
def test_a_torch_run_is_scored_by_the_same_tf_evaluations_as_ours(tmp_path, monkeypatch):
    import argparse

    from experiments import upstream_parity
    from experiments.parity_report import write_report
    from pretrain import layout

    data_dir = small_parity_data(tmp_path)
    tiny = {"model_size": "small", "max_seq_length": 64, "train_batch_size": 8, "eval_batch_size": 8,
            "num_warmup_steps": 1, "num_eval_steps": 4, "save_checkpoints_steps": 2, "iterations_per_loop": 2,
            "model_hparam_overrides": {"num_hidden_layers": 1, "hidden_size": 64, "num_attention_heads": 1,
                                       "intermediate_size": 128, "max_position_embeddings": 64}}
    monkeypatch.setattr(upstream_parity, "HPARAMS", tiny)
    work = tmp_path / "parity"
    args = argparse.Namespace(work=str(work), data_dir=data_dir, steps=2, evaluate_only=False, upstream_dir=None)
    model_dirs = {system: upstream_parity.train_and_evaluate(system, "real_t2", 1, args)
                  for system in ("ours", "torch")}

    torch_dir = model_dirs["torch"]
    assert [step for step, _ in layout.torch_checkpoints(torch_dir)] == [2]
    assert layout.latest_tf_checkpoint(torch_dir) == os.path.join(torch_dir, "model.ckpt-2")  # written beside
    for model_dir in model_dirs.values():
        # The same evaluation for both: the TF backend, EVAL_SEED, and upstream's masking in its own pass.
        log = open(os.path.join(model_dir, "eval.log"), encoding="utf-8").read()
        assert log.startswith("backend tf: --backend tf")
        config = json.load(open(os.path.join(model_dir, "pretrain_config.json"), encoding="utf-8"))
        assert (config["seed"], config["do_train"]) == (upstream_parity.EVAL_SEED, False)
        results = open(os.path.join(model_dir, "results", "unsup_results.txt"), encoding="utf-8").read()
        assert "global_step = 2" in results and "masked_lm_loss" in results  # the step-2 checkpoint: the TF one
        crossed = os.path.join(model_dir, upstream_parity.UPSTREAM_MASKING_EVAL, "results", "unsup_results.txt")
        assert "masked_lm_loss" in open(crossed, encoding="utf-8").read()
    # The torch run's TensorBoard curve is read like the others'.
    out = tmp_path / "docs" / "pretraining_parity.md"
    write_report(str(work), str(out))
    record = json.load(open(tmp_path / "docs" / "pretraining_parity_runs.json", encoding="utf-8"))
    torch_run = [r for r in record["runs"] if r["system"] == "torch"][0]
    assert [step for step, _ in torch_run["curve"]][-1] == 2 and torch_run["steps"] == 2
    assert "## real_t2 generator (1 seed ours, 1 seed torch, 0 seeds upstream)" in out.read_text(encoding="utf-8")
