"""README's "From a released model" commands run as written.

The released model is one that transformers itself creates and saves at KoELECTRA-Small-v3's
layout (an ElectraForPreTraining and an ElectraForMaskedLM directory with vocab.txt and
transformers' own tokenizer_config.json), only smaller, in place of the Hub download the
README shows first. The commands run in a scratch copy of the repository's layout, so nothing
lands in the checkout's data/.
"""
import json
import os
import re
import subprocess
import sys

import pytest

from pretrain.data_quality import UNK_RATE_WARN

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MARKER = "continued-pretraining-commands"


def readme_commands():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    block = re.search(rf"<!-- {MARKER} -->\n```bash\n(.*?)```\n<!-- /{MARKER} -->", text, re.S)
    assert block, f"README.md has no {MARKER} block"
    return block.group(1)


def released_pair(directory, vocab_path):
    """A discriminator/generator pair as on the Hub, made and saved by transformers."""
    import torch
    from transformers import ElectraConfig, ElectraForMaskedLM, ElectraForPreTraining, ElectraTokenizer

    with open(vocab_path, encoding="utf-8") as f:
        vocab_size = sum(1 for _ in f)
    sizes = dict(vocab_size=vocab_size, embedding_size=32, max_position_embeddings=128, layer_norm_eps=1e-12)
    torch.manual_seed(0)
    disc = ElectraForPreTraining(ElectraConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                                               intermediate_size=256, **sizes))
    gen = ElectraForMaskedLM(ElectraConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                                           intermediate_size=256, **sizes))
    gen.electra.embeddings.load_state_dict(disc.electra.embeddings.state_dict())  # upstream ties them
    tokenizer = ElectraTokenizer(vocab_path, do_lower_case=False)
    for model, name in ((disc, "discriminator"), (gen, "generator")):
        model.save_pretrained(os.path.join(directory, name))
        tokenizer.save_pretrained(os.path.join(directory, name))


@pytest.mark.slow
def test_readme_continued_pretraining_commands_run_as_written(tmp_path, sample_corpus_file):
    from test_readme import scratch_checkout

    work = scratch_checkout(tmp_path)
    # A vocab of the sample's own pieces, as a released model's vocab covers the characters of its
    # language (built on written.txt alone, it lacked '?', '!' and '응': 22% [UNK] in the dialogue).
    subprocess.run([sys.executable, os.path.join(ROOT, "build_vocab.py"), "--corpus",
                    sample_corpus_file, "--vocab_size", "1200",
                    "--unused_size", "40", "--min_frequency", "1", "--output_dir", str(tmp_path / "vocab")],
                   check=True, capture_output=True)
    released_pair(str(work / "data" / "released"), str(tmp_path / "vocab" / "vocab.txt"))

    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
               OMP_NUM_THREADS="1", TF_NUM_INTRAOP_THREADS="1")
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", readme_commands()], cwd=work, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]

    out = work / "data" / "continued"
    # The dataset is the cleaned text: JSON keys and CSV headers once made a fifth of it [UNK].
    stats = json.loads((out / "tfrecords" / "stats.json").read_text(encoding="utf-8"))
    assert stats["unk_rate"] < UNK_RATE_WARN, stats["unk_top"]
    assert "warning: UNK rate" not in result.stdout
    extension = json.loads((out / "vocab" / "vocab_extension.json").read_text(encoding="utf-8"))
    assert extension["num_new"] > 0
    record = json.loads((out / "model" / "warm_start.json").read_text(encoding="utf-8"))
    assert record["fresh"] == {} and record["vocab_extension"]
    assert (out / "pytorch" / "discriminator" / "model.safetensors").is_file()
    results = json.loads((out / "finetune" / "nsmc_sample" / "results.json").read_text(encoding="utf-8"))
    assert any(e.get("final") for e in results["evaluations"])
