"""A task names its labels: NSMC's 0/1 are negative/positive in the model, its predictions and its card."""
import json
import os

from finetune.inference import Predictor

from serving_models import nsmc_reviews


def test_nsmc_labels_are_named_in_the_config_the_predictions_and_the_card(nsmc_model):
    with open(os.path.join(nsmc_model, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    assert config["label2id"] == {"negative": 0, "positive": 1}
    predictions = Predictor(nsmc_model, threads=1).predict(nsmc_reviews(5))
    assert {p["label"] for p in predictions} <= {"negative", "positive"}
    assert all(set(p["probabilities"]) == {"negative", "positive"} for p in predictions)
    with open(os.path.join(nsmc_model, "README.md"), encoding="utf-8") as f:
        card = f.read()
    assert "| labels | `negative` (`0` in the data files), `positive` (`1`) |" in card
