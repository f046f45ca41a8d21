"""Inference payloads -> rows: KServe V1, the Open Inference Protocol v2 and Seldon's protocol.

Model servers log the bodies they were called with and answered, not our records. This module
turns one such body into one entry per row of the batch: ``decode_request`` gives each row's
features, ``decode_response`` each row's prediction fields, and ``join_records`` pairs them into
the prediction-log records the ingest path checks and stores. Every source that receives these
bodies (the KServe/Seldon CloudEvents receiver, the broker consumer) decodes them here.

Accepted shapes (a body is already parsed JSON):

- KServe V1: ``{"instances": [{name: value}, ...]}`` or ``{"instances": [[v, ...], ...]}``
  (positional), answered by ``{"predictions": [...]}``.
- Open Inference Protocol v2: ``{"inputs": [{name, shape, datatype, data}, ...]}``, either one
  tensor per feature (shape ``[n]`` or ``[n, 1]``) or one 2-D tensor ``[n, k]`` (positional),
  answered by ``{"outputs": [...]}``; ``data`` flat or nested, row-major.
- Seldon (Core 1) protocol: ``{"data": {"names": [...], "ndarray": [[...]]}}`` or
  ``{"data": {"tensor": {"shape", "values"}}}``.

Positional values map to features by the model's declared order (``input_names`` or the
feature schema); without one the body is refused, saying what to declare. A body of an unknown
shape is a ``MalformedBody`` (400); a tensor whose data does not fit its shape or datatype is a
``ValidationFailed`` (422). Both name the field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from monitor.errors import MalformedBody, Problem, ValidationFailed

Row = dict[str, Any]

MAX_ROWS = 50_000
_INTEGER_TYPES = frozenset(
    {"UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64"}
)
_FLOAT_TYPES = frozenset({"FP16", "FP32", "FP64", "BF16"})
DATATYPES = _INTEGER_TYPES | _FLOAT_TYPES | {"BOOL", "BYTES"}


def _malformed(field: str, problem: str) -> MalformedBody:
    return MalformedBody(f"{field} {problem}", [Problem(problem, field=field)])


def _invalid(field: str, problem: str) -> ValidationFailed:
    return ValidationFailed(f"{field} {problem}", [Problem(problem, field=field)])


# -- requests ---------------------------------------------------------------------------------


def decode_request(body: Any, input_names: Sequence[str] | None) -> list[Row]:
    """Each row's features (name -> value) from a V1, OIP or Seldon request body."""
    if not isinstance(body, dict):
        raise _malformed("body", "must be a JSON object with 'instances', 'inputs' or 'data'")
    if "instances" in body:
        return _v1_instances(body["instances"], input_names)
    if "inputs" in body:
        return _oip_inputs(body["inputs"], input_names)
    if "data" in body:
        names, rows = _seldon_data(body["data"], "data")
        return _positional(rows, names or input_names, "data")
    raise _malformed("body", "has none of 'instances' (KServe V1), 'inputs' (V2) or 'data'")


def _v1_instances(instances: Any, input_names: Sequence[str] | None) -> list[Row]:
    if not isinstance(instances, list):
        raise _malformed("instances", "must be a list")
    _check_rows(len(instances), "instances")
    if all(isinstance(i, dict) for i in instances):
        return [dict(i) for i in instances]
    if any(isinstance(i, dict) for i in instances):
        raise _invalid("instances", "mixes objects and positional rows")
    rows = [i if isinstance(i, list) else [i] for i in instances]
    return _positional(rows, input_names, "instances")


def _positional(
    rows: Sequence[Sequence[Any]], names: Sequence[str] | None, field: str
) -> list[Row]:
    if not rows:
        return []
    width = len(rows[0])
    if not names:
        raise ValidationFailed(
            f"{field} holds positional values ({width} per row), but the model declares no "
            "feature order: set 'input_names' (or 'features') in PUT /v1/models/{model}",
            [Problem("positional values need the model's 'input_names'", field=field)],
        )
    for index, row in enumerate(rows):
        if len(row) != len(names):
            raise _invalid(
                f"{field}[{index}]",
                f"has {len(row)} values; the model declares {len(names)} input_names",
            )
    return [dict(zip(names, row, strict=True)) for row in rows]


