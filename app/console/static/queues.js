/* 待办: decide a row in place (fetch + X-CSRF-Token via consoleFetch), approve several at once,
   and show on the row what came of it; without this script the forms post and the page reloads.
   No inline scripts (CSP). */
(function () {
  "use strict";

  function rowOf(id) { return document.querySelector('.q-item[data-id="' + id + '"]'); }

  function showStatus(row, text, kind) {
    var box = row.querySelector(".q-status");
    if (!box) return;
    box.textContent = text;
    box.hidden = !text;
    row.classList.remove("is-done", "is-taken", "is-failed");
    if (kind) row.classList.add("is-" + kind);
  }

  function fieldError(form, name, text) {
    var input = form.querySelector('[name="' + name + '"]');
    if (!input) return false;
    var field = input.closest(".field");
    var id = input.id + "-error";
    var error = field.querySelector(".field-error");
    if (!error) {
      error = document.createElement("p");
      error.className = "field-error";
      error.id = id;
      field.appendChild(error);
    }
    error.textContent = text || "";
    error.hidden = !text;
    field.classList.toggle("has-error", !!text);
    if (text) {
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", error.id);
      input.focus();
    } else {
      input.removeAttribute("aria-invalid");
    }
    return true;
  }

  function clearErrors(form) {
    form.querySelectorAll("[name]").forEach(function (input) {
      if (input.closest(".field")) fieldError(form, input.name, "");
    });
  }

  function lowerCount(by) {
    document.querySelectorAll('[data-nav="queues"] .nav-count, [data-testid="queue-total"]').forEach(function (el) {
      var value = Math.max(0, parseInt(el.textContent, 10) - by);
      el.textContent = value;
      if (value === 0 && el.classList.contains("nav-count")) el.remove();
    });
  }

  function settle(row, result) {
    if (result.outcome === "done") {
      showStatus(row, "✓ " + result.message, "done");
    } else if (result.outcome === "taken") {
      showStatus(row, result.message, "taken");
    } else {
      showStatus(row, result.message, "failed");
      return false;
    }
    row.querySelectorAll("form.q-decide, .q-transfer").forEach(function (form) { form.remove(); });
    var pick = row.querySelector(".q-pick");
    if (pick) { pick.checked = false; pick.disabled = true; }
    return true;
  }

  function decide(form, submitter) {
    var row = form.closest(".q-item");
    var body = new FormData(form);
    if (submitter && submitter.name) body.set(submitter.name, submitter.value);
    row.classList.add("is-busy");
    form.querySelectorAll("button").forEach(function (button) { button.disabled = true; });
    consoleFetch(form.action, {method: "POST", body: body}).then(function (response) {
      return response.json().then(function (payload) { return {status: response.status, payload: payload}; });
    }).then(function (answer) {
      var result = answer.payload;
      row.classList.remove("is-busy");
      form.querySelectorAll("button").forEach(function (button) { button.disabled = false; });
      if (result.error) {  /* the envelope: not found, out of scope, CSRF … */
        showStatus(row, result.error.message, "failed");
        return;
      }
      clearErrors(form);
      if (result.outcome === "invalid") {
        var shown = false;
        Object.keys(result.fields || {}).forEach(function (name) {
          var messages = result.fields[name];
          var text = Array.isArray(messages) ? messages.join("；") : String(messages);
          if (name !== "_form" && fieldError(form, name, text)) shown = true;
        });
        showStatus(row, shown ? "" : result.message, shown ? null : "failed");
        return;
      }
      if ("row_html" in result && result.outcome === "done" && result.row_html) {
        var holder = document.createElement("div");
        holder.innerHTML = result.row_html;
        var fresh = holder.firstElementChild;
        row.replaceWith(fresh);
        bindRow(fresh);
        showStatus(fresh, "✓ " + result.message, null);
        fresh.querySelector(".q-status").classList.add("is-ok");
        return;
      }
      if (settle(row, result)) lowerCount(1);
    }).catch(function () {
      row.classList.remove("is-busy");
      form.querySelectorAll("button").forEach(function (button) { button.disabled = false; });
      showStatus(row, "网络异常，未能提交，请重试。", "failed");
    });
  }

  function bindRow(row) {
    row.querySelectorAll("form.q-decide").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        decide(form, event.submitter);
      });
    });
  }

  function bulk(form) {
    var notice = document.getElementById("q-notice");
    var picked = Array.prototype.slice.call(document.querySelectorAll(".q-pick:checked"));
    if (!picked.length) {
      notice.textContent = "请先勾选要批准的事项。";
      notice.hidden = false;
      return;
    }
    var body = new FormData(form);
    picked.forEach(function (box) {
      body.append("ids", box.value);
      rowOf(box.value).classList.add("is-busy");
    });
    var button = form.querySelector("button[type=submit]");
    button.disabled = true;
    consoleFetch(form.action, {method: "POST", body: body}).then(function (response) {
      return response.json();
    }).then(function (payload) {
      button.disabled = false;
      picked.forEach(function (box) { rowOf(box.value).classList.remove("is-busy"); });
      if (payload.error) { notice.textContent = payload.error.message; notice.hidden = false; return; }
      var settled = 0;
      payload.results.forEach(function (result) {
        var row = rowOf(result.id);
        if (row && settle(row, result)) settled += 1;
      });
      lowerCount(settled);
      notice.textContent = payload.summary;
      notice.hidden = false;
      document.getElementById("q-select-all").checked = false;
    }).catch(function () {
      button.disabled = false;
      notice.textContent = "网络异常，未能提交，请重试。";
      notice.hidden = false;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".q-item").forEach(bindRow);
    var bulkForm = document.getElementById("bulk-form");
    if (bulkForm) {
      bulkForm.addEventListener("submit", function (event) { event.preventDefault(); bulk(bulkForm); });
      document.getElementById("q-select-all").addEventListener("change", function (event) {
        document.querySelectorAll(".q-pick:not(:disabled)").forEach(function (box) { box.checked = event.target.checked; });
      });
    }
  });
})();
