"""The predictor's explain plumbing: ``top_k`` is checked by name in both protocols, a version
whose blueprint has no explainer (or whose linear model lacks its logged background) is
refused with a message naming the model, and explain is a protected path like predict."""

from __future__ import annotations

import pytest
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferRequest

from driftloop.blueprints import get_blueprint
from driftloop.blueprints.codec import Limits
from driftloop.blueprints.sentiment import SentimentBlueprint
from driftloop.serving.auth import is_protected_path
from driftloop.serving.explain import (
    MAX_EXPLAIN_INSTANCES,
    ExplainUnavailable,
    build_explainer,
    check_instance_count,
    top_k_of,
)
from driftloop.serving.loader import LoadedModel
from driftloop.serving.middleware import classify_path
from tests.integration.conftest_serving import train_text_model
from tests.unit.test_explain import fitted


def v2(parameters: dict | None) -> InferRequest:
    return InferRequest(model_name="m", infer_inputs=[], parameters=parameters)


@pytest.mark.parametrize(
    ("payload", "expected"), [({}, 5), ({"top_k": 12}, 12), ({"top_k": 3.0}, 3)]
)
def test_top_k_v1(payload, expected):
    assert top_k_of({"instances": [], **payload}) == expected


@pytest.mark.parametrize("bad", [0, 101, -1, "3", True, 2.5, None, [3]])
def test_top_k_out_of_range_is_named(bad):
    with pytest.raises(InvalidInput, match=r"^top_k must be an integer from 1 to 100"):
        top_k_of({"instances": [], "top_k": bad})
    with pytest.raises(InvalidInput, match=r"^parameters\.top_k must be an integer"):
        top_k_of(v2({"top_k": bad}))


def test_top_k_v2_parameter():
    assert top_k_of(v2(None)) == 5
    assert top_k_of(v2({"top_k": 7})) == 7


def test_instance_count_is_bounded_by_name():
    check_instance_count(MAX_EXPLAIN_INSTANCES, {})
    with pytest.raises(InvalidInput, match="^instances has 33 items"):
        check_instance_count(MAX_EXPLAIN_INSTANCES + 1, {})
    with pytest.raises(InvalidInput, match="^inputs has 33 items"):
        check_instance_count(MAX_EXPLAIN_INSTANCES + 1, v2(None))


class Unexplained(SentimentBlueprint):
    def explainer(self, model, background=None):
        return None


def loaded(blueprint, model) -> LoadedModel:
    return LoadedModel(model, blueprint, blueprint.codec(model, Limits()), "3", "models:/x/3")


def test_a_blueprint_without_explainer_is_refused_by_name():
    model = train_text_model()
    with pytest.raises(ExplainUnavailable, match=r"^model reviews \(sentiment\) has no explainer"):
        build_explainer("reviews", loaded(Unexplained(), model), None)
    explainer = build_explainer("reviews", loaded(get_blueprint("sentiment"), model), None)
    assert explainer.method == "permutation SHAP over words"


def test_a_linear_table_without_its_background_is_refused_by_name(tmp_path):
    blueprint, model, _ = fitted("penguins", "species", "logistic_regression")
    # a runs:/ URI whose run has no explanations logged (an empty file store)
    version = LoadedModel(
        model, blueprint, blueprint.codec(model), "abc", "runs:/0123456789abcdef/model"
    )
    with pytest.raises(
        ExplainUnavailable, match=r"^model penguins version abc cannot be explained"
    ):
        build_explainer("penguins", version, (tmp_path / "mlruns").as_uri())


@pytest.mark.parametrize(
    "path", ["/v1/models/m:explain", "/v2/models/m/explain", "/v2/models/m/infer"]
)
def test_explain_routes_are_protected_like_predict(path):
    assert is_protected_path(path)


def test_explain_requests_are_counted_per_endpoint():
    assert classify_path("/v1/models/m:explain") == ("m", "v1_explain")
    assert classify_path("/v2/models/m/explain") == ("m", "v2_explain")
