"""Consent ledger and delivery: one consent = one message, 43101 final, -1 retried with backoff,
an expired access token refreshed once (QUALITY R11)."""
from datetime import timedelta

from app.reminders.dispatcher import LEASE, backoff, dispatch
from app.reminders.models import Notification, SubscriptionConsent
from tests.conftest import at
from tests.reminders.conftest import messages_by_nid

SEND = "cgi-bin/message/subscribe/send"


def _rows(db):
    return {n.subject: n for n in db.session.query(Notification).order_by(Notification.id)}


def _remaining(db, user, key="credential_expiry"):
    row = db.session.query(SubscriptionConsent).filter_by(user_id=user.id, template_key=key).one_or_none()
    db.session.refresh(row) if row else None
    return row.remaining if row else 0


def test_one_consent_two_reminders_one_message_one_inbox_only(db, wechat_sim, clock, make_user, remind, consent):
    clock.set(at("2026-03-01 09:00"))
    user = make_user("merchant-a")
    consent(user, "credential_expiry")
    remind(user, subject="credential:1")
    remind(user, subject="credential:2")

    stats = dispatch()

    assert (stats.sent, stats.no_consent) == (1, 1)
    rows = _rows(db)
    assert [rows["credential:1"].status, rows["credential:2"].status] == ["sent", "no_consent"]
    messages = wechat_sim.sim_state.delivered()
    assert len(messages) == 1
    body = messages[0]["body"]
    assert body["touser"] == "merchant-a"
    assert body["template_id"] == "sim-tpl-credential-expiry"
    assert body["data"] == {"thing1": {"value": "食品经营许可证"}, "time2": {"value": "2026年03月31日"}}
    assert body["page"] == f"pages/credentials/detail?id=1&nid={rows['credential:1'].id}"
    assert _remaining(db, user) == 0
    # Both are in the inbox; a second run sends nothing more.
    assert db.session.query(Notification).filter_by(user_id=user.id).count() == 2
    dispatch(clock.now() + timedelta(hours=1))
    assert len(wechat_sim.sim_state.delivered()) == 1


def test_consents_are_per_template(db, wechat_sim, clock, make_user, remind, consent):
    clock.set(at("2026-03-01 09:00"))
    user = make_user("merchant-b")
    consent(user, "activity_start")
    remind(user)  # credential_expiry template: no consent for it
    assert dispatch().no_consent == 1
    assert wechat_sim.sim_state.delivered() == []
    assert _remaining(db, user, "activity_start") == 1


def test_refusal_43101_is_final_and_zeroes_the_ledger(db, wechat_sim, clock, make_user, remind, consent):
    clock.set(at("2026-03-01 09:00"))
    user = make_user("refuser")
    consent(user, "credential_expiry", times=3)
    wechat_sim.sim_state.refusing.add("refuser")
    remind(user, subject="credential:1")

    stats = dispatch()
    sends = len(wechat_sim.sim_state.received(SEND))

    assert stats.no_consent == 1
    row = _rows(db)["credential:1"]
    assert (row.status, row.wx_errcode, row.attempts) == ("no_consent", 43101, 1)
    assert _remaining(db, user) == 0
    # Never retried, however much later the dispatcher runs.
    for hours in (1, 5, 48):
        dispatch(clock.now() + timedelta(hours=hours))
    assert len(wechat_sim.sim_state.received(SEND)) == sends
    assert wechat_sim.sim_state.delivered() == []


def test_system_busy_is_retried_with_backoff_then_sent(db, wechat_sim, clock, make_user, remind, consent):
    clock.set(at("2026-03-01 09:00"))
    user = make_user("busy")
    consent(user, "credential_expiry")
    remind(user, subject="credential:1")
    wechat_sim.sim_state.add_fault(SEND, errcode=-1, times=2)

    assert dispatch().retried == 1
    row = _rows(db)["credential:1"]
    assert (row.status, row.attempts, row.wx_errcode) == ("pending", 1, -1)
    assert row.next_attempt_at == clock.now() + timedelta(minutes=1)
    assert _remaining(db, user) == 1  # WeChat did not deliver, so the consent is still there

    # Not before the backoff has passed.
    assert dispatch(clock.now() + timedelta(seconds=59)).claimed == 0
    assert dispatch(clock.now() + timedelta(minutes=1)).retried == 1
    db.session.refresh(row)
    assert row.next_attempt_at == clock.now() + timedelta(minutes=1 + 2)

    assert dispatch(clock.now() + timedelta(minutes=3)).sent == 1
    db.session.refresh(row)
    assert (row.status, row.attempts) == ("sent", 3)
    assert len(wechat_sim.sim_state.delivered()) == 1
    assert _remaining(db, user) == 0


def test_retries_give_up_after_the_limit(db, wechat_sim, clock, make_user, remind, consent):
    from app.reminders.dispatcher import MAX_ATTEMPTS

    clock.set(at("2026-03-01 09:00"))
    user = make_user("down")
    consent(user, "credential_expiry")
    remind(user)
    wechat_sim.sim_state.add_fault(SEND, http_status=502, times=MAX_ATTEMPTS)
    when = clock.now()
    for attempt in range(1, MAX_ATTEMPTS + 1):
        dispatch(when)
        when += backoff(attempt)
    row = db.session.query(Notification).one()
    assert (row.status, row.attempts) == ("failed", MAX_ATTEMPTS)
    assert dispatch(when + timedelta(days=1)).claimed == 0
    assert wechat_sim.sim_state.delivered() == []
    assert _remaining(db, user) == 1


