"""Great Expectations runner: validate a pandas DataFrame against a suite from ``validations/``.

Pattern: a thin adapter. Suites are plain Python modules in ``validations/`` (one per
dataset) exposing ``expectations() -> list[gx.expectations.Expectation]``, or GX suite
JSON files; this module turns a GX validation result into :class:`SuiteResult`, a plain
dataclass the importer, the CLI and the pages read without knowing GX.

GX costs about 3 s to import, so it is imported lazily inside functions only: importing
this module is cheap and safe from any page.

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

import atexit
import importlib
import json
import math
import os
import pickle
import queue
import re
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

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
            validation = definition.run(
                batch_parameters={"dataframe": frame},
                expectation_parameters=parameters,
                # no Data Docs here: skip the pandas filter text GX would build beside each unexpected
                # index list (nobody reads it; a third of the failing rows' cost per expectation)
                result_format={**result_format, "return_unexpected_index_query": False},
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


# --- a worker process for the suites -----------------------------------------------

WORKER_ENV = "CRM_GX_WORKER"
"""``0`` keeps every suite run in the calling process; otherwise a spare core gets a worker."""
_worker_lock = threading.Lock()
_worker: SuiteWorker | None = None


class WorkerGone(RuntimeError):
    """The suites' worker process ended (killed, out of memory …): runs go back to this process."""


class PendingSuite:
    """A suite run under way (:func:`submit_suite`); :meth:`result` waits for its :class:`SuiteResult`."""

    def __init__(self, suite_name: str, frame: pandas.DataFrame, future: Future[SuiteResult] | None = None) -> None:
        self._suite_name, self._frame, self._future = suite_name, frame, future
        self._result: SuiteResult | None = None if future is not None else run_suite(suite_name, frame)

    def result(self) -> SuiteResult:
        """The suite's result; run here instead when the worker died."""
        if self._result is None:
            assert self._future is not None
            try:
                self._result = self._future.result()
            except WorkerGone:  # the next submission starts a new worker
                self._result = run_suite(self._suite_name, self._frame)
        self._frame = None  # type: ignore[assignment]
        return self._result


class SuiteWorker:
    """A process of its own that runs :func:`run_suite` on frames sent to it (``python -m crm_core.suite_worker``).

    Requests and answers are pickles over the process's stdin and stdout, each preceded by
    its length; two threads here write the requests and read the answers as they come, so
    neither the caller nor the worker ever blocks on a full pipe. Requests are
    served one at a time, in order. Started as a module of this project, not through
    ``multiprocessing``: that would import the caller's main script again in the child
    (a script without an ``if __name__ == "__main__"`` guard would run twice).
    """

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")])}
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "crm_core.suite_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=PROJECT_ROOT,
            env=env,
        )
        self._requests: queue.Queue[bytes | None] = queue.Queue()
        self._futures_lock = threading.Lock()  # the answers awaited
        self._futures: dict[int, Future[Any]] = {}
        self._next_id = 0
        self.gone = False
        self._reader = threading.Thread(target=self._read_answers, name="crm-suite-worker-reader", daemon=True)
        self._reader.start()
        self._sender = threading.Thread(target=self._send_requests, name="crm-suite-worker-sender", daemon=True)
        self._sender.start()

    @property
    def pid(self) -> int:
        return self._process.pid

    def submit(self, function: str, *args: Any) -> Future[Any]:
        """Ask the worker to run ``function`` (``run_suite`` or ``warm``) with ``args``; its answer as a future."""
        future: Future[Any] = Future()
        with self._futures_lock:
            if self.gone:
                raise WorkerGone("the suites' worker process has ended")
            self._next_id += 1
            request_id = self._next_id
            self._futures[request_id] = future
        self._requests.put(pickle.dumps((request_id, function, args), protocol=pickle.HIGHEST_PROTOCOL))
        return future

    def _send_requests(self) -> None:
        """Write queued requests to the worker: a request waits on a full pipe here, not in the caller."""
        stdin = self._process.stdin
        assert stdin is not None
        while (payload := self._requests.get()) is not None:
            try:
                stdin.write(struct.pack("<Q", len(payload)))
                stdin.write(payload)
                stdin.flush()
            except (OSError, ValueError):  # a closed pipe: the process has ended
                self._fail_all()
                return

    def _read_answers(self) -> None:
        stdout = self._process.stdout
        assert stdout is not None
        while True:
            header = stdout.read(8)
            if len(header) < 8:
                break
            payload = stdout.read(struct.unpack("<Q", header)[0])
            request_id, ok, value = pickle.loads(payload)  # noqa: S301 - our own child's answer
            with self._futures_lock:
                future = self._futures.pop(request_id, None)
            if future is not None:
                future.set_result(value) if ok else future.set_exception(value)
        self._fail_all()

    def _fail_all(self) -> None:
        with self._futures_lock:
            self.gone = True
            pending, self._futures = self._futures, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(WorkerGone("the suites' worker process has ended"))

    def stop(self) -> None:
        """End the process after what was sent (its stdin closes: it leaves its loop)."""
        self._requests.put(None)
        self._sender.join(timeout=10)
        try:
            if self._process.stdin is not None:
                self._process.stdin.close()
        except OSError:
            pass
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()


