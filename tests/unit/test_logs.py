"""Expected events are not logged as errors; real errors still are."""

from __future__ import annotations

import logging

import pytest

from agent_authority import logs

REFUSED = "Webhook 'admit-session' failed permanently: SeverityNotAllowed: SEV4 is not allowed"
RETRIED = (
    "Request attempt #1/9 failed; will retry: GET https://127.0.0.1:1/apis/x -> "
    "APITooManyRequestsError('storage is (re)initializing', {'code': 429}, status=429)"
)


@pytest.mark.parametrize(
    ("message", "level"),
    [
        pytest.param(REFUSED, logging.INFO, id="admission-refusal-is-info"),
        pytest.param(RETRIED, logging.WARNING, id="retried-429-is-a-warning"),
        pytest.param(
            "Handler 'ended/spec.ended' failed permanently: the apiserver refused: x",
            logging.ERROR,
            id="a-handler-failing-stays-an-error",
        ),
        pytest.param(
            "Request attempt #9/9 failed; will retry: GET x -> ServerError(status=500)",
            logging.ERROR,
            id="other-statuses-stay-errors",
        ),
    ],
)
def test_level_for(message: str, level: int) -> None:
    assert logs.level_for(message, logging.ERROR) == level


def test_the_filter_lowers_the_record_it_passes() -> None:
    record = logging.LogRecord("kopf.objects", logging.ERROR, __file__, 1, REFUSED, None, None)
    assert logs.ExpectedLevels().filter(record)
    assert (record.levelno, record.levelname) == (logging.INFO, "INFO")


@pytest.mark.parametrize(("verbose", "logged"), [(False, False), (True, True)])
def test_the_webhook_access_log_is_only_kept_when_verbose(verbose: bool, logged: bool) -> None:
    access = logging.getLogger(logs.ACCESS_LOGGER)
    before = access.level
    try:
        logs.install(verbose=verbose)
        assert access.isEnabledFor(logging.INFO) is logged
        assert access.isEnabledFor(logging.WARNING)  # a failure to answer is still logged
    finally:
        access.setLevel(before)
