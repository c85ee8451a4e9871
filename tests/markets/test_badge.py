"""The badge: a pure function of records and time, served through a cache that never outlives a
version bump or the badge's own changes_at."""
from datetime import date, timedelta

from sqlalchemy import select

from app.badge.compute import BadgeRecords, CredentialRecord, compute_badge
from app.core.audit import AuditEntry
from tests.conftest import at, error_code


def _records(**kwargs) -> BadgeRecords:
    licence = CredentialRecord("business_licence", "营业执照", "91350100M000100Y43", "万秀区局", "verified",
                               date(2024, 1, 1), None, True)
    permit = CredentialRecord("food_business", "食品经营许可证", "JY1", "万秀区局", "verified",
                              date(2024, 1, 1), date(2026, 6, 30), False)
    base = dict(token="T0k3nT0k3nXY", stall_number="A-01", market_name="东中农贸市场", merchant_name="李记",
                merchant_kind="个体工商户", operator_name="李明", credentials=(licence, permit),
                pledge={"items": ["明码标价"], "signer": "李明", "changes_at": at("2026-12-31 00:00")})
    base.update(kwargs)
    return BadgeRecords(**base)


def test_permit_in_force_through_the_end_of_its_last_local_day():
    records = _records()
    before = compute_badge(records, at("2026-06-30 23:59:59"))
    assert before["verdict"] == "放心摊位" and before["reasons"] == []
    assert before["changes_at"] == at("2026-07-01 00:00")  # 2026-06-30 16:00 UTC
    after = compute_badge(records, at("2026-07-01 00:00"))
    assert after["verdict"] == "部分公示"
    permits = after["items"][1]
    assert permits["ok"] is False and permits["reason"] == "食品经营许可证已于 2026-06-30 到期"
    assert after["changes_at"] == at("2026-12-31 00:00")  # next: the pledge's end


def test_missing_items_have_chinese_reasons_and_verdicts():
    nothing = compute_badge(_records(credentials=(), pledge=None), at("2026-03-01 09:00"))
    assert nothing["verdict"] == "未公示" and nothing["verdict_level"] == "none"
    assert nothing["reasons"] == ["未公示营业执照", "未公示许可证", "暂无生效的诚信经营承诺"]
    pending = CredentialRecord("food_business", "食品经营许可证", "JY2", "局", "pending", None, date(2027, 1, 1), False)
    badge = compute_badge(_records(credentials=_records().credentials[:1] + (pending,)), at("2026-03-01 09:00"))
    assert badge["items"][1]["reason"] == "食品经营许可证正在审核中"
    future = CredentialRecord("food_business", "食品经营许可证", "JY3", "局", "verified", date(2026, 4, 1),
                              date(2027, 1, 1), False)
    badge = compute_badge(_records(credentials=_records().credentials[:1] + (future,)), at("2026-03-01 09:00"))
    assert badge["items"][1]["reason"] == "食品经营许可证自 2026-04-01 起生效"
    assert badge["changes_at"] == at("2026-04-01 00:00")
    unclaimed = compute_badge(_records(merchant_name=None), at("2026-03-01 09:00"))
    assert unclaimed["verdict"] == "未公示" and unclaimed["reasons"] == ["该摊位暂无登记的经营者"]
    # Issue 12: not being a party member is neutral (ok is null, nothing said), never a failure.
    plain = compute_badge(_records(party=None), at("2026-03-01 09:00"))
    assert plain["items"][3] == {"key": "party_member", "label": "共产党员经营户", "ok": None, "reason": None,
                                 "detail": None}
    assert all("党员" not in reason for reason in plain["reasons"])


