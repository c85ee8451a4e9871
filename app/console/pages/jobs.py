"""Background jobs seen from the console (shared by every page that submits one: exports, the
sticker sheet, …). The API's GET /api/v1/jobs/<id> wants a bearer token; the console has its
cookie session, so these routes call the same services (`owned_job`: only the submitter, and the
kind re-checks their access on every read) for `g.console_user`.

- GET /console/jobs/<id>          a fetch (Accept: application/json): the job as the API describes
                                  it, its download link pointing here; a navigation: a page with
                                  the progress bar (static/jobs.js), a link once done.
- GET /console/jobs/<id>/result   the finished file.

How a page uses it (the form works without script too):

    <form method="post" action="…" data-job-form data-job-target="#job-area">{{ csrf() }}…</form>
    (or, beside a direct download, <button formaction="…" data-job-submit data-job-target="#job-area">后台生成</button>)
    <div id="job-area"></div>      {# jobs.js puts the progress bar here #}
    {% block scripts %}<script src="{{ static_url('jobs.js') }}"></script>{% endblock %}

and the view that queues the job ends with `return job_submitted(job)`: 202 with the job for
jobs.js's fetch, or a redirect to the job's page for a plain form post."""
from __future__ import annotations

import io

from flask import g, jsonify, redirect, send_file, url_for

from app.console.blueprint import bp, render_page
from app.console.security import wants_json
from app.core.time import isoformat_local
from app.jobs import services

POLL_MS = 1000  # how often jobs.js asks (a background poll: not activity for the session timeout)


def console_job(job) -> dict:
    """The API's description of the job, with times as local ISO strings and the console's own
    URLs (this page, the download)."""
    answer = services.describe(job)
    for key in ("created_at", "started_at", "finished_at"):
        answer[key] = isoformat_local(answer[key]) if answer[key] is not None else None
    answer["url"] = url_for("console.job", public_id=job.public_id)
    if answer["result"] is not None:
        result = dict(answer["result"])
        result["url"] = url_for("console.job_result", public_id=job.public_id)
        result["expires_at"] = isoformat_local(result["expires_at"]) if result["expires_at"] else None
        answer["result"] = result
    return answer


def job_submitted(job):
    """What a view answers after queueing `job`: the job (202) to a script, the job's page to a form."""
    if wants_json():
        return jsonify(console_job(job)), 202, {"Location": url_for("console.job", public_id=job.public_id)}
    return redirect(url_for("console.job", public_id=job.public_id), 303)


@bp.get("/jobs/<public_id>")
def job(public_id: str):
    found = services.owned_job(g.console_user, public_id)
    described = console_job(found)
    if wants_json():
        return jsonify(described)
    return render_page("console/job.html", title=described["title"], job=described, poll_ms=POLL_MS)


@bp.get("/jobs/<public_id>/result")
def job_result(public_id: str):
    stored, filename, content_type = services.result_of(services.owned_job(g.console_user, public_id))
    body = stored.path if stored.path is not None else io.BytesIO(stored.data)
    return send_file(body, mimetype=content_type, as_attachment=True, download_name=filename, etag=False,
                     conditional=False)


@bp.post("/jobs/<public_id>/retry")
def job_retry(public_id: str):
    """Run a failed job again (same parameters): the API's retry, for the job's owner."""
    return job_submitted(services.retry(g.console_user, public_id))
