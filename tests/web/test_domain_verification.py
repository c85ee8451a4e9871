"""Issue 12 item 4: the domain-verification file WeChat requires for "扫普通链接二维码打开小程序"
is served at the root with the configured name and content; nothing else is."""


def test_the_configured_file_is_served_and_nothing_else(app, client, monkeypatch):
    assert client.get("/AbCdEf1234.txt").status_code == 404  # not configured
    monkeypatch.setitem(app.config, "WECHAT_DOMAIN_VERIFY_FILE", "AbCdEf1234.txt")
    monkeypatch.setitem(app.config, "WECHAT_DOMAIN_VERIFY_CONTENT", "3f9c0a7d2b")
    served = client.get("/AbCdEf1234.txt")
    assert served.status_code == 200 and served.data == b"3f9c0a7d2b" and served.mimetype == "text/plain"
    assert client.get("/robots-or-other.txt").status_code == 404
    assert client.get("/secret_key.txt").status_code == 404
