"""Admission webhooks served by the operator: identity stamping, approvals, grant escalation."""
