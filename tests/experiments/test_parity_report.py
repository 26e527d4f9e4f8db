"""docs/pretraining_parity.md is written from the runs' own files, including the steps they ran."""
import json

from experiments.parity_report import write_report


def fake_run(work, name, steps, auc, auc_upstream_masking=None):
    run = work / name
    (run / "results").mkdir(parents=True)
    (run / "results" / "unsup_results.txt").write_text(
        f"disc_auc_real_tokens = {auc}\ndisc_loss = 0.3\n", encoding="utf-8")
    if auc_upstream_masking is not None:
        crossed = run / "eval_upstream_masking" / "results"
        crossed.mkdir(parents=True)
        (crossed / "unsup_results.txt").write_text(f"disc_auc_real_tokens = {auc_upstream_masking}\n")
    (run / "pretrain_config.json").write_text(json.dumps({"num_train_steps": steps}), encoding="utf-8")
    (run / "train_seconds.txt").write_text("12.0\n")


def test_report_states_the_steps_the_runs_trained_and_compares_seeds(tmp_path):
    work = tmp_path / "parity"
    for seed, (ours, upstream) in enumerate([(0.70, 0.71), (0.72, 0.69)], start=1):
        fake_run(work, f"ours_real_seed{seed}", 600, ours)
        fake_run(work, f"upstream_real_seed{seed}", 600, upstream)
    out = tmp_path / "docs" / "pretraining_parity.md"
    write_report(str(work), str(out))
    text = out.read_text(encoding="utf-8")
    assert "'num_train_steps': 600" in text  # not HPARAMS' default of 1000
    assert "## real generator (2 seeds ours, 2 seeds upstream)" in text
    # Welch's t = 0.01 / sqrt(0.0002/2 + 0.0002/2) = 0.7071 on 2 degrees of freedom, where the
    # two-sided p is 1 - t / sqrt(2 + t^2) = 0.553.
    assert "| disc_auc_real_tokens | 0.7100 ± 0.0141 | 0.7000 ± 0.0141 | yes (p 0.55) |" in text
    assert "| disc_loss | 0.3000 ± 0.0000 | 0.3000 ± 0.0000 | yes |" in text  # no spread: no p
    assert (tmp_path / "docs" / "figures" / "parity_loss.png").is_file()


def test_one_seed_each_is_reported_without_a_verdict(tmp_path):
    work = tmp_path / "parity"
    fake_run(work, "ours_real_seed1", 600, 0.51)
    fake_run(work, "upstream_real_seed1", 600, 0.53)
    out = tmp_path / "parity.md"
    write_report(str(work), str(out))
    text = out.read_text(encoding="utf-8")
    assert "## real generator (1 seed ours, 1 seed upstream)" in text
    assert "| disc_auc_real_tokens | 0.5100 ± 0.0000 | 0.5300 ± 0.0000 | – (one upstream seed" in text
    assert "'uniform'" not in text  # only the generators that ran are described


def test_initial_variables_of_our_graph_are_dumped_and_differences_listed(tmp_path):
    from experiments.parity_init import dump_variables
    from experiments.parity_report import compare_init

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"tok{i}" for i in range(295)]) + "\n")
    work = tmp_path / "parity"
    dump_variables("ours", None, str(vocab), str(work / "init_ours.json"))
    ours = json.loads((work / "init_ours.json").read_text())
    dense = ours["discriminator_predictions/dense_1/kernel"]
    assert dense["shape"] == [256, 1] and dense["std"] > 0.05  # Glorot uniform, not N(0, 0.02)
    assert ours["electra/embeddings/word_embeddings"]["shape"] == [300, 128]

    upstream = json.loads(json.dumps(ours))
    upstream["discriminator_predictions/dense_1/kernel"]["std"] = 0.02  # the init issue 13 found
    upstream["generator_predictions/extra_bias"] = {"shape": [300], "mean": 0.0, "std": 0.0}
    (work / "init_upstream.json").write_text(json.dumps(upstream))
    lines = compare_init(str(work))
    assert any(line.startswith("- `discriminator_predictions/dense_1/kernel`: ours [256, 1]") for line in lines)
    assert "- only in upstream's: `generator_predictions/extra_bias`" in lines
    assert len([line for line in lines if line.startswith("- ")]) == 2


def test_ours_with_upstreams_masking_gets_its_own_columns(tmp_path):
    work = tmp_path / "parity"
    for seed, (ours, ourswr, upstream) in enumerate([(0.50, 0.52, 0.52), (0.52, 0.53, 0.54)], start=1):
        fake_run(work, f"ours_real_seed{seed}", 1000, ours)
        fake_run(work, f"ourswr_real_seed{seed}", 1000, ourswr)
        fake_run(work, f"upstream_real_seed{seed}", 1000, upstream)
    out = tmp_path / "parity.md"
    write_report(str(work), str(out))
    text = out.read_text(encoding="utf-8")
    assert "## real generator (2 seeds ours, 2 seeds ourswr, 2 seeds upstream)" in text
    assert ("| disc_auc_real_tokens | 0.5100 ± 0.0141 | 0.5250 ± 0.0071 | 0.5300 ± 0.0141 | yes (p 0.29) | yes (p 0.71) |"
            in text)
    assert "`ourswr` is ours with upstream's masking" in text


