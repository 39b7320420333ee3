"""The search: configuration, the bi-level Searcher and its optimisation machinery, random search, and
genotype datasets of finished searches."""

from gasgnn.search.config import (
    SearchConfig,
    check_config_values,
)
from gasgnn.search.dataset import (
    GenotypeDataset,
    samples_from_run,
    samples_from_validate,
)
from gasgnn.search.evaluate import (
    evaluate_supernet,
)
from gasgnn.search.optim import (
    SearchOptim,
    arch_param_groups,
    compiled_forward,
    frozen,
)
from gasgnn.search.random import (
    RandomSearchResult,
    random_search,
    sample_under_target,
    train_briefly,
)
from gasgnn.search.searcher import (
    METRIC_FIELDS,
    SearchDivergedError,
    Searcher,
    alpha_entropy,
)

__all__ = [
    "check_config_values",
    "SearchConfig",
    "evaluate_supernet",
    "SearchOptim",
    "arch_param_groups",
    "compiled_forward",
    "frozen",
    "METRIC_FIELDS",
    "SearchDivergedError",
    "alpha_entropy",
    "Searcher",
    "RandomSearchResult",
    "train_briefly",
    "sample_under_target",
    "random_search",
    "samples_from_run",
    "samples_from_validate",
    "GenotypeDataset",
]
