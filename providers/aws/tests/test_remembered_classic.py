"""What the provider remembers of the cluster's classic ELBs (remembered.py): their tags and
registered instances, as read, kept current by lbprov's own writes, forgotten when unsure."""

from __future__ import annotations

from lbprov_aws.remembered import Remembered

NAME = "a0123456789abcdef0123456789abcde"
OWNED = {"kubernetes.io/cluster/test": "owned", "lbprov.io/service-uid": "u1"}
REGISTER = "elb:RegisterInstancesWithLoadBalancer"
DEREGISTER = "elb:DeregisterInstancesFromLoadBalancer"


def _instances(*ids: str) -> dict[str, object]:
    return {"LoadBalancerName": NAME, "Instances": [{"InstanceId": i} for i in ids]}


def _write(mem: Remembered, op: str, params: dict[str, object]) -> None:
    mem.before_write(op, params)
    mem.after_write(op, params, {})


def _read(mem: Remembered, instances: tuple[str, ...] = ("i-1", "i-2")) -> Remembered:
    mem.classics_read({NAME: (OWNED, instances)}, mem.clock(), looked_for=None)
    return mem


def test_a_read_is_kept_and_registrations_follow_lbprovs_writes() -> None:
    mem = _read(Remembered())
    assert mem.classic(NAME) == (OWNED, ("i-1", "i-2"))
    _write(mem, REGISTER, _instances("i-3"))
    _write(mem, DEREGISTER, _instances("i-1"))
    assert mem.classic(NAME) == (OWNED, ("i-2", "i-3"))


def test_a_read_older_than_a_write_of_the_same_elb_is_not_kept() -> None:
    mem = _read(Remembered())
    clock = mem.clock()  # a listing starts
    _write(mem, REGISTER, _instances("i-3"))  # ... lbprov registers meanwhile
    mem.classics_read({NAME: (OWNED, ("i-1", "i-2"))}, clock, looked_for=None)
    assert mem.classic(NAME) == (OWNED, ("i-1", "i-2", "i-3"))
    assert mem.written_since(NAME, clock) and not mem.written_since(NAME, mem.clock())


def test_an_elb_a_complete_listing_no_longer_shows_is_forgotten_unless_written_since() -> None:
    mem = _read(Remembered())
    mem.classics_read({}, mem.clock(), looked_for=["other"])  # a describe of another name
    assert mem.classic(NAME) is not None
    mem.classics_read({}, mem.clock(), looked_for=None)
    assert mem.classic(NAME) is None
    _read(mem)
    clock = mem.clock()
    _write(mem, "elb:CreateLoadBalancer", {"LoadBalancerName": NAME, "Tags": []})  # made again meanwhile
    mem.classics_read({}, clock, looked_for=None)
    assert mem.classic(NAME) == ({}, ())


def test_a_failed_write_forgets_the_elb_and_an_unknown_one_stays_unknown() -> None:
    mem = _read(Remembered())
    mem.before_write(REGISTER, _instances("i-3"))
    mem.write_failed(REGISTER, _instances("i-3"))
    assert mem.classic(NAME) is None
    _write(mem, REGISTER, _instances("i-4"))  # not known before: still not known
    assert mem.classic(NAME) is None


def test_a_new_elb_has_its_create_calls_tags_and_no_instance_and_a_deleted_one_is_forgotten() -> None:
    mem = Remembered()
    _write(mem, "elb:CreateLoadBalancer", {"LoadBalancerName": NAME, "Tags": [{"Key": "k", "Value": "v"}]})
    assert mem.classic(NAME) == ({"k": "v"}, ())
    _write(mem, REGISTER, _instances("i-1"))
    assert mem.classic(NAME) == ({"k": "v"}, ("i-1",))
    _write(mem, "elb:DeleteLoadBalancer", {"LoadBalancerName": NAME})
    assert mem.classic(NAME) is None