def submit_suite(suite_name: str, frame: pandas.DataFrame) -> PendingSuite:
    """Start :func:`run_suite` on the in-memory context, in the worker process when the machine has a core to spare.

    GX is Python from end to end: ~2.5 s of a 100,000-row import holding the interpreter's
    lock, and in the Streamlit server every other session's page waits behind it. In a
    process of its own it judges chunk k while the caller prepares chunk k+1 and writes
    chunk k-1. The worker starts on first use, imports GX once and serves every later run
    of this process, one at a time. Frames travel pickled (~20 ms for 20,000 rows). With
    one core, ``CRM_GX_WORKER=0``, or a worker that cannot start or has died, the suite runs
    here, as :func:`run_suite`.
    """
    worker = _suite_worker()
    if worker is not None:
        try:
            return PendingSuite(suite_name, frame, worker.submit("run_suite", suite_name, frame))
        except WorkerGone:  # the next submission starts a new worker
            pass
    return PendingSuite(suite_name, frame)


def warm_up_worker() -> int | None:
    """Start the worker and import GX in it now (benchmarks); its process id, or None when suites run here."""
    worker = _suite_worker()
    if worker is None:
        return None
    worker.submit("warm").result()
    return worker.pid


def _suite_worker() -> SuiteWorker | None:
    global _worker
    if os.environ.get(WORKER_ENV, "").strip() in ("0", "off", "no") or (os.cpu_count() or 1) < 2:
        return None
    with _worker_lock:
        if _worker is None or _worker.gone:
            # one place replaces a worker that ended: a caller that saw it fail does not stop
            # the replacement another thread may already be using
            if _worker is not None:
                _worker.stop()
            try:
                _worker = SuiteWorker()
            except OSError:  # no processes allowed here
                _worker = None
                return None
            atexit.register(_worker.stop)
        return _worker


def serve_worker(requests: IO[bytes], answers: IO[bytes]) -> None:
    """The worker's loop (``python -m crm_core.suite_worker``): answer each request until stdin closes."""
    functions: dict[str, Callable[..., Any]] = {"run_suite": run_suite, "warm": lambda: bool(ephemeral_context())}
    while True:
        header = requests.read(8)
        if len(header) < 8:
            return
        request_id, function, args = pickle.loads(requests.read(struct.unpack("<Q", header)[0]))  # noqa: S301
        try:
            answer: tuple[int, bool, Any] = (request_id, True, functions[function](*args))
        except Exception as error:  # noqa: BLE001 - handed to the caller, raised there
            answer = (request_id, False, error)
        try:
            payload = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as error:  # noqa: BLE001 - an exception GX made that does not pickle
            payload = pickle.dumps((request_id, False, RuntimeError(f"{type(error).__name__}: {answer[2]!r}")))
        answers.write(struct.pack("<Q", len(payload)))
        answers.write(payload)
        answers.flush()


def _outcome(result: Any) -> ExpectationOutcome:
    config = result.expectation_config
    kwargs = dict(config.kwargs)
    meta = dict(config.meta or {})
    column = kwargs.get("column")
    details = dict(result.result or {})
    error = None
    exception_info = result.exception_info or {}
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
        success=bool(result.success),
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