def _oip_inputs(inputs: Any, input_names: Sequence[str] | None) -> list[Row]:
    tensors = _tensors(inputs, "inputs")
    if not tensors:
        return []
    if len(tensors) == 1 and tensors[0].width > 1:
        return _positional(tensors[0].rows(), input_names, "inputs[0]")
    n = tensors[0].n
    for pos, t in enumerate(tensors):
        if t.width != 1:
            raise _invalid(
                f"inputs[{pos}].shape",
                "must be [n] or [n, 1] when the request has one tensor per feature",
            )
        if t.n != n:
            raise _invalid(f"inputs[{pos}].shape", f"has {t.n} rows; inputs[0] has {n}")
    columns = [(t.name, t.column()) for t in tensors]
    return [{name: col[i] for name, col in columns} for i in range(n)]


def _seldon_data(data: Any, field: str) -> tuple[list[str] | None, list[list[Any]]]:
    if not isinstance(data, dict):
        raise _malformed(field, "must be an object with 'ndarray' or 'tensor'")
    names = data.get("names")
    if names is not None and not (isinstance(names, list) and all(type(n) is str for n in names)):
        raise _invalid(f"{field}.names", "must be a list of strings")
    if "ndarray" in data:
        rows = data["ndarray"]
        if not isinstance(rows, list):
            raise _malformed(f"{field}.ndarray", "must be a list")
        _check_rows(len(rows), f"{field}.ndarray")
        return names or None, [r if isinstance(r, list) else [r] for r in rows]
    if "tensor" in data:
        tensor = data["tensor"]
        if not isinstance(tensor, dict):
            raise _malformed(f"{field}.tensor", "must be an object with 'shape' and 'values'")
        t = Tensor.parse(
            {
                "name": "tensor",
                "datatype": "FP64",
                "shape": tensor.get("shape"),
                "data": tensor.get("values"),
            },
            f"{field}.tensor",
        )
        return names or None, t.rows()
    raise _malformed(field, "has neither 'ndarray' nor 'tensor'")


# -- responses --------------------------------------------------------------------------------


def decode_response(body: Any) -> list[Row]:
    """Each row's prediction fields (``prediction``, and ``outputs`` for further tensors)."""
    if not isinstance(body, dict):
        raise _malformed("body", "must be a JSON object with 'predictions', 'outputs' or 'data'")
    if "predictions" in body:
        predictions = body["predictions"]
        if not isinstance(predictions, list):
            raise _malformed("predictions", "must be a list")
        _check_rows(len(predictions), "predictions")
        return [{"prediction": _scalar(p)} for p in predictions]
    if "outputs" in body:
        return _oip_outputs(body["outputs"])
    if "data" in body:
        _, rows = _seldon_data(body["data"], "data")
        return [{"prediction": _scalar(r)} for r in rows]
    raise _malformed("body", "has none of 'predictions' (KServe V1), 'outputs' (V2) or 'data'")


def _oip_outputs(outputs: Any) -> list[Row]:
    tensors = _tensors(outputs, "outputs")
    if not tensors:
        return []
    n = tensors[0].n
    for pos, t in enumerate(tensors):
        if t.n != n:
            raise _invalid(f"outputs[{pos}].shape", f"has {t.n} rows; outputs[0] has {n}")
    first = [_scalar(v) for v in tensors[0].rows()]
    if len(tensors) == 1:
        return [{"prediction": p} for p in first]
    others = [(t.name, [_scalar(v) for v in t.rows()]) for t in tensors[1:]]
    return [
        {"prediction": p, "outputs": {name: col[i] for name, col in others}}
        for i, p in enumerate(first)
    ]


def _scalar(value: Any) -> Any:
    """A one-element row is its element: ``[0.87]`` is the prediction 0.87."""
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value


# -- tensors ----------------------------------------------------------------------------------


