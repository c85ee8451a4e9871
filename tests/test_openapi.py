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
    from app.core.errors import CODES

    description = client.get("/api/v1/openapi.json").get_json()["info"]["description"]
    missing = [code for code in CODES if f"`{code}`" not in description]
    assert missing == []
    assert "| `WECHAT_CODE_INVALID` | 401 |" in description


def test_registries_name_only_modules_that_exist():
    """The demo steps and CLI modules are imported without a safety net: a typo fails here."""
    import importlib

    from app.cli import FEATURE_CLI
    from app.demo import STEPS
    from app.reminders.engine import FEATURE_SERIES
    from miniprogram_api import FEATURE_MODULES

    for path in (*STEPS, *FEATURE_CLI, *FEATURE_SERIES, *(f"miniprogram_api.{name}" for name in FEATURE_MODULES)):
        importlib.import_module(path)
