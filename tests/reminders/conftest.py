"""Fixtures of the reminders tests: users and outbox rows without going through the sources."""
from __future__ import annotations

import pytest


@pytest.fixture
def make_user(db):
    from app.identity.services import find_or_create_user

    def factory(openid: str):
        user = find_or_create_user(openid)
        db.session.commit()
        return user

    return factory


@pytest.fixture
def remind(db):
    """remind(user, subject="credential:1", period="d7", ...) -> the number of rows added."""
    from app.reminders.outbox import Reminder, enqueue

    def factory(user, subject: str = "credential:1", period: str = "2026-03-31:d7",
                kind: str = "credential_expiry", template_key: str | None = "credential_expiry",
                title: str = "证照即将到期", body: str = "您的食品经营许可证将于 2026年03月31日 到期，请及时办理延续。",
                **extra) -> int:
        added = enqueue([Reminder(user_id=user.id, kind=kind, subject=subject, period=period,
                                  template_key=template_key, title=title, body=body,
                                  page=extra.pop("page", "pages/credentials/detail?id=1"),
                                  wx_data=extra.pop("wx_data", {"thing1": "食品经营许可证", "time2": "2026年03月31日"}),
                                  **extra)])
        db.session.commit()
        return added

    return factory


@pytest.fixture
def consent(db):
    from app.reminders.consents import add_consents

    def factory(user, *keys: str, times: int = 1) -> None:
        for _ in range(times):
            add_consents(user.id, list(keys) or ["credential_expiry"])
        db.session.commit()

    return factory


def messages_by_nid(sim_state) -> dict[int, int]:
    """How many subscribe messages reached the simulator per notification id (from the page)."""
    counts: dict[int, int] = {}
    for message in sim_state.delivered():
        page = message["body"].get("page") or ""
        nid = int(page.rsplit("nid=", 1)[1])
        counts[nid] = counts.get(nid, 0) + 1
    return counts


def dispatch_in_parallel(app, now, batch_size: int, processes: int = 2) -> list:
    """`processes` dispatchers started together (threads with their own sessions, released by a
    barrier); their results. A thread's exception would vanish: it fails the test here."""
    import threading

    from app.extensions import db
    from app.reminders.dispatcher import dispatch

    barrier = threading.Barrier(processes)
    results, errors = [], []

    def worker():
        with app.app_context():
            try:
                barrier.wait(10)
                results.append(dispatch(now, batch_size=batch_size))
            except Exception as exc:  # noqa: BLE001 (asserted below)
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(processes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    return results