class Tensor:
    """One OIP tensor, checked: its data fits its shape and its datatype."""

    def __init__(self, name: str, shape: list[int], flat: list[Any]) -> None:
        self.name = name
        self.shape = shape
        self.flat = flat

    @property
    def n(self) -> int:
        return self.shape[0] if self.shape else 1

    @property
    def width(self) -> int:
        return math.prod(self.shape[1:]) if len(self.shape) > 1 else 1

    def rows(self) -> list[list[Any]]:
        w = self.width
        return [self.flat[i * w : (i + 1) * w] for i in range(self.n)]

    def column(self) -> list[Any]:
        return self.flat

    @classmethod
    def parse(cls, raw: Any, field: str) -> Tensor:
        if not isinstance(raw, dict):
            raise _malformed(field, "must be an object with name, shape, datatype and data")
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            raise _malformed(f"{field}.name", "must be a non-empty string")
        shape = raw.get("shape")
        if not (
            isinstance(shape, list)
            and all(type(d) is int and d >= 0 for d in shape)
            and len(shape) <= 2
        ):
            raise _invalid(
                f"{field}.shape", "must be a list of at most two non-negative whole numbers"
            )
        datatype = raw.get("datatype")
        if datatype not in DATATYPES:
            raise _invalid(f"{field}.datatype", f"must be one of {', '.join(sorted(DATATYPES))}")
        if "data" not in raw:
            raise _malformed(f"{field}.data", "is required")
        flat = _flatten(raw["data"], f"{field}.data")
        expected = math.prod(shape) if shape else 1
        if len(flat) != expected:
            raise _invalid(
                f"{field}.data", f"has {len(flat)} values; shape {shape} needs {expected}"
            )
        _check_rows(shape[0] if shape else 1, f"{field}.shape")
        _check_datatype(flat, str(datatype), f"{field}.data")
        return cls(name, list(shape), flat)


def _tensors(raw: Any, field: str) -> list[Tensor]:
    if not isinstance(raw, list):
        raise _malformed(field, "must be a list of tensors")
    tensors = [Tensor.parse(t, f"{field}[{i}]") for i, t in enumerate(raw)]
    names = [t.name for t in tensors]
    if len(set(names)) != len(names):
        raise _invalid(field, "has two tensors with the same name")
    return tensors


def _flatten(data: Any, field: str) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    if not any(isinstance(v, list) for v in data):
        return data
    out: list[Any] = []
    for v in data:
        out.extend(_flatten(v, field) if isinstance(v, list) else [v])
    return out


_KINDS = {"BOOL": frozenset({bool}), "BYTES": frozenset({str})}
_NUMBERS = frozenset({int, float})


def _check_datatype(flat: Sequence[Any], datatype: str, field: str) -> None:
    kinds = set(map(type, flat))  # the common case, checked in one pass: all of the right type
    if kinds <= _KINDS.get(datatype, _NUMBERS) and (
        datatype not in _INTEGER_TYPES or float not in kinds
    ):
        return

    def bad(index: int, what: str) -> ValidationFailed:
        return _invalid(f"{field}[{index}]", f"is {what}; datatype {datatype} needs another kind")

    for index, v in enumerate(flat):
        if datatype == "BOOL":
            if not isinstance(v, bool):
                raise bad(index, type(v).__name__)
        elif datatype == "BYTES":
            if not isinstance(v, str):
                raise bad(index, type(v).__name__)
        elif isinstance(v, bool) or not isinstance(v, int | float):
            raise bad(index, type(v).__name__)
        elif datatype in _INTEGER_TYPES and not float(v).is_integer():
            raise bad(index, "not a whole number")


def _check_rows(n: int, field: str) -> None:
    if n > MAX_ROWS:
        raise _invalid(field, f"has {n} rows; the limit is {MAX_ROWS}")


# -- records ----------------------------------------------------------------------------------


def row_id(key: str, index: int) -> str:
    """The prediction id of row ``index`` of the call ``key``: a redelivery maps to the same."""
    return f"{key}:{index}"


def join_records(
    key: str,
    features: Sequence[Mapping[str, Any]] | None,
    predictions: Sequence[Mapping[str, Any]] | None,
    common: Mapping[str, Any],
) -> list[Row]:
    """One prediction-log record per row: row ``i``'s features and prediction fields, the
    ``common`` fields (model, version, timestamp, ...), and the id ``row_id(key, i)``.

    Either half may be missing (a request whose response never came, a response logged
    alone); when both are present they must have the same number of rows.
    """
    n_features = None if features is None else len(features)
    n_predictions = None if predictions is None else len(predictions)
    if n_features is not None and n_predictions is not None and n_features != n_predictions:
        raise _invalid("predictions", f"has {n_predictions} rows; the request had {n_features}")
    n = n_features if n_features is not None else n_predictions or 0
    out: list[Row] = []
    for i in range(n):
        record: Row = {**common, "prediction_id": row_id(key, i)}
        record["features"] = dict(features[i]) if features is not None else {}
        if predictions is not None:
            record.update(predictions[i])
        out.append(record)
    return out


def declared_order(config: Mapping[str, Any], schema_order: Sequence[str]) -> list[str] | None:
    """The feature order positional values map to: the model's ``input_names``, else the order
    of its feature schema (declared with ``features``), else None (positional is refused)."""
    names = config.get("input_names")
    if names:
        return [str(n) for n in names]
    return list(schema_order) or None
