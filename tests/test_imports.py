"""Starting a run does not import the scoring and plotting libraries (about a second): they load on first use."""

from __future__ import annotations

import subprocess
import sys


def test_starting_a_run_leaves_scoring_and_plotting_libraries_unimported():
    code = (
        "import sys, mtl_nlp.cli, mtl_nlp.training.run; "
        "print(sorted(set(sys.modules) & {'sklearn', 'seqeval', 'matplotlib', 'scipy.stats'}))"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "[]"
