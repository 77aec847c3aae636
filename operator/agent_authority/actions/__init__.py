"""The remediation action catalog: one module per action, each plan -> dry-run -> apply -> inverse.

Actions perform changes through the ``kube`` layer; what they may do is decided in ``policy``.
"""
