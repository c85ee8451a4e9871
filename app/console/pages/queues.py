"""待办: the review queues of the console, one page each, reached from a landing page with the
pending counts (the navigation's badge shows their sum).

A decision is a small form per row: a plain POST that redirects back (or renders the page again
with the field error next to the field, keeping what was typed), or, with the page's script, a
fetch answered in JSON so the row updates in place. Several approvals at once go through the
same service one by one, each in its own savepoint, and each is reported (done, decided by
someone else, or refused with the service's Chinese message). A decision someone else took
meanwhile (the service's 409) is shown on the row as such, never as an error page.

Queue lists and decisions: queue_kinds.py (stall claims … consumer feedback) and, for rider
reports (随手拍, a handling loop rather than approve/reject), app.reports.queries/services.
"""
from __future__ import annotations

import io
from dataclasses import asdict, dataclass, field

from flask import abort, g, jsonify, redirect, render_template_string, request, send_file, url_for

import app.console.nav as nav
from app.console.blueprint import bp, render_page
from app.console.forms import FORM_ERROR, Form
from app.console.pages.queue_kinds import PER_PAGE, QUEUES, Queue, when
from app.console.security import wants_json
from app.core.errors import NOT_VISIBLE, APIError
from app.core.ids import page_number, typed_int
from app.extensions import db
from app.identity.auth import has_role

MAX_BULK = 100
REPORT_ROLES = ("market_manager", "regulator")  # app.reports.services.HANDLER_ROLES
REPORT_CONFLICTS = ("REPORT_NOT_OPEN", "REPORT_ALREADY_DECIDED", "REPORT_NOT_UPHELD", "REPORT_CLOSED")
REPORT_ACTIONS = ("accept", "decide", "rectified", "transfer")
REPORT_WAITING = ("open", "accepted", "upheld")  # to accept, to decide, to see put right
GONE = "该事项不存在或不在您的管辖范围内"
# ?result= after a plain POST: fixed texts, never the query's.
RESULTS = {"approve": "已处理：{approve}。该事项已移出待办。", "reject": "已处理：{reject}。该事项已移出待办，申请人会收到原因。",
           "accept": "已受理。请在 7 日内作出核实结论。", "decide": "已作出核实结论，已告知骑手。",
           "rectified": "已登记整改，摊位公示页不再计入该举报。", "transfer": "已转办，将由转入地区的监管人员受理。"}


@dataclass
class Outcome:
    """What became of one decision: done, taken (someone else decided first), invalid (a field
    to correct) or refused (the service's message)."""

    id: int
    outcome: str
    message: str
    status_label: str | None = None
    fields: dict = field(default_factory=dict)


# -- the landing page and the navigation badge ---------------------------------------------------
def queues_for(user) -> list[Queue]:
    return [queue for queue in QUEUES.values() if queue.applies_to(user)]


def report_count(user) -> int:
    if not has_role(user, *REPORT_ROLES):
        return 0
    from sqlalchemy import func, select

    from app.reports.models import Report
    from app.reports.queries import handler_scope

    return db.session.execute(select(func.count()).select_from(Report).where(
        handler_scope(user), Report.status.in_(REPORT_WAITING))).scalar_one()


def pending_total(user) -> int:
    return sum(queue.count(user) for queue in queues_for(user)) + report_count(user)


nav.register_count("queues", pending_total)


@bp.get("/queues")
def queues():
    user = g.console_user
    entries = [{"key": queue.key, "title": queue.title, "blurb": queue.blurb, "count": queue.count(user),
                "url": url_for("console.queue", key=queue.key)} for queue in queues_for(user)]
    if has_role(user, *REPORT_ROLES):
        entries.append({"key": "reports", "title": "骑手随手拍", "count": report_count(user),
                        "blurb": "骑手反映的问题：受理、核实（属实 / 不属实）、登记整改或转办。",
                        "url": url_for("console.report_queue")})
    return render_page("console/queues.html", nav_key="queues", title="待办", entries=entries)


# -- one queue ----------------------------------------------------------------------------------
def _queue(key: str) -> Queue:
    queue = QUEUES.get(key)
    if queue is None:
        abort(404)
    if not queue.applies_to(g.console_user):
        raise APIError(code="FORBIDDEN", message="您没有处理此类待办的权限")
    return queue


def _page_number() -> int:
    return page_number(request.args.get("page"), maximum=10_000)


def _render_queue(queue: Queue, status: int = 200, notice: str | None = None, errors: dict | None = None,
                  bulk: list[Outcome] | None = None):
    listing = queue.page(g.console_user, _page_number())
    result = request.args.get("result")
    if notice is None and result in ("approve", "reject"):
        notice = RESULTS[result].format(approve=queue.approve_label, reject=queue.reject_label)
    return render_page("console/queue.html", nav_key="queues", title=queue.title, status=status, queue=queue,
                       listing=listing, notice=notice, errors=errors or {}, bulk=bulk)


@bp.get("/queues/<key>")
def queue(key):
    return _render_queue(_queue(key))


