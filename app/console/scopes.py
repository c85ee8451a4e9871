"""How a grant's scope reads on a page: "市场监管人员 · 梧州市（450400）"."""
from __future__ import annotations

from app.core.regions import Region, parent_of
from app.extensions import db
from app.identity.models import ROLE_LABELS

GONE = "（已不存在）"


def describe(grant) -> dict:
    """{role, scope}: the role's Chinese name and where it applies, by name."""
    return {"role": ROLE_LABELS.get(grant.role, grant.role), "scope": scope_name(grant.scope_type, grant.scope_id)}


def scope_name(scope_type: str, scope_id: str) -> str:
    if not scope_type:
        return "全部地区"
    if scope_type == "region":
        return f"{region_path(scope_id)}（{scope_id}）"
    if scope_type == "market":
        from app.markets.models import Market

        market = db.session.get(Market, int(scope_id))
        return f"市场：{market.name}" if market is not None else f"市场 {scope_id}{GONE}"
    if scope_type == "org":
        from app.orgs.models import PartyOrg

        org = db.session.get(PartyOrg, int(scope_id))
        return f"组织：{org.name}" if org is not None else f"组织 {scope_id}{GONE}"
    return f"{scope_type}:{scope_id}"


def region_path(code: str) -> str:
    """广西壮族自治区 梧州市 万秀区: the region's name under its ancestors' (those known)."""
    names = []
    current: str | None = code
    while current:
        region = db.session.get(Region, current)
        if region is not None:
            names.append(region.name)
        current = parent_of(current)
    return " ".join(reversed(names)) or code
