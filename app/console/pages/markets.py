"""市场与摊位 (issue 15 item 4): the markets in the caller's scope, a market's stalls with the
managers' filters, adding stalls (pasted numbers, or a CSV/xlsx as the stall_import job),
reissuing a sticker, releasing a stall, and the sticker sheet (direct PDF for a small market,
the sticker_sheet job with its progress bar for a large one).

Every view calls the API's services with `g.console_user`: the same role and scope checks
(someone else's market is a 404, as for the API), the same rules for stall numbers."""
from __future__ import annotations

import tempfile

from flask import Response, g, redirect, request, send_file, url_for

from app.console.blueprint import bp, render_page
from app.console.forms import Form
from app.console.pages.jobs import job_submitted
from app.core.errors import APIError
from app.core.ids import page_number
from app.core.regions import Region
from app.extensions import db
from app.markets import qr, services
from app.markets.imports import MAX_IMPORT_BYTES, MAX_IMPORT_ROWS, submit_stall_import
from app.markets.models import Merchant
from app.markets.jobs import DIRECT_SHEET_MAX_STALLS, refuse_direct_sheet_if_large, stall_count, submit_sticker_sheet
from app.worklists import markets as worklists

MARKETS_PER_PAGE = 20
STALLS_PER_PAGE = 50
EXPIRING_DAYS = 30
# The stall filters a manager picks from: key -> (label, worklists.stall_list filters).
STALL_FILTERS = {
    "": ("全部摊位", {}),
    "unclaimed": ("未认领", {"claimed": False}),
    "not_shown": ("未完整公示", {"not_shown": True}),
    "expiring": (f"{EXPIRING_DAYS} 天内证照或承诺到期", {"expiring_within": EXPIRING_DAYS}),
}
CLAIM_LABELS = {"unclaimed": "未认领", "pending": "认领待确认", "confirmed": "已认领"}
VERDICT_CLASSES = {"放心摊位": "good", "部分公示": "partial"}
# After a redirect, what the market page says (fixed texts: nothing from the query is shown).
NOTICES = {
    "added": "摊位已添加，可以打印贴纸了。",
    "reissued": "二维码已重新生成，旧贴纸立即作废。请打印新的贴纸换上。",
    "released": "已解除该摊位的经营关系，摊位回到未认领状态；经营者已收到通知。",
}


def _page_number() -> int:
    return page_number(request.args.get("page"))


def region_name(code: str) -> str:
    region = db.session.get(Region, code)
    return region.name if region is not None else code


# -- the list -------------------------------------------------------------------------------------
@bp.get("/markets")
def markets():
    """Markets in scope by name (GET /markets: worklists.list_markets), paged."""
    form = Form(request.args.copy())
    q = form.value("q").strip()
    region = form.value("region").strip()
    if len(q) > 50:
        form.add_error("q", "最多 50 个字")
    if region and not (len(region) == 6 and region.isascii() and region.isdigit()):
        form.add_error("region", "请填写 6 位行政区划代码，如 450403")
    result = None
    if form.ok:
        try:
            result = worklists.list_markets(g.console_user, region or None, q or None, _page_number(),
                                            MARKETS_PER_PAGE)
        except APIError as error:
            if error.code != "REGION_NOT_FOUND":
                raise
            form.add_error("region", "没有这个行政区划代码")
    rows = [{"market": market, "region": region_name(market.region_code), "counts": market.counts}
            for market in (result["items"] if result else [])]
    return render_page("console/markets.html", nav_key="markets", title="市场与摊位", form=form, rows=rows,
                       result=result, pages=_pages(result), status=200 if form.ok else 422)


def _pages(result: dict | None) -> dict | None:
    """Previous/next page numbers of a list (None when it fits on one page)."""
    if not result or result["total"] <= result["per_page"]:
        return None
    last = (result["total"] + result["per_page"] - 1) // result["per_page"]
    page = result["page"]
    return {"page": page, "last": last, "prev": page - 1 if page > 1 else None,
            "next": page + 1 if page < last else None}


# -- one market ------------------------------------------------------------------------------------
@bp.get("/markets/<int:market_id>")
def market(market_id: int):
    return _market_page(market_id)


def _market_page(market_id: int, add_form: Form | None = None, status: int = 200, notice: str | None = None):
    market, role = services.manage_market(g.console_user, market_id)
    chosen = request.args.get("filter", "")
    chosen = chosen if chosen in STALL_FILTERS else ""
    stalls = worklists.stall_list(g.console_user, market.id, STALL_FILTERS[chosen][1], _page_number(),
                                  STALLS_PER_PAGE)
    counts = worklists.market_counts([market.id])[market.id]
    notice = notice or NOTICES.get(request.args.get("done", ""))
    return render_page(
        "console/market.html", nav_key="markets", title=market.name, market=market,
        region=region_name(market.region_code), counts=counts, stalls=stalls, pages=_pages(stalls),
        filters=[(key, label) for key, (label, _) in STALL_FILTERS.items()], chosen=chosen,
        claim_labels=CLAIM_LABELS, verdict_classes=VERDICT_CLASSES, add_form=add_form or Form(),
        notice=notice, direct_sheet=stall_count(market.id) <= DIRECT_SHEET_MAX_STALLS,
        direct_sheet_max=DIRECT_SHEET_MAX_STALLS, import_max_rows=MAX_IMPORT_ROWS,
        import_max_mb=MAX_IMPORT_BYTES // (1024 * 1024), max_per_call=services.MAX_STALLS_PER_CALL,
        status=status)


# -- adding stalls -------------------------------------------------------------------------------
def pasted_numbers(text: str) -> list[str]:
    """One stall number a line (commas, 、 and tabs separate too, as when pasted from a sheet);
    blank lines are skipped."""
    for separator in (",", "，", "、", "\t", "\r"):
        text = text.replace(separator, "\n")
    return [line.strip() for line in text.split("\n") if line.strip()]


