"""Schema-valid input the models refuse is described naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from agent_authority.models import request
from agent_authority.policy import invalid


@pytest.mark.parametrize(
    ("evidence", "says"),
    [
        pytest.param(
            [{"kind": "log", "source": "s", "sha256": "a" * 64, "observedAt": []}],
            "spec.evidence[0].observedAt: Input should be a valid datetime",
            id="observedAt-a-list",
        ),
        pytest.param(
            [
                {
                    "kind": "log",
                    "source": "s",
                    "sha256": "a" * 64,
                    "observedAt": "0000-01-01T00:00:00Z",
                }
            ],
            "spec.evidence[0].observedAt",
            id="observedAt-year-zero",
        ),
    ],
)
def test_describe_invalid_names_the_field(evidence: list[dict[str, Any]], says: str) -> None:
    import pydantic

    spec = {
        "sessionRef": {"name": "s"},
        "action": {"type": "delete-pod", "target": {"kind": "Pod", "namespace": "n", "name": "p"}},
        "hypothesis": "h",
        "evidence": evidence,
    }
    with pytest.raises(pydantic.ValidationError) as refused:
        request.RemediationRequestSpec.model_validate(spec)
    message = invalid.describe_invalid(refused.value)
    assert says in message
    assert "{" not in message
