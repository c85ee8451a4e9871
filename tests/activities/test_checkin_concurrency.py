"""R1: 100 parallel check-ins of one user (half with one Idempotency-Key, half without) leave
exactly one row and answer consistently — on SQLite, and on PostgreSQL when DATABASE_URL says so."""
import threading

from app.activities.checkin import make_payload, slot_of
from app.activities.models import CheckIn, PointsEntry
from tests.conftest import at

PARALLEL = 100


def test_parallel_identical_checkins_leave_one_row(app, client, auth, db, make_org, make_activity, member, clock):
    org = make_org()
    activity = make_activity(org)
    member("racer", org)
    user = auth.login("racer")
    clock.set(at("2026-03-01 08:58"))
    payload = make_payload(activity.id, slot_of(clock.now()))
    url = f"/api/v1/activities/{activity.id}/checkins"
    barrier = threading.Barrier(PARALLEL)
    results: list = [None] * PARALLEL

    def worker(index: int) -> None:
        headers = dict(user.headers)
        if index % 2 == 0:
            headers["Idempotency-Key"] = "same-scan-key"
        own_client = app.test_client()
        barrier.wait()
        try:
            response = own_client.post(url, json={"payload": payload, "lat": None, "lng": None}, headers=headers)
            results[index] = (response.status_code, response.get_json())
        except Exception as exc:  # surfaced by the assertions below
            results[index] = (None, repr(exc))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(PARALLEL)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    statuses = [status for status, _ in results]
    assert all(status in (200, 201) for status in statuses), [r for r in results if r[0] not in (200, 201)][:3]
    ids = {body["id"] for _, body in results}
    assert len(ids) == 1
    bodies = {tuple(sorted(body.items())) for _, body in results}
    assert len(bodies) == 1  # the same check-in, field for field, in every answer
    assert statuses.count(201) >= 1
    db.session.expire_all()
    assert db.session.query(CheckIn).filter_by(activity_id=activity.id).count() == 1
    assert db.session.query(PointsEntry).filter_by(activity_id=activity.id).count() == 1
