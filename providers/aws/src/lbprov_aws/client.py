"""boto3 clients whose every request passes through CloudCalls.

Each client gets a ``before-call.*.*`` handler that calls :meth:`CloudCalls.before_send` with
``<client>:<Operation>``: that is where the read-only guard refuses a mutating call (before it is
signed or sent) and where every attempt is counted. botocore's own retries are disabled
(``total_max_attempts=1``) so that CloudCalls' tenacity loop is the only retry policy and every
attempt is visible.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

import boto3  # type: ignore[import-untyped]
import botocore.session  # type: ignore[import-untyped]
from botocore.client import BaseClient  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.exceptions import ClientError  # type: ignore[import-untyped]

from lbprov.cloudcalls import CloudCalls
from lbprov_aws import request_body
from lbprov_aws.operations import is_write
from lbprov_aws.settings import AWSSettings
from lbprov_aws.trimmed_models import TrimmingLoader

PREFIXES = ("elbv2", "elb", "ec2")


class WriteObserver(Protocol):
    """Told about every write sent through :meth:`AWSClients.call` (remembered.Remembered keeps
    its cached tags and details current with it)."""

    def before_write(self, operation: str, params: Mapping[str, Any]) -> None: ...

    def after_write(
        self, operation: str, params: Mapping[str, Any], result: Mapping[str, Any] | None
    ) -> None: ...

    def write_failed(self, operation: str, params: Mapping[str, Any]) -> None: ...


class AWSClients:
    """The three clients lbprov_aws needs, hooked to one CloudCalls."""

    def __init__(self, settings: AWSSettings, calls: CloudCalls) -> None:
        self.calls = calls
        self.write_observers: list[WriteObserver] = []
        session = boto3.session.Session(
            botocore_session=_botocore_session(),
            aws_access_key_id=settings.access_key_id.get_secret_value() if settings.access_key_id else None,
            aws_secret_access_key=(
                settings.secret_access_key.get_secret_value() if settings.secret_access_key else None
            ),
            region_name=settings.region,
        )
        config = Config(
            retries={"total_max_attempts": 1, "mode": "standard"},
            # The core's timeouts (the settings fill them): a silent endpoint fails fast, once.
            connect_timeout=calls.timeouts.connect,
            read_timeout=calls.timeouts.read,
            max_pool_connections=20,
            # botocore's own validation of each request against its model, per call: off unless asked
            # (settings.validate_requests says why; the provider tests turn it on).
            parameter_validation=settings.validate_requests,
        )
        self.clients: dict[str, BaseClient] = {}
        for prefix in PREFIXES:
            client = session.client(prefix, endpoint_url=settings.endpoint_url, config=config)
            client.meta.events.register("before-call.*.*", self._hook(prefix))
            request_body.register(client)  # the form body encoded once, not per prepare()
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
        observers = self.write_observers if is_write(operation) else []
        for o in observers:
            o.before_write(operation, params)
        try:
            result: dict[str, Any] = self.calls.call(operation, method, hooked=True, **params)
        except BaseException:
            for o in observers:
                o.write_failed(operation, params)
            raise
        for o in observers:
            o.after_write(operation, params, result)
        return result

    def call_optional(self, operation: str, missing: frozenset[str], **params: Any) -> dict[str, Any] | None:
        """Like :meth:`call`, but an error whose code is in ``missing`` means "not there": ``None``
        (caught inside the retried call, so CloudCalls does not count it as a failure)."""
        prefix, _, name = operation.partition(":")
        method = getattr(self.clients[prefix], _snake(self.clients[prefix], name))

        def attempt(**kw: Any) -> dict[str, Any] | None:
            try:
                result: dict[str, Any] = method(**kw)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in missing:
                    return None
                raise
            return result

        return self.calls.call(operation, attempt, hooked=True, **params)

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


_LOADER_LOCK = threading.Lock()
_LOADER: Any = None


def _botocore_session() -> Any:
    """A fresh botocore session sharing one process-wide data loader: the service models are then
    parsed once per process, not once per provider instance (which costs ~0.1 s per client). The
    loader trims the ec2, elbv2 and elb models to the operations lbprov_aws calls
    (trimmed_models.py), on the search paths the session's own loader has (``AWS_DATA_PATH``)."""
    global _LOADER
    session = botocore.session.get_session()
    with _LOADER_LOCK:
        if _LOADER is None:
            own = session.get_component("data_loader")
            _LOADER = TrimmingLoader(
                extra_search_paths=list(own.search_paths), include_default_search_paths=False
            )
        session.register_component("data_loader", _LOADER)
    return session


#: (service, Operation) -> the client's method name: found once, not by a scan of the service's
#: operations (EC2 has several hundred) on every call.
_SNAKE: dict[tuple[str, str], str] = {}


def _snake(client: BaseClient, name: str) -> str:
    key = (client.meta.service_model.service_name, name)
    if (found := _SNAKE.get(key)) is not None:
        return found
    for method, api in client.meta.method_to_api_mapping.items():
        if api == name:
            _SNAKE[key] = str(method)
            return str(method)
    raise AttributeError(f"{client.meta.service_model.service_name} has no operation {name}")
