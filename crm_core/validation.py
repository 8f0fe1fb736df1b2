"""Great Expectations runner: validate a pandas DataFrame against a suite from ``validations/``.

Pattern: a thin adapter. Suites are plain Python modules in ``validations/`` (one per
dataset) exposing ``expectations() -> list[gx.expectations.Expectation]``, or GX suite
JSON files; this module turns a GX validation result into :class:`SuiteResult`, a plain
dataclass the importer, the CLI and the pages read without knowing GX.

GX costs about 3 s to import, so it is imported lazily inside functions only: importing
this module is cheap and safe from any page. Suites run in the calling process: a large
import runs as a job, so that process is the job worker's, not the web server's.

Each expectation may carry ``meta={"message_key": "…", "params": {…}}``; otherwise the
message key is ``gx.<expectation type>`` (catalogs in ``locales/*/validation.json``),
formatted with the expectation's column, bounds, value set or pattern.

Contexts: by default an in-memory (ephemeral) GX context, cached per process. For Data Docs
use :func:`file_context` (a GX file project under ``CRM_GX_DIR``, default ``data/gx/``,
git-ignored): runs against it go through a Checkpoint with ``UpdateDataDocsAction``, so
every run lands in the Data Docs site; :func:`build_data_docs` rebuilds it and returns
the path of its ``index.html``.
"""

from __future__ import annotations

import copy
import importlib
import json
import math
import os
import re
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crm_core.config import DATA_DIR, PROJECT_ROOT
from crm_core.errors import DomainError
from crm_core.i18n import t

if TYPE_CHECKING:  # pragma: no cover - typing only, never imported at run time
    import pandas

SUITES_DIR = PROJECT_ROOT / "validations"
DATASOURCE_NAME = "kestrel_frames"
BATCH_DEFINITION_NAME = "whole_frame"
MAX_EXAMPLES = 20
_SUITE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_lock = threading.Lock()
_ephemeral: Any = None
# suite name -> (the expectations' configuration, its validation definition) in the ephemeral context
_ephemeral_definitions: dict[str, tuple[str, Any]] = {}


class UnknownSuite(DomainError):
    """No expectation suite of that name exists in ``validations/``."""

    message_key = "error.unknown_suite"

    def __init__(self, suite_name: str) -> None:
        super().__init__(f"no expectation suite named {suite_name!r}", suite=suite_name)
        self.suite_name = suite_name


@dataclass(frozen=True)
class ExpectationOutcome:
    """The result of one expectation: which rows failed it, with examples and a message key."""

    expectation: str
    column: str | None
    success: bool
    element_count: int = 0
    unexpected_count: int = 0
    unexpected_rows: list[Any] = field(default_factory=list)
    examples: list[Any] = field(default_factory=list)
    message_key: str = "gx.generic"
    params: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def message(self, lang: str = "en") -> str:
        """The reason, in ``lang``."""
        return t(self.message_key, lang, **self.params)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-safe dictionary (for ``import_runs.validation_result`` and ``--json``)."""
        return _json_safe(asdict(self))


@dataclass(frozen=True)
class SuiteResult:
    """A whole suite's result: overall success and one outcome per expectation."""

    suite_name: str
    success: bool
    row_count: int
    outcomes: list[ExpectationOutcome] = field(default_factory=list)

    @property
    def failures(self) -> list[ExpectationOutcome]:
        """The expectations that failed."""
        return [outcome for outcome in self.outcomes if not outcome.success]

    def failed_rows(self) -> dict[Any, list[ExpectationOutcome]]:
        """Row index → the expectations that row failed (rows that passed are absent)."""
        rows: dict[Any, list[ExpectationOutcome]] = {}
        for outcome in self.failures:
            for row in outcome.unexpected_rows:
                rows.setdefault(row, []).append(outcome)
        return rows

    def as_dict(self, *, max_rows: int | None = 1000) -> dict[str, Any]:
        """A JSON-safe summary; row lists are cut at ``max_rows`` per expectation."""
        outcomes = []
        for outcome in self.outcomes:
            entry = outcome.as_dict()
            if max_rows is not None:
                entry["unexpected_rows"] = entry["unexpected_rows"][:max_rows]
            outcomes.append(entry)
        return {"suite": self.suite_name, "success": self.success, "row_count": self.row_count, "outcomes": outcomes}