@bp.post("/markets/<int:market_id>/stalls")
def add_stalls(market_id: int):
    """The same service as POST /markets/{id}/stalls: all or nothing, duplicates and numbers the
    market already has named next to the field."""
    form = Form.from_request()
    numbers = pasted_numbers(form.value("numbers"))
    if not numbers:
        form.add_error("numbers", "请填写摊位号，每行一个")
    elif len(numbers) > services.MAX_STALLS_PER_CALL:
        form.add_error("numbers", f"一次最多添加 {services.MAX_STALLS_PER_CALL} 个摊位（本次 {len(numbers)} 个）；"
                                  "更多的摊位请用文件导入")
    else:
        problems = [(number, services.stall_number_problem(number)) for number in numbers]
        problems = [(number, problem) for number, problem in problems if problem]
        for number, problem in problems[:5]:
            form.add_error("numbers", f"“{number[:40]}”：{problem}")
        if len(problems) > 5:
            form.add_error("numbers", f"另有 {len(problems) - 5} 个摊位号不符合要求")
    if form.ok:
        try:
            services.create_stalls(g.console_user, market_id, numbers)
            return redirect(url_for("console.market", market_id=market_id, done="added"), 303)
        except APIError as error:
            if error.code in ("STALL_NUMBER_DUPLICATE", "STALL_NUMBER_EXISTS"):
                listed = "、".join((error.details or {}).get("numbers", [])[:20])
                form.add_error("numbers", f"{error.message}：{listed}")
            elif error.code == "TOO_MANY_STALLS":
                form.add_error("numbers", f"{error.message}；更多的摊位请用文件导入")
            else:
                raise
    return _market_page(market_id, add_form=form, status=422)


@bp.post("/markets/<int:market_id>/stall-imports")
def import_stalls(market_id: int):
    """A CSV/xlsx as the stall_import job (submit_stall_import checks size, format and header)."""
    upload = request.files.get("file")
    form = Form(request.form.copy())
    if upload is None or not upload.filename:
        form.add_error("file", "请选择要导入的 CSV 或 Excel 文件")
    else:
        try:
            return job_submitted(submit_stall_import(g.console_user, market_id, upload.stream))
        except APIError as error:
            if not error.code.startswith(("STALL_IMPORT_", "JOB_UPLOAD_")):
                raise  # access and the market itself: the error page, as elsewhere
            form.add_error("file", error.message)
    return _market_page(market_id, add_form=form, status=422)


# -- one stall ---------------------------------------------------------------------------------------
@bp.post("/stalls/<token>/reissue")
def reissue_stall(token: str):
    stall = services.reissue_token(g.console_user, token)
    return redirect(url_for("console.market", market_id=stall.market_id, done="reissued",
                            _anchor=f"stall-{stall.id}"), 303)


@bp.get("/stalls/<token>/qrcode.png")
def stall_qrcode(token: str):
    """One stall's sticker code (as GET /stalls/{token}/qrcode.png), e.g. after a reissue."""
    stall, _ = services.manage_stall(g.console_user, token)
    response = Response(qr.qr_png(qr.stall_url(stall.token)), mimetype="image/png")
    if request.args.get("download"):
        response.headers["Content-Disposition"] = f"attachment; filename=stall-{stall.id}.png"
    return response


@bp.route("/stalls/<token>/release", methods=["GET", "POST"])
def release_stall(token: str):
    """End a tenancy, with the reason the service requires (POST /stalls/{token}/release)."""
    stall, _ = services.manage_stall(g.console_user, token)
    market = stall.market
    form = Form.from_request() if request.method == "POST" else Form()
    status = 200
    if request.method == "POST":
        status = 422
        if not form.value("reason").strip():
            form.add_error("reason", "请填写解除原因（如退租、转让）")
        elif len(form.value("reason")) > 500:
            form.add_error("reason", "最多 500 个字")
        if form.ok:
            try:
                services.release_stall(g.console_user, token, form.value("reason"))
                return redirect(url_for("console.market", market_id=market.id, done="released"), 303)
            except APIError as error:
                if error.code not in ("REASON_REQUIRED", "STALL_NOT_HELD"):
                    raise
                form.refuse(error)  # STALL_NOT_HELD: released meanwhile, said above the form
                status = error.status
    merchant = db.session.get(Merchant, stall.merchant_id) if stall.merchant_id else None
    return render_page("console/stall_release.html", nav_key="markets", title=f"解除经营关系：{stall.number} 号摊位",
                       market=market, stall=stall, merchant=merchant, form=form, status=status)


# -- the sticker sheet -----------------------------------------------------------------------------
@bp.get("/markets/<int:market_id>/stickers.pdf")
def sticker_sheet(market_id: int):
    """The direct PDF of a small market (GET …/qr-sheet.pdf); a large one is the job's."""
    market, _ = services.manage_market(g.console_user, market_id)
    refuse_direct_sheet_if_large(market)
    out = tempfile.SpooledTemporaryFile(max_size=4 * 1024 * 1024)
    qr.write_sticker_sheet(out, market.name, qr.market_stall_rows(market.id))
    out.seek(0)
    return send_file(out, mimetype="application/pdf", as_attachment=True,
                     download_name=f"{market.name}-摊位二维码贴纸.pdf")


@bp.post("/markets/<int:market_id>/sticker-sheet-jobs")
def sticker_sheet_job(market_id: int):
    """The sheet as the sticker_sheet job: jobs.js shows its progress and the download link."""
    return job_submitted(submit_sticker_sheet(g.console_user, market_id))
