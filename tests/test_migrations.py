"""`flask db upgrade` on an empty database gives exactly the models; one head only."""
import os

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import upgrade

from tests.conftest import drop_postgres_schema, postgres_schema_url


def test_upgrade_from_empty_matches_models(tmp_path):
    from app import create_app
    from app.extensions import db
    from config import TestConfig

    base_url = os.environ.get("DATABASE_URL", "")
    schema = f"migration_check_{os.getpid()}"
    config = TestConfig()
    config.SQLALCHEMY_DATABASE_URI = (postgres_schema_url(base_url, schema) if base_url.startswith("postgresql")
                                      else f"sqlite:///{tmp_path / 'migrate.db'}")
    app = create_app(config)
    try:
        with app.app_context():
            upgrade()
            with db.engine.connect() as conn:
                diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), db.metadata)
            db.engine.dispose()
    finally:
        if base_url.startswith("postgresql"):
            drop_postgres_schema(base_url, schema)
    assert diff == []


def test_single_head(app):
    migrate = app.extensions["migrate"]
    script = ScriptDirectory.from_config(migrate.migrate.get_config())
    assert len(script.get_heads()) == 1
