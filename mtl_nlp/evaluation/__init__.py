"""Scoring predictions and writing the reports people and programs read.

The scoring and plotting modules (``classification``, ``sequence_labeling``, ``plots``) load seqeval,
scikit-learn, SciPy and matplotlib, about a second of imports: tasks and runs import them when they score or
plot, so that starting a training run does not wait for them.
"""
