"""The approval page: approvers decide from a browser, as themselves.

Owns the web application (``app``: aiohttp, server-rendered HTML, no JavaScript), sign-in and
the session cookie (``logins``), the HTML (``pages``) and starting/stopping the server
(``server``). It holds no authority of its own over requests: it verifies a pasted bearer token
with a TokenReview and then reads and writes *with that person's token* (``kube.people``), so the
approval webhook's SubjectAccessReview, self-approval and N-of-M rules apply unchanged. Which
buttons it shows is decided in ``policy.approval_view``. It must not read with the operator's
credentials on anyone's behalf, nor decide anything the webhook would not.
"""
