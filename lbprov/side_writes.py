"""Waiting for the writes a provider's apply started beside its others.

GCP and AWS overlap a new load balancer's independent creates (``lbprov_gcp.overlap``,
``lbprov_aws.apply.overlap``). Both keep the same rule, which this function is: an apply returns or
raises only after every write it started has ended (no write of a Service goes on after its sync
has been answered, and a crash-repair plan never races one), and the error raised is the first one,
in the Service's own apply; any later one is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import Future
from typing import Any


def wait_all(futures: Iterable[Future[Any]], *, raise_first: bool, log: logging.Logger) -> None:
    """Wait for every future; raise the first failure when ``raise_first``, else log it (the caller
    is raising an error of the apply itself)."""
    first: BaseException | None = None
    for future in futures:
        exc = future.exception()
        if exc is not None and first is None:
            first = exc
        elif exc is not None:
            log.warning("another change of the same apply failed too: %s", exc)
    if first is not None:
        if raise_first:
            raise first
        log.warning("a change applied beside the one that failed failed too: %s", first)
