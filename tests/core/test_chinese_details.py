"""Issue 12 item 2: every message a mini-program may show is Chinese, field details included
(marshmallow's own messages are replaced), on every JSON operation and for query strings."""
import re

from tests.core.test_hostile_input import _json_operations

CJK = re.compile(r"[\u4e00-\u9fff]")


def _messages(details):
    if isinstance(details, dict):
        for value in details.values():
            yield from _messages(value)
    elif isinstance(details, list):
        for value in details:
            yield from _messages(value)
    elif isinstance(details, str):
        yield details


def test_field_details_are_chinese_on_every_json_operation(client, auth):
    admin = auth.login("zh-admin", role="admin")
    english = []
    for method, path in _json_operations(client):
        # An unknown field, and a value of the wrong type for everything the schema reads.
        for body in ({"__nope__": 1}, {"reason": [], "decision": 5, "name": {}, "title": 7, "user_id": "x",
                                       "starts_at": "tomorrow", "code": None, "all": "yes", "numbers": "A-01"}):
            response = client.open(path, method=method.upper(), json=body, headers=admin.headers)
            if response.status_code != 422:
                continue
            error = response.get_json()["error"]
            assert CJK.search(error["message"]), (method, path, error)
            for message in _messages(error["details"].get("fields", {})):
                if not CJK.search(message):
                    english.append((method.upper(), path, message))
    assert english == []


def test_required_and_range_messages_read_as_instructions(client, auth, regions):
    reg = auth.login("zh-reg", role="regulator", scope="region:450400")
    missing = client.post("/api/v1/markets", json={"region_code": "450403"}, headers=reg.headers).get_json()
    assert missing["error"]["details"]["fields"]["name"] == ["必填项，不能缺少"]
    paged = client.get("/api/v1/markets?per_page=500", headers=reg.headers).get_json()
    assert paged["error"]["details"]["fields"]["per_page"] == ["须大于或等于 1 且小于或等于 100"]
    wrong = client.get("/api/v1/markets?page=x", headers=reg.headers).get_json()
    assert wrong["error"]["details"]["fields"]["page"] == ["须为整数"]
