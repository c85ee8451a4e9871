"""The public badge of a stall (亮照亮证 trusted-stall badge), as a pure function of its records
and the time: no database, no clock, so the same records give the same badge at the same instant
and tests can probe any moment (just before and just after an expiry) without waiting.

A document "valid until D" is in force through the end of local day D (Asia/Shanghai)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from app.core.time import end_of_local_day_utc, isoformat_local, local_midnight_utc

LICENCE_KIND = "business_licence"
UPHELD_WINDOW = timedelta(days=90)

# What a consumer at the stall reads in five seconds. Disclosure (证照、承诺) decides good /
# partial / none; an upheld complaint is its own verdict and colour, not a disclosure gap; being
# a party member is an honour shown when true and never counted against anyone.
VERDICT_GOOD = "放心摊位"
VERDICT_PARTIAL = "部分公示"
VERDICT_NONE = "未公示"
VERDICT_COMPLAINT = "近期有经核实的投诉"
VERDICT_LEVELS = {VERDICT_GOOD: "good", VERDICT_PARTIAL: "partial", VERDICT_NONE: "none",
                  VERDICT_COMPLAINT: "warning"}


@dataclass(frozen=True)
class CredentialRecord:
    kind: str
    label: str
    number: str
    issuer: str
    status: str  # pending | verified | rejected
    valid_from: date | None
    valid_until: date | None
    long_term: bool
    photo_url: str | None = None


@dataclass(frozen=True)
class BadgeRecords:
    token: str
    stall_number: str
    market_name: str
    merchant_name: str | None = None
    merchant_kind: str | None = None
    operator_name: str | None = None
    credentials: tuple[CredentialRecord, ...] = ()
    pledge: dict[str, Any] | None = None  # app/pledges/queries.pledge_badge_entry
    party: dict[str, Any] | None = None  # app/orgs/queries.party_member_operator
    upheld_complaints_at: tuple[datetime, ...] = ()  # when each upheld complaint was upheld
    trading_rules: dict[str, str] | None = None
    exemplar: dict[str, Any] | None = None  # app/exemplars/queries.exemplar_entry: a 示范 title in force
    extra: dict[str, Any] = field(default_factory=dict)


def starts_at(record: CredentialRecord) -> datetime | None:
    return local_midnight_utc(record.valid_from) if record.valid_from else None


def ends_at(record: CredentialRecord) -> datetime | None:
    """First instant the document is no longer in force; None for 长期."""
    if record.long_term or record.valid_until is None:
        return None
    return end_of_local_day_utc(record.valid_until)


def in_force(record: CredentialRecord, now: datetime) -> bool:
    start, end = starts_at(record), ends_at(record)
    if start is not None and now < start:
        return False
    if end is not None and now >= end:
        return False
    return record.long_term or record.valid_until is not None


def _document(record: CredentialRecord) -> dict[str, Any]:
    return {
        "kind": record.kind, "label": record.label, "number": record.number,
        "issuer": record.issuer,
        "valid_from": record.valid_from.isoformat() if record.valid_from else None,
        "valid_until": record.valid_until.isoformat() if record.valid_until else None,
        "long_term": record.long_term, "photo_url": record.photo_url,
    }


def _kind_status(records: list[CredentialRecord], now: datetime) -> tuple[CredentialRecord | None, str | None]:
    """The verified document of one kind in force at `now` (latest end first), else why not."""
    shown = [r for r in records if r.status == "verified" and in_force(r, now)]
    if shown:
        shown.sort(key=lambda r: (r.long_term, r.valid_until or date.max), reverse=True)
        return shown[0], None
    label = records[0].label
    verified = [r for r in records if r.status == "verified"]
    future = [r for r in verified if starts_at(r) and now < starts_at(r)]
    if future:
        return None, f"{label}自 {min(r.valid_from for r in future).isoformat()} 起生效"
    if verified:
        last = max(r.valid_until for r in verified if r.valid_until)
        return None, f"{label}已于 {last.isoformat()} 到期"
    if any(r.status == "pending" for r in records):
        return None, f"{label}正在审核中"
    return None, f"{label}未通过审核，请重新上传"


def _by_kind(credentials: tuple[CredentialRecord, ...]) -> dict[str, list[CredentialRecord]]:
    groups: dict[str, list[CredentialRecord]] = {}
    for record in credentials:
        groups.setdefault(record.kind, []).append(record)
    return groups


def _licence_item(groups, now) -> dict[str, Any]:
    records = groups.get(LICENCE_KIND)
    if not records:
        return {"key": "licence", "label": "亮照", "ok": False, "reason": "未公示营业执照", "documents": []}
    shown, reason = _kind_status(records, now)
    return {"key": "licence", "label": "亮照", "ok": shown is not None, "reason": reason,
            "documents": [_document(shown)] if shown else []}


def _permits_item(groups, now) -> dict[str, Any]:
    kinds = [kind for kind in groups if kind != LICENCE_KIND]
    if not kinds:
        return {"key": "permits", "label": "亮证", "ok": False, "reason": "未公示许可证", "documents": []}
    documents, reasons = [], []
    for kind in sorted(kinds):
        shown, reason = _kind_status(groups[kind], now)
        if shown is not None:
            documents.append(_document(shown))
        else:
            reasons.append(reason)
    return {"key": "permits", "label": "亮证", "ok": not reasons, "reason": "；".join(reasons) or None,
            "documents": documents}


def _pledge_item(pledge: dict[str, Any] | None) -> dict[str, Any]:
    if not pledge:
        return {"key": "pledge", "label": "诚信承诺", "ok": False, "reason": "暂无生效的诚信经营承诺",
                "detail": None}
    detail = {k: v for k, v in pledge.items() if k != "changes_at"}
    return {"key": "pledge", "label": "诚信承诺", "ok": True, "reason": None, "detail": detail}


def _party_item(party: dict[str, Any] | None) -> dict[str, Any]:
    if not party:  # neutral: ok is null, nothing to say (an honour, not a requirement)
        return {"key": "party_member", "label": "共产党员经营户", "ok": None, "reason": None, "detail": None}
    detail = {k: v for k, v in party.items() if k != "changes_at"}
    return {"key": "party_member", "label": "共产党员经营户", "ok": True, "reason": None, "detail": detail}


def _exemplar_item(exemplar: dict[str, Any], items: list[dict[str, Any]], upheld: list[datetime],
                   party: dict[str, Any] | None, now: datetime) -> dict[str, Any]:
    """A conferred 示范 title, on while its criteria hold at `now` and off, with the reasons, the
    moment one fails (the same records and instants as the items above)."""
    failing = []
    if exemplar["require_credentials"]:
        failing += [item["reason"] for item in items[:2] if not item["ok"]]
    since, days = exemplar.get("pledge_since"), exemplar["pledge_days"]
    if since is None or not items[2]["ok"]:
        failing.append("暂无生效的诚信经营承诺")
    elif now < since + timedelta(days=days):
        failing.append(f"诚信经营承诺连续生效未满 {days} 天")
    if exemplar["no_upheld"] and upheld:
        failing.append("近 90 天有经核实的投诉或举报")
    if exemplar["require_party_member"] and not party:
        failing.append("经营者不是经核实的党员")
    detail = {key: exemplar[key] for key in ("title", "citation", "conferred_on", "valid_through")}
    return {"key": "exemplar", "label": exemplar["title"], "ok": not failing,
            "reason": ("称号暂停显示：" + "；".join(failing)) if failing else None, "detail": detail}


def _upheld_in_window(records: BadgeRecords, now: datetime) -> list[datetime]:
    return [t for t in records.upheld_complaints_at if t <= now < t + UPHELD_WINDOW]


def _changes_at(records: BadgeRecords, now: datetime) -> datetime | None:
    """The earliest future instant at which anything on the badge flips."""
    moments: list[datetime] = []
    for record in records.credentials:
        if record.status != "verified":
            continue
        for moment in (starts_at(record), ends_at(record)):
            if moment is not None:
                moments.append(moment)
    moments += [t + UPHELD_WINDOW for t in records.upheld_complaints_at]
    moments += [t for t in records.upheld_complaints_at]  # upheld "in the future" by a skewed clock
    for entry in (records.pledge, records.party, records.exemplar):
        if entry and isinstance(entry.get("changes_at"), datetime):
            moments.append(entry["changes_at"])
    future = [m for m in moments if m > now]
    return min(future) if future else None


def compute_badge(records: BadgeRecords, now: datetime) -> dict[str, Any]:
    """The badge at `now` (naive UTC). `changes_at` (naive UTC or None) is when it next flips;
    everything else is JSON-ready with times in Asia/Shanghai."""
    stall = {"token": records.token, "number": records.stall_number, "market": records.market_name}
    if records.merchant_name is None:
        items = [
            {"key": "licence", "label": "亮照", "ok": False, "reason": "未公示营业执照", "documents": []},
            {"key": "permits", "label": "亮证", "ok": False, "reason": "未公示许可证", "documents": []},
            _pledge_item(None), _party_item(None),
        ]
        return _assemble(stall, None, items, [], records, VERDICT_NONE, ["该摊位暂无登记的经营者"], now, None)
    groups = _by_kind(records.credentials)
    items = [_licence_item(groups, now), _permits_item(groups, now), _pledge_item(records.pledge),
             _party_item(records.party)]
    upheld = _upheld_in_window(records, now)
    if records.exemplar:
        items.append(_exemplar_item(records.exemplar, items, upheld, records.party, now))
    licence, permits, pledge = items[0]["ok"], items[1]["ok"], items[2]["ok"]
    reasons = [item["reason"] for item in items[:3] if item["reason"]]
    if upheld:
        reasons.insert(0, f"近 90 天有 {len(upheld)} 件消费者投诉经市场核实属实")
        verdict = VERDICT_COMPLAINT
    elif licence and permits and pledge:
        verdict = VERDICT_GOOD
    elif licence or permits or pledge:
        verdict = VERDICT_PARTIAL
    else:
        verdict = VERDICT_NONE
    merchant = {"name": records.merchant_name, "kind": records.merchant_kind,
                "operator": records.operator_name}
    return _assemble(stall, merchant, items, upheld, records, verdict, reasons, now,
                     _changes_at(records, now))


def _assemble(stall, merchant, items, upheld, records, verdict, reasons, now, changes_at) -> dict[str, Any]:
    return {
        "stall": stall,
        "merchant": merchant,
        "verdict": verdict,
        "verdict_level": VERDICT_LEVELS[verdict],
        "items": items,
        "complaints": {"upheld_90d": len(upheld)},
        "reasons": reasons,
        "trading_rules": records.trading_rules or None,
        "computed_at": isoformat_local(now),
        "changes_at": changes_at,
    }


def public_json(badge: dict[str, Any]) -> dict[str, Any]:
    """The badge as served: changes_at in local time."""
    return {**badge, "changes_at": isoformat_local(badge["changes_at"])}
