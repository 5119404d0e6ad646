"""The filter language's parser (pure Python): the tree it builds and the columns it blames."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autolog import filters as f
from autolog.filters import And, Compare, Field, FilterError, Not, Or


def cmp(field: Field, op: str, *values: object, numeric: tuple[bool, ...] = ()) -> Compare:
    return Compare(field, op, tuple(values),  # type: ignore[arg-type]
                   numeric or tuple(isinstance(v, float) for v in values))


LR = Field("params", "lr")


def test_the_issue_example() -> None:
    node = f.parse('metrics.val_loss < 0.3 and params.model.lr >= 1e-3 and '
                   'tags.team = "vision" and status = FINISHED')
    assert node == And((cmp(Field("metrics", "val_loss"), "<", 0.3),
                        cmp(Field("params", "model.lr"), ">=", 0.001),
                        cmp(Field("tags", "team"), "=", "vision"),
                        cmp(Field("status"), "=", "FINISHED")))


def test_and_binds_tighter_than_or_and_parentheses_group() -> None:
    a, b, c = (cmp(LR, "=", float(i)) for i in (1, 2, 3))
    assert f.parse("params.lr = 1 or params.lr = 2 and params.lr = 3") == Or((a, And((b, c))))
    assert f.parse("(params.lr = 1 or params.lr = 2) and params.lr = 3") == And((Or((a, b)), c))
    assert f.parse("NOT params.lr = 1 AND not (params.lr = 2)") == And((Not(a), Not(b)))


def test_values_keys_and_operators() -> None:
    assert f.parse(r"name = 'it\'s'") == cmp(Field("name"), "=", "it's")
    assert f.parse("params.`a key:with $igns` ~ x") == cmp(Field("params", "a key:with $igns"),
                                                           "~", "x")
    assert f.parse("metrics.`val loss`:min<=-2.5e-3") == cmp(
        Field("metrics", "val loss", "min"), "<=", -0.0025)
    assert f.parse("metrics.loss:MAX > .5") == cmp(Field("metrics", "loss", "max"), ">", 0.5)
    assert f.parse("tags.team in (a, 'b c', 3)") == Compare(
        Field("tags", "team"), "in", ("a", "b c", 3.0), (False, False, True))
    assert f.parse("Params.lr Exists") == Compare(LR, "exists")
    assert f.parse("duration > 5m") == cmp(Field("duration"), ">", "5m")
    assert f.parse("start_time >= 2025-01-31") == cmp(Field("start_time"), ">=", "2025-01-31")
    for op in ("=", "!=", "<", "<=", ">", ">=", "~"):
        assert f.parse(f"name {op} x").op == op  # type: ignore[union-attr]


@pytest.mark.parametrize(("text", "column", "words"), [
    ("", 1, "empty"),
    ("params.lr <", 12, "expected a value after '<'"),
    ("params.lr >= and", 14, "expected a value"),
    ("status = FINISHED and", 22, "expected a field"),
    ("colour = red", 1, "unknown field 'colour'"),
    ("params. = 1", 1, "expected a key"),
    ("params.lr 5", 11, "expected an operator"),
    ("(name = a", 10, "expected ')'"),
    ("name = a)", 9, "expected 'and', 'or' or the end"),
    ("name = 'open", 8, "unterminated"),
    ("name ! x", 6, "expected '=' after '!'"),
    ("metrics.loss < low", 1, "compares with numbers"),
    ("metrics.loss ~ 1", 1, "'~' compares text"),
    ("tags.team:min = a", 1, "apply to metrics only"),
    ("end_time > yesterday", 1, "compares with a time"),
    ("duration > 5 parsecs", 14, "expected 'and', 'or' or the end"),
    ("duration > forever", 1, "duration compares with seconds"),
    ("tags.t in a", 11, "expected '('"),
    ("tags.t in (a b)", 14, "expected ',' or ')'"),
    ("name = x or", 12, "expected a field"),
])
def test_errors_name_the_column(text: str, column: int, words: str) -> None:
    with pytest.raises(FilterError) as caught:
        f.parse(text)
    assert caught.value.column == column, caught.value.message
    assert words in caught.value.message and f"at column {column}" in caught.value.message
    assert caught.value.expression == text


@given(st.text(alphabet=st.sampled_from(list("params.lr metrics:min tags=!<>~()'\"`,01e-x "
                                             "andornotinexists")), max_size=60))
def test_any_text_parses_or_raises_a_filter_error(text: str) -> None:
    try:
        f.parse(text)
    except FilterError as exc:
        assert 1 <= exc.column <= len(text) + 1


def test_sort_keys_and_columns() -> None:
    assert f.parse_sort("-metrics.acc:max") == f.SortKey(Field("metrics", "acc", "max"), True)
    assert f.parse_sort("name") == f.SortKey(Field("name"), False)
    assert str(f.parse_field("params.`a b`")) == "params.`a b`"
    assert str(f.parse_field("metrics.loss:min")) == "metrics.loss:min"
    with pytest.raises(FilterError):
        f.parse_field("name = x")


def test_param_numbers_and_text() -> None:
    assert [f.number_of(v) for v in (1, 0.5, "0.25", " 3 ", "1e-3", True, None, "abc",
                                     float("inf"), "nan")] == [
        1.0, 0.5, 0.25, 3.0, 0.001, None, None, None, None, None]
    assert [f.text_of(v) for v in ("x", True, None, 1, 0.5)] == ["x", "true", "null", "1",
                                                                 "0.5"]


def test_the_parser_edits_and_the_ui_command_import_nothing_heavy() -> None:
    code = ("import sys, autolog, autolog.filters, autolog.journal.edits, autolog.cli; "
            "autolog.cli._parser(); print(sorted(m for m in ('sqlalchemy', 'fastapi', "
            "'uvicorn', 'alembic', 'starlette', 'pydantic') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
