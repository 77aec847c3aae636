"""Notifications: tell approvers where they are that something needs them, or happened.

Owns what is announced (:mod:`notices`: a request awaiting approval with a link to its page, a
decision, applied/failed, a session revoked), how each receiver format looks (:mod:`formats`:
Slack incoming webhook, Microsoft Teams adaptive card, generic JSON signed with HMAC-SHA256 over
timestamp and body), which receivers are configured (:mod:`receivers`) and delivery
(:mod:`outbox`: a bounded queue and a background task per receiver, retries with capped
backoff, then drop). It must never block or fail the operator: publishing only enqueues, and a
full queue drops the notice (counted in ``metrics``), it never waits.
"""
