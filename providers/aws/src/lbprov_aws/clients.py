"""boto3 clients whose every request passes through CloudCalls.

Each client gets a ``before-call.*.*`` handler that calls :meth:`CloudCalls.before_send` with
``<client>:<Operation>``: that is where the read-only guard refuses a mutating call (before it is
signed or sent) and where every attempt is counted. botocore's own retries are disabled
(``total_max_attempts=1``) so that CloudCalls' tenacity loop is the only retry policy and every
attempt is visible.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3  # type: ignore[import-untyped]
from botocore.client import BaseClient  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]

from lbprov.cloudcalls import CloudCalls
from lbprov_aws.settings import AWSSettings

PREFIXES = ("elbv2", "elb", "ec2")


class AWSClients:
    """The three clients lbprov_aws needs, hooked to one CloudCalls."""

    def __init__(self, settings: AWSSettings, calls: CloudCalls) -> None:
        self.calls = calls
        session = boto3.session.Session(
            aws_access_key_id=settings.access_key_id.get_secret_value() if settings.access_key_id else None,
            aws_secret_access_key=(
                settings.secret_access_key.get_secret_value() if settings.secret_access_key else None
            ),
            region_name=settings.region,
        )
        config = Config(
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            max_pool_connections=20,
        )
        self.clients: dict[str, BaseClient] = {}
        for prefix in PREFIXES:
            client = session.client(prefix, endpoint_url=settings.endpoint_url, config=config)
            client.meta.events.register("before-call.*.*", self._hook(prefix))
            self.clients[prefix] = client

    def _hook(self, prefix: str) -> Callable[..., None]:
        calls = self.calls

        def before_call(model: Any, **_: Any) -> None:
            # Must return None: a non-None value would short-circuit botocore with it as the response.
            calls.before_send(f"{prefix}:{model.name}")

        return before_call

    def call(self, operation: str, **params: Any) -> dict[str, Any]:
        """Call ``<client>:<Operation>`` with CloudCalls' retries."""
        prefix, _, name = operation.partition(":")
        client = self.clients[prefix]
        method = getattr(client, _snake(client, name))
        result: dict[str, Any] = self.calls.call(operation, method, hooked=True, **params)
        return result

    def pages(
        self, operation: str, key: str, *, token_in: str, token_out: str, **params: Any
    ) -> Iterator[dict[str, Any]]:
        """Follow a Marker/NextToken pagination, one CloudCalls call per page."""
        token: str | None = None
        while True:
            page_params = dict(params)
            if token:
                page_params[token_in] = token
            page = self.call(operation, **page_params)
            yield from page.get(key, [])
            token = page.get(token_out)
            if not token:
                return


def _snake(client: BaseClient, name: str) -> str:
    for method, api in client.meta.method_to_api_mapping.items():
        if api == name:
            return str(method)
    raise AttributeError(f"{client.meta.service_model.service_name} has no operation {name}")