def test_a_second_evaluation_with_upstreams_masking_gets_its_own_table(tmp_path):
    work = tmp_path / "parity"
    # ours ahead on its own masking, behind on upstream's: the gap follows the masking.
    for seed, (ours, upstream) in enumerate([((0.76, 0.75), (0.74, 0.77)), ((0.75, 0.74), (0.75, 0.76)),
                                             ((0.77, 0.75), (0.74, 0.77))], start=1):
        fake_run(work, f"ours_real_t2_seed{seed}", 1000, ours[0], ours[1])
        fake_run(work, f"upstream_real_t2_seed{seed}", 1000, upstream[0], upstream[1])
    fake_run(work, "ours_real_t2_seed4", 1000, 0.76)  # its second evaluation did not run: left out of that table
    out = tmp_path / "parity.md"
    write_report(str(work), str(out))
    text = out.read_text(encoding="utf-8")
    assert "## real_t2 generator (4 seeds ours, 3 seeds upstream)" in text
    assert "| disc_auc_real_tokens | 0.7600 ± 0.0082 | 0.7433 ± 0.0058 | **no** (p 0.03) |" in text
    crossed = text.split("### real_t2 generator, the same checkpoints evaluated with upstream's masking "
                         "(3 seeds ours, 3 seeds upstream)")[1]
    assert "| disc_auc_real_tokens | 0.7467 ± 0.0058 | 0.7667 ± 0.0058 | **no** (p 0.01) |" in crossed
    assert "disc_loss" not in crossed  # only what the second evaluation wrote


def test_torch_runs_get_their_columns_and_the_page_regenerates_from_the_committed_record(tmp_path):
    import shutil

    work = tmp_path / "parity"
    for seed, (ours, torch, upstream) in enumerate([(0.70, 0.71, 0.71), (0.72, 0.70, 0.69)], start=1):
        fake_run(work, f"ours_real_t2_seed{seed}", 1000, ours)
        fake_run(work, f"torch_real_t2_seed{seed}", 1000, torch)
        fake_run(work, f"upstream_real_t2_seed{seed}", 1000, upstream)
    docs = tmp_path / "docs"
    out = docs / "pretraining_parity.md"
    write_report(str(work), str(out))
    text = out.read_text(encoding="utf-8")
    assert "## real_t2 generator (2 seeds ours, 2 seeds torch, 2 seeds upstream)" in text
    assert ("| metric | ours (mean ± std) | torch (mean ± std) | upstream (mean ± std) | ours within upstream's spread "
            "(Welch p) | torch within upstream's spread (Welch p) |") in text
    assert "| disc_auc_real_tokens | 0.7100 ± 0.0141 | 0.7050 ± 0.0071 | 0.7000 ± 0.0141 | yes (p 0.55) | yes (p 0.71) |" \
        in text
    assert "`torch` is ours trained by the PyTorch backend" in text
    assert "Every run's metrics are kept in `pretraining_parity_runs.json`" in text
    record = json.loads((docs / "pretraining_parity_runs.json").read_text(encoding="utf-8"))
    assert sorted((r["system"], r["seed"]) for r in record["runs"]) == [
        ("ours", 1), ("ours", 2), ("torch", 1), ("torch", 2), ("upstream", 1), ("upstream", 2)]
    assert record["runs"][0]["results"] == {"disc_auc_real_tokens": 0.70, "disc_loss": 0.3}

    # The runs' directories gone (they are git-ignored): the record alone gives the same page.
    shutil.rmtree(work)
    (docs / "figures" / "parity_loss.png").unlink()
    write_report(None, str(out))
    assert out.read_text(encoding="utf-8") == text and (docs / "figures" / "parity_loss.png").is_file()

    # A run found again replaces its record; the others stay.
    fake_run(work, "torch_real_t2_seed2", 1000, 0.74)
    write_report(str(work), str(out))
    record = json.loads((docs / "pretraining_parity_runs.json").read_text(encoding="utf-8"))
    assert [r["results"]["disc_auc_real_tokens"] for r in record["runs"] if r["system"] == "torch"] == [0.71, 0.74]
    assert len(record["runs"]) == 6


def test_no_runs_anywhere_is_one_line_and_the_page_is_kept(tmp_path):
    import pytest

    from util.errors import UserInputError

    out = tmp_path / "pretraining_parity.md"
    out.write_text("the page as it was\n")
    with pytest.raises(UserInputError, match=r"pretraining_parity_runs.json holds no runs: pass --work"):
        write_report(None, str(out))
    with pytest.raises(UserInputError, match=r"^no parity runs: none finished under --work"):
        write_report(str(tmp_path / "parity"), str(out))
    assert out.read_text() == "the page as it was\n"
