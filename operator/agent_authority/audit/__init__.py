"""The tamper-evident audit trail: records, hash chain, signing, sinks and verification.

Every decision of the operator becomes one :class:`~agent_authority.models.audit.AuditRecord`,
correlated by session UID, appended to a SHA-256 hash chain, signed with Ed25519 and written as a
JSON line. A verifier holding only the public key checks a log offline and names the first record
that is not what was written.

Modules, bottom to top:

- ``errors``   the exception tree of this package
- ``signing``  Ed25519 keys (PEM, 0600), key ids, signatures
- ``chain``    canonical JSON, hashing, sealing, and ``Chain``, the one writer of a log
- ``sinks``    ``Sink`` protocol; JSON-lines file, in-memory test double, fan-out, best-effort
- ``verify``   ``verify`` / ``verify_file``: walk a log, report the first failure

Typical wiring::

    signer = signing.Signer(signing.load_or_create_private_key(key_path))
    trail = chain.Chain.resume(log_path, signer, clock=chain.system_clock,
                               mirrors=[sinks.BestEffort(events_sink)])
    trail.append(audit_models.AuditEntry(event=..., correlation_id=session_uid, ...))

This package must not import kopf or a Kubernetes client: mirroring records as Kubernetes Events
is the kube layer's job, which implements :class:`~agent_authority.audit.sinks.Sink`.
"""
