"""The admission webhook server: kopf's, with a request body limit the apiserver can actually send.

kopf's server is an aiohttp application with aiohttp's default body limit of 1 MiB, so an
AdmissionReview over 1 MiB (an object near the apiserver's own limits, or an UPDATE carrying
object and oldObject) is answered with a bare HTTP 413. The apiserver turns that into "failed
calling webhook", a 500 that names neither the field nor the size. This server reads reviews up
to :data:`MAX_REVIEW_BYTES` (the apiserver accepts request bodies of at most 3 MiB; an UPDATE
review carries two copies), so such a request is reviewed like any other and the schema or the
handlers refuse it by field name. Only a review over that size gets the 413.
"""

from __future__ import annotations

import aiohttp.web
import kopf

MAX_REVIEW_BYTES = 8 * 1024 * 1024


class WebhookServer(kopf.WebhookServer):
    """``kopf.WebhookServer`` reading admission reviews up to :data:`MAX_REVIEW_BYTES`."""

    @staticmethod
    async def _serve(fn: kopf.WebhookFn, request: aiohttp.web.Request) -> aiohttp.web.Response:
        roomy = request.clone(client_max_size=MAX_REVIEW_BYTES)
        return await kopf.WebhookServer._serve(fn, roomy)
