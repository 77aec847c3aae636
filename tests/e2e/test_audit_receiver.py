"""The ``/audit`` receiver believes the apiserver's audit client only.

Every user of the local cluster has a client certificate from the cluster CA, so a certificate
chain check alone would let any of them post forged denials and revoke any session. The receiver
pins the apiserver's audit client identity (its certificate's common name).
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
import uuid

from tests.e2e import agents, probe
from tests.e2e.operator_process import OperatorProcess
from tests.e2e.test_sessions import World, _active, grant_spec, world

__all__ = ["world"]


def _forged_denial(namespace: str, service_account: str) -> bytes:
    event = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": str(uuid.uuid4()),
        "stage": "ResponseComplete",
        "verb": "list",
        "requestURI": "/api/v1/secrets",
        "user": {"username": f"system:serviceaccount:{namespace}:{service_account}"},
        "objectRef": {"resource": "secrets", "apiVersion": "v1"},
        "responseStatus": {"code": 403},
        "annotations": {"authorization.k8s.io/decision": "forbid"},
    }
    return json.dumps(
        {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [event]}
    ).encode()


def _post(operator: OperatorProcess, cert: str, key: str, body: bytes) -> int:
    local = operator.local
    context = ssl.create_default_context(cafile=str(local.ca_file))
    context.load_cert_chain(cert, key)
    request = urllib.request.Request(
        f"https://127.0.0.1:{operator.env.options.audit_port}/audit",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as resp:  # noqa: S310
            return int(resp.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def test_a_forged_denial_from_another_client_of_the_ca_is_refused(
    world: World, operator: OperatorProcess
) -> None:
    w = world
    strict = agents.unique("strict")  # the default policy: the first denial revokes
    agents.create_grant(w.admin, strict, grant_spec(w.shop))
    body, token = _active(w, grant=strict)
    name = body["metadata"]["name"]
    account = body["status"]["serviceAccountName"]
    w.local.user_kubeconfig("mallory")  # issues pki/user-mallory.{crt,key} from the cluster CA
    pki = w.local.pki_dir
    status = _post(
        operator,
        str(pki / "user-mallory.crt"),
        str(pki / "user-mallory.key"),
        _forged_denial(w.ns, account),
    )
    assert status == 403, f"the receiver accepted forged events from CN=mallory ({status})"
    time.sleep(3)  # the 1 s audit batch plus handling, had it been believed
    after = agents.get_session(w.admin, w.ns, name)
    assert after["status"]["phase"] == "Active", after["status"]
    assert not after["status"].get("deniedRequests")
    assert probe.status(w.local, f"/api/v1/namespaces/{w.shop}/pods", token) == 200

    # The apiserver's own audit client is still believed: a real denial revokes.
    assert probe.status(w.local, f"/api/v1/namespaces/{w.other}/secrets", token) == 403
    revoked = agents.wait_phase(w.admin, w.ns, name, {"Revoked"}, timeout=20)
    assert revoked["status"]["revocation"]["reason"] == "Deviation"