# --- contexts --------------------------------------------------------------------


def gx_directory() -> Path:
    """Where the GX file project (stores and Data Docs) lives: ``CRM_GX_DIR`` or ``data/gx``."""
    configured = os.environ.get("CRM_GX_DIR")
    return Path(configured) if configured else DATA_DIR / "gx"


def _quiet(context: Any) -> Any:
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def ephemeral_context() -> Any:
    """The process-wide in-memory GX context (nothing is written to disk)."""
    global _ephemeral
    with _lock:
        if _ephemeral is None:
            import great_expectations as gx

            _ephemeral = _quiet(gx.get_context(mode="ephemeral"))
        return _ephemeral


def file_context(root: Path | None = None) -> Any:
    """A GX file project under ``root`` (default :func:`gx_directory`): results and Data Docs persist."""
    import great_expectations as gx

    directory = root or gx_directory()
    directory.mkdir(parents=True, exist_ok=True)
    return _quiet(gx.get_context(mode="file", project_root_dir=str(directory)))


def build_data_docs(context: Any) -> Path | None:
    """Rebuild the Data Docs site of a file context; the path of its ``index.html`` (None if none)."""
    context.build_data_docs()
    return data_docs_index(context)


def data_docs_index(context_or_root: Any) -> Path | None:
    """The Data Docs ``index.html`` of a file context or GX project folder, when it exists."""
    if isinstance(context_or_root, Path):
        candidate = context_or_root / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
        return candidate if candidate.exists() else None
    for site in context_or_root.get_docs_sites_urls():
        url = site.get("site_url") or ""
        if url.startswith("file://"):
            path = Path(url.removeprefix("file://"))
            if path.exists():
                return path
    return None


# --- suites ---------------------------------------------------------------------


def available_suites() -> list[str]:
    """The names of the suites in ``validations/``."""
    names = {path.stem for path in SUITES_DIR.glob("*.py") if not path.stem.startswith("_")}
    names |= {path.stem for path in SUITES_DIR.glob("*.json")}
    return sorted(name for name in names if _SUITE_NAME.match(name))


def load_expectations(suite_name: str) -> list[Any]:
    """The GX expectations of ``suite_name`` (module ``validations.<name>`` or ``<name>.json``)."""
    if not _SUITE_NAME.match(suite_name):
        raise UnknownSuite(suite_name)
    module_path = SUITES_DIR / f"{suite_name}.py"
    if module_path.exists():
        module = importlib.import_module(f"validations.{suite_name}")
        return list(module.expectations())
    json_path = SUITES_DIR / f"{suite_name}.json"
    if json_path.exists():
        import great_expectations as gx

        stored = json.loads(json_path.read_text(encoding="utf-8"))
        suite = gx.ExpectationSuite(name=suite_name, expectations=stored.get("expectations", []))
        return list(suite.expectations)
    raise UnknownSuite(suite_name)


def _expectations_key(expectations: list[Any]) -> str:
    """The expectations' configuration as text: an edited suite gives another key."""
    return json.dumps(
        [expectation.configuration.to_json_dict() for expectation in expectations], sort_keys=True, default=str
    )


def _cached_validation_definition(context: Any, suite_name: str, expectations: list[Any]) -> Any:
    """:func:`_validation_definition` in the process-wide ephemeral context, built once per suite version.

    Building it (datasource, asset, suite, definition) costs ~0.2 s; an import validates every
    chunk with the same suite, so it is kept while the suite's expectations stay the same. Call
    with ``_lock`` held.
    """
    key = _expectations_key(expectations)
    cached = _ephemeral_definitions.get(suite_name)
    if cached is not None and cached[0] == key:
        return cached[1]
    definition = _validation_definition(context, suite_name, expectations)
    _ephemeral_definitions[suite_name] = (key, definition)
    return definition


