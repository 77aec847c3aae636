"""Thin kopf handlers, one module per custom resource, and the operator runtime.

Handlers read the object, ask ``policy`` for a decision, act through ``kube`` and write status;
they hold no decision logic of their own. Importing :mod:`agent_authority.controllers.runtime`
registers every handler.
"""
