"""Property-based fuzzing of RemediationRequests against the real apiserver and operator.

Specs are drawn from the generated CRD schema (``crds/``, through hypothesis-jsonschema) and then
damaged at one random place with a random JSON value (wrong types, empty strings, nulls, lists for
objects...). The property, for every object: either the apiserver refuses it with a message that
names a field under ``spec``, or the operator gives it a phase and conditions that say why; and
no handler in the operator fails with a traceback. Fixed seed, small budget (about a minute).
"""

from __future__ import annotations

import copy
import pathlib
import random
import time
from typing import Any

import hypothesis
import pydantic
import pytest
import yaml
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from kubernetes import client
from pydantic import alias_generators

from agent_authority.models import GROUP, VERSION, base, grant, request
from tests.e2e import agents
from tests.e2e.operator_process import OperatorProcess
from tests.e2e.test_remediation import (
    World,
    _grant_spec,
    _session,
    world,
)

__all__ = ["world"]

ROOT = pathlib.Path(__file__).resolve().parents[2]
CRD = ROOT / "crds" / "agentauthority.io_remediationrequests.yaml"
BUDGET_SECONDS = 45.0
SETTLE_SECONDS = 30.0
MAX_EXAMPLES = 60
SEED = 20261201


def _json_schema(node: Any) -> Any:
    """The CRD's OpenAPI schema as plain JSON Schema (Kubernetes extensions dropped)."""
    if isinstance(node, dict):
        return {
            key: _json_schema(value)
            for key, value in node.items()
            if not key.startswith("x-kubernetes-") and key != "description"
        }
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    return node


def _required(model: type[pydantic.BaseModel]) -> list[str]:
    return [
        alias_generators.to_camel(name)
        for name, field in model.model_fields.items()
        if field.is_required()
    ]


def _spec_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD.read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    schema = _json_schema(schema)
    # The CRD states required fields as CEL rules (so that every rule is checked); the generator
    # needs them as JSON Schema, taken from the models.
    props = schema["properties"]
    schema["required"] = _required(request.RemediationRequestSpec)
    props["sessionRef"]["required"] = _required(base.LocalObjectReference)
    props["rollbackOf"]["required"] = _required(base.LocalObjectReference)
    props["action"]["required"] = _required(request.Action)
    props["action"]["properties"]["target"]["required"] = _required(request.Target)
    props["evidence"]["items"]["required"] = _required(request.Evidence)
    # Enumerations too are CEL rules in the CRD: give the generator the allowed values.
    props["action"]["properties"]["type"]["enum"] = [t.value for t in grant.ActionType]
    props["action"]["properties"]["target"]["properties"]["kind"]["enum"] = [
        k.value for k in request.TargetKind
    ]
    props["evidence"]["items"]["properties"]["kind"]["enum"] = [
        k.value for k in request.EvidenceKind
    ]
    # Keep strings short (a fast run, and the long ones are covered by their maxLength tests).
    schema["properties"]["hypothesis"]["maxLength"] = 40
    schema["properties"]["evidence"]["maxItems"] = 2
    schema["properties"].pop("requester", None)  # stamped by the webhook whatever is sent
    result: dict[str, Any] = schema
    return result


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(["", "x", "0", "web"]),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.sampled_from("ab"), inner),
    max_leaves=3,
)


DAMAGE: list[Any] = [[], {}, "", None, 0, -1, True, "x", [""], {"name": ""}, "0000-01-01T00:00:00Z"]
"""Values that crashed or confused the webhooks and the operator before (issue 14)."""


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


SPECS = from_schema(_spec_schema())  # built once: canonicalising the schema is the slow part


@st.composite
def specs(draw: st.DrawFn, session: str, shop: str, chance: random.Random) -> dict[str, Any]:
    """A schema-shaped spec, then (half the time) damaged at one place ``chance`` picks.

    ``chance`` is a ``random.Random`` with a fixed seed: Hypothesis draws its simplest choices
    first, which would damage the same field over and over within a small budget.
    """
    spec: dict[str, Any] = draw(SPECS)
    damage = draw(JSON)  # drawn every time, used or not: the draws must not depend on ``chance``
    # Mostly the fuzz session and the namespace in scope, so the operator evaluates it.
    if chance.random() < 0.8 and isinstance(spec.get("sessionRef"), dict):
        spec["sessionRef"]["name"] = session
    target = (spec.get("action") or {}).get("target")
    if isinstance(target, dict) and chance.random() < 0.8:  # mostly a target in scope
        if target.get("kind") == "Node":
            target.pop("namespace", None)
        else:
            target["namespace"] = shop
    if chance.random() < 0.5 and _paths(spec):
        spec = copy.deepcopy(spec)
        path = chance.choice(_paths(spec))
        parent: Any = spec
        for part in path[:-1]:
            parent = parent[part]
        parent[path[-1]] = chance.choice(DAMAGE) if chance.random() < 0.5 else damage
    return spec