def test_tag_writes_update_the_tags_and_other_elb_writes_keep_tags_and_instances() -> None:
    mem = _read(Remembered())
    mem.classic_attributes[NAME] = {"CrossZoneLoadBalancing": {"Enabled": True}}
    _write(mem, "elb:AddTags", {"LoadBalancerNames": [NAME], "Tags": [{"Key": "x", "Value": "1"}]})
    _write(mem, "elb:RemoveTags", {"LoadBalancerNames": [NAME], "Tags": [{"Key": "lbprov.io/service-uid"}]})
    assert mem.classic(NAME) == ({"kubernetes.io/cluster/test": "owned", "x": "1"}, ("i-1", "i-2"))
    assert NAME in mem.classic_attributes  # tags do not change attributes
    _write(mem, "elb:ConfigureHealthCheck", {"LoadBalancerName": NAME, "HealthCheck": {}})
    assert mem.classic(NAME) is not None
    # A health check changes no LoadBalancerAttribute: they stay known (a resync need not read them).
    assert mem.classic_attributes[NAME] == {"CrossZoneLoadBalancing": {"Enabled": True}}


def test_a_new_elbs_attributes_are_awss_defaults_and_follow_lbprovs_attribute_writes() -> None:
    """A classic ELB lbprov just made needs no DescribeLoadBalancerAttributes on the next resync:
    its attributes are AWS's defaults ({}), then what ModifyLoadBalancerAttributes wrote, merged
    per structure as AWS does (a disabled draining keeps its timeout)."""
    mem = Remembered()
    _write(mem, "elb:CreateLoadBalancer", {"LoadBalancerName": NAME, "Tags": []})
    assert mem.get(mem.classic_attributes, NAME) == {}
    _write(
        mem,
        "elb:ModifyLoadBalancerAttributes",
        {
            "LoadBalancerName": NAME,
            "LoadBalancerAttributes": {"ConnectionDraining": {"Enabled": True, "Timeout": 30}},
        },
    )
    _write(
        mem,
        "elb:ModifyLoadBalancerAttributes",
        {
            "LoadBalancerName": NAME,
            "LoadBalancerAttributes": {
                "ConnectionDraining": {"Enabled": False},
                "CrossZoneLoadBalancing": {"Enabled": True},
            },
        },
    )
    assert mem.get(mem.classic_attributes, NAME) == {
        "ConnectionDraining": {"Enabled": False, "Timeout": 30},
        "CrossZoneLoadBalancing": {"Enabled": True},
    }


def test_attribute_writes_of_unknown_overlapping_or_failed_outcome_leave_them_unknown() -> None:
    """Only a write over known attributes, alone in flight, is remembered; else the next plan reads."""
    mem = Remembered()
    attrs = {"LoadBalancerName": NAME, "LoadBalancerAttributes": {"ConnectionSettings": {"IdleTimeout": 9}}}
    _write(mem, "elb:ModifyLoadBalancerAttributes", attrs)  # never read: unknown
    assert mem.get(mem.classic_attributes, NAME) is None
    mem.classic_attributes[NAME] = {}
    mem.before_write("elb:ModifyLoadBalancerAttributes", attrs)
    mem.before_write("elb:ModifyLoadBalancerAttributes", attrs)  # a second one in flight
    mem.after_write("elb:ModifyLoadBalancerAttributes", attrs, {})
    mem.after_write("elb:ModifyLoadBalancerAttributes", attrs, {})
    assert mem.get(mem.classic_attributes, NAME) is None
    mem.classic_attributes[NAME] = {}
    mem.before_write("elb:ModifyLoadBalancerAttributes", attrs)
    mem.write_failed("elb:ModifyLoadBalancerAttributes", attrs)
    assert mem.get(mem.classic_attributes, NAME) is None
    mem.classic_attributes[NAME] = {}
    _write(mem, "elb:ModifyLoadBalancerAttributes", attrs)  # after a failure, a lone write is kept
    assert mem.get(mem.classic_attributes, NAME) == {"ConnectionSettings": {"IdleTimeout": 9}}
