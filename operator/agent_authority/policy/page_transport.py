"""Whether the approval page may listen where it is asked to, and which cookie flags it sets.

Bearer tokens are pasted into the page, so it serves plain HTTP only on a loopback address (a
developer's ``approvals serve``) or when the operator says a TLS-terminating proxy sits in front
(``insecure_http``); anywhere else it refuses to start without a certificate.
"""

from __future__ import annotations

import ipaddress

LOOPBACK_NAMES = ("localhost",)


def is_loopback(addr: str) -> bool:
    if addr in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return False


def listen_problem(addr: str, tls: bool, insecure_http: bool) -> str | None:
    """Why the page must not listen on ``addr`` as configured (None when it may)."""
    if tls or is_loopback(addr) or insecure_http:
        return None
    return (
        f"approvals page: refusing plain HTTP on {addr}: people paste bearer tokens into it; "
        "give a certificate and key (--approvals-cert/--approvals-key), listen on a loopback "
        "address, or, behind a TLS-terminating proxy, pass --approvals-insecure-http"
    )


def cookie_secure(tls: bool, insecure_http: bool) -> bool:
    """The cookie's ``Secure`` flag: set whenever the browser reaches the page over HTTPS."""
    return tls or insecure_http
