"""Evaluation: datasets of cases, scorers, experiments with run files, and compare.

`aisys.Dataset`, `aisys.Case`, `aisys.scorers`, `aisys.evaluate` and the ``aisys eval``
command are built from here; scores themselves are recorded by `aisys.score`.
"""

from aisys.evals.datasets import Case, Dataset
from aisys.evals.experiment import EvalRun, aevaluate, evaluate

__all__ = ["Case", "Dataset", "EvalRun", "aevaluate", "evaluate"]