def _fuzz_grant(w: World) -> str:
    name = agents.unique("fuzz")
    spec = _grant_spec(w.shop)
    for entry in spec["remediations"]:
        entry["autonomy"] = "propose"  # nothing the fuzzer asks for is ever applied
        entry.pop("limits", None)
    spec["approval"]["timeoutSeconds"] = 600
    agents.create_grant(w.admin, name, spec)
    return name


def _open(w: World, grant: str) -> tuple[str, Any]:
    s = _session(w, grant, name=agents.unique("fz"))
    return s.name, s.api


def _revoked(w: World, session: str) -> bool:
    phase = (agents.get_session(w.admin, w.ns, session).get("status") or {}).get("phase")
    return phase in ("Revoked", "Ended", "Expired")


def test_every_fuzzed_request_is_refused_by_field_or_reaches_a_phase(
    world: World, operator: OperatorProcess
) -> None:
    w = world
    grant = _fuzz_grant(w)
    current = dict(zip(("session", "api"), _open(w, grant), strict=True))
    started = time.monotonic()
    log_offset = operator.log_path.stat().st_size
    chance = random.Random(SEED)
    refused: list[tuple[dict[str, Any], int, str]] = []
    admitted: list[str] = []
    revoked: list[str] = []

    @hypothesis.seed(SEED)
    @hypothesis.settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=False,
        suppress_health_check=list(hypothesis.HealthCheck),
        phases=[hypothesis.Phase.generate],
    )
    @hypothesis.given(data=st.data())
    def one(data: st.DataObject) -> None:
        # Always draw: generation must not depend on the time left.
        spec = data.draw(specs(current["session"], w.shop, chance))
        if time.monotonic() - started > BUDGET_SECONDS:
            return
        name = agents.unique("fz")
        try:
            agents.create_request(current["api"], w.ns, name, spec)
        except client.ApiException as e:
            refused.append((spec, int(e.status or 0), agents.refusal(e)))
            if "cannot create resource" in agents.refusal(e):
                # An out-of-scope request before this one revoked the session (a deviation),
                # and with it the RBAC to create requests: go on with a fresh session.
                revoked.append(current["session"])
                current.update(zip(("session", "api"), _open(w, grant), strict=True))
            return
        admitted.append(name)

    one()
    print(
        f"\n[fuzz] {len(refused) + len(admitted)} requests in {time.monotonic() - started:.1f} s: "
        f"{len(refused)} refused at admission, {len(admitted)} admitted, "
        f"{len(revoked)} sessions revoked for out-of-scope requests"
    )
    for _, status, message in refused[:8]:
        print(f"[fuzz] refused {status}: {message[:160]}")
    for session in revoked:
        assert _revoked(w, session), f"session {session} lost its RBAC but is not revoked"
    for spec, status, message in refused:
        if "cannot create resource" in message:
            continue  # RBAC of a revoked session (checked above)
        assert 400 <= status < 500, (status, message, spec)
        assert "spec" in message, (message, spec)
        assert "has no attribute" not in message, (message, spec)
        assert "failed calling webhook" not in message, (message, spec)

    custom = client.CustomObjectsApi(w.admin)
    deadline = time.monotonic() + SETTLE_SECONDS
    pending = set(admitted)
    while pending and time.monotonic() < deadline:
        for name in sorted(pending):
            found = custom.get_namespaced_custom_object(
                GROUP, VERSION, w.ns, "remediationrequests", name
            )
            status = found.get("status") or {}
            if status.get("phase") and status.get("conditions"):
                for condition in status["conditions"]:
                    assert condition.get("message"), (name, status)
                pending.discard(name)
        time.sleep(0.5)
    assert not pending, f"admitted requests without a phase and conditions: {sorted(pending)}"
    with operator.log_path.open("rb") as log:
        log.seek(log_offset)
        written = log.read().decode(errors="replace")
    for marker in ("Traceback", "failed with an exception"):
        assert marker not in written, f"the operator logged {marker!r}:\n{operator.tail(60)}"


@pytest.mark.parametrize("value", [[], {}, "", None, 3, False])
def test_the_schema_strategy_covers_wrong_types(value: Any) -> None:
    """The damage strategy draws each of these kinds of value (a cheap check of the fuzzer)."""
    found = hypothesis.find(JSON, lambda v: v == value or (v is value))
    assert found == value
