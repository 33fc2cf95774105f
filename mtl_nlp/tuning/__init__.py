"""Hyper-parameter search over recipe keys with optuna (``mtl-nlp tune``): the search space, the study's storage
and the processes that share it, pruning by the trainer's evaluations, and the study's report."""
