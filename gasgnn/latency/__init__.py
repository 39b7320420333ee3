"""Latency: table keys and schema, structure walk, timing, LatencyTable, expected latency, loss, validation."""

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
from gasgnn.latency.measure import (
    CellPlan,
    walk,
    space_plans,
    genotype_plans,
    BLOCK_MS,
    time_call,
    COLD_BYTES,
    measure_key,
    measure_networks,
    unique,
    agreement,
    validate,
)
from gasgnn.latency.expected import (
    LatencyTableLike,
    SpaceLatency,
    compile_lut,
    expected_latency,
)
from gasgnn.latency.table import (
    LatencyTable,
    load_or_measure_table,
)
from gasgnn.latency.loss import (
    latency_loss,
    AdaptiveLatencyWeight,
)

__all__ = [
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
    "latency_loss",
    "AdaptiveLatencyWeight",
]
