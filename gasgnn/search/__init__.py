"""The search: configuration, the bi-level Searcher, random search, run directories."""

from gasgnn.search.config import (
    SearchConfig,
)
from gasgnn.search.rundir import (
    SUMMARY_FILE,
    Run,
    load_run,
    read_metrics,
    read_summary,
    write_summary,
)
from gasgnn.search.guidance import (
    adaptive_weight,
    attention_entropy,
    arch_param_groups,
    guide_diagnostics,
    relaxed_logits,
)
from gasgnn.search.searcher import (
    METRIC_FIELDS,
    SearchDivergedError,
    alpha_entropy,
    Searcher,
)
from gasgnn.search.random import (
    RandomSearchResult,
    train_briefly,
    sample_under_target,
    random_search,
)

__all__ = [
    "SearchConfig",
    "SUMMARY_FILE",
    "Run",
    "load_run",
    "read_metrics",
    "read_summary",
    "write_summary",
    "adaptive_weight",
    "attention_entropy",
    "arch_param_groups",
    "guide_diagnostics",
    "relaxed_logits",
    "METRIC_FIELDS",
    "SearchDivergedError",
    "alpha_entropy",
    "Searcher",
    "RandomSearchResult",
    "train_briefly",
    "sample_under_target",
    "random_search",
]
