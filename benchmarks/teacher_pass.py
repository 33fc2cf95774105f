"""What reading the training split by length saves the distillation teachers' pass, against reading it in file order.

    HF_HUB_OFFLINE=1 python benchmarks/teacher_pass.py --data-dir ../shared/data --train-size 3000 --rounds 3

One teacher (the packaged MiniLM with an NER head, untrained: its weights do not change the work) runs over the
first ``--train-size`` CoNLL-2003 training sentences as the student's encoding holds them, in batches of
``--batch-size``: ``file_order`` takes the examples as they come, ``by_length`` longest first (what
``mtl_nlp.training.distillation`` does). Both run the same ensemble code, without the ``datasets`` cache; they
alternate for ``--rounds`` rounds in one process, so that a change in the machine's load falls on both. Prints the
tokens each order feeds the teacher (padding included), the median seconds, their ratios, and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import numpy as np
import torch
from measure import BACKBONE, markdown_table, ner_recipe, prepare

from mtl_nlp import MultiTaskModel
from mtl_nlp.config import recipe_from_dict
from mtl_nlp.training.distillation import TeacherEnsemble, check_teachers


def orders(lengths: np.ndarray) -> dict[str, np.ndarray]:
    return {"file_order": np.arange(len(lengths)), "by_length": np.argsort(-lengths, kind="stable")}


def padded_tokens(lengths: np.ndarray, order: np.ndarray, batch_size: int) -> int:
    """What the teacher reads in ``order``: each batch as many times its longest example as it holds examples."""
    batches = (order[start : start + batch_size] for start in range(0, len(order), batch_size))
    return int(sum(len(batch) * lengths[batch].max() for batch in batches))


def pass_seconds(ensemble: TeacherEnsemble, dataset, order: np.ndarray, batch_size: int) -> float:
    start = time.perf_counter()
    for first in range(0, len(order), batch_size):
        ensemble(dataset[order[first : first + batch_size]])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="../shared/data", help="Folder with conll2003/.")
    parser.add_argument("--train-size", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=64, help="training.eval_batch_size's default.")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        base = ner_recipe(args.data_dir, args.train_size, None, f"{scratch}/run", seed=42, validate=False)
        task = prepare(base)["ner"]
        teacher = f"{scratch}/teacher"
        MultiTaskModel.from_backbone(BACKBONE, {"ner": task.description()}).save_pretrained(teacher)
        task.tokenizer.save_pretrained(teacher)
        recipe = recipe_from_dict(base.to_dict() | {"distillation": {"teachers": {"ner": [teacher]}}})
        [loaded] = check_teachers(recipe, task.tokenizer)["ner"]
        ensemble = TeacherEnsemble(task, [loaded], recipe.distillation.temperature, torch.device("cpu"))
        dataset, lengths = task.encoded["train"], task.lengths("train")
        ensemble(dataset[: args.batch_size])  # untimed: loads the teacher
        seconds: dict[str, list[float]] = {name: [] for name in orders(lengths)}
        for _ in range(args.rounds):
            for name, order in orders(lengths).items():
                seconds[name].append(pass_seconds(ensemble, dataset, order, args.batch_size))
    tokens = {name: padded_tokens(lengths, order, args.batch_size) for name, order in orders(lengths).items()}
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    rows = [
        [name, tokens[name], f"{medians[name]:.1f}", ", ".join(f"{value:.1f}" for value in seconds[name])]
        for name in seconds
    ]
    print(
        f"\n{len(lengths)} CoNLL-2003 sentences ({int(lengths.sum())} real tokens), batch {args.batch_size}, MiniLM\n"
    )
    print(markdown_table(["order", "tokens read (padding included)", "median s", "each round"], rows))
    token_ratio = tokens["file_order"] / tokens["by_length"]
    time_ratio = medians["file_order"] / medians["by_length"]
    print(f"\nfile order / by length: {token_ratio:.2f}× the tokens, {time_ratio:.2f}× the time")
    figures = {"tokens": tokens, "seconds": seconds, "token_ratio": round(token_ratio, 3)}
    print(json.dumps({"benchmark": "teacher_pass", **figures, "time_ratio": round(time_ratio, 3)}))


if __name__ == "__main__":
    main()