def test_party_member_and_complaint_window():
    upheld = at("2026-03-01 10:00")
    records = _records(party={"org": "东中市场党支部"}, upheld_complaints_at=(upheld,))
    during = compute_badge(records, at("2026-03-02 09:00"))
    assert during["items"][3]["ok"] is True and during["items"][3]["detail"] == {"org": "东中市场党支部"}
    # Issue 12: a complaint is its own verdict and colour, not a disclosure gap.
    assert during["complaints"]["upheld_90d"] == 1 and during["verdict"] == "近期有经核实的投诉"
    assert during["verdict_level"] == "warning"
    assert during["reasons"][0] == "近 90 天有 1 件消费者投诉经市场核实属实"
    end = upheld + timedelta(days=90)
    assert during["changes_at"] == end
    assert compute_badge(records, end - timedelta(seconds=1))["complaints"]["upheld_90d"] == 1
    assert compute_badge(records, end)["complaints"]["upheld_90d"] == 0
    assert compute_badge(records, end)["verdict"] == "放心摊位"


def test_pledge_entry_changes_at_is_honoured():
    records = _records(pledge={"items": ["明码标价"], "changes_at": at("2026-05-01 00:00")})
    assert compute_badge(records, at("2026-03-01 09:00"))["changes_at"] == at("2026-05-01 00:00")


def test_cached_endpoint_turns_off_at_the_expiry_moment(shop, client, clock):
    clock.set(at("2026-06-30 12:00"))
    market, manager, token, login, merchant_id = shop.trusted_stall(until="2026-06-30", pledge=True)
    url = f"/api/v1/public/stalls/{token}"
    warm = client.get(url)
    assert warm.get_json()["verdict"] == "放心摊位"
    assert warm.get_json()["changes_at"] == "2026-07-01T00:00:00+08:00"
    assert "max-age=30" in warm.headers["Cache-Control"] and "public" in warm.headers["Cache-Control"]
    clock.set(at("2026-06-30 23:59:59"))
    last_second = client.get(url)
    assert last_second.get_json()["verdict"] == "放心摊位"
    assert last_second.headers["Cache-Control"] == "public, max-age=1"
    clock.set(at("2026-07-01 00:00"))
    expired = client.get(url).get_json()  # same version, cached before: must not be served
    assert expired["verdict"] == "部分公示"
    assert expired["items"][1]["reason"] == "食品经营许可证已于 2026-06-30 到期"
    page = client.get(f"/s/{token}").get_data(as_text=True)
    assert "部分公示" in page and "已于 2026-06-30 到期" in page
    # The pledge approved on 2026-06-30 for 12 months is in force through 2027-06-30: the page
    # names that last day, not the instant after it.
    assert "有效期至 2027-06-30" in page and "2027-07-01" not in page


def test_every_change_bumps_the_version_and_the_cache_follows(shop, client, clock, db):
    clock.set(at("2026-03-01 09:00"))
    market, manager, stalls, login, merchant_id = shop.held_stall()
    token = stalls[0]["token"]
    url = f"/api/v1/public/stalls/{token}"
    assert client.get(url).get_json()["items"][0]["reason"] == "未公示营业执照"
    licence = shop.credential(login, merchant_id, long_term=True)
    assert client.get(url).get_json()["items"][0]["reason"] == "营业执照正在审核中"
    shop.verify(manager, licence)
    assert client.get(url).get_json()["items"][0]["ok"] is True
    rules = client.put(f"/api/v1/stalls/{token}/rules", json={"returns": "七日包退"}, headers=login.headers)
    assert rules.status_code == 200
    assert client.get(url).get_json()["trading_rules"] == {"returns": "七日包退"}


def test_cache_survives_without_redis_and_matches_the_database(shop, client, clock, app, monkeypatch):
    """With caching off, every read computes from the database and gives the same bytes."""
    clock.set(at("2026-03-01 09:00"))
    market, manager, token, login, merchant_id = shop.trusted_stall(until="2027-06-30")
    url = f"/api/v1/public/stalls/{token}"
    cached = client.get(url).data
    monkeypatch.setitem(app.config, "BADGE_CACHE", "off")
    assert client.get(url).data == cached