def _decide_one(queue: Queue, item_id: int, decision: str, reason: str | None) -> Outcome:
    """One decision through the feature's service, in a savepoint (a refusal leaves nothing)."""
    try:
        with db.session.begin_nested():
            queue.decide(g.console_user, item_id, decision, reason)
    except APIError as error:
        if error.code in NOT_VISIBLE or error.code.endswith("_NOT_FOUND"):
            raise APIError(code=queue.not_found) from error
        if error.code in queue.conflicts:
            label = queue.status_label(item_id) or "已处理"
            return Outcome(item_id, "taken", f"已由他人处理：{label}", label)
        if error.code == "REASON_REQUIRED":  # said the way this queue's form says it
            message = f"{queue.reject_label}时请填写{queue.reason_label}"
            return Outcome(item_id, "invalid", message, fields={"reason": [message]})
        fields = (error.details or {}).get("fields")
        if isinstance(fields, dict) and fields:
            return Outcome(item_id, "invalid", error.message, fields=fields)
        return Outcome(item_id, "refused", error.message)
    label = queue.status_label(item_id)
    return Outcome(item_id, "done", label or "已处理", label)


HTTP_STATUS = {"done": 200, "taken": 409, "invalid": 422, "refused": 422}


@bp.post("/queues/<key>/<int:item_id>/decision")
def decide(key, item_id):
    queue = _queue(key)
    form = Form.from_request()
    decision = form.value("decision")
    if decision not in ("approve", "reject"):
        outcome = Outcome(item_id, "invalid", "请选择处理方式", fields={FORM_ERROR: ["请选择处理方式"]})
    else:
        outcome = _decide_one(queue, item_id, decision, form.value("reason"))
    if wants_json():
        return jsonify(asdict(outcome)), HTTP_STATUS[outcome.outcome]
    if outcome.outcome == "done":
        return redirect(url_for("console.queue", key=key, result=decision), 303)
    if outcome.outcome == "taken":
        return _render_queue(queue, 409, notice=f"第 {item_id} 号事项{outcome.message}，已从待办中移除。")
    return _render_queue(queue, 422, errors={item_id: _row_error(outcome, form)})


def _row_error(outcome: Outcome, form: Form) -> dict:
    wording = Form()
    for name, messages in outcome.fields.items():
        for message in messages if isinstance(messages, list) else [messages]:
            wording.add_error(name, message)
    return {"message": outcome.message, "reason": wording.error("reason"), "typed": form.value("reason"),
            "form": wording.error(FORM_ERROR) or (None if wording.errors else outcome.message)}


@bp.post("/queues/<key>/bulk")
def bulk_approve(key):
    queue = _queue(key)
    if not queue.bulk:
        abort(404)
    form = Form.from_request()
    ids = [number for number in dict.fromkeys(typed_int(value) for value in form.values("ids")) if number][:MAX_BULK]
    results = []
    for item_id in ids:
        try:
            results.append(_decide_one(queue, item_id, "approve", None))
        except APIError:
            results.append(Outcome(item_id, "refused", GONE))
    done = sum(1 for result in results if result.outcome == "done")
    summary = (f"已{queue.approve_label} {done} 项" + (f"，{len(results) - done} 项未处理（见各行说明）" if done < len(results) else "")
               if results else "请先勾选要批准的事项")
    if wants_json():
        return jsonify({"summary": summary, "results": [asdict(result) for result in results]}), 200 if results else 422
    return _render_queue(queue, 200 if results else 422, notice=summary, bulk=results)


# -- credential photos: the API's service and authorization, served to the signed-in console ------
@bp.get("/queues/credentials/<int:credential_id>/photo")
def credential_photo(credential_id):
    from app.credentials.services import credential_photo as read_photo

    return _send_photo(read_photo(g.console_user, credential_id, request.args.get("thumb") == "1"))


def _send_photo(photo):
    if photo.path is not None:
        response = send_file(photo.path, mimetype="image/jpeg", max_age=0)
    else:
        response = send_file(io.BytesIO(photo.data), mimetype="image/jpeg", max_age=0, etag=photo.etag or False,
                             last_modified=photo.last_modified)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


