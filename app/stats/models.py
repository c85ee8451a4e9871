"""The coverage roll-ups (覆盖情况汇总), kept in step with the facts they count by
app/stats/rollups.py, so the overview of a province reads a few rows instead of scanning it.

- market_coverage: one row per market, its additive counts as of `counted_at`, valid until
  `changes_at` (the next instant time alone changes them: a credential or pledge starting or
  ending).
- region_coverage: one row per scope (000000, a province, a city, a county, and "=<code>" for the
  markets registered at a city's or province's own level): the sums of its markets' additive
  counts, and its distinct entities, counted by reference from merchant_scopes.
- org_coverage: one row per party organisation: its verified members (of which floating) and
  its station's riders; their sums are region_coverage's party columns.
- merchant_scopes: per (scope, entity): how many stalls the entity holds there, whether it has a
  pledge in force there, and when that next changes by time alone."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db

__all__ = ["MarketCoverage", "RegionCoverage", "MerchantScope", "OrgCoverage", "COUNTED_FIELDS", "DISTINCT_FIELDS",
           "PARTY_FIELDS"]

# Per market and summed into regions (a region's value is the sum of its markets').
COUNTED_FIELDS = ("markets", "stalls", "stalls_claimed", "licences_shown", "permits_shown",
                  "pledges_in_force", "pledges_pending", "pledges_rejected", "pledges_revoked",
                  "pledges_expired", "party_households")
# Distinct entities: counted per market row and, separately, per region (an entity may hold
# stalls in two markets of one region; it is one household there).
DISTINCT_FIELDS = ("merchants", "merchants_with_pledge_in_force")
# Per party organisation and summed into regions (organisations sit in regions, not markets).
PARTY_FIELDS = ("orgs", "orgs_committee", "orgs_general_branch", "orgs_branch", "orgs_joint_branch",
                "rider_stations", "members_verified", "members_floating", "riders")


def _count() -> Mapped[int]:
    return mapped_column(Integer, nullable=False, default=0, server_default="0")


class CoverageCounts:
    """The counted and distinct columns, the same in a market's row and a region's."""

    markets: Mapped[int] = _count()
    stalls: Mapped[int] = _count()
    stalls_claimed: Mapped[int] = _count()
    licences_shown: Mapped[int] = _count()
    permits_shown: Mapped[int] = _count()
    pledges_in_force: Mapped[int] = _count()
    pledges_pending: Mapped[int] = _count()
    pledges_rejected: Mapped[int] = _count()
    pledges_revoked: Mapped[int] = _count()
    pledges_expired: Mapped[int] = _count()
    party_households: Mapped[int] = _count()
    merchants: Mapped[int] = _count()
    merchants_with_pledge_in_force: Mapped[int] = _count()


class MarketCoverage(CoverageCounts, db.Model):
    __tablename__ = "market_coverage"

    market_id: Mapped[int] = mapped_column(ForeignKey("markets.id", ondelete="CASCADE"), primary_key=True)
    region_code: Mapped[str] = mapped_column(String(6), nullable=False, index=True)
    counted_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    changes_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)


class RegionCoverage(CoverageCounts, db.Model):
    __tablename__ = "region_coverage"

    scope_code: Mapped[str] = mapped_column(String(8), primary_key=True)
    orgs: Mapped[int] = _count()
    orgs_committee: Mapped[int] = _count()
    orgs_general_branch: Mapped[int] = _count()
    orgs_branch: Mapped[int] = _count()
    orgs_joint_branch: Mapped[int] = _count()
    rider_stations: Mapped[int] = _count()
    members_verified: Mapped[int] = _count()
    members_floating: Mapped[int] = _count()
    riders: Mapped[int] = _count()


class OrgCoverage(db.Model):
    __tablename__ = "org_coverage"

    org_id: Mapped[int] = mapped_column(ForeignKey("party_orgs.id", ondelete="CASCADE"), primary_key=True)
    region_code: Mapped[str] = mapped_column(String(6), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    sector: Mapped[str] = mapped_column(String(16), nullable=False)
    members_verified: Mapped[int] = _count()
    members_floating: Mapped[int] = _count()
    riders: Mapped[int] = _count()


class MerchantScope(db.Model):
    __tablename__ = "merchant_scopes"

    scope_code: Mapped[str] = mapped_column(String(8), primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"), primary_key=True,
                                             index=True)
    stalls: Mapped[int] = _count()
    pledged: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default="false")
    changes_at: Mapped[datetime | None] = mapped_column(DateTime, index=True)