def test_feedback_flow_upheld_shows_for_90_days(shop, client, auth, clock, db, wechat_sim):
    clock.set(at("2026-03-01 09:00"))
    market, manager, token, login, merchant_id = shop.trusted_stall(until="2027-06-30", pledge=True)
    consumer = auth.login("consumer-1")
    url = f"/api/v1/public/stalls/{token}/feedback"
    assert client.post(url, json={"category": "缺斤短两", "text": "称重少了二两"}).status_code == 401
    risky = client.post(url, json={"category": "其他", "text": "这里有违禁词"}, headers=consumer.headers)
    assert error_code(risky) == "CONTENT_RISKY"
    bad = client.post(url, json={"category": "不存在的类别", "text": "x"}, headers=consumer.headers)
    assert bad.status_code == 422
    created = client.post(url, json={"category": "缺斤短两", "text": "称重少了二两"}, headers=consumer.headers)
    assert created.status_code == 201
    feedback_id = created.get_json()["id"]
    listed = client.get(f"/api/v1/markets/{market.id}/feedback?status=open", headers=manager.headers).get_json()
    assert listed["total"] == 1 and listed["items"][0]["text"] == "称重少了二两"
    assert listed["items"][0]["stall_number"] == "A-01"
    other = shop.manager(shop.market(name="长洲区市场", region_code="450405"), "manager-2")
    assert client.post(f"/api/v1/feedback/{feedback_id}/review", json={"decision": "uphold"},
                       headers=other.headers).status_code == 404
    assert client.get(f"/api/v1/markets/{market.id}/feedback", headers=other.headers).status_code == 404
    assert client.get(f"/api/v1/public/stalls/{token}").get_json()["verdict"] == "放心摊位"
    reviewed = client.post(f"/api/v1/feedback/{feedback_id}/review", json={"decision": "uphold", "reason": "复秤属实"},
                           headers=manager.headers)
    assert reviewed.status_code == 200 and reviewed.get_json()["status"] == "upheld"
    assert db.session.query(AuditEntry).filter_by(action="feedback.uphold").one().reason == "复秤属实"
    badge = client.get(f"/api/v1/public/stalls/{token}").get_json()
    assert badge["complaints"]["upheld_90d"] == 1 and badge["verdict"] == "近期有经核实的投诉"
    assert badge["changes_at"] == "2026-05-30T09:00:00+08:00"
    again = client.post(f"/api/v1/feedback/{feedback_id}/review", json={"decision": "dismiss", "reason": "x"},
                        headers=manager.headers)
    assert error_code(again) == "FEEDBACK_ALREADY_REVIEWED"
    clock.set(at("2026-05-30 09:00"))
    assert client.get(f"/api/v1/public/stalls/{token}").get_json()["complaints"]["upheld_90d"] == 0


def test_dismiss_needs_a_reason(shop, client, auth, clock):
    clock.set(at("2026-03-01 09:00"))
    market = shop.market()
    manager = shop.manager(market)
    token = shop.stalls(market, manager, ["A-01"])[0]["token"]
    consumer = auth.login("consumer-1")
    fid = client.post(f"/api/v1/public/stalls/{token}/feedback", json={"category": "其他", "text": "服务一般"},
                      headers=consumer.headers).get_json()["id"]
    response = client.post(f"/api/v1/feedback/{fid}/review", json={"decision": "dismiss"}, headers=manager.headers)
    assert error_code(response) == "REASON_REQUIRED"


def test_feedback_is_rate_limited_per_user(shop, client, auth, clock):
    clock.set(at("2026-03-01 09:00"))
    market = shop.market()
    manager = shop.manager(market)
    token = shop.stalls(market, manager, ["A-01"])[0]["token"]
    consumer = auth.login("consumer-1")
    url = f"/api/v1/public/stalls/{token}/feedback"
    codes = [client.post(url, json={"category": "其他", "text": f"问题 {i}"}, headers=consumer.headers).status_code
             for i in range(6)]
    assert codes == [201] * 5 + [429]
    limited = client.post(url, json={"category": "其他", "text": "再来"}, headers=consumer.headers)
    assert error_code(limited) == "FEEDBACK_RATE_LIMITED"
    other = auth.login("consumer-2")
    assert client.post(url, json={"category": "其他", "text": "另一人"}, headers=other.headers).status_code == 201


