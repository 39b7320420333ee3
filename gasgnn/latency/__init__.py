"""Latency: table keys and schema, structure walk, timing, LatencyTable, expected latency, loss, validation."""

from gasgnn.latency.budget import (
    derive_under_latency,
    lighten,
    lightest,
)
from gasgnn.latency.calibrate import (
    apply_calibration,
    calibrate,
    calibration_key,
    fit_calibration,
)
from gasgnn.latency.checks import (
    MAX_ENTRY_MS,
    check_entries,
)
from gasgnn.latency.expected import (
    LatencyTableLike,
    SpaceLatency,
    compile_lut,
    expected_latency,
)
from gasgnn.latency.keys import (
    COMPAT_FIELDS,
    KINDS,
    META_FIELDS,
    PRE_TYPES,
    TABLE_FORMAT,
    TABLE_VERSION,
    LatencyKey,
    LatencyTableError,
    MissingEntriesError,
    device_name,
    dtype_name,
    parse_table,
)
from gasgnn.latency.loss import (
    AdaptiveLatencyWeight,
    latency_loss,
)
from gasgnn.latency.measure import (
    BLOCK_MS,
    COLD_BYTES,
    CellPlan,
    agreement,
    genotype_plans,
    measure_key,
    measure_networks,
    space_plans,
    time_call,
    unique,
    validate,
    walk,
)
from gasgnn.latency.noise import (
    NOISY,
    measure_noise,
    noise_dominated,
    spanning_genotypes,
    validate_with_noise,
    within,
)
from gasgnn.latency.table import (
    LatencyTable,
    load_or_measure_table,
)

__all__ = [
    "derive_under_latency",
    "lighten",
    "lightest",
    "COMPAT_FIELDS",
    "KINDS",
    "META_FIELDS",
    "PRE_TYPES",
    "TABLE_FORMAT",
    "TABLE_VERSION",
    "LatencyKey",
    "LatencyTableError",
    "MissingEntriesError",
    "device_name",
    "dtype_name",
    "parse_table",
    "CellPlan",
    "walk",
    "space_plans",
    "genotype_plans",
    "BLOCK_MS",
    "time_call",
    "COLD_BYTES",
    "measure_key",
    "measure_networks",
    "unique",
    "agreement",
    "validate",
    "LatencyTableLike",
    "SpaceLatency",
    "compile_lut",
    "expected_latency",
    "LatencyTable",
    "load_or_measure_table",
    "NOISY",
    "measure_noise",
    "noise_dominated",
    "spanning_genotypes",
    "validate_with_noise",
    "within",
    "apply_calibration",
    "calibrate",
    "calibration_key",
    "fit_calibration",
    "MAX_ENTRY_MS",
    "check_entries",
    "latency_loss",
    "AdaptiveLatencyWeight",
]
