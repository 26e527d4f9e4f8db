"""Predict with a fine-tuned model on new, unlabelled text; one JSON line out per line in.

    python predict.py --model_dir ckpt/finetune/nsmc_small_v1/best_model --input reviews.txt --output out.jsonl
    echo "정말 재밌어요" | python predict.py --model_dir ckpt/finetune/nsmc_small_v1/best_model
    python predict.py --model_dir DIR --onnx DIR/model.onnx < reviews.txt   # onnxruntime, same output

Input: one text a line (NSMC, NER), ``text_a<TAB>text_b`` for pairs (Question Pair, KorNLI,
PAWS-X, KorSTS; Hate Speech takes the comment, or title and comment if it was trained on both),
JSON lines ``{"context", "question"}`` for KorQuAD. See docs/inference.md.
"""
import sys

from util.errors import run_cli

if __name__ == "__main__":
    from finetune.predict_cli import main

    sys.exit(run_cli(main))
