"""Rotating check-in (R10): the current and previous 30 s slot accepted, anything else refused
with its own code and recorded for the organiser; exactly one check-in per user and activity."""
from datetime import timedelta

import pytest

from app.activities.checkin import SLOT_SECONDS, make_payload, parse_payload, slot_of
from app.activities.models import CheckIn, CheckInRefusal, PointsEntry
from tests.conftest import at, error_code

WUZHOU = (23.4769, 111.2790)


@pytest.fixture
def setup(client, auth, make_org, make_activity, member, clock):
    org = make_org()
    activity = make_activity(org, starts="2026-03-01 09:00")
    member("party-1", org)
    user = auth.login("party-1")
    clock.set(at("2026-03-01 08:55"))
    return org, activity, user


def scan(client, activity_id, user, payload, **extra):
    return client.post(f"/api/v1/activities/{activity_id}/checkins", json={"payload": payload, **extra},
                       headers=user.headers)


def code_for(activity_id, when):
    return make_payload(activity_id, slot_of(when))


def refusals(db, activity_id):
    db.session.expire_all()
    return [r.code for r in db.session.query(CheckInRefusal).filter_by(activity_id=activity_id).order_by(CheckInRefusal.id)]


def test_current_code_checks_in_once_and_a_repeat_returns_the_first(client, db, setup, clock):
    _, activity, user = setup
    first = scan(client, activity.id, user, code_for(activity.id, clock.now()))
    assert first.status_code == 201, first.get_json()
    body = first.get_json()
    assert body["status"] == "on_time" and body["method"] == "rotating_qr"
    clock.advance(timedelta(minutes=5))
    again = scan(client, activity.id, user, code_for(activity.id, clock.now()))
    assert again.status_code == 200 and again.get_json() == body
    assert db.session.query(CheckIn).count() == 1
    assert db.session.query(PointsEntry).filter_by(user_id=user.user_id).one().delta == 5


def test_previous_slot_accepted_two_slots_old_refused(client, db, setup, clock):
    _, activity, user = setup
    shown = clock.now()
    stale = code_for(activity.id, shown)
    clock.advance(timedelta(seconds=2 * SLOT_SECONDS))
    old = scan(client, activity.id, user, stale)
    assert old.status_code == 410 and error_code(old) == "CHECKIN_CODE_EXPIRED"
    clock.set(shown + timedelta(seconds=SLOT_SECONDS))
    previous = scan(client, activity.id, user, stale)
    assert previous.status_code == 201, previous.get_json()
    assert refusals(db, activity.id) == ["CHECKIN_CODE_EXPIRED"]


def test_forged_and_malformed_codes_refused(client, db, setup, clock):
    _, activity, user = setup
    good = code_for(activity.id, clock.now())
    tampered_mac = good[:-1] + ("A" if good[-1] != "A" else "B")
    slot = slot_of(clock.now())
    for payload in (tampered_mac, f"c1.{activity.id}.{slot}.", "hello", f"c2.{activity.id}.{slot}.xxxxxxxxxxxx",
                    f"c1.{activity.id}.{slot + 1}.{good.rsplit('.', 1)[1]}", "c1.١.٢.abc", "." * 60):
        response = scan(client, activity.id, user, payload)
        assert response.status_code == 400, payload
        assert error_code(response) == "CHECKIN_CODE_FORGED"
    assert parse_payload(good) is not None
    assert db.session.query(CheckIn).count() == 0
    assert set(refusals(db, activity.id)) == {"CHECKIN_CODE_FORGED"}


def test_code_of_another_activity_refused(client, db, setup, make_activity, clock):
    org, activity, user = setup
    other = make_activity(org, starts="2026-03-01 09:00", title="另一个活动")
    response = scan(client, activity.id, user, code_for(other.id, clock.now()))
    assert response.status_code == 409 and error_code(response) == "CHECKIN_CODE_OTHER_ACTIVITY"


def test_outside_the_window_refused_before_and_after(client, db, setup, clock):
    _, activity, user = setup
    clock.set(at("2026-03-01 08:29"))
    early = scan(client, activity.id, user, code_for(activity.id, clock.now()))
    assert error_code(early) == "CHECKIN_NOT_OPEN"
    assert early.get_json()["error"]["details"]["opens_at"].startswith("2026-03-01T08:30:00+08:00")
    clock.set(at("2026-03-01 11:00:30"))
    late = scan(client, activity.id, user, code_for(activity.id, clock.now()))
    assert error_code(late) == "CHECKIN_CLOSED"
    assert refusals(db, activity.id) == ["CHECKIN_NOT_OPEN", "CHECKIN_CLOSED"]


