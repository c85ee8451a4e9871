"""Issue 13 item 6: rotating SECRET_KEY. A restart with a new SECRET_KEY and the old one in
SECRET_KEY_FALLBACKS logs everyone out (an old bearer token is 401) but keeps the check-in code
on the projector, and its image URL, working for their normal window; without the fallback
they are refused. `flask doctor` warns while fallbacks are configured."""
from datetime import timedelta

import pytest

from app.activities.checkin import CODE_IMAGE_SECONDS, SLOT_SECONDS
from app.doctor import WARN, examine
from tests.conftest import at, error_code

OLD_KEY = "test-secret-key"  # tests/conftest.py's
NEW_KEY = "a-new-key-after-the-leak-0123456789abcdef"


def restart_with(monkeypatch, app, secret_key: str, fallbacks: str | None) -> None:
    """What a restart with new environment variables does to the keys: Config reads them again."""
    from config import TestConfig

    monkeypatch.setenv("SECRET_KEY", secret_key)
    if fallbacks is None:
        monkeypatch.delenv("SECRET_KEY_FALLBACKS", raising=False)
    else:
        monkeypatch.setenv("SECRET_KEY_FALLBACKS", fallbacks)
    config = TestConfig()
    monkeypatch.setitem(app.config, "SECRET_KEY", config.SECRET_KEY)
    monkeypatch.setitem(app.config, "SECRET_KEY_FALLBACKS", config.SECRET_KEY_FALLBACKS)


@pytest.fixture
def setup(client, auth, make_org, make_activity, member, clock):
    org = make_org()
    activity = make_activity(org, starts="2026-03-01 09:00")
    member("party-1", org)
    user = auth.login("party-1")
    secretary = auth.login("sec", role="branch_secretary", scope=f"org:{org.id}")
    clock.set(at("2026-03-01 08:55:05"))
    return activity, user, secretary


def shown_code(client, activity, secretary) -> dict:
    response = client.get(f"/api/v1/activities/{activity.id}/checkin-code", headers=secretary.headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def scan(client, auth, activity, payload):
    """The member's scan, after the restart: they log in again first (their token died with the key)."""
    member = auth.login("party-1")
    return client.post(f"/api/v1/activities/{activity.id}/checkins", json={"payload": payload},
                       headers=member.headers)


def test_fallbacks_are_read_as_a_list_like_flask(monkeypatch, app):
    restart_with(monkeypatch, app, NEW_KEY, f" {OLD_KEY} , older-key,,")
    assert app.config["SECRET_KEY_FALLBACKS"] == [OLD_KEY, "older-key"]
    restart_with(monkeypatch, app, NEW_KEY, None)
    assert app.config["SECRET_KEY_FALLBACKS"] == []


@pytest.mark.parametrize("fallbacks", [OLD_KEY, None])
def test_an_old_bearer_token_is_rejected_fallback_or_not(client, auth, monkeypatch, app, fallbacks):
    before = auth.login("alice")
    assert client.get("/api/v1/me", headers=before.headers).status_code == 200
    restart_with(monkeypatch, app, NEW_KEY, fallbacks)
    response = client.get("/api/v1/me", headers=before.headers)
    assert response.status_code == 401 and error_code(response) == "TOKEN_INVALID"
    after = auth.login("alice")  # logging in again works, under the new key
    assert client.get("/api/v1/me", headers=after.headers).status_code == 200


def test_the_code_on_screen_at_the_restart_is_accepted_with_the_fallback(client, auth, db, setup, monkeypatch, app,
                                                                         clock):
    activity, _, secretary = setup
    before = shown_code(client, activity, secretary)["payload"]
    clock.advance(timedelta(seconds=5))
    restart_with(monkeypatch, app, NEW_KEY, OLD_KEY)
    secretary = auth.login("sec")  # the organiser's phone logs in again, and shows new-key codes
    assert shown_code(client, activity, secretary)["payload"] != before
    response = scan(client, auth, activity, before)
    assert response.status_code == 201, response.get_json()


def test_an_old_key_code_keeps_only_the_normal_window(client, auth, setup, monkeypatch, app, clock):
    activity, _, secretary = setup
    before = shown_code(client, activity, secretary)["payload"]
    restart_with(monkeypatch, app, NEW_KEY, OLD_KEY)
    clock.advance(timedelta(seconds=2 * SLOT_SECONDS))
    response = scan(client, auth, activity, before)
    assert response.status_code == 410 and error_code(response) == "CHECKIN_CODE_EXPIRED"


def test_the_code_on_screen_is_refused_without_the_fallback(client, auth, setup, monkeypatch, app, clock):
    activity, _, secretary = setup
    before = shown_code(client, activity, secretary)["payload"]
    clock.advance(timedelta(seconds=5))
    restart_with(monkeypatch, app, NEW_KEY, None)
    response = scan(client, auth, activity, before)
    assert response.status_code == 400 and error_code(response) == "CHECKIN_CODE_FORGED"


def test_the_code_image_url_survives_the_restart_only_with_the_fallback(client, setup, monkeypatch, app):
    activity, _, secretary = setup
    url = shown_code(client, activity, secretary)["png_url"]
    restart_with(monkeypatch, app, NEW_KEY, OLD_KEY)
    image = client.get(url)
    assert image.status_code == 200 and image.mimetype == "image/png"
    restart_with(monkeypatch, app, NEW_KEY, None)
    assert error_code(client.get(url)) == "CHECKIN_CODE_IMAGE_INVALID"


def test_an_old_key_image_url_still_expires(client, setup, monkeypatch, app):
    import itsdangerous.timed

    activity, _, secretary = setup
    url = shown_code(client, activity, secretary)["png_url"]
    restart_with(monkeypatch, app, NEW_KEY, OLD_KEY)
    real_now = itsdangerous.timed.TimestampSigner.get_timestamp
    monkeypatch.setattr(itsdangerous.timed.TimestampSigner, "get_timestamp",
                        lambda self: real_now(self) + CODE_IMAGE_SECONDS + 2)
    expired = client.get(url)
    assert expired.status_code == 410 and error_code(expired) == "CHECKIN_CODE_IMAGE_EXPIRED"


def test_doctor_warns_while_fallbacks_are_configured(app, monkeypatch):
    assert "SECRET_KEY_FALLBACKS" not in {f.check for f in examine(app)}
    monkeypatch.setitem(app.config, "APP_ENV", "production")
    restart_with(monkeypatch, app, NEW_KEY, OLD_KEY)
    [finding] = [f for f in examine(app) if f.check == "SECRET_KEY_FALLBACKS"]
    assert finding.level == WARN and "分钟后" in finding.message and "删除" in finding.message
    restart_with(monkeypatch, app, NEW_KEY, f"{OLD_KEY},{NEW_KEY}")
    assert any("轮换没有生效" in f.message for f in examine(app) if f.check == "SECRET_KEY_FALLBACKS")
