"""The structured authentication configuration a local control plane is started with."""

from __future__ import annotations

import pytest

from agent_authority.localcluster import authn

CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def test_an_issuer_becomes_one_jwt_authenticator_with_prefixed_claims() -> None:
    issuer = authn.JwtIssuer(
        url="https://127.0.0.1:8443", certificate_authority=CA, audiences=("a",)
    )
    document = authn.configuration((issuer,))
    assert document["apiVersion"] == "apiserver.config.k8s.io/v1"
    assert document["kind"] == "AuthenticationConfiguration"
    (jwt,) = document["jwt"]
    assert jwt["issuer"] == {
        "url": "https://127.0.0.1:8443",
        "certificateAuthority": CA,
        "audiences": ["a"],
        "audienceMatchPolicy": "MatchAny",
    }
    assert jwt["claimMappings"] == {
        "username": {"claim": "sub", "prefix": "oidc:"},
        "groups": {"claim": "groups", "prefix": "oidc:"},
    }


@pytest.mark.parametrize(
    ("url", "audiences", "refusal"),
    [
        pytest.param("http://127.0.0.1:8443", ("a",), "requires https", id="plain-http-issuer"),
        pytest.param("https://127.0.0.1:8443", (), "audience is required", id="no-audience"),
    ],
)
def test_an_issuer_the_apiserver_would_refuse_is_refused_here(
    url: str, audiences: tuple[str, ...], refusal: str
) -> None:
    with pytest.raises(ValueError, match=refusal):
        authn.JwtIssuer(url=url, certificate_authority=CA, audiences=audiences)
