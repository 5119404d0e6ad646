"""Schemathesis hooks: the rules the OpenAPI document states beyond JSON Schema, for the fuzzer.

JSON Schema cannot say how many bytes of UTF-8 a string takes, that three arrays have one
length, that one number is not below another, or how many items several arrays hold in all. The
server's document states those rules with extension keywords (docs/server.md, "What the schema
says"): ``x-max-bytes`` (a string's UTF-8 length; an object's, as JSON), ``x-max-part-bytes``
(each ``/``-separated part of a path), ``x-equal-lengths``, ``x-not-below`` and
``x-max-total-items``. A generic fuzzer ignores them, so data it generates as valid may break
one; :func:`filter_case` drops such *positive* cases (negative ones are meant to be refused
anyway). Everything else the fuzzer checks against JSON Schema alone. Loaded by schemathesis
from its configuration (``hooks = ".../schema_rules.py"``), in its own process.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis


def follows_rules(document: dict[str, Any], schema: Any, value: Any) -> bool:
    """Whether ``value`` keeps every extension rule of ``schema`` (``$ref``s into
    ``document``) and of the schemas of its parts."""
    if not isinstance(schema, dict):
        return True
    if "$ref" in schema:
        return follows_rules(document, _resolve(document, schema["$ref"]), value)
    branches = schema.get("anyOf") or schema.get("oneOf")
    if branches is not None:
        fitting = [b for b in branches if _type_fits(document, b, value)]
        return any(follows_rules(document, b, value) for b in fitting) if fitting else True
    return _own_rules(schema, value) and _parts_follow(document, schema, value)


def _own_rules(schema: dict[str, Any], value: Any) -> bool:
    limit = schema.get("x-max-bytes")
    if limit is not None:
        encoded = value if isinstance(value, str) else json.dumps(value, allow_nan=False)
        if len(encoded.encode("utf-8", "surrogatepass")) > limit:
            return False
    part_limit = schema.get("x-max-part-bytes")
    if part_limit is not None and isinstance(value, str) and any(
            len(p.encode("utf-8", "surrogatepass")) > part_limit for p in value.split("/")):
        return False
    if isinstance(value, dict):
        equal = schema.get("x-equal-lengths")
        if equal and len({len(value.get(name, [])) for name in equal}) > 1:
            return False
        for high, low in (schema.get("x-not-below") or {}).items():
            if high in value and low in value and value[high] < value[low]:
                return False
        total = schema.get("x-max-total-items")
        if total and _count(value, total["of"].split(".")) > total["max"]:
            return False
    return True


def _parts_follow(document: dict[str, Any], schema: dict[str, Any], value: Any) -> bool:
    if isinstance(value, dict):
        names = schema.get("propertyNames")
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if names is not None and not follows_rules(document, names, key):
                return False
            if not follows_rules(document, properties.get(key, extra), item):
                return False
    elif isinstance(value, list):
        return all(follows_rules(document, schema.get("items"), item) for item in value)
    return True


def _count(value: Any, path: list[str]) -> int:
    if not path:
        return len(value) if isinstance(value, list) else 0
    head, rest = path[0], path[1:]
    if not isinstance(value, dict):
        return 0
    if head == "*":
        return sum(_count(item, rest) for item in value.values())
    return _count(value.get(head), rest)


_TYPES = {"string": str, "object": dict, "array": list, "boolean": bool, "null": type(None)}


def _type_fits(document: dict[str, Any], schema: Any, value: Any) -> bool:
    if isinstance(schema, dict) and "$ref" in schema:
        schema = _resolve(document, schema["$ref"])
    kind = schema.get("type") if isinstance(schema, dict) else None
    if kind is None:
        return True
    if kind in ("integer", "number"):
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, _TYPES.get(kind, object))


def _resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.lstrip("#/").split("/"):
        node = node[part]
    return node


def case_follows_rules(document: dict[str, Any], operation: dict[str, Any], case: Any) -> bool:
    """Whether a generated case keeps the rules in its parameters and its JSON body."""
    given = {"path": case.path_parameters or {}, "query": case.query or {}}
    for parameter in operation.get("parameters", []):
        where = given.get(parameter.get("in")) or {}
        name = parameter["name"]
        if name in where and not follows_rules(document, parameter.get("schema"), where[name]):
            return False
    content = operation.get("requestBody", {}).get("content", {})
    body_schema = content.get("application/json", {}).get("schema")
    if body_schema is not None and isinstance(case.body, dict | list):
        return follows_rules(document, body_schema, case.body)
    return True


@schemathesis.hook
def filter_case(context: Any, case: Any) -> bool:
    meta = getattr(case, "meta", None)
    if meta is None or meta.generation.mode.is_negative or context.operation is None:
        return True
    operation = context.operation
    return case_follows_rules(operation.schema.raw_schema, operation.definition.raw, case)
