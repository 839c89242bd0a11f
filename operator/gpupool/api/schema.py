"""Turn a pydantic model's JSON schema into a Kubernetes structural OpenAPI v3 schema.

Who uses this: `gpupool.api.crdgen` calls `structural_schema(Model)` for each spec and
status model. Pydantic already knows every field's type, alias, description, default and
bounds; this module rewrites its JSON Schema into the dialect the API server accepts:

- `$ref`s are inlined (CRD schemas cannot reference definitions);
- `Optional[X]` (`anyOf: [X, null]`) becomes plain `X` (optional = not in `required`);
- `title`, `default: null` and `additionalProperties: false|true` on objects with
  `properties` are dropped (the structural schema prunes or rejects unknown fields);
- numeric `exclusiveMinimum`/`exclusiveMaximum` become OpenAPI v3.0's boolean form;
- an object field that should be filled in with its nested defaults when omitted says so
  itself (`json_schema_extra={"default": {}}`), since pydantic does not call
  `default_factory` while building a schema.

Anything the API server would refuse (a node without `type`, `uniqueItems`, ...) raises
`SchemaError` naming the path, so a bad model fails `make crds`, not `kubectl apply`.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

JsonSchema = dict[str, Any]

_DROP_KEYS = frozenset({"title", "$defs"})


class SchemaError(ValueError):
    """A model cannot be expressed as a structural CRD schema; the message names the field."""


def structural_schema(model: type[BaseModel]) -> JsonSchema:
    """The structural OpenAPI v3 schema of `model`, ready for `openAPIV3Schema.properties`."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs: dict[str, JsonSchema] = raw.get("$defs", {})
    out = _convert(raw, defs, path=model.__name__)
    _check_structural(out, path=model.__name__)
    return out


def _resolve(node: JsonSchema, defs: dict[str, JsonSchema]) -> JsonSchema:
    """Inline a `$ref`, letting keys beside it (description, default) win over the target's."""
    if "$ref" not in node:
        return node
    name = node["$ref"].rsplit("/", 1)[-1]
    target = copy.deepcopy(defs[name])
    siblings = {k: v for k, v in node.items() if k != "$ref"}
    return {**_resolve(target, defs), **siblings}


def _strip_null(node: JsonSchema, defs: dict[str, JsonSchema], path: str) -> JsonSchema:
    """Collapse `anyOf: [X, {type: null}]` into X, keeping the outer keys."""
    branches = node.get("anyOf")
    if not branches:
        return node
    non_null = [b for b in branches if b.get("type") != "null"]
    if len(non_null) == len(branches):
        return node
    if len(non_null) != 1:
        raise SchemaError(
            f"{path}: a union of several types is not structural; use one type "
            "(or the Quantity annotation for int-or-string)"
        )
    inner = _resolve(non_null[0], defs)
    outer = {k: v for k, v in node.items() if k != "anyOf"}
    if "description" in outer:
        inner = {k: v for k, v in inner.items() if k != "description"}
    merged = {**inner, **outer}
    if merged.get("default", 0) is None:
        del merged["default"]
    return merged


def _convert(node: JsonSchema, defs: dict[str, JsonSchema], path: str) -> JsonSchema:
    """Rewrite one pydantic schema node (and everything below it) into the CRD dialect."""
    node = _strip_null(_resolve(node, defs), defs, path)
    out: JsonSchema = {}
    for key, value in node.items():
        if key in _DROP_KEYS:
            continue
        if key == "default" and value is None:
            continue
        if key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            bound = "minimum" if key == "exclusiveMinimum" else "maximum"
            out[bound] = value
            out[key] = True
            continue
        if key == "properties":
            out[key] = {name: _convert(sub, defs, f"{path}.{name}") for name, sub in value.items()}
            continue
        if key == "items":
            out[key] = _convert(value, defs, f"{path}[]")
            continue
        if key == "additionalProperties":
            if isinstance(value, bool):
                continue
            out[key] = _convert(value, defs, f"{path}{{}}")
            continue
        out[key] = value
    if out.get("x-kubernetes-preserve-unknown-fields"):
        out.pop("additionalProperties", None)
    return _order(out)


_KEY_ORDER = (
    "description",
    "type",
    "format",
    "x-kubernetes-int-or-string",
    "anyOf",
    "enum",
    "default",
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-preserve-unknown-fields",
    "required",
    "properties",
    "items",
    "additionalProperties",
    "x-kubernetes-validations",
)


def _order(node: JsonSchema) -> JsonSchema:
    """Put keys in a fixed, readable order (description first) so generated YAML is stable."""
    rank = {k: i for i, k in enumerate(_KEY_ORDER)}
    return dict(sorted(node.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])))


def _check_structural(node: JsonSchema, path: str) -> None:
    """Raise `SchemaError` where the API server would refuse the schema as non-structural."""
    if "$ref" in node or "allOf" in node or "oneOf" in node or "not" in node:
        raise SchemaError(f"{path}: $ref/allOf/oneOf/not are not supported in generated CRD schemas")
    if node.get("uniqueItems"):
        raise SchemaError(f"{path}: uniqueItems is forbidden; use x-kubernetes-list-type: set")
    int_or_string = node.get("x-kubernetes-int-or-string", False)
    if "anyOf" in node and not int_or_string:
        raise SchemaError(f"{path}: anyOf is only allowed for int-or-string fields")
    if "type" not in node and not int_or_string and not node.get("x-kubernetes-preserve-unknown-fields"):
        raise SchemaError(f"{path}: every schema node needs a type")
    if "properties" in node and "additionalProperties" in node:
        raise SchemaError(f"{path}: properties and additionalProperties cannot be used together")
    if not node.get("description"):
        raise SchemaError(f"{path}: add a description (Field(description=...)) so kubectl explain helps")
    for name, sub in node.get("properties", {}).items():
        _check_structural(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        _check_items(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        _check_items(node["additionalProperties"], f"{path}{{}}")


def _check_items(node: JsonSchema, path: str) -> None:
    """Like `_check_structural` for list items and map values, which may omit a description
    when they are scalars (the list field's description covers them)."""
    if node.get("type") == "object" and "properties" in node:
        _check_structural(node, path)
        return
    if "type" not in node and not node.get("x-kubernetes-int-or-string"):
        raise SchemaError(f"{path}: every schema node needs a type")