def _validation_definition(context: Any, suite_name: str, expectations: list[Any]) -> Any:
    import great_expectations as gx

    try:
        source = context.data_sources.get(DATASOURCE_NAME)
    except (KeyError, LookupError, ValueError):
        source = context.data_sources.add_pandas(DATASOURCE_NAME)
    try:
        asset = source.get_asset(suite_name)
    except (KeyError, LookupError, ValueError):
        asset = source.add_dataframe_asset(name=suite_name)
    try:
        batch_definition = asset.get_batch_definition(BATCH_DEFINITION_NAME)
    except (KeyError, LookupError, ValueError):
        batch_definition = asset.add_batch_definition_whole_dataframe(BATCH_DEFINITION_NAME)
    # the suite is rebuilt from validations/ on every run, so an edited suite takes effect at once
    suite = context.suites.add_or_update(gx.ExpectationSuite(name=suite_name, expectations=expectations))
    return context.validation_definitions.add_or_update(
        gx.ValidationDefinition(data=batch_definition, suite=suite, name=suite_name)
    )


def run_suite(
    suite_name: str,
    frame: pandas.DataFrame,
    *,
    context: Any = None,
    parameters: dict[str, Any] | None = None,
) -> SuiteResult:
    """Validate ``frame`` against the suite ``suite_name``; row indexes are ``frame``'s index labels.

    ``context`` None uses the in-memory context; a file context (:func:`file_context`) runs
    through a Checkpoint that updates its Data Docs. ``parameters`` fills GX suite
    parameters (``{"$PARAMETER": "name"}`` in an expectation).
    """
    import great_expectations as gx
    from great_expectations.validator.v1_validator import Validator

    expectations = load_expectations(suite_name)
    ephemeral = context is None
    context = context or ephemeral_context()
    result_format = {"result_format": "COMPLETE", "partial_unexpected_count": MAX_EXAMPLES}
    with _lock:  # GX contexts are not thread-safe; Streamlit runs pages in threads
        if context is _ephemeral:
            definition = _cached_validation_definition(context, suite_name, expectations)
        else:
            definition = _validation_definition(context, suite_name, expectations)
        if ephemeral or not getattr(context, "root_directory", None):
            # The validator that ValidationDefinition.run drives, without run's last step: storing the
            # result in the context's results store. In memory that store is never read and never
            # emptied, so every import chunk and data-quality check left its full result (unexpected
            # row lists included) in the web host's or the worker's memory, and serialising it cost a
            # fifth of each run.
            # GX's fixed cost is per expectation (~3 ms: building its metric graph), so the ones whose
            # answer is known without it are answered here: see vacuous_expectations
            vacuous = vacuous_expectations(expectations, frame)
            suite = definition.suite
            if vacuous:
                suite = gx.ExpectationSuite(
                    name=suite_name,
                    expectations=[copy.copy(item) for index, item in enumerate(expectations) if index not in vacuous],
                )
            validation = Validator(
                batch_definition=definition.batch_definition,
                batch_parameters={"dataframe": frame},
                # no Data Docs here: skip the pandas filter text GX would build beside each unexpected
                # index list (nobody reads it; a third of the failing rows' cost per expectation)
                result_format={**result_format, "return_unexpected_index_query": False},
            ).validate_expectation_suite(suite, parameters)
            ran = iter(_outcome(result) for result in validation.results)
            outcomes = [
                _vacuous_outcome(item, len(frame)) if index in vacuous else next(ran)
                for index, item in enumerate(expectations)
            ]
            return SuiteResult(
                suite_name=suite_name,
                success=all(outcome.success for outcome in outcomes),
                row_count=len(frame),
                outcomes=outcomes,
            )
        else:
            checkpoint = context.checkpoints.add_or_update(
                gx.Checkpoint(
                    name=suite_name,
                    validation_definitions=[definition],
                    actions=[gx.checkpoint.UpdateDataDocsAction(name="update_data_docs")],
                    result_format=result_format,
                )
            )
            checkpoint_result = checkpoint.run(batch_parameters={"dataframe": frame}, expectation_parameters=parameters)
            validation = next(iter(checkpoint_result.run_results.values()))
    outcomes = [_outcome(result) for result in validation.results]
    return SuiteResult(
        suite_name=suite_name,
        success=all(outcome.success for outcome in outcomes),
        row_count=len(frame),
        outcomes=outcomes,
    )


