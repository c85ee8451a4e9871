"""The batched dispatcher (issue 14): a batch is fenced and its consents taken in one
transaction, sent from a thread pool, and its outcomes recorded in one transaction; WeChat's
quotas (45009 daily, 45011 per minute) stop the run without using attempts; a per-second cap;
two dispatchers still send each dedupe key once."""
from datetime import datetime, timedelta

import pytest
from sqlalchemy import event

from app.reminders.dispatcher import MAX_ATTEMPTS, dispatch
from app.reminders.models import Notification, SubscriptionConsent
from tests.conftest import at
from tests.reminders.conftest import dispatch_in_parallel, messages_by_nid

SEND = "cgi-bin/message/subscribe/send"


def _row(db, openid):
    from app.identity.models import User

    return (db.session.query(Notification).join(User, User.id == Notification.user_id)
            .filter(User.openid == openid).one())


def _remaining(db, user, key="credential_expiry"):
    db.session.expire_all()
    row = db.session.query(SubscriptionConsent).filter_by(user_id=user.id, template_key=key).one_or_none()
    return row.remaining if row else 0


def _commits(db):
    """Count the dispatcher's commits (its own session's transactions)."""
    counted = []
    listener = lambda conn: counted.append(1)  # noqa: E731
    event.listen(db.engine, "commit", listener)
    return counted, lambda: event.remove(db.engine, "commit", listener)


def test_a_batch_with_mixed_outcomes_is_recorded_in_one_pass(app, db, wechat_sim, clock, make_user, remind, consent,
                                                             monkeypatch):
    # One sender: the calls go out in row order, so the injected 502 meets the first row (the
    # refuser's call must reach the simulator to be refused).
    monkeypatch.setitem(app.config, "DISPATCH_WORKERS", 1)
    clock.set(at("2026-03-01 09:00"))
    ok_a, ok_b, refuser, without = (make_user(name) for name in ("mixed-a", "mixed-b", "mixed-refuser", "mixed-none"))
    for user in (ok_a, ok_b, refuser):
        consent(user, "credential_expiry")
    for user in (ok_a, ok_b, refuser, without):
        remind(user)
    wechat_sim.sim_state.refusing.add("mixed-refuser")
    wechat_sim.sim_state.add_fault(SEND, http_status=502, times=1)  # the first call: mixed-a's

    counted, stop = _commits(db)
    try:
        stats = dispatch()
    finally:
        stop()

    # reclaim, claim, fence + consents, outcomes, and the claim that finds nothing more: the
    # batch's four rows cost one fence and one outcome transaction between them.
    assert len(counted) == 5
    assert (stats.claimed, stats.sent, stats.no_consent, stats.retried, stats.failed) == (4, 1, 2, 1, 0)
    db.session.expire_all()
    refused = _row(db, "mixed-refuser")
    assert (refused.status, refused.wx_errcode, refused.attempts) == ("no_consent", 43101, 1)
    assert _remaining(db, refuser) == 0
    no_consent = _row(db, "mixed-none")
    assert (no_consent.status, no_consent.attempts, no_consent.wx_errcode) == ("no_consent", 0, None)
    assert no_consent.send_started_at is None
    sent, retried = [_row(db, "mixed-b")], [_row(db, "mixed-a")]
    assert (sent[0].status, retried[0].status) == ("sent", "pending")
    assert (sent[0].attempts, sent[0].wx_errcode, sent[0].sent_at) == (1, 0, clock.now())
    assert sent[0].wx_msgid
    assert (retried[0].attempts, retried[0].next_attempt_at) == (1, clock.now() + timedelta(minutes=1))
    assert (retried[0].claim_token, retried[0].send_started_at) == (None, None)
    # The retried row's consent went back to its owner; the sent one's was used.
    by_id = {ok_a.id: ok_a, ok_b.id: ok_b}
    assert _remaining(db, by_id[retried[0].user_id]) == 1
    assert _remaining(db, by_id[sent[0].user_id]) == 0
    assert len(wechat_sim.sim_state.delivered()) == 1

    # The retry goes out after its backoff; nothing else is sent again.
    assert dispatch(clock.now() + timedelta(minutes=1)).sent == 1
    assert sorted(messages_by_nid(wechat_sim.sim_state).values()) == [1, 1]


def test_daily_quota_defers_to_after_local_midnight_without_using_attempts(app, db, wechat_sim, clock, make_user,
                                                                          remind, consent, monkeypatch):
    monkeypatch.setitem(app.config, "DISPATCH_WORKERS", 1)  # calls in row order: the first one meets the quota
    clock.set(at("2026-03-01 09:00"))  # 01:00 UTC
    users = [make_user(f"quota-{i}") for i in range(8)]
    for user in users:
        consent(user, "credential_expiry")
        remind(user)
    wechat_sim.sim_state.add_fault(SEND, errcode=45009, times=1)

    stats = dispatch(batch_size=3)

    # The run stopped at the quota: one call, the rest of its batch not called, and the next batch
    # (fenced while that call was out, if the answer came that late) not called either.
    assert len(wechat_sim.sim_state.received(SEND)) == 1
    assert stats.claimed in (3, 6)
    assert (stats.deferred, stats.sent, stats.retried, stats.failed) == (stats.claimed, 0, 0, 0)
    midnight = datetime(2026, 3, 1, 16, 0)  # 2026-03-02 00:00 in Asia/Shanghai, naive UTC
    db.session.expire_all()
    rows = db.session.query(Notification).order_by(Notification.id).all()
    deferred, untouched = rows[:stats.claimed], rows[stats.claimed:]
    for row in deferred:
        assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 0, midnight)
        assert (row.claim_token, row.send_started_at, row.wx_errcode) == (None, None, 45009)
    assert all((r.status, r.attempts, r.next_attempt_at) == ("pending", 0, clock.now()) for r in untouched)
    assert all(_remaining(db, user) == 1 for user in users)  # every consent still there

    # Before midnight the deferred rows stay put; after it they go out on their first attempt.
    assert dispatch(midnight - timedelta(seconds=1)).sent == len(untouched)
    after = dispatch(midnight)
    assert (after.claimed, after.sent) == (len(deferred), len(deferred))
    db.session.expire_all()
    assert [(r.status, r.attempts) for r in db.session.query(Notification)] == [("sent", 1)] * 8
    assert sorted(messages_by_nid(wechat_sim.sim_state).values()) == [1] * 8


