"""The small interface features publish the badge's records through.

A feature declares a fact next to its own models with `@provides(name)`; the badge asks for it
by name and never imports a feature or reads its tables itself. The modules that declare facts
are listed in FACT_MODULES and imported without a safety net (a wrong path fails at once).

Facts (each runs on the badge's miss path, so each is one or two indexed reads):
  stall(token, now) -> StallFacts | None        the live stall behind a sticker token (markets)
  credentials(merchant_id, token) -> tuple[CredentialRecord, ...]              (credentials)
  pledge(merchant_id, now) -> dict | None       the 诚信承诺 entry in force      (pledges)
  party(owner_id) -> dict | None                the operator's verified membership (orgs)
  exemplar(stall_id, merchant_id, now) -> dict | None   a 示范 title in force and its criteria (exemplars)
  bump(stall_id=, merchant_id=, owner_id=) -> list[str]   new badge versions for those stalls
                                                in the caller's transaction; their tokens (markets)
  voided(token) -> bool                         a sticker reissued away, not a token never issued (markets)
  all_tokens(missing_only) -> list[str]         every live stall's token, for a rebuild (markets)
  unrectified_reports(stall_id, now) -> tuple[datetime, ...]  upheld rider reports not yet
                                                rectified, as upheld-complaint moments (reports)"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

FACT_MODULES = ("app.markets.badge_facts", "app.credentials.badge_facts", "app.pledges.queries",
                "app.orgs.queries", "app.reports.badge_facts", "app.exemplars.queries")


@dataclass(frozen=True)
class StallFacts:
    stall_id: int
    number: str
    version: int
    market_name: str
    merchant_id: int | None
    merchant_name: str | None
    merchant_kind: str | None
    operator_name: str | None
    owner_id: int | None
    trading_rules: dict[str, Any] | None
    upheld_complaints_at: tuple[datetime, ...]


_facts: dict[str, Callable] = {}
_loaded = False


def provides(name: str):
    def register(function: Callable) -> Callable:
        existing = _facts.get(name)
        if existing is not None and existing is not function and existing.__qualname__ != function.__qualname__:
            raise ValueError(f"badge fact {name!r} provided twice")
        _facts[name] = function
        return function

    return register


def fact(name: str) -> Callable:
    global _loaded
    if not _loaded:
        for path in FACT_MODULES:
            importlib.import_module(path)
        _loaded = True
    return _facts[name]
