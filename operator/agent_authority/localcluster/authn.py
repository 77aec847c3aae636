"""The apiserver's structured authentication configuration for a local control plane.

A cluster started with :attr:`cluster.Options.jwt_issuers` authenticates id tokens from those
OIDC issuers (``--authentication-config``, ``apiserver.config.k8s.io/v1``), as a cluster behind
a company's identity provider does. Pure: builds the document; :mod:`cluster` writes it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

API_VERSION = "apiserver.config.k8s.io/v1"


@dataclasses.dataclass(frozen=True)
class JwtIssuer:
    """One OIDC issuer the apiserver trusts for id tokens."""

    url: str
    """The issuer (``iss``) and where its discovery document is: ``https://`` only."""
    certificate_authority: str
    """PEM of the CA that signed the issuer's serving certificate."""
    audiences: tuple[str, ...]
    """The token's ``aud`` must name one of these (the client id)."""
    username_claim: str = "sub"
    username_prefix: str = "oidc:"
    groups_claim: str = "groups"
    groups_prefix: str = "oidc:"

    def __post_init__(self) -> None:
        if not self.url.startswith("https://"):
            raise ValueError(f"jwt issuer url {self.url!r}: the apiserver requires https")
        if not self.audiences:
            raise ValueError(f"jwt issuer {self.url!r}: at least one audience is required")


def configuration(issuers: tuple[JwtIssuer, ...]) -> dict[str, Any]:
    """The ``AuthenticationConfiguration`` document trusting ``issuers``."""
    return {
        "apiVersion": API_VERSION,
        "kind": "AuthenticationConfiguration",
        "jwt": [
            {
                "issuer": {
                    "url": issuer.url,
                    "certificateAuthority": issuer.certificate_authority,
                    "audiences": list(issuer.audiences),
                    "audienceMatchPolicy": "MatchAny",
                },
                "claimMappings": {
                    "username": {
                        "claim": issuer.username_claim,
                        "prefix": issuer.username_prefix,
                    },
                    "groups": {"claim": issuer.groups_claim, "prefix": issuer.groups_prefix},
                },
            }
            for issuer in issuers
        ],
    }
