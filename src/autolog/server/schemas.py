"""Request and response bodies: every field typed and bounded, so bad input is a 422, not a 500.

Bounds exist for the database's sake as much as the API's: integers fit a 64-bit column, text
holds no NUL character (PostgreSQL rejects it) and no lone surrogate (it cannot be encoded), keys
fit an index entry. Non-finite metric values travel as the strings ``"NaN"``, ``"Infinity"`` and
``"-Infinity"``, as in the run journal, because JSON has no literal for them.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .tables import metric_out, param_in

__all__ = [
    "MAX_POINTS_PER_BATCH", "ArtifactIn", "BatchIn", "BatchOut", "FileList", "FileOut",
    "History", "HistoryList", "KeyList", "MetricColumn", "MetricSummary", "ModelIn", "Problem",
    "ProjectInfo", "ProjectList", "RunDetail", "RunEdit", "RunIn", "RunPage", "RunSummary",
    "ServerInfo", "Session", "TokenCreated", "TokenIn", "TokenInfo", "TokenList",
    "metric_out", "param_in",
]

MAX_POINTS_PER_BATCH = 100_000
RUN_ID_PATTERN = r"^[0-9a-f]{32}$"
RUN_PREFIX_PATTERN = r"^[0-9a-f]{1,32}$"
TOKEN_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$"
INT64 = 2**63 - 1
MAX_KEY_BYTES = 1000
NO_NUL = r"^[^\x00]*$"
#: what JSON Schema cannot say, stated in the OpenAPI document with these extension keywords
#: (docs/server.md "What the schema says"): a string's UTF-8 length; columns of equal length;
#: the points of a whole batch; a number not below another field's.
X_MAX_BYTES = "x-max-bytes"
X_MAX_PART_BYTES = "x-max-part-bytes"  # each `/`-separated part of a path
X_EQUAL_LENGTHS = "x-equal-lengths"
X_MAX_TOTAL_ITEMS = "x-max-total-items"
X_NOT_BELOW = "x-not-below"


def _clean_text(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (no lone surrogates)") from None
    return value


def _clean_key(value: str) -> str:
    _clean_text(value)
    if len(value.encode("utf-8")) > MAX_KEY_BYTES:
        raise ValueError(f"must be at most {MAX_KEY_BYTES} bytes of UTF-8")
    return value


def _text_bounds(max_chars: int, *, min_chars: int = 0, max_bytes: int | None = None,
                 what: str = "") -> dict[str, Any]:
    """A text field's bounds, as the schema states them: characters (JSON Schema's
    ``maxLength`` counts Unicode code points) and, where an index or a file system limits it,
    UTF-8 bytes (``x-max-bytes``); never a NUL character. Keywords for ``Field`` or FastAPI's
    ``Query``."""
    said = f"{min_chars}-{max_chars}" if min_chars else f"at most {max_chars}"
    said += " characters" + (f" and {max_bytes} bytes of UTF-8" if max_bytes else "")
    extra: dict[str, Any] = {"pattern": NO_NUL}
    if max_bytes:
        extra[X_MAX_BYTES] = max_bytes
    return {"min_length": min_chars or None, "max_length": max_chars,
            "description": f"{what}{'; ' if what else ''}{said}; no NUL character",
            "json_schema_extra": extra}


def _text(max_chars: int, *, min_chars: int = 0, max_bytes: int | None = None,
          what: str = "") -> Any:
    return Field(**_text_bounds(max_chars, min_chars=min_chars, max_bytes=max_bytes, what=what))


def _json_integer(value: Any) -> Any:
    """An integer as JSON Schema's ``integer`` means it: a number without a fractional part
    (``3`` or ``3.0``), never a boolean or a string."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


Text = Annotated[str, Field(json_schema_extra={"pattern": NO_NUL}), AfterValidator(_clean_text)]
Filter = Annotated[str, _text(2000), AfterValidator(_clean_text)]
#: a metric key's bounds; a bare (not optional, not list) query parameter repeats them in its
#: ``Query()``: FastAPI 0.110 (the oldest supported) writes only the ``Query``'s own keywords there
KEY_BOUNDS = _text_bounds(500, min_chars=1, max_bytes=MAX_KEY_BYTES)
Key = Annotated[str, Field(**KEY_BOUNDS), AfterValidator(_clean_key)]
Name = Annotated[str, _text(1000), AfterValidator(_clean_text)]
Project = Annotated[str, _text(255, min_chars=1), AfterValidator(_clean_text)]
ArtifactName = Annotated[str, _text(MAX_KEY_BYTES, min_chars=1, max_bytes=MAX_KEY_BYTES),
                         AfterValidator(_clean_key)]
