"""The session gateway: the operator in the path of every request a gateway-mode session makes.

It owns: the HTTPS server (:mod:`server`), bearer authentication for the gateway's audience
(:mod:`authentication`), its own watched view of sessions and their open streams (:mod:`view`,
fed by :mod:`watching`), and the batched audit records of forwarded calls (:mod:`recording`).
What is allowed is decided in :mod:`agent_authority.policy.gateway`; talking to the apiserver is
:mod:`agent_authority.kube.upstream`. It must not decide policy itself, and it never forwards a
request under any identity but the session's ServiceAccount (impersonated).
"""
