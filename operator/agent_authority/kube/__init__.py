"""The only code that talks to the Kubernetes apiserver.

Everything here is I/O: clients, CRD installation, ServiceAccounts, tokens, RBAC objects,
SubjectAccessReviews, patches and Events. Decisions are made in ``policy`` and passed in; this
package must not decide anything a unit test would want to table-test.

A session's credentials: ``session_refs`` names and labels its objects, ``tokens`` makes its
ServiceAccount, Secret and token, ``session_access`` its Roles and RoleBindings, and
``credentials`` issues them together and revokes them in order; ``readiness`` confirms the
authorizer serves them before a session is Active.
"""
