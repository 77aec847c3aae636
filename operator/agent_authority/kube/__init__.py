"""The only code that talks to the Kubernetes apiserver.

Everything here is I/O: clients, CRD installation, ServiceAccounts, tokens, RBAC objects,
SubjectAccessReviews, patches and Events. Decisions are made in ``policy`` and passed in; this
package must not decide anything a unit test would want to table-test.
"""
