"""A region's 示范 criteria: the regulator's own, or the nearest region's above it, or the
defaults of the 2023 guideline's 强示范 step when no region on the way up set any."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy import case, select

from app.exemplars.models import ExemplarCriteria
from app.extensions import db

NATIONAL = "000000"


@dataclass(frozen=True)
class Criteria:
    require_credentials: bool = True
    pledge_days: int = 180
    no_upheld: bool = True
    require_party_member: bool = False
    market_full_badge_pct: int = 80
    market_pledge_pct: int = 80
    market_require_party_org: bool = True
    market_min_stalls: int = 5
    source_region: str | None = None  # the region whose criteria these are; None: the defaults

    def stall(self) -> dict:
        return {"require_credentials": self.require_credentials, "pledge_days": self.pledge_days,
                "no_upheld": self.no_upheld, "require_party_member": self.require_party_member}

    def market(self) -> dict:
        return {"full_badge_pct": self.market_full_badge_pct, "pledge_pct": self.market_pledge_pct,
                "require_party_org": self.market_require_party_org, "min_stalls": self.market_min_stalls}

    def snapshot(self) -> dict:
        return asdict(self)


DEFAULTS = Criteria()
FIELDS = tuple(name for name in Criteria.__dataclass_fields__ if name != "source_region")


def region_chain(code: str) -> list[str]:
    """The region and the ancestors that cover it by the prefix rule, nearest first."""
    chain = [code, code[:4] + "00", code[:2] + "0000"]
    return list(dict.fromkeys(c for c in chain if c != NATIONAL))


def from_row(row: ExemplarCriteria | None) -> Criteria:
    if row is None:
        return DEFAULTS
    return Criteria(**{name: getattr(row, name) for name in FIELDS}, source_region=row.region_code)


def effective(region_code: str) -> Criteria:
    """The criteria that apply in `region_code` (one indexed query)."""
    chain = region_chain(region_code)
    nearness = case({code: rank for rank, code in enumerate(chain)}, value=ExemplarCriteria.region_code)
    row = db.session.scalars(select(ExemplarCriteria).where(ExemplarCriteria.region_code.in_(chain))
                             .order_by(nearness).limit(1)).first()
    return from_row(row)


def effective_for(region_codes: set[str]) -> dict[str, Criteria]:
    """The criteria of each of many regions, from one query of every row on their ways up."""
    wanted = {code for region in region_codes for code in region_chain(region)}
    rows = {row.region_code: row for row in db.session.scalars(
        select(ExemplarCriteria).where(ExemplarCriteria.region_code.in_(wanted)))} if wanted else {}
    result = {}
    for region in region_codes:
        nearest = next((rows[code] for code in region_chain(region) if code in rows), None)
        result[region] = from_row(nearest)
    return result