def test_fast_path_serves_the_same_bytes_and_headers_as_the_view(shop, client, clock, app, monkeypatch):
    from app.badge import fastpath as badge_fastpath

    clock.set(at("2026-03-01 09:00"))
    market, manager, token, login, merchant_id = shop.trusted_stall(until="2027-06-30")
    original = badge_fastpath.BadgeFastPath.__call__
    served = []

    def spy(self, environ, start_response):
        result = original(self, environ, start_response)
        served.append(isinstance(result, list))  # Flask answers with a response iterator
        return result

    monkeypatch.setattr(badge_fastpath.BadgeFastPath, "__call__", spy)
    for path in (f"/api/v1/public/stalls/{token}", f"/s/{token}"):
        served.clear()
        view = client.get(path + "?via=flask")  # a query string always goes to the Flask view
        miss = client.get(path, headers={"X-Request-ID": "req-12345678"})
        hit = client.get(path)
        assert served == [False, True, True]
        for response in (miss, hit):
            assert response.status_code == view.status_code == 200 and response.data == view.data
            for name in ("Content-Type", "Cache-Control", "Content-Length", "Content-Security-Policy",
                         "X-Content-Type-Options"):
                assert response.headers.get(name) == view.headers.get(name), name
        assert miss.headers["X-Client-Request-ID"] == "req-12345678"
        assert len(miss.headers["X-Request-ID"]) == len(hit.headers["X-Request-ID"]) == 32
    # Anything else passes through to Flask: another method, a void or unknown token.
    served.clear()
    assert client.post(f"/api/v1/public/stalls/{token}").status_code == 405
    assert client.head(f"/api/v1/public/stalls/{token}").status_code == 200
    assert client.get("/api/v1/public/stalls/Unknown12345").status_code == 404
    assert served == [False, True, False]


def test_a_change_made_by_another_worker_shows_within_the_recheck_interval(shop, client, clock, db, monkeypatch):
    """This worker's own changes are forgotten at once (tests above); a change committed by
    another worker — simulated here by writing the row, its version and its stored projection
    directly, without telling this worker's memory — is seen once VERSION_RECHECK has passed,
    and not served stale beyond it."""
    import time as real_time

    from sqlalchemy import text

    from app.badge import cache as badge_cache

    clock.set(at("2026-03-01 09:00"))
    market, manager, stalls, login, merchant_id = shop.held_stall()
    token = stalls[0]["token"]
    url = f"/api/v1/public/stalls/{token}"
    assert client.get(url).get_json()["trading_rules"] is None
    db.session.execute(text("UPDATE stalls SET trading_rules = :rules, badge_version = badge_version + 1 "
                            "WHERE token = :token"), {"rules": '{"returns": "七日包退"}', "token": token})
    db.session.commit()
    with db.engine.begin() as connection:  # the other worker's projection write
        badge_cache._store(token, clock.now(), connection.execute)
    assert client.get(url).get_json()["trading_rules"] is None  # confirmed < VERSION_RECHECK ago
    later = real_time.monotonic() + badge_cache.VERSION_RECHECK + 0.01
    monkeypatch.setattr(badge_cache.time, "monotonic", lambda: later)
    assert client.get(url).get_json()["trading_rules"] == {"returns": "七日包退"}


def test_badge_reads_carry_an_etag_and_answer_304_on_both_paths(shop, client, clock):
    """Issue 10 item 2: ETag (version and validity) and If-None-Match from one place, for the
    Flask views (a query string goes there) and the fast path alike; a change gives a new tag."""
    clock.set(at("2026-03-01 09:00"))
    market, manager, token, login, merchant_id = shop.trusted_stall(until="2027-06-30")
    for path in (f"/api/v1/public/stalls/{token}", f"/s/{token}"):
        for suffix in ("", "?via=flask"):
            first = client.get(path + suffix)
            tag = first.headers["ETag"]
            assert first.status_code == 200 and tag.startswith('"v')
            again = client.get(path + suffix, headers={"If-None-Match": tag})
            assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == tag
            assert again.headers["Cache-Control"].startswith("public, max-age=")
            other = client.get(path + suffix, headers={"If-None-Match": '"v0-0"'})
            assert other.status_code == 200 and other.data == first.data
    before = client.get(f"/api/v1/public/stalls/{token}").headers["ETag"]
    licence = shop.credential(login, merchant_id, kind="tobacco_retail", number="450403100123",
                              valid_until="2027-01-31")
    shop.verify(manager, licence)
    changed = client.get(f"/api/v1/public/stalls/{token}", headers={"If-None-Match": before})
    assert changed.status_code == 200 and changed.headers["ETag"] != before


