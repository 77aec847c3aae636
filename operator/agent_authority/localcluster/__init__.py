"""A real local Kubernetes control plane (etcd + kube-apiserver + kube-controller-manager).

Used by the end-to-end tests and by ``agent-authority dev``; no Docker needed. This package owns
obtaining the binaries (``assets``: from ``KUBEBUILDER_ASSETS``/``TEST_ASSET_*`` or built once from
their Go modules into a cache outside the checkout), the PKI (``pki``), the control plane's
configuration and lifecycle (``cluster``; an apiserver trusting OIDC issuers: ``authn``), and the
children and run folders it leaves (``processes``). It is a development tool: the operator itself
never imports it.
"""