def test_late_after_the_grace_period(client, setup, clock):
    _, activity, user = setup
    clock.set(at("2026-03-01 09:10:30"))
    response = scan(client, activity.id, user, code_for(activity.id, clock.now()))
    assert response.status_code == 201 and response.get_json()["status"] == "late"


def test_geofence_inside_outside_and_poor_accuracy(client, auth, db, make_org, make_activity, member, clock):
    org = make_org()
    activity = make_activity(org, lat=WUZHOU[0], lng=WUZHOU[1], radius_m=200)
    for name in ("near", "far", "fuzzy", "nofix", "fuzzyfar"):
        member(name, org)
    clock.set(at("2026-03-01 09:00"))
    payload = code_for(activity.id, clock.now())

    near = scan(client, activity.id, auth.login("near"), payload, lat=WUZHOU[0] + 0.001, lng=WUZHOU[1], accuracy=15)
    assert near.status_code == 201 and near.get_json()["location_flagged"] is False
    assert near.get_json()["distance_m"] == pytest.approx(111.2, abs=1)

    far = scan(client, activity.id, auth.login("far"), payload, lat=WUZHOU[0] + 0.01, lng=WUZHOU[1], accuracy=15)
    assert far.status_code == 403 and error_code(far) == "CHECKIN_OUTSIDE_AREA"
    assert far.get_json()["error"]["details"] == {"distance_m": 1112, "radius_m": 200}

    # accuracy worse than the radius: accepted when the fix's circle reaches the fence, flagged
    fuzzy = scan(client, activity.id, auth.login("fuzzy"), payload, lat=WUZHOU[0] + 0.003, lng=WUZHOU[1], accuracy=500)
    assert fuzzy.status_code == 201 and fuzzy.get_json()["location_flagged"] is True
    assert fuzzy.get_json()["location_verdict"] == "poor_accuracy"
    fuzzy_far = scan(client, activity.id, auth.login("fuzzyfar"), payload, lat=WUZHOU[0] + 0.05, lng=WUZHOU[1],
                     accuracy=500)
    assert error_code(fuzzy_far) == "CHECKIN_OUTSIDE_AREA"

    nofix = scan(client, activity.id, auth.login("nofix"), payload)
    assert error_code(nofix) == "CHECKIN_LOCATION_REQUIRED"
    assert refusals(db, activity.id) == ["CHECKIN_OUTSIDE_AREA", "CHECKIN_OUTSIDE_AREA", "CHECKIN_LOCATION_REQUIRED"]


def test_not_eligible_pending_member_or_stranger(client, auth, db, setup, member, clock):
    org, activity, _ = setup
    member("pending-1", org, status="pending")
    for openid in ("pending-1", "stranger"):
        response = scan(client, activity.id, auth.login(openid), code_for(activity.id, clock.now()))
        assert response.status_code == 403 and error_code(response) == "CHECKIN_NOT_ELIGIBLE"


def test_station_riders_may_check_in_to_open_rider_activities_only(client, auth, make_org, make_activity,
                                                                   station_rider, clock):
    station = make_org(name="骑手支部", sector="rider", station="万秀区美团站", platform="美团")
    open_activity = make_activity(station, audience="station_riders", type="志愿服务")
    members_only = make_activity(station, type="支部党员大会")
    station_rider("rider-1", station)
    rider = auth.login("rider-1")
    clock.set(at("2026-03-01 09:00"))
    assert scan(client, open_activity.id, rider, code_for(open_activity.id, clock.now())).status_code == 201
    refused = scan(client, members_only.id, rider, code_for(members_only.id, clock.now()))
    assert error_code(refused) == "CHECKIN_NOT_ELIGIBLE"


def test_capacity_and_cancelled(client, auth, db, make_org, make_activity, member, clock):
    org = make_org()
    small = make_activity(org, capacity=1)
    for name in ("a", "b"):
        member(name, org)
    clock.set(at("2026-03-01 09:00"))
    assert scan(client, small.id, auth.login("a"), code_for(small.id, clock.now())).status_code == 201
    full = scan(client, small.id, auth.login("b"), code_for(small.id, clock.now()))
    assert full.status_code == 409 and error_code(full) == "CHECKIN_FULL"
    assert db.session.query(CheckIn).filter_by(activity_id=small.id).count() == 1

    cancelled = make_activity(org, status="cancelled", cancel_reason="台风")
    response = scan(client, cancelled.id, auth.login("a"), code_for(cancelled.id, clock.now()))
    assert error_code(response) == "ACTIVITY_CANCELLED"
    assert refusals(db, small.id) == ["CHECKIN_FULL"]


