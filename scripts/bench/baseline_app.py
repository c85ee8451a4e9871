"""The baseline every speed bar is a ratio against: a bare Flask app answering {"ok": true}."""
from flask import Flask

app = Flask(__name__)


@app.get("/")
def ok():
    return {"ok": True}