# -- rider reports (随手拍) -----------------------------------------------------------------------
def _report_listing(actor, page: int) -> dict:
    from app.reports.queries import list_reports

    waiting = list_reports(actor, None, False, page, PER_PAGE)  # open and accepted, oldest first
    upheld = list_reports(actor, "upheld", False, 1, PER_PAGE)  # to see put right
    for item in waiting["items"] + upheld["items"]:
        _dress_report(item)
    waiting["pages"] = max(1, -(-waiting["total"] // PER_PAGE))
    return {"waiting": waiting, "upheld": upheld}


def _dress_report(item: dict) -> dict:
    """The API's handler view, with what the page prints: local times and the console's photo URLs."""
    item["created"] = when(item["created_at"])
    item["accept_due"] = when(item["accept_due_at"])
    item["close_due"] = when(item["close_due_at"])
    item["photos"] = [url_for("console.report_photo", report_id=item["id"], key=url.rsplit("/", 1)[1][:-4])
                      for url in item["photo_urls"]]
    return item


def _report_actor():
    if not has_role(g.console_user, *REPORT_ROLES):
        raise APIError(code="FORBIDDEN", message="您没有处理骑手随手拍的权限")
    return g.console_user


@bp.get("/queues/reports")
def report_queue():
    actor = _report_actor()
    result = request.args.get("result")
    return _render_reports(actor, notice=RESULTS.get(result) if result in REPORT_ACTIONS else None)


def _render_reports(actor, status: int = 200, notice: str | None = None, errors: dict | None = None):
    return render_page("console/queue_reports.html", nav_key="queues", title="骑手随手拍", status=status,
                       listing=_report_listing(actor, _page_number()), notice=notice, errors=errors or {},
                       may_transfer=has_role(actor, "regulator"))


def _report_step(actor, report_id: int, action: str, form: Form) -> Outcome:
    from app.reports import services

    note = form.value("note") or None
    try:
        with db.session.begin_nested():
            if action == "accept":
                report = services.accept(actor, report_id)
            elif action == "decide":
                decision = form.value("decision")
                if decision not in ("upheld", "unfounded"):
                    return Outcome(report_id, "invalid", "请选择核实结论", fields={FORM_ERROR: ["请选择核实结论"]})
                report = services.decide(actor, report_id, decision, note)
            elif action == "rectified":
                report = services.rectified(actor, report_id, note, None)
            else:
                region = form.value("region").strip()
                if not region:
                    return Outcome(report_id, "invalid", "请填写此项", fields={"region": ["请填写转办地区的行政区划代码"]})
                report = services.transfer(actor, report_id, region, note)
    except APIError as error:
        if error.code in NOT_VISIBLE or error.code == "REPORT_NOT_FOUND":
            raise APIError(code="REPORT_NOT_FOUND") from error
        if error.code in REPORT_CONFLICTS:
            label = _report_status(report_id)
            return Outcome(report_id, "taken", f"已由他人处理：{label}", label)
        if error.code == "REASON_REQUIRED":
            message = "核实为不属实时请填写核实说明（将告知骑手）"
            return Outcome(report_id, "invalid", message, fields={"note": [message]})
        if error.code == "REGION_NOT_FOUND":
            return Outcome(report_id, "invalid", error.message, fields={"region": ["没有这个行政区划代码"]})
        fields = (error.details or {}).get("fields")
        if isinstance(fields, dict) and fields:
            return Outcome(report_id, "invalid", error.message,
                           fields={"note" if name == "reason" else name: messages for name, messages in fields.items()})
        return Outcome(report_id, "refused", error.message)
    from app.reports.models import REPORT_STATUSES

    return Outcome(report_id, "done", REPORT_STATUSES.get(report.status, report.status), report.status)


def _report_status(report_id: int) -> str:
    from app.reports.models import REPORT_STATUSES, Report

    report = db.session.get(Report, report_id)
    db.session.refresh(report)
    return REPORT_STATUSES.get(report.status, report.status)


@bp.post("/queues/reports/<int:report_id>/<action>")
def report_action(report_id, action):
    if action not in REPORT_ACTIONS:
        abort(404)
    actor = _report_actor()
    form = Form.from_request()
    outcome = _report_step(actor, report_id, action, form)
    if wants_json():
        body = asdict(outcome)
        if outcome.outcome in ("done", "taken"):
            body["row_html"] = _report_row_html(actor, report_id)
        return jsonify(body), HTTP_STATUS[outcome.outcome]
    if outcome.outcome == "done":
        return redirect(url_for("console.report_queue", result=action), 303)
    if outcome.outcome == "taken":
        return _render_reports(actor, 409, notice=f"第 {report_id} 号随手拍{outcome.message}。")
    wording = Form(form.data)
    for name, messages in outcome.fields.items():
        for message in messages if isinstance(messages, list) else [messages]:
            wording.add_error(name, message)
    if not outcome.fields:
        wording.add_error(FORM_ERROR, outcome.message)
    return _render_reports(actor, 422, errors={report_id: {"action": action, "form": wording}})


def _report_row_html(actor, report_id: int) -> str | None:
    """The row as it reads now (None once it has left the queue: decided unfounded, rectified,
    or transferred out of the caller's scope)."""
    from app.reports.queries import report_view
    from app.reports.services import get_report, handle

    report = get_report(report_id)
    try:
        handle(actor, report_id)
    except APIError:
        return None
    if report.status not in REPORT_WAITING:
        return None
    return render_template_string(ROW_TEMPLATE, item=_dress_report(report_view(report, handler=True)),
                                  may_transfer=has_role(actor, "regulator"))


# The macro imported with the request's context (csrf_token and the rest of the layout's names).
ROW_TEMPLATE = ('{% from "console/_queue_reports.html" import report_row with context %}'
                '{{ report_row(item, {}, may_transfer) }}')


@bp.get("/queues/reports/<int:report_id>/photos/<key>.jpg")
def report_photo(report_id, key):
    from app.reports.services import photo_of

    return _send_photo(photo_of(_report_actor(), report_id, key, request.args.get("thumb") == "1"))