def test_checkin_needs_login_and_validates_input(client, setup, clock):
    _, activity, user = setup
    assert client.post(f"/api/v1/activities/{activity.id}/checkins", json={"payload": "x"}).status_code == 401
    bad = scan(client, activity.id, user, code_for(activity.id, clock.now()), lat=23.0)
    assert error_code(bad) == "LOCATION_INCOMPLETE"
    assert error_code(scan(client, 999999, user, "c1.999999.1.abc")) == "ACTIVITY_NOT_FOUND"


def test_organiser_gets_rotating_code_and_png(client, auth, setup, clock):
    import io

    import zxingcpp
    from PIL import Image

    org, activity, user = setup
    sec = auth.login("sec", role="branch_secretary", scope=f"org:{org.id}")
    clock.set(at("2026-03-01 08:55:10"))
    code = client.get(f"/api/v1/activities/{activity.id}/checkin-code", headers=sec.headers).get_json()
    assert code["payload"] == code_for(activity.id, clock.now())
    assert code["expires_in"] == 20
    assert len(code["payload"]) <= 40
    png = client.get(code["png_url"])  # an <image src>: no bearer header (issue 12 item 4)
    assert png.status_code == 200 and png.mimetype == "image/png"
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(png.data)))
    assert [d.text for d in decoded] == [code["payload"]]
    forged = code["png_url"].replace(".png", "x.png")
    assert error_code(client.get(forged)) == "CHECKIN_CODE_IMAGE_INVALID"
    clock.advance(timedelta(seconds=SLOT_SECONDS))
    assert client.get(f"/api/v1/activities/{activity.id}/checkin-code", headers=sec.headers).get_json()["payload"] != code["payload"]
    # a member cannot display the code
    assert error_code(client.get(f"/api/v1/activities/{activity.id}/checkin-code", headers=user.headers)) == "FORBIDDEN"


def test_the_signed_code_image_url_expires(client, auth, setup, monkeypatch):
    import itsdangerous.timed

    from app.activities.checkin import CODE_IMAGE_SECONDS

    org, activity, _ = setup
    sec = auth.login("sec", role="branch_secretary", scope=f"org:{org.id}")
    url = client.get(f"/api/v1/activities/{activity.id}/checkin-code", headers=sec.headers).get_json()["png_url"]
    real_now = itsdangerous.timed.TimestampSigner.get_timestamp
    monkeypatch.setattr(itsdangerous.timed.TimestampSigner, "get_timestamp",
                        lambda self: real_now(self) + CODE_IMAGE_SECONDS + 2)
    expired = client.get(url)
    assert expired.status_code == 410 and error_code(expired) == "CHECKIN_CODE_IMAGE_EXPIRED"


