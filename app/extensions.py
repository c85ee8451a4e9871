"""Extensions, created unbound and bound to the app in create_app()."""
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from app.core.kv import KeyValueStore
from app.core.transactions import RequestSession

# Stable constraint names so Alembic diffs are the same on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# Read-only requests get an autocommit connection (app.core.transactions).
db = SQLAlchemy(model_class=Base, session_options={"class_": RequestSession})
migrate = Migrate()
api = Api()  # its error schema, our envelope, is set by create_app before init_app
kv = KeyValueStore()