def test_the_writer_stores_the_badge_in_its_own_transaction(shop, client, clock, db):
    """Issue 10 item 1: a change (here a licence verified) stores the stall's new badge bytes in
    the writer's transaction; a read is then one indexed query of them (no facts gathered)."""
    from app.badge import cache as badge_cache
    from app.badge.models import StallBadge
    from app.core import reader

    clock.set(at("2026-03-01 09:00"))
    market, manager, stalls, login, merchant_id = shop.held_stall()
    token = stalls[0]["token"]
    licence = shop.credential(login, merchant_id, long_term=True)
    shop.verify(manager, licence)
    db.session.expire_all()
    row = db.session.scalar(select(StallBadge).where(StallBadge.token == token))
    assert row is not None and "营业执照" in row.body_json.decode() and b"<html" in row.body_html
    stored_version = row.version

    badge_cache.local_cache.clear()
    calls = []
    original = reader.query
    gathered = []

    def counting(sql, params, engine=None):
        calls.append(sql)
        return original(sql, params, engine)

    import app.badge.cache as cache_module
    from app.badge import facts

    real_fact = facts.fact
    monkey_fact = lambda name: gathered.append(name) or real_fact(name)  # noqa: E731
    cache_module.query, cache_module.fact = counting, monkey_fact
    try:
        body = client.get(f"/api/v1/public/stalls/{token}").get_json()
    finally:
        cache_module.query, cache_module.fact = original, real_fact
    assert len(calls) == 1 and "stall_badges" in calls[0] and gathered == []
    assert body["items"][0]["ok"] is True
    assert client.get(f"/api/v1/public/stalls/{token}").headers["ETag"].startswith(f'"v{stored_version}-')


def test_a_stall_without_a_stored_badge_is_computed_on_its_first_read_and_the_sweep_recomputes(
        shop, client, clock, db):
    from app.badge import cache as badge_cache
    from app.badge.models import StallBadge

    clock.set(at("2026-03-01 09:00"))
    market, manager, token, login, merchant_id = shop.trusted_stall(until="2026-03-10")
    db.session.execute(StallBadge.__table__.delete())
    db.session.commit()
    badge_cache.local_cache.clear()
    assert client.get(f"/api/v1/public/stalls/{token}").status_code == 200  # computed, stored
    db.session.expire_all()
    row = db.session.scalar(select(StallBadge).where(StallBadge.token == token))
    assert row is not None and row.changes_at is not None
    expiry = row.changes_at
    clock.set(expiry)  # the permit's last day has ended
    assert badge_cache.sweep() == 1
    db.session.expire_all()
    swept = db.session.scalar(select(StallBadge).where(StallBadge.token == token))
    assert swept.computed_at == expiry and swept.changes_at is None  # nothing else will lapse
    assert badge_cache.sweep() == 0


def test_flask_badge_rebuild_stores_every_missing_badge(shop, app, db):
    from app.badge.models import StallBadge

    market = shop.market()
    manager = shop.manager(market)
    shop.stalls(market, manager, ["R-01", "R-02", "R-03"])  # created in bulk: no stored badge yet
    assert db.session.query(StallBadge).count() == 0
    result = app.test_cli_runner().invoke(args=["badge", "rebuild", "--missing-only"])
    assert result.exit_code == 0, result.output
    assert "3 个摊位" in result.output
    db.session.expire_all()
    assert db.session.query(StallBadge).count() == 3
