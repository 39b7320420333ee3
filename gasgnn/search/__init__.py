"""The search: configuration, the bi-level Searcher, random search, run directories."""

from gasgnn.search.config import (
    SearchConfig,
)
from gasgnn.search.dataset import (
    GenotypeDataset,
    samples_from_run,
    samples_from_validate,
)
from gasgnn.search.divergence import (
    check_config_values,
    diverged_message,
    nonfinite_modules,
)
from gasgnn.search.guidance import (
    adaptive_weight,
    arch_param_groups,
    attention_entropy,
    guide_diagnostics,
    relaxed_logits,
)
from gasgnn.search.random import (
    RandomSearchResult,
    random_search,
    sample_under_target,
    train_briefly,
)
from gasgnn.search.resume import (
    HISTORY_FILE,
    Change,
    append_history,
    check_changes,
    diff_settings,
    set_cosine_lr,
    set_lambda_lr,
    table_sha1,
)
from gasgnn.search.rundir import (
    LOCK_FILE,
    RUN_FILES,
    SUMMARY_FILE,
    Run,
    RunDirError,
    RunLock,
    check_out_path,
    claim_run_dir,
    clean_temp_files,
    load_run,
    read_metrics,
    read_summary,
    run_files,
    write_summary,
)
from gasgnn.search.searcher import (
    METRIC_FIELDS,
    SearchDivergedError,
    Searcher,
    alpha_entropy,
)

__all__ = [
    "check_config_values",
    "diverged_message",
    "nonfinite_modules",
    "SearchConfig",
    "LOCK_FILE",
    "RUN_FILES",
    "SUMMARY_FILE",
    "Run",
    "RunDirError",
    "RunLock",
    "check_out_path",
    "claim_run_dir",
    "clean_temp_files",
    "load_run",
    "read_metrics",
    "read_summary",
    "run_files",
    "write_summary",
    "HISTORY_FILE",
    "Change",
    "append_history",
    "check_changes",
    "diff_settings",
    "set_cosine_lr",
    "set_lambda_lr",
    "table_sha1",
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
    "samples_from_run",
    "samples_from_validate",
    "GenotypeDataset",
]
