"""The admission webhook server: kopf's, with a request body limit the apiserver can actually send,
and a hook that installs the webhook configurations for each address it serves at.

kopf's server is an aiohttp application with aiohttp's default body limit of 1 MiB, so an
AdmissionReview over 1 MiB (an object near the apiserver's own limits, or an UPDATE carrying
object and oldObject) is answered with a bare HTTP 413. The apiserver turns that into "failed
calling webhook", a 500 that names neither the field nor the size. This server reads reviews up
to :data:`MAX_REVIEW_BYTES` (the apiserver accepts request bodies of at most 3 MiB; an UPDATE
review carries two copies), so such a request is reviewed like any other and the schema or the
handlers refuse it by field name. Only a review over that size gets the 413.

``configure`` (when given) is awaited with each client config the server yields (its URL and
CA bundle: at start, and again when the certificate files change), after it listens and before
kopf sees the config: the operator installs its own webhook configurations there
(:func:`agent_authority.webhooks.configuration.apply`) instead of kopf's configuration manager.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp.web
import kopf

MAX_REVIEW_BYTES = 8 * 1024 * 1024
Configure = Callable[[kopf.WebhookClientConfig], Awaitable[None]]


class WebhookServer(kopf.WebhookServer):
    """``kopf.WebhookServer`` reading admission reviews up to :data:`MAX_REVIEW_BYTES`, calling
    ``configure`` with every client config it serves at."""

    def __init__(self, *, configure: Configure | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.configure = configure

    async def __call__(self, fn: kopf.WebhookFn) -> AsyncIterator[kopf.WebhookClientConfig]:
        async for client_config in super().__call__(fn):
            if self.configure is not None:
                await self.configure(client_config)
            yield client_config

    @staticmethod
    async def _serve(fn: kopf.WebhookFn, request: aiohttp.web.Request) -> aiohttp.web.Response:
        roomy = request.clone(client_max_size=MAX_REVIEW_BYTES)
        return await kopf.WebhookServer._serve(fn, roomy)
