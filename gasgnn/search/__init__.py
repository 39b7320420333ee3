"""The search: configuration, the bi-level Searcher, random search, run directories."""

from gasgnn.search.rundir import (
    SUMMARY_FILE,
    Run,
    load_run,
    read_metrics,
    read_summary,
    write_summary,
)
from gasgnn.search.searcher import (
    METRIC_FIELDS,
    SearchDivergedError,
    SearchConfig,
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
    "SUMMARY_FILE",
    "Run",
    "load_run",
    "read_metrics",
    "read_summary",
    "write_summary",
    "METRIC_FIELDS",
    "SearchDivergedError",
    "SearchConfig",
    "alpha_entropy",
    "Searcher",
    "RandomSearchResult",
    "train_briefly",
    "sample_under_target",
    "random_search",
]