def test_backoff_doubles():
    assert [backoff(n) for n in (1, 2, 3, 4)] == [timedelta(minutes=m) for m in (1, 2, 4, 8)]


def test_expired_access_token_is_refreshed_once_and_the_send_retried(db, wechat_sim, clock, make_user,
                                                                    remind, consent):
    clock.set(at("2026-03-01 09:00"))
    user = make_user("token-user")
    consent(user, "credential_expiry", times=2)
    remind(user, subject="credential:1")
    assert dispatch().sent == 1
    fetches = wechat_sim.sim_state.token_fetches
    sends = len(wechat_sim.sim_state.received(SEND))

    wechat_sim.sim_state.expire_tokens()
    remind(user, subject="credential:2")
    stats = dispatch(clock.now() + timedelta(minutes=1))

    assert stats.sent == 1
    assert wechat_sim.sim_state.token_fetches == fetches + 1
    assert len(wechat_sim.sim_state.delivered()) == 2
    # The call refused for the expired token, then its one retry with the fresh token.
    assert len(wechat_sim.sim_state.received(SEND)) == sends + 2


def test_thing_values_are_cut_to_twenty_characters(db, wechat_sim, clock, make_user, remind, consent):
    clock.set(at("2026-03-01 09:00"))
    user = make_user("long")
    consent(user, "credential_expiry")
    remind(user, wx_data={"thing1": "梧州市万秀区东中综合农贸市场经营户食品经营许可证副本", "time2": "2026年03月31日",
                          "phrase3": "即将到期提醒"})
    dispatch()
    data = wechat_sim.sim_state.delivered()[0]["body"]["data"]
    assert len(data["thing1"]["value"]) == 20 and data["thing1"]["value"].endswith("…")
    assert len(data["phrase3"]["value"]) == 5


def test_inbox_only_reminders_are_never_pushed(db, wechat_sim, clock, make_user, remind, consent):
    clock.set(at("2026-03-01 09:00"))
    user = make_user("inbox-only")
    consent(user, "credential_expiry")
    remind(user, channel="inbox")
    assert dispatch().claimed == 0
    assert db.session.query(Notification).one().status == "sent"
    assert wechat_sim.sim_state.delivered() == []


def test_crash_after_claim_before_send_is_sent_once_after_the_lease(db, wechat_sim, clock, make_user,
                                                                   remind, consent):
    from app.reminders.dispatcher import claim_batch

    clock.set(at("2026-03-01 09:00"))
    users = [make_user(f"crash-{i}") for i in range(5)]
    for user in users:
        consent(user, "credential_expiry")
        remind(user)
    token, claimed = claim_batch(clock.now(), 10)  # …and the process dies here
    assert len(claimed) == 5
    db.session.remove()

    # Within the lease nobody touches the claimed rows.
    assert dispatch(clock.now() + LEASE - timedelta(seconds=1)).claimed == 0
    stats = dispatch(clock.now() + LEASE + timedelta(seconds=1))
    assert (stats.reclaimed, stats.sent) == (5, 5)
    assert sorted(messages_by_nid(wechat_sim.sim_state).values()) == [1] * 5
    dispatch(clock.now() + 2 * LEASE + timedelta(minutes=5))
    assert len(wechat_sim.sim_state.delivered()) == 5


def test_crash_after_send_before_mark_is_never_sent_again(db, wechat_sim, clock, make_user, remind, consent,
                                                         monkeypatch):
    import pytest

    from app.reminders import dispatcher

    clock.set(at("2026-03-01 09:00"))
    user = make_user("crash-late")
    consent(user, "credential_expiry", times=3)
    for i in (1, 2, 3):
        remind(user, subject=f"credential:{i}")

    class Crash(BaseException):
        pass

    def die(*args, **kwargs):
        raise Crash()

    monkeypatch.setattr(dispatcher, "finish_batch", die)
    with pytest.raises(Crash):
        # Batches of one: the second is fenced and sent while the first waits to be recorded,
        # which is where it dies; the third is never claimed.
        dispatch(batch_size=1)
    monkeypatch.undo()
    db.session.rollback()
    assert len(wechat_sim.sim_state.delivered()) == 2  # WeChat got them; our marks did not happen

    stats = dispatch(clock.now() + LEASE + timedelta(seconds=1))
    # The two whose outcome is unknown are not resent; the third (never claimed) is sent.
    assert (stats.unknown, stats.reclaimed, stats.sent) == (2, 0, 1)
    rows = _rows(db)
    assert [rows[f"credential:{i}"].status for i in (1, 2, 3)] == ["failed", "failed", "sent"]
    assert sorted(messages_by_nid(wechat_sim.sim_state).values()) == [1, 1, 1]
    dispatch(clock.now() + timedelta(days=1))
    assert len(wechat_sim.sim_state.delivered()) == 3


def test_a_claim_takes_at_most_its_batch(db, clock, make_user, remind):
    from app.reminders.dispatcher import claim_batch

    clock.set(at("2026-03-01 09:00"))
    user = make_user("batch")
    for i in range(7):
        remind(user, subject=f"credential:{i}")
    first = claim_batch(clock.now(), 3)[1]
    second = claim_batch(clock.now(), 3)[1]
    third = claim_batch(clock.now(), 3)[1]
    assert [len(first), len(second), len(third)] == [3, 3, 1]
    assert len({r.id for r in first + second + third}) == 7
    assert claim_batch(clock.now(), 3)[1] == []
