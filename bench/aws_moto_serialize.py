"""moto's serializer alone, stock against the sandbox's response path, on the answers of real creates.

    python bench/aws_moto_serialize.py [--services 30] [--repeat 5]

Runs ``bench/aws_moto_calls.py``'s create and add_node for ``--services`` Services in this process,
keeping every (serializer class, operation, value picker, result) that moto serialized; then
serializes the answers of the hot writes again, alternately with moto's own ``get_value`` and
``xmltodict`` and with the sandbox's (``fast_picker.py``, ``fast_xml.py``), and prints the best of
``--repeat`` passes in CPU milliseconds per answer, by operation. Both ways run in one process one
after the other, so the machine's load hits them alike. (The HTTP server is not involved.)
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from typing import Any

import xmltodict  # type: ignore[import-untyped]
from aws_moto_calls import _measure
from lbprov_aws.sandbox import fast_picker
from lbprov_aws.sandbox.fast_xml import FastXmlToDict
from moto.core import serialize

HOT = (
    "CreateLoadBalancer",
    "CreateTargetGroup",
    "CreateListener",
    "RegisterTargets",
    "CreateSecurityGroup",
    "AuthorizeSecurityGroupIngress",
)


def _use(stock: bool) -> None:
    serialize.xmltodict = xmltodict if stock else FastXmlToDict()  # type: ignore[attr-defined]
    serialize.ResponseSerializer.get_value = (  # type: ignore[method-assign]
        fast_picker.ORIGINAL["get_value"] if stock else fast_picker.get_value
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--services", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    answers: list[tuple[Any, Any, Any, Any]] = []
    inner = serialize.ResponseSerializer.serialize

    def keep(self: Any, result: Any) -> Any:
        answers.append((type(self), self.operation_model, self._value_picker, result))
        return inner(self, result)

    serialize.ResponseSerializer.serialize = keep  # type: ignore[method-assign]
    _measure(args.services, 20)
    serialize.ResponseSerializer.serialize = inner  # type: ignore[method-assign]
    hot = [a for a in answers if a[1].name in HOT]
    best: dict[tuple[str, bool], float] = defaultdict(lambda: float("inf"))
    for _ in range(args.repeat):
        for stock in (True, False):
            _use(stock)
            spent: dict[str, float] = defaultdict(float)
            count: dict[str, int] = defaultdict(int)
            for cls, operation, picker, result in hot:
                started = time.thread_time()
                cls(operation_model=operation, value_picker=picker).serialize(result)
                spent[operation.name] += time.thread_time() - started
                count[operation.name] += 1
            for name in spent:
                best[(name, stock)] = min(best[(name, stock)], 1000 * spent[name] / count[name])
    _use(False)
    report = {
        name: {
            "answers": sum(1 for a in hot if a[1].name == name),
            "stock_ms": round(best[(name, True)], 3),
            "fast_ms": round(best[(name, False)], 3),
            "ratio": round(best[(name, False)] / best[(name, True)], 2),
        }
        for name in HOT
        if (name, True) in best
    }
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
