"""Admission webhooks served by the operator: identity stamping, session admission, grant
escalation, approvals.

Every webhook is registered ``persistent`` with ``failurePolicy: Fail``: kopf leaves persistent
webhooks in place when the operator stops, so while it is down the apiserver refuses what they
guard instead of letting it through unchecked (fail closed).
"""