RunId = Annotated[str, Field(pattern=RUN_ID_PATTERN)]
# 64-bit bounds as exact powers of two (an exclusive maximum of 2**63): the OpenAPI document
# carries numbers that survive a round trip through a float
# JSON bodies are read strictly (the Body* types, Millis, Offset): a boolean is not a number, a
# string is not a number (pydantic's lax mode would store `"end_time": false` as 0). Query
# parameters are text and stay lax (Int64).
Int64 = Annotated[int, Field(ge=-(2**63), lt=2**63)]  # a query parameter
BodyInt64 = Annotated[int, Field(ge=-(2**63), lt=2**63), BeforeValidator(_json_integer)]
Millis = Annotated[int, Field(ge=0, lt=2**63), BeforeValidator(_json_integer)]
Offset = Millis
Status = Literal["RUNNING", "FINISHED", "FAILED", "KILLED", "CRASHED"]
Scope = Literal["read", "write", "admin"]
NonFinite = Literal["NaN", "Infinity", "-Infinity"]
MetricValue = StrictFloat | NonFinite
ParamValue = Text | StrictInt | StrictFloat | StrictBool | None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- writing ---------------------------------------------------------------------------------


class RunIn(_Strict):
    """Create a run, or update the fields given. Fields left out keep their value."""

    name: Name | None = None
    project: Project | None = None
    parent_id: RunId | None = None
    start_time: Millis | None = None
    status: Status | None = None
    end_time: Millis | None = None


class MetricColumn(_Strict):
    """One metric's points in a batch, as three columns of equal length, in logging order."""

    model_config = ConfigDict(json_schema_extra={X_EQUAL_LENGTHS: ["steps", "values",
                                                                   "timestamps"]})

    steps: list[BodyInt64]
    values: list[MetricValue]
    timestamps: list[Millis]

    @model_validator(mode="after")
    def _same_length(self) -> MetricColumn:
        if not len(self.steps) == len(self.values) == len(self.timestamps):
            raise ValueError("steps, values and timestamps must have the same length")
        return self


class BatchIn(_Strict):
    """Params, tags and metric points of one run, stored at most once per idempotency key.

    The key is ``(run id, start, end, part)``: the journal byte range the batch was read from
    (stable across retries and across processes) and the part number when a client splits one
    range into several requests.
    """

    model_config = ConfigDict(json_schema_extra={
        X_NOT_BELOW: {"end": "start"},
        X_MAX_TOTAL_ITEMS: {"max": MAX_POINTS_PER_BATCH, "of": "metrics.*.steps"}})

    start: Offset
    end: Offset = Field(description="not below start")
    part: Annotated[int, Field(ge=0, le=1_000_000), BeforeValidator(_json_integer)] = 0
    params: dict[Key, ParamValue] = Field(default_factory=dict)
    tags: dict[Key, Text] = Field(default_factory=dict)
    metrics: dict[Key, MetricColumn] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _bounded(self) -> BatchIn:
        if self.end < self.start:
            raise ValueError("end must not be before start")
        points = sum(len(c.steps) for c in self.metrics.values())
        if points > MAX_POINTS_PER_BATCH:
            raise ValueError(f"{points} metric points in one batch; the limit is "
                             f"{MAX_POINTS_PER_BATCH} (split it into parts)")
        return self

    def events(self) -> int:
        return len(self.params) + len(self.tags) + sum(len(c.steps) for c in self.metrics.values())


class ArtifactIn(_Strict):
    """Record that the run logged an artifact: a file, or a directory of ``files``.

    As in the local store, a run's ``artifacts`` list names files relative to the run's
    artifact root: ``files`` when given (a directory's files, ``name/...``), else ``name``.
    """

    name: ArtifactName
    files: list[ArtifactName] = Field(default_factory=list, max_length=100_000)

    def paths(self) -> list[str]:
        return self.files or [self.name]