def test_idempotency_key_replays_the_first_answer(client, db, setup, clock):
    _, activity, user = setup
    payload = code_for(activity.id, clock.now())
    headers = {**user.headers, "Idempotency-Key": "scan-1"}
    first = client.post(f"/api/v1/activities/{activity.id}/checkins", json={"payload": payload}, headers=headers)
    second = client.post(f"/api/v1/activities/{activity.id}/checkins", json={"payload": payload}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.get_json() == second.get_json()
    assert second.headers.get("Idempotent-Replayed") == "true"


def test_manual_checkin_is_audited(client, auth, db, setup, member, clock):
    from app.core.audit import AuditEntry

    org, activity, _ = setup
    absent = member("phone-flat", org)
    sec = auth.login("sec", role="branch_secretary", scope=f"org:{org.id}")
    response = client.post(f"/api/v1/activities/{activity.id}/checkins/manual",
                           json={"user_id": absent.id, "reason": "手机没电，现场确认"},
                           headers={**sec.headers, "X-Request-ID": "req-manual-0001"})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["method"] == "manual"
    entry = db.session.query(AuditEntry).filter_by(action="checkin.manual").one()
    assert (entry.actor_id, entry.actor_role, entry.target_type, entry.target_id) == (
        sec.user_id, "branch_secretary", "activity", str(activity.id))
    assert entry.after["user_id"] == absent.id and entry.reason == "手机没电，现场确认"
    # The audit row carries the server's id, never the one the client chose (that one is echoed,
    # labelled, in X-Client-Request-ID).
    assert entry.request_id == response.headers["X-Request-ID"] != "req-manual-0001"
    assert response.headers["X-Client-Request-ID"] == "req-manual-0001"
    repeat = client.post(f"/api/v1/activities/{activity.id}/checkins/manual",
                         json={"user_id": absent.id, "reason": "再次"}, headers=sec.headers)
    assert repeat.status_code == 200 and repeat.get_json()["id"] == response.get_json()["id"]
    assert db.session.query(AuditEntry).filter_by(action="checkin.manual").count() == 1


def test_rider_cannot_check_in_others_by_hand(client, auth, setup, member):
    org, activity, _ = setup
    other = member("other", org)
    rider = auth.login("rider-x", role="rider")
    response = client.post(f"/api/v1/activities/{activity.id}/checkins/manual",
                           json={"user_id": other.id, "reason": "x"}, headers=rider.headers)
    assert error_code(response) == "FORBIDDEN"


def test_purge_raw_coordinates_keeps_distance_and_verdict(client, auth, db, make_org, make_activity, member, clock):
    from app.activities.checkin import purge_raw_coordinates

    org = make_org()
    activity = make_activity(org, lat=WUZHOU[0], lng=WUZHOU[1], radius_m=200)
    member("near", org)
    member("far", org)
    clock.set(at("2026-03-01 09:00"))
    payload = code_for(activity.id, clock.now())
    scan(client, activity.id, auth.login("near"), payload, lat=WUZHOU[0] + 0.001, lng=WUZHOU[1], accuracy=10)
    scan(client, activity.id, auth.login("far"), payload, lat=WUZHOU[0] + 0.01, lng=WUZHOU[1], accuracy=10)
    assert purge_raw_coordinates(at("2026-03-30 09:00")) == 0
    assert purge_raw_coordinates(at("2026-04-01 09:00")) == 2
    db.session.expire_all()
    checkin = db.session.query(CheckIn).one()
    refusal = db.session.query(CheckInRefusal).one()
    assert (checkin.lat, checkin.lng, checkin.accuracy_m) == (None, None, None)
    assert checkin.distance_m == pytest.approx(111.2, abs=1) and checkin.location_verdict == "inside"
    assert (refusal.lat, refusal.lng) == (None, None) and refusal.distance_m == 1112


def test_no_geofence_keeps_no_location(client, db, setup, clock):
    _, activity, user = setup
    response = scan(client, activity.id, user, code_for(activity.id, clock.now()), lat=23.4, lng=111.2, accuracy=5)
    assert response.status_code == 201 and response.get_json()["location_verdict"] == "no_geofence"
    row = db.session.query(CheckIn).one()
    assert (row.lat, row.lng, row.accuracy_m, row.distance_m) == (None, None, None, None)
    assert "23.4" not in response.get_data(as_text=True)


class _Statements:
    """Counts the SQL statements that touch a table, on the app's engine."""

    def __init__(self, engine, table: str) -> None:
        from sqlalchemy import event

        self.count, self.table, self.engine = 0, table, engine
        self._listener = lambda conn, cursor, statement, *args: self._seen(statement)
        event.listen(engine, "before_cursor_execute", self._listener)

    def _seen(self, statement: str) -> None:
        if self.table in statement:
            self.count += 1

    def close(self) -> None:
        from sqlalchemy import event

        event.remove(self.engine, "before_cursor_execute", self._listener)


def test_retries_are_answered_from_memory_once_the_checkin_was_seen(client, db, setup, clock):
    _, activity, user = setup
    payload = code_for(activity.id, clock.now())
    first = scan(client, activity.id, user, payload)
    assert first.status_code == 201
    assert scan(client, activity.id, user, payload).status_code == 200  # read back: now known
    watch = _Statements(db.engine, "activity_checkins")
    try:
        retries = [scan(client, activity.id, user, payload) for _ in range(3)]
    finally:
        watch.close()
    assert [r.get_json()["id"] for r in retries] == [first.get_json()["id"]] * 3
    assert watch.count == 0


def test_a_rolled_back_checkin_is_never_remembered(client, auth, db, make_org, make_activity, member, clock):
    """The request that loses the last place inserts, then rolls back: its retry must not find
    a phantom check-in."""
    org = make_org()
    small = make_activity(org, capacity=1)
    member("first", org)
    member("second", org)
    clock.set(at("2026-03-01 08:55"))
    payload = code_for(small.id, clock.now())
    assert scan(client, small.id, auth.login("first"), payload).status_code == 201
    second = auth.login("second")
    assert error_code(scan(client, small.id, second, payload)) == "CHECKIN_FULL"
    assert error_code(scan(client, small.id, second, payload)) == "CHECKIN_FULL"
    assert db.session.query(CheckIn).filter_by(activity_id=small.id).count() == 1


def test_idempotent_replays_are_answered_from_memory(client, db, setup, clock):
    _, activity, user = setup
    payload = code_for(activity.id, clock.now())
    headers = {**user.headers, "Idempotency-Key": "phone-retry-1"}
    post = lambda: client.post(f"/api/v1/activities/{activity.id}/checkins",  # noqa: E731
                               json={"payload": payload}, headers=headers)
    first = post()
    assert post().headers.get("Idempotent-Replayed") == "true"  # read back: now known
    watch = _Statements(db.engine, "idempotency_keys")
    try:
        replays = [post() for _ in range(3)]
    finally:
        watch.close()
    assert all(r.status_code == 201 and r.get_json() == first.get_json() for r in replays)
    assert watch.count == 0


def test_a_fix_claiming_kilometres_of_error_is_refused_not_flagged(client, auth, db, make_org, make_activity,
                                                                    member, clock):
    """Issue 9 item 8: a claimed accuracy of 100 km puts any point "inside" a 200 m fence; past
    MAX_ACCURACY_M the scan is refused with its own reason, whatever the distance."""
    from app.activities.checkin import MAX_ACCURACY_M

    org = make_org()
    activity = make_activity(org, lat=WUZHOU[0], lng=WUZHOU[1], radius_m=200)
    for name in ("vague-near", "vague-far", "edge"):
        member(name, org)
    clock.set(at("2026-03-01 09:00"))
    payload = code_for(activity.id, clock.now())
    for name, lat in (("vague-near", WUZHOU[0]), ("vague-far", WUZHOU[0] + 0.9)):  # 0 m and ~99 km away
        response = scan(client, activity.id, auth.login(name), payload, lat=lat, lng=WUZHOU[1], accuracy=100_000)
        assert response.status_code == 422 and error_code(response) == "CHECKIN_ACCURACY_TOO_POOR"
        assert response.get_json()["error"]["details"]["max_accuracy_m"] == MAX_ACCURACY_M
    edge = scan(client, activity.id, auth.login("edge"), payload, lat=WUZHOU[0], lng=WUZHOU[1],
                accuracy=MAX_ACCURACY_M)
    assert edge.status_code == 201 and edge.get_json()["location_flagged"] is True
    assert db.session.query(CheckIn).count() == 1


def test_a_flood_of_junk_scans_is_bounded_in_work_and_in_rows(client, auth, db, setup, clock):
    """Issue 9 item 7: 200 junk scans by one user are answered, 429 (with Retry-After) once the
    per-minute refusals are spent; the refusal log keeps one counted row per reason."""
    from app.activities.checkin import REFUSED_SCANS_PER_MINUTE

    _, activity, user = setup
    answers = [scan(client, activity.id, user, f"c1.{activity.id}.{i}.forgedforged") for i in range(200)]
    statuses = [r.status_code for r in answers]
    assert statuses[:REFUSED_SCANS_PER_MINUTE] == [400] * REFUSED_SCANS_PER_MINUTE
    assert set(statuses[REFUSED_SCANS_PER_MINUTE:]) == {429}
    assert error_code(answers[-1]) == "CHECKIN_RATE_LIMITED" and int(answers[-1].headers["Retry-After"]) > 0
    db.session.expire_all()
    rows = db.session.query(CheckInRefusal).filter_by(activity_id=activity.id).all()
    assert [(r.code, r.count) for r in rows] == [("CHECKIN_CODE_FORGED", REFUSED_SCANS_PER_MINUTE)]
    # A minute later the user may scan again, and an honest scan is never limited.
    clock.advance(timedelta(seconds=61))
    ok = scan(client, activity.id, user, code_for(activity.id, clock.now()))
    assert ok.status_code == 201, ok.get_json()
    org, _, _ = setup
    secretary = auth.login("flood-sec", role="branch_secretary", scope=f"org:{org.id}")
    sheet = client.get(f"/api/v1/activities/{activity.id}/attendance", headers=secretary.headers).get_json()
    assert sheet["counts"]["refused_scans"] == REFUSED_SCANS_PER_MINUTE
