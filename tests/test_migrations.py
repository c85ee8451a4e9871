"""`flask db upgrade` on an empty database gives exactly the models; one head only."""
import os

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import upgrade
from sqlalchemy import create_engine, text


def _empty_database_url(tmp_path) -> str:
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgresql"):
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS migration_check CASCADE"))
            conn.execute(text("CREATE SCHEMA migration_check"))
        engine.dispose()
        sep = "&" if "?" in url else "?"
        return f"{url}{sep}options=-csearch_path%3Dmigration_check"
    return f"sqlite:///{tmp_path / 'migrate.db'}"


def test_upgrade_from_empty_matches_models(tmp_path, monkeypatch):
    from app import create_app
    from app.extensions import db
    from config import TestConfig

    config = TestConfig()
    config.SQLALCHEMY_DATABASE_URI = _empty_database_url(tmp_path)
    app = create_app(config)
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), db.metadata)
        db.engine.dispose()
    assert diff == []


def test_single_head(app):
    migrate = app.extensions["migrate"]
    script = ScriptDirectory.from_config(migrate.migrate.get_config())
    assert len(script.get_heads()) == 1
