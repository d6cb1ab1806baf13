"""Public IPs of one Service: the one per family it needs, the ones it leaves, the ones a delete takes.

Mixed into :class:`~lbprov_azure.diff.Planner`. A public Service has a public IP per IP family
(:func:`~lbprov_azure.desired.build_pip` names it); the user may name their own instead
(``azure-pip-name``, ``loadBalancerIP``), which lbprov checks but never writes or deletes. lbprov's
public IPs are found by their tags; cloud-provider-azure's of the same Service are adopted in place
(:mod:`lbprov_azure.diff.adopt`).
"""

from __future__ import annotations

from lbprov.model import Action, Change, Intent, InvalidService, ServiceRef
from lbprov_azure import names, upstream
from lbprov_azure.desired import Ids, build_pip, ref_id, view_pip
from lbprov_azure.diff.adopt import JSON, AdoptChanges
from lbprov_azure.observe import Observer
from lbprov_azure.options import AzureOptions
from lbprov_azure.settings import AzureSettings


class PipChanges(AdoptChanges):
    """The public-IP part of the planner (see the module doc)."""

    settings: AzureSettings
    seen: Observer
    ids: Ids

    def _public_ip(
        self,
        intent: Intent,
        opts: AzureOptions,
        family: str,
        lb: JSON | None,
        base: str,
        changes: list[Change],
    ) -> tuple[str, str | None]:
        """(ID, address or None) of the public IP of the Service's ``family`` frontend; the change
        that creates, updates or adopts it goes into ``changes``."""
        s = self.settings
        cluster = s.cluster_name
        pip_rg = opts.pip_resource_group or s.resource_group
        dual = len(intent.ip_families) > 1
        if opts.ipv4 and family == "IPv4":
            found = [
                p for p in self.seen.pips(pip_rg) if (p.get("properties") or {}).get("ipAddress") == opts.ipv4
            ]
            if not found:
                raise InvalidService(
                    "spec.loadBalancerIP",
                    f"no public IP address with address {opts.ipv4} in resource group {pip_rg!r}; "
                    "create a Standard static public IP with it first",
                )
            pip = found[0]
            self._check_user_pip(pip, lb, base)
            return str(pip["id"]), (pip.get("properties") or {}).get("ipAddress")
        pip_rg, pip_name, desired_pip = build_pip(intent, opts, s, family)
        user_named = bool(opts.pip_name) and (not dual or family == "IPv4")
        found_pip = self.seen.pip(pip_rg, pip_name)
        pip_id = self.ids.pip(pip_rg, pip_name)
        known = names.identity_of((found_pip or {}).get("tags"))
        if not s.cluster_id and known:  # a run that does not know the identity keeps it
            desired_pip["tags"][names.CLUSTER_ID_KEY] = known
        if found_pip is None:
            changes.append(
                Change(
                    Action.CREATE,
                    "public-ip",
                    f"{pip_rg}/{pip_name}",
                    after=view_pip(desired_pip),
                    data={"rg": pip_rg, "name": pip_name, "body": desired_pip},
                )
            )
            return pip_id, None
        address = (found_pip.get("properties") or {}).get("ipAddress")
        version = (found_pip.get("properties") or {}).get("publicIPAddressVersion") or "IPv4"
        if version != family:
            # ARM never changes a public IP's version (PublicIPAddressVersionCannotBeChanged)
            raise InvalidService(
                "spec.ipFamilies",
                f"{list(intent.ip_families)}: the {family} frontend's public IP {pip_name!r} exists and holds an "
                f"{version} address; as upstream, a single-stack Service's IP keeps the plain name and a dual-stack "
                "Service's IPv6 IP is named -IPv6, so an IPv6 Service cannot change its families in place "
                "(recreate the Service)",
            )
        if names.is_service_owned(found_pip.get("tags"), cluster, intent.ref.uid):
            before, after = view_pip(found_pip), view_pip(desired_pip)
            if before["prefix"] != after["prefix"]:
                # ARM allocates a public IP's address from its prefix once, at creation
                raise InvalidService(
                    "metadata.annotations[service.beta.kubernetes.io/azure-pip-prefix-id]",
                    f"public IP {pip_name!r} exists with prefix {before['prefix']}; the prefix of a "
                    "public IP is set when it is created and cannot change",
                )
            if before != after:
                changes.append(
                    Change(
                        Action.UPDATE,
                        "public-ip",
                        f"{pip_rg}/{pip_name}",
                        before=before,
                        after=after,
                        cloud_id=str(found_pip["id"]),
                        data={
                            "rg": pip_rg,
                            "name": pip_name,
                            "body": desired_pip,
                            "etag": found_pip.get("etag"),
                        },
                    )
                )
        elif user_named:
            self._check_user_pip(found_pip, lb, base)
        else:  # upstream's public IP of this Service (a look-alike raises)
            changes.append(self._adopt_pip(found_pip, intent.ref, pip_rg, pip_name, desired_pip))
        return str(found_pip["id"]), address

    def _check_user_pip(self, pip: JSON, lb: JSON | None, base: str) -> None:
        """A public IP the user named must be Standard and free, or on this Service's frontend."""
        if (pip.get("sku") or {}).get("name") != "Standard":
            raise InvalidService(
                "metadata.annotations[service.beta.kubernetes.io/azure-pip-name]",
                f"public IP {pip.get('name')!r} has SKU {(pip.get('sku') or {}).get('name')!r}; the shared "
                "Standard load balancer needs a Standard public IP",
            )
        used_by = ref_id((pip.get("properties") or {}).get("ipConfiguration"))
        if used_by:
            ours = lb is not None and used_by.lower() == f"{lb['id']}/frontendIPConfigurations/{base}".lower()
            if not ours:
                raise InvalidService(
                    "metadata.annotations[service.beta.kubernetes.io/azure-pip-name]",
                    f"public IP {pip.get('name')!r} is already attached to {used_by}",
                )

    def _pip_deletion(self, pip_id: str, ref: ServiceRef) -> list[Change]:
        """The DELETE of a public IP the Service no longer uses, if it is the Service's own."""
        seg = pip_id.split("/")
        if len(seg) < 9:
            return []
        rg, name = seg[4], seg[-1]
        pip = self.seen.pip(rg, name)
        if pip is None or not names.is_service_owned(pip.get("tags"), self.settings.cluster_name, ref.uid):
            return []  # gone, or the user's: never deleted
        return [_pip_delete(pip, rg, name)]

    def _pip_removal(self, ref: ServiceRef, pip_ids: set[str]) -> tuple[list[Change], set[str]]:
        """A delete plan's public-IP changes: the Service's public IPs (by its tags, or its frontends'
        IPs that are its own or upstream's of it) go; with the addresses of every public IP its
        frontends used (the user's included; ``"None"`` for one without an address)."""
        cluster = self.settings.cluster_name
        out: list[Change] = []
        pips: dict[str, JSON] = {}
        for pip in self.seen.pips(self.settings.resource_group):
            if names.is_service_owned(pip.get("tags"), cluster, ref.uid):
                pips[str(pip["id"]).lower()] = pip
        for pid in pip_ids:
            if pid.lower() not in pips:
                seg = pid.split("/")
                if len(seg) < 9:
                    continue
                other_pip = self.seen.pip(seg[4], seg[-1])
                tags = (other_pip or {}).get("tags")
                if other_pip and (
                    names.is_service_owned(tags, cluster, ref.uid)
                    # upstream's public IP of this Service, never adopted: it goes with the Service
                    or upstream.is_predecessor_pip(tags, cluster, ref)
                ):
                    pips[pid.lower()] = other_pip
        for pip in sorted(pips.values(), key=lambda p: str(p["id"])):
            seg = str(pip["id"]).split("/")
            out.append(_pip_delete(pip, seg[4], seg[-1]))
        addresses = {str((p.get("properties") or {}).get("ipAddress")) for p in pips.values()}
        for pid in pip_ids:  # the frontends' public IPs, the user's (azure-pip-name) included
            if pid.lower() in pips:
                continue
            seg = pid.split("/")
            used = self.seen.pip(seg[4], seg[-1]) if len(seg) >= 9 else None
            addresses.add(str(((used or {}).get("properties") or {}).get("ipAddress")))
        return out, addresses


def _pip_delete(pip: JSON, rg: str, name: str) -> Change:
    """The DELETE of public IP ``rg/name`` as observed (``pip``); the caller checked it is the Service's."""
    return Change(
        Action.DELETE,
        "public-ip",
        f"{rg}/{name}",
        before=view_pip(pip),
        cloud_id=str(pip.get("id")),
        data={"rg": rg, "name": name, "etag": pip.get("etag")},
    )
