"""LLM naming-game logs: safe loading (:mod:`.logs`), tidy tables (:mod:`.tidy`), summaries (:mod:`.summary`) and
synthetic logs in the same schema (:mod:`.synthetic`)."""

from jaxconv.data.logs import (
    CorruptArchiveError,
    FileMeta,
    LogCollection,
    LogFile,
    LogSchemaError,
    Run,
    SinglePrompt,
    Skipped,
    load_logs,
    parse_filename,
)
from jaxconv.data.safe_pickle import (
    CorruptPickleError,
    DataFileError,
    PickleLimitError,
    UnsafePickleError,
    check_pickle,
    safe_load,
    safe_loads,
)
from jaxconv.data.summary import summarize, summarize_path, summary_text
from jaxconv.data.tidy import Mismatch, TidyData, load_tidy_npz, tidy_dataset

__all__ = [
    "CorruptArchiveError",
    "CorruptPickleError",
    "DataFileError",
    "FileMeta",
    "LogCollection",
    "LogFile",
    "LogSchemaError",
    "Mismatch",
    "PickleLimitError",
    "Run",
    "SinglePrompt",
    "Skipped",
    "TidyData",
    "UnsafePickleError",
    "check_pickle",
    "load_logs",
    "load_tidy_npz",
    "parse_filename",
    "safe_load",
    "safe_loads",
    "summarize",
    "summarize_path",
    "summary_text",
    "tidy_dataset",
]
