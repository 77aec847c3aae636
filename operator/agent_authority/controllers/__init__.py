"""Thin kopf handlers, one module per custom resource, and the operator runtime.

Handlers read the object, ask ``policy`` for a decision, act through ``kube`` and write status;
they hold no decision logic of their own. Importing :mod:`agent_authority.runtime` registers
every handler.

The IncidentSession controller is split by responsibility (each module's docstring says more):
``sessions`` (reconcile and the kopf wiring), ``session_activation`` (admit or deny, give
credentials), ``session_revocation`` (the one way a session ends, credentials removed, the
start-up sweep), ``session_rotation`` (token rotation, grant changes), ``session_lifetime``
(TTL, ``spec.ended`` and rotation while Active), ``session_records`` (audit records and the
digest), ``session_state`` (locks, slots, conditional transitions), ``session_fields`` (phases,
times, conditions; no I/O), ``session_settings`` (operator-wide knobs) and ``session_reads``
(what a session may read of its own). ``persistence`` tells kopf, for sessions and requests,
whether one was handled from its status, so kopf writes no diff base to them.
"""