def test_minute_quota_backs_the_batch_off_a_minute(app, db, wechat_sim, clock, make_user, remind, consent,
                                                   monkeypatch):
    monkeypatch.setitem(app.config, "DISPATCH_WORKERS", 1)
    clock.set(at("2026-03-01 09:00"))
    users = [make_user(f"minute-{i}") for i in range(3)]
    for user in users:
        consent(user, "credential_expiry")
        remind(user)
    wechat_sim.sim_state.add_fault(SEND, errcode=45011, times=1)

    stats = dispatch()

    assert (stats.deferred, stats.sent, len(wechat_sim.sim_state.received(SEND))) == (3, 0, 1)
    db.session.expire_all()
    assert {(r.status, r.attempts, r.next_attempt_at) for r in db.session.query(Notification)} == {
        ("pending", 0, clock.now() + timedelta(minutes=1))}
    assert dispatch(clock.now() + timedelta(minutes=1)).sent == 3


def test_the_per_second_cap_holds(app, db, wechat_sim, clock, make_user, remind, consent, monkeypatch):
    cap = 4
    monkeypatch.setitem(app.config, "DISPATCH_MAX_PER_SECOND", cap)
    clock.set(at("2026-03-01 09:00"))
    for i in range(11):
        user = make_user(f"capped-{i}")
        consent(user, "credential_expiry")
        remind(user)

    assert dispatch(batch_size=6).sent == 11

    received = sorted(datetime.fromisoformat(r["at"]) for r in wechat_sim.sim_state.received(SEND))
    assert len(received) == 11
    # Count the calls the simulator received in every window starting at a call. The cap is on
    # start times; 0.1 s of the second is left for the calls' own jitter on the way in.
    busiest = max(sum(1 for t in received if start <= t < start + timedelta(seconds=0.9)) for start in received)
    assert busiest <= cap


def test_one_run_drains_batch_after_batch_until_nothing_is_due(db, wechat_sim, clock, make_user, remind, consent):
    clock.set(at("2026-03-01 09:00"))
    for i in range(7):
        user = make_user(f"drain-{i}")
        consent(user, "credential_expiry")
        remind(user)
    assert dispatch(max_seconds=0).claimed == 0  # out of time before the first claim
    stats = dispatch(batch_size=2)
    assert (stats.claimed, stats.sent) == (7, 7)


def test_retries_exhausted_in_a_batch_fail_and_give_consents_back(db, wechat_sim, clock, make_user, remind,
                                                                  consent):
    clock.set(at("2026-03-01 09:00"))
    user = make_user("tired")
    consent(user, "credential_expiry")
    remind(user)
    db.session.query(Notification).update({"attempts": MAX_ATTEMPTS - 1})
    db.session.commit()
    wechat_sim.sim_state.add_fault(SEND, errcode=-1, times=1)
    stats = dispatch()
    assert (stats.failed, stats.retried) == (1, 0)
    db.session.expire_all()
    row = db.session.query(Notification).one()
    assert (row.status, row.attempts, row.wx_errcode) == ("failed", MAX_ATTEMPTS, -1)
    assert _remaining(db, user) == 1


def test_two_dispatcher_threads_with_pools_send_each_key_once(app, db, wechat_sim, clock, make_user, consent,
                                                             remind):

    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("concurrent claimers need PostgreSQL (FOR UPDATE SKIP LOCKED)")
    clock.set(at("2026-03-01 09:00"))
    users = [make_user(f"duo-{i}") for i in range(40)]
    for i, user in enumerate(users):
        consent(user, "credential_expiry", times=2)  # two reminders each: consents shared by both
        remind(user, subject=f"credential:{i}")
        remind(user, subject=f"permit:{i}")
    wechat_sim.sim_state.add_refusing(["duo-3", "duo-7"])
    wechat_sim.sim_state.add_fault(SEND, errcode=-1, times=5)
    now = clock.now()
    results = dispatch_in_parallel(app, now, batch_size=7)
    assert all(r.claimed > 0 for r in results), "both dispatchers should have taken a share"
    assert sum(r.claimed for r in results) == 80
    # Later runs send the retries; every key reaches WeChat at most once, all but the refusers' once.
    for minutes in (1, 3, 7):
        dispatch(now + timedelta(minutes=minutes))
    counts = messages_by_nid(wechat_sim.sim_state)
    assert set(counts.values()) == {1} and len(counts) == 76
    db.session.expire_all()
    statuses = sorted(n.status for n in db.session.query(Notification))
    assert statuses == ["no_consent"] * 4 + ["sent"] * 76
    ledger = {c.user_id: c.remaining for c in db.session.query(SubscriptionConsent)}
    assert set(ledger.values()) == {0}
