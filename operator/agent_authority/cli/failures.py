"""How a CLI command fails: exit codes, and every error as one line instead of a traceback.

Exit codes (the same for every command; ``docs/cli.md`` lists them)::

    0    done
    1    failed or refused: the apiserver or the operator said no, the cluster is unreachable,
         the kubeconfig is missing, a request was Denied; for the offline commands, findings
    2    usage: bad arguments or unreadable input (as argparse)
    130  interrupted (Ctrl-C)

A closed stdout (``agent-authority requests -A | head``) is not an error: the command stops
quietly with status 0.
"""

from __future__ import annotations

import os
import sys

import urllib3

from agent_authority.kube import errors

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """A failure the command explains in one line (printed as ``error: <message>``)."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def _unreachable(e: BaseException) -> str | None:
    """The apiserver's address when ``e`` is a connection failure, else ``None``."""
    if isinstance(e, urllib3.exceptions.MaxRetryError):
        pool = e.pool
        host = getattr(pool, "host", "?")
        port = getattr(pool, "port", None)
        scheme = getattr(pool, "scheme", "https")
        return f"{scheme}://{host}" + (f":{port}" if port else "")
    if isinstance(e, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError):
        return "the apiserver"
    return None


def _reason(e: BaseException) -> str:
    inner = getattr(e, "reason", None) or e
    text = str(inner)
    for known in ("Connection refused", "timed out", "Name or service not known", "certificate"):
        if known.lower() in text.lower():
            return known.lower()
    return text.split(": ", 1)[-1][:200]


def _causes(e: BaseException) -> list[BaseException]:
    """``e`` and what it was raised from (the kube layer translates connection errors)."""
    chain: list[BaseException] = []
    current: BaseException | None = e
    while current is not None and current not in chain and len(chain) < 8:
        chain.append(current)
        current = current.__cause__
    return chain


def message(e: BaseException) -> str | None:
    """The one-line explanation of ``e``, or ``None`` when it is a bug worth a traceback."""
    if isinstance(e, CliError):
        return str(e)
    for cause in _causes(e):
        address = _unreachable(cause)
        if address is not None:
            return (
                f"cannot reach the apiserver at {address} ({_reason(cause)}); is the cluster "
                "running, and are --kubeconfig/--context the ones you meant?"
            )
    if isinstance(e, errors.KubeError):
        return str(e)
    return None


def silence_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so the interpreter's flush cannot fail."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    finally:
        os.close(devnull)
