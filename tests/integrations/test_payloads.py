"""Inference bodies -> rows, with the formats' own example payloads."""

from __future__ import annotations

import pytest

from monitor.errors import MalformedBody, ValidationFailed
from monitor.integrations.payloads import decode_request, decode_response, join_records
from tests.integrations import fixtures as fx


def test_v1_positional_instances_map_to_the_declared_input_names() -> None:
    rows = decode_request(fx.V1_IRIS_REQUEST, fx.IRIS_INPUT_NAMES)
    assert rows == [
        {"sepal_length": 6.8, "sepal_width": 2.8, "petal_length": 4.8, "petal_width": 1.4},
        {"sepal_length": 6.0, "sepal_width": 3.4, "petal_length": 4.5, "petal_width": 1.6},
    ]


def test_v1_object_instances_keep_their_names() -> None:
    rows = decode_request({"instances": [{"amount": 1.5, "country": "DE"}]}, None)
    assert rows == [{"amount": 1.5, "country": "DE"}]


def test_positional_rows_without_a_declared_order_say_what_to_declare() -> None:
    with pytest.raises(ValidationFailed) as info:
        decode_request(fx.V1_IRIS_REQUEST, None)
    assert "input_names" in info.value.message
    assert info.value.details[0].field == "instances"


def test_a_positional_row_of_the_wrong_width_is_named() -> None:
    with pytest.raises(ValidationFailed) as info:
        decode_request({"instances": [[1.0, 2.0, 3.0, 4.0], [1.0]]}, fx.IRIS_INPUT_NAMES)
    assert info.value.details[0].field == "instances[1]"


def test_a_2d_v2_tensor_is_positional() -> None:
    rows = decode_request(fx.V2_IRIS_REQUEST, fx.IRIS_INPUT_NAMES)
    assert rows[1] == {
        "sepal_length": 6.0,
        "sepal_width": 3.4,
        "petal_length": 4.5,
        "petal_width": 1.6,
    }


def test_one_v2_tensor_per_feature_names_the_features() -> None:
    rows = decode_request(fx.MLSERVER_PD_REQUEST, None)
    assert rows == [{"First Name": "Joanne", "Age": 34}, {"First Name": "Michael", "Age": 22}]


def test_a_flat_2d_tensor_is_read_row_major() -> None:
    body = {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP64", "data": [1, 2, 3, 4]}]}
    assert decode_request(body, ["a", "b"]) == [{"a": 1, "b": 2}, {"a": 3, "b": 4}]


@pytest.mark.parametrize(
    ("tensor", "field"),
    [
        ({"name": "x", "shape": [2], "datatype": "FP32", "data": [1.0]}, "inputs[0].data"),
        ({"name": "x", "shape": [1], "datatype": "INT64", "data": [1.5]}, "inputs[0].data[0]"),
        ({"name": "x", "shape": [1], "datatype": "FP32", "data": ["a"]}, "inputs[0].data[0]"),
        ({"name": "x", "shape": [1], "datatype": "BOOL", "data": [1]}, "inputs[0].data[0]"),
        ({"name": "x", "shape": [1], "datatype": "FLOAT", "data": [1]}, "inputs[0].datatype"),
        ({"name": "x", "shape": [1, 2, 2], "datatype": "FP32", "data": [0] * 4}, "inputs[0].shape"),
    ],
)
def test_a_tensor_that_does_not_fit_its_shape_or_datatype_is_422(
    tensor: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationFailed) as info:
        decode_request({"inputs": [tensor]}, ["a", "b"])
    assert info.value.details[0].field == field


def test_tensors_of_different_batch_sizes_are_refused() -> None:
    body = {
        "inputs": [
            {"name": "a", "shape": [2], "datatype": "FP32", "data": [1, 2]},
            {"name": "b", "shape": [3], "datatype": "FP32", "data": [1, 2, 3]},
        ]
    }
    with pytest.raises(ValidationFailed) as info:
        decode_request(body, None)
    assert info.value.details[0].field == "inputs[1].shape"


@pytest.mark.parametrize(
    "body", [[1, 2], {"instance": []}, {"inputs": [{"shape": [1]}]}, {"instances": 3}]
)
def test_a_body_of_an_unknown_shape_is_400(body: object) -> None:
    with pytest.raises(MalformedBody):
        decode_request(body, None)


def test_seldon_names_give_the_feature_names() -> None:
    assert decode_request(fx.SELDON_REQUEST, None) == [{"a": 1, "b": 2}, {"a": 3, "b": 4}]


def test_responses_give_one_prediction_per_row() -> None:
    assert decode_response(fx.V1_IRIS_RESPONSE) == [{"prediction": 1}, {"prediction": 1}]
    assert decode_response(fx.V2_IRIS_RESPONSE) == [{"prediction": 1}, {"prediction": 1}]
    assert decode_response(fx.MLSERVER_IRIS_RESPONSE) == [{"prediction": 2}]
    assert decode_response(fx.SELDON_RESPONSE) == [{"prediction": 0.43782349911420193}]


def test_further_output_tensors_are_kept_beside_the_prediction() -> None:
    body = {
        "outputs": [
            {"name": "predict", "shape": [1], "datatype": "INT64", "data": [1]},
            {"name": "proba", "shape": [1, 2], "datatype": "FP32", "data": [[0.2, 0.8]]},
        ]
    }
    assert decode_response(body) == [{"prediction": 1, "outputs": {"proba": [0.2, 0.8]}}]


def test_joined_records_take_ids_from_the_call_and_the_row() -> None:
    features = decode_request(fx.V1_IRIS_REQUEST, fx.IRIS_INPUT_NAMES)
    predictions = decode_response(fx.V1_IRIS_RESPONSE)
    records = join_records("ce-1", features, predictions, {"model": "iris"})
    assert [r["prediction_id"] for r in records] == ["ce-1:0", "ce-1:1"]
    assert records[0]["prediction"] == 1
    assert records[0]["features"]["petal_width"] == 1.4


def test_halves_with_different_row_counts_do_not_join() -> None:
    with pytest.raises(ValidationFailed):
        join_records("k", [{"a": 1}], [{"prediction": 1}, {"prediction": 2}], {})


def test_a_response_alone_becomes_records_without_features() -> None:
    records = join_records("k", None, [{"prediction": 2}], {"model": "m"})
    assert records == [{"model": "m", "prediction_id": "k:0", "features": {}, "prediction": 2}]


def test_the_declared_order_is_input_names_then_the_schema() -> None:
    from monitor.integrations.payloads import declared_order

    assert declared_order({"input_names": ["b", "a"]}, ["a", "b"]) == ["b", "a"]
    assert declared_order({}, ["a", "b"]) == ["a", "b"]
    assert declared_order({}, []) is None
