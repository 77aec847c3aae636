"""A tiny OIDC issuer for tests: discovery document and JWKS over HTTPS on 127.0.0.1, and id
tokens (RS256) minted by the test with a key made at start-up.

It does only what an apiserver needs from an identity provider (``/.well-known/openid-
configuration`` and the keys it names); people get their id tokens from :meth:`Issuer.id_token`
instead of a login flow. :func:`foreign_token` and :func:`forged_token` make tokens this
issuer never signed.
"""

from __future__ import annotations

import base64
import http.server
import json
import pathlib
import ssl
import threading
import time
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from agent_authority import certs as pki
from agent_authority.localcluster import authn

AUDIENCE = "agent-authority-approvals"
KEY_ID = "test-key-1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _uint(value: int) -> str:
    return _b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def sign(key: rsa.RSAPrivateKey, claims: dict[str, Any], kid: str = KEY_ID) -> str:
    """A compact JWS (RS256) of ``claims``."""
    header = {"alg": "RS256", "typ": "JWT", "kid": kid}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64(signature)}"


def foreign_token(subject: str, groups: list[str]) -> str:
    """An id token from another issuer with its own key: no apiserver here trusts it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    claims = {
        "iss": "https://login.elsewhere.invalid",
        "sub": subject,
        "aud": AUDIENCE,
        "groups": groups,
        "iat": now,
        "exp": now + 600,
    }
    return sign(key, claims, kid="elsewhere")


def forged_token(issuer: Issuer, subject: str, groups: list[str]) -> str:
    """``issuer``'s claims and key id, signed with a key that is not ``issuer``'s."""
    genuine = issuer.id_token(subject, groups)
    claims = json.loads(base64.urlsafe_b64decode(genuine.split(".")[1] + "=="))
    return sign(rsa.generate_private_key(public_exponent=65537, key_size=2048), claims)


class Issuer:
    """Serves discovery and JWKS on ``https://127.0.0.1:<port>``; ``url`` is the ``iss``."""

    def __init__(self, folder: pathlib.Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        ca = pki.Authority.create(folder, "oidc")
        serving = ca.issue(
            folder, "issuer", common_name="oidc-issuer", ip_addresses=["127.0.0.1"], server=True
        )
        self.ca_pem = ca.files.cert.read_text()
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append(self.path)
                documents = {
                    "/.well-known/openid-configuration": outer.discovery(),
                    "/keys": outer.jwks(),
                }
                document = documents.get(self.path)
                body = json.dumps(document or {"error": "not found"}).encode()
                self.send_response(200 if document else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(serving.cert), str(serving.key))
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}"

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "jwks_uri": f"{self.url}/keys",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    def jwks(self) -> dict[str, Any]:
        numbers = self.key.public_key().public_numbers()
        return {
            "keys": [
                {
                    "kty": "RSA",
                    "use": "sig",
                    "alg": "RS256",
                    "kid": KEY_ID,
                    "n": _uint(numbers.n),
                    "e": _uint(numbers.e),
                }
            ]
        }

    def trusted_by_apiserver(self) -> authn.JwtIssuer:
        """How a local control plane is told to trust this issuer (``oidc:`` prefixes)."""
        return authn.JwtIssuer(
            url=self.url, certificate_authority=self.ca_pem, audiences=(AUDIENCE,)
        )

    def id_token(
        self,
        subject: str,
        groups: list[str],
        *,
        lifetime: int = 600,
        issued_ago: int = 0,
        audience: str = AUDIENCE,
    ) -> str:
        """An id token for ``subject`` in ``groups``, signed with this issuer's key."""
        now = int(time.time()) - issued_ago
        claims = {
            "iss": self.url,
            "sub": subject,
            "aud": audience,
            "groups": groups,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
        }
        return sign(self.key, claims)

    def start(self) -> Issuer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
