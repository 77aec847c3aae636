"""Pure decisions of Agent Authority: grants, sessions, remediation requests.

This package owns every decision that needs a table of tests: which RBAC rules a grant compiles
to, whether a session may open and with which rules, what a grant change does to a live session,
when deviations revoke, and (in sibling modules) how remediation requests are judged.

It must not import kopf, a Kubernetes client, or any higher layer of this package (``kube``,
``controllers``, ``webhooks``, ``audit``, ``actions``, ``cli``); it imports
``agent_authority.models`` only. It has no clock and does no I/O: callers read the cluster, resolve
label selectors, and pass ``now`` where a decision depends on time.
"""
