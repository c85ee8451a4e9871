"""The OpenAPI document and the docs page (packaged assets, no CDN)."""


def test_openapi_document_is_openapi_3(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    assert "/api/v1/auth/login" in spec["paths"]
    envelope = spec["components"]["schemas"]["Error"]
    assert envelope["properties"]["error"]


def test_docs_page_uses_local_assets_only(client):
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "http://" not in html and "https://" not in html
    assert client.get("/api/v1/docs/assets/swagger-ui-bundle.js").status_code == 200
    assert client.get("/api/v1/docs/assets/../../../etc/passwd").status_code == 404


def test_every_error_code_is_documented(client):
    """In the document (machine-readable) and on their own page (issue 12 item 7: not above the
    endpoints, and readable at phone width)."""
    from app.core.errors import CODES

    spec = client.get("/api/v1/openapi.json").get_json()
    listed = {entry["code"]: (entry["status"], entry["message"]) for entry in spec["x-error-codes"]}
    assert listed == {code: tuple(value) for code, value in CODES.items()}
    assert listed["WECHAT_CODE_INVALID"][0] == 401
    assert "/api/v1/docs/errors" in spec["info"]["description"] and len(spec["info"]["description"]) < 3000
    page = client.get("/api/v1/docs/errors").get_data(as_text=True)
    assert all(f"<code>{code}</code>" in page for code in CODES) and 'name="viewport"' in page


def test_registries_name_only_modules_that_exist():
    """The demo steps and CLI modules are imported without a safety net: a typo fails here."""
    import importlib

    from app.cli import FEATURE_CLI
    from app.demo import STEPS
    from app.reminders.engine import FEATURE_SERIES
    from miniprogram_api import FEATURE_MODULES

    for path in (*STEPS, *FEATURE_CLI, *FEATURE_SERIES, *(f"miniprogram_api.{name}" for name in FEATURE_MODULES)):
        importlib.import_module(path)


# PRODUCT.md, "Running the programme": the paths and methods of the contract this release serves
# (the console login and background jobs come with their own issues).
RUNNING_THE_PROGRAMME = [
    ("put", "/api/v1/me"), ("post", "/api/v1/auth/logout"), ("get", "/api/v1/markets"),
    ("patch", "/api/v1/markets/{market_id}"), ("get", "/api/v1/orgs"), ("get", "/api/v1/orgs/{org_id}/members"),
    ("patch", "/api/v1/stalls/{token}"), ("post", "/api/v1/stalls/{token}/release"),
    ("get", "/api/v1/markets/{market_id}/claims"), ("get", "/api/v1/markets/{market_id}/credentials"),
    ("post", "/api/v1/credentials/{credential_id}/revoke"), ("patch", "/api/v1/activities/{activity_id}"),
    ("get", "/api/v1/activities/{activity_id}/refused-scans"), ("patch", "/api/v1/care-stations/{station_id}"),
    ("post", "/api/v1/role-grants/{grant_id}/revoke"), ("get", "/api/v1/audit-log"),
    ("get", "/api/v1/stats/overview.xlsx"), ("get", "/api/v1/stats/trend"),
]


def test_the_running_the_programme_contract_is_served_and_documented(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    missing = [(method, path) for method, path in RUNNING_THE_PROGRAMME if method not in paths.get(path, {})]
    assert missing == []
    for method, path in RUNNING_THE_PROGRAMME:
        operation = paths[path][method]
        assert operation.get("summary") or operation.get("description"), (method, path)


def test_every_coordinate_states_its_system(client):
    """Issue 12 item 4: GCJ-02 (what wx.getLocation({type:'gcj02'}) returns) wherever a
    coordinate goes in or out."""
    spec = client.get("/api/v1/openapi.json").get_json()
    unstated = []

    def walk(node, where):
        if isinstance(node, dict):
            for name, value in (node.get("properties") or {}).items():
                if name in ("lat", "lng") and "GCJ-02" not in str(value.get("description") or ""):
                    unstated.append(f"{where}.{name}")
            for key, value in node.items():
                walk(value, f"{where}/{key}")
            stated = str(node.get("description") or "") + str((node.get("schema") or {}).get("description", ""))
            if node.get("in") == "query" and node.get("name") in ("lat", "lng") and "GCJ-02" not in stated:
                unstated.append(f"{where}?{node['name']}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}[{i}]")

    walk(spec, "")
    assert unstated == []


def test_every_option_code_has_a_chinese_label(client):
    """Issue 12 item 2: option values are codes (English) with Chinese labels in the document."""
    spec = client.get("/api/v1/openapi.json").get_json()
    unlabelled = []

    def walk(node, where):
        if isinstance(node, dict):
            values = node.get("enum")
            if isinstance(values, list) and values and all(isinstance(v, str) and v.isascii() for v in values):
                labels = node.get("x-enum-labels") or {}
                unlabelled.extend(f"{where}: {v}" for v in values
                                  if not any("\u4e00" <= ch <= "\u9fff" for ch in str(labels.get(v, ""))))
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}[{i}]")

    walk(spec, "")
    assert unlabelled == []