class ModelIn(_Strict):
    """A model's spec (flavor, format, framework version, ``path``, ``files``...); its files are
    uploaded as artifacts under ``path`` and listed with the run's artifacts."""

    name: ArtifactName
    spec: dict[str, Any]

    @model_validator(mode="after")
    def _json_safe(self) -> ModelIn:
        try:
            json.dumps(self.spec, allow_nan=False)
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"spec must be plain JSON without NaN or infinities ({exc})")
        for path in self.paths():
            _clean_key(path)
        return self

    def paths(self) -> list[str]:
        """``path/file`` for each of the spec's files, as the local store lists them."""
        base, files = self.spec.get("path"), self.spec.get("files")
        if not isinstance(base, str) or not isinstance(files, list):
            return []
        return [f"{base}/{f}" for f in files if isinstance(f, str)]


class TokenIn(_Strict):
    name: Annotated[str, Field(pattern=TOKEN_NAME_PATTERN)]
    scope: Scope = "write"


# -- reading ---------------------------------------------------------------------------------


class RunSummary(BaseModel):
    """A row of the runs table (``autolog runs --json`` plus the UI's fields); ``metrics``
    holds each metric's last value, ``values`` the columns asked for with ``columns=``."""

    id: str
    name: str
    project: str
    status: str
    parent_id: str | None
    start_time: int
    end_time: int | None
    metrics: dict[str, MetricValue]
    children: int = Field(0, description="runs whose parent this is (not deleted)")
    tags: dict[str, str] = Field(default_factory=dict)
    note: str | None = None
    deleted: bool = False
    values: dict[str, Any] = Field(default_factory=dict)


class MetricSummary(BaseModel):
    last: MetricValue
    min: MetricValue | None
    max: MetricValue | None
    step: int = Field(description="the step of the last point")
    count: int


class RunDetail(RunSummary):
    """The shape of ``autolog show --json``, plus each metric's summary."""

    params: dict[str, str | int | float | bool | None]
    artifacts: list[str]
    models: dict[str, dict[str, Any]]
    metric_summary: dict[str, MetricSummary] = Field(default_factory=dict)


class RunPage(BaseModel):
    runs: list[RunSummary]
    total: int | None = Field(None, description="runs matching, over all pages")
    offset: int = 0
    next_page_token: str | None = Field(
        description="pass as page_token to get the next page; null on the last page")


class RunEdit(_Strict):
    """Changes to a run from the UI; every field is optional."""

    name: Name | None = None
    tags: dict[Key, Annotated[str, _text(5000), AfterValidator(_clean_text)]] = \
        Field(default_factory=dict, max_length=1000)
    remove_tags: list[Key] = Field(default_factory=list, max_length=1000)
    note: Annotated[str, _text(100_000), AfterValidator(_clean_text)] | None = None
    deleted: StrictBool | None = None


class Session(BaseModel):
    mode: Literal["local", "server"]
    user: str
    can_write: bool
    csrf: str
    version: str


class ProjectInfo(BaseModel):
    name: str
    runs: int
    last_start: int | None


class ProjectList(BaseModel):
    projects: list[ProjectInfo]


class KeyList(BaseModel):
    params: list[str]
    metrics: list[str]
    tags: list[str]
    columns: list[str] = Field(description="the runs table's default columns (metrics.KEY): "
                               "the headline metrics of the project's newest runs, or of "
                               "parent's children")


class BatchOut(BaseModel):
    run_id: str
    stored: bool = Field(description="false when this idempotency key was stored before")
    events: int


class History(BaseModel):
    """A metric's points ordered by step (then logging order), as columns. With ``buckets``,
    each bucket's last point, and its ``min``/``max``; NaN is then null."""

    run_id: str
    key: str
    total: int = Field(description="points stored for this key")
    downsampled: bool
    steps: list[int]
    values: list[MetricValue | None]
    timestamps: list[int]
    min: list[MetricValue | None] | None = None
    max: list[MetricValue | None] | None = None


class HistoryList(BaseModel):
    series: list[History]


class FileOut(BaseModel):
    path: str
    size: int
    sha256: str | None = Field(None, description="null in the local store (not computed)")
    updated: int


class FileList(BaseModel):
    files: list[FileOut]


class ServerInfo(BaseModel):
    version: str
    schema_revision: str | None
    database: str
    max_request_bytes: int
    max_upload_bytes: int
    max_points_per_batch: int


class TokenInfo(BaseModel):
    name: str
    scope: str
    created: int
    revoked: int | None


class TokenList(BaseModel):
    tokens: list[TokenInfo]


class TokenCreated(TokenInfo):
    token: str = Field(description="shown once; the server keeps only its SHA-256")


class Problem(BaseModel):
    """An error: ``detail`` says what was wrong (a list of field errors for a 422)."""

    detail: Any