def vacuous_expectations(expectations: list[Any], frame: pandas.DataFrame) -> set[int]:
    """The positions of the expectations that hold on ``frame`` without testing a value.

    A column-map expectation leaves null values out (all but "not null" do): over a column that
    holds only nulls it tests nothing and succeeds, as GX itself reports after building its
    metric graph. An import maps a few of an entity's fields, and the prepare step fills the
    rest, and the marker columns of rules no row breaks, with nulls; so most of a chunk's
    expectations are of this kind. A missing column is not vacuous (GX reports it).
    """
    import great_expectations as gx
    from great_expectations.expectations.expectation import ColumnMapExpectation

    empty = {str(name) for name in frame.columns if frame[name].isna().all()} if len(frame.columns) else set()
    return {
        index
        for index, expectation in enumerate(expectations)
        if isinstance(expectation, ColumnMapExpectation)
        and not isinstance(expectation, gx.expectations.ExpectColumnValuesToNotBeNull)
        and getattr(expectation, "column", None) in empty
        and not getattr(expectation, "row_condition", None)
    }


def _vacuous_outcome(expectation: Any, row_count: int) -> ExpectationOutcome:
    return _outcome_of(expectation.configuration, success=True, details={"element_count": row_count})


def _outcome(result: Any) -> ExpectationOutcome:
    return _outcome_of(
        result.expectation_config, success=bool(result.success), details=dict(result.result or {}),
        exception_info=result.exception_info or {},
    )


def _outcome_of(
    config: Any, *, success: bool, details: dict[str, Any], exception_info: dict[str, Any] | None = None
) -> ExpectationOutcome:
    kwargs = dict(config.kwargs)
    meta = dict(config.meta or {})
    column = kwargs.get("column")
    error = None
    exception_info = exception_info or {}
    if exception_info.get("raised_exception"):
        error = str(exception_info.get("exception_message") or "")[:500]
    params: dict[str, Any] = {"column": column or ""}
    for key in ("min_value", "max_value", "regex", "type_"):
        if kwargs.get(key) is not None:
            params[key] = kwargs[key]
    if kwargs.get("value_set") is not None:
        params["value_set"] = ", ".join(str(value) for value in kwargs["value_set"])
    params.update(meta.get("params") or {})
    examples: list[Any] = []
    for value in details.get("partial_unexpected_list") or []:
        value = _json_safe(value)
        if value not in examples:
            examples.append(value)
    message_key = meta.get("message_key") or f"gx.{config.type}"
    if error:
        message_key = "gx.error"
        params["error"] = error
    return ExpectationOutcome(
        expectation=str(config.type),
        column=column,
        success=success,
        element_count=int(details.get("element_count") or 0),
        unexpected_count=int(details.get("unexpected_count") or 0),
        unexpected_rows=[_json_safe(row) for row in details.get("unexpected_index_list") or []],
        examples=examples,
        message_key=message_key,
        params=params,
        error=error,
    )


def _json_safe(value: Any) -> Any:
    """NaN → None, numpy scalars → Python, containers recursively."""
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (TypeError, ValueError):
            value = str(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
