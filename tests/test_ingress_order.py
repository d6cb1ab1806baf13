"""The status keeps the provider's ingress order: a dual-stack Service's primary family first
(spec.ipFamilies[0]), compared element by element as upstream's LoadBalancerStatusEqual does."""

from __future__ import annotations

from lbprov.controller.service import ingress_dicts, ingress_of
from lbprov.model import Ingress


def test_ingress_is_written_in_the_providers_order_ipv6_primary_first() -> None:
    wanted = ingress_dicts((Ingress(ip="2001:db8::5"), Ingress(ip="198.18.0.5")))
    assert wanted == [{"ip": "2001:db8::5"}, {"ip": "198.18.0.5"}]


def test_a_status_in_another_order_differs_so_it_is_rewritten() -> None:
    svc = {
        "status": {
            "loadBalancer": {"ingress": [{"ip": "198.18.0.5"}, {"ip": "2001:db8::5", "ipMode": "VIP"}]}
        }
    }
    assert ingress_of(svc) == [{"ip": "198.18.0.5"}, {"ip": "2001:db8::5"}]
    assert ingress_of(svc) != ingress_dicts((Ingress(ip="2001:db8::5"), Ingress(ip="198.18.0.5")))
