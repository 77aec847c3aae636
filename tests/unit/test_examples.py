"""Every example in examples/ is valid according to the models (the apiserver test is in e2e)."""

from __future__ import annotations

import pathlib

import pydantic
import pytest
import yaml

from agent_authority.models import crdgen

ROOT = pathlib.Path(__file__).resolve().parents[2]
KINDS = {m.kind: m for m in crdgen.RESOURCES}
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_validates_against_its_model(path: pathlib.Path) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        model = KINDS[doc["kind"]]
        assert issubclass(model, pydantic.BaseModel)
        model.model_validate({"spec": doc["spec"]})


def test_there_is_an_example_of_each_kind() -> None:
    kinds = {yaml.safe_load(p.read_text())["kind"] for p in EXAMPLES}
    assert kinds == set(KINDS)
