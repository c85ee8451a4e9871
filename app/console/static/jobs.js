/* Background jobs' progress bars (app/console/pages/jobs.py). Needs console.js (consoleFetch).

   - Every `.job[data-job-url]` on the page (console/_jobs.html's job_progress) is polled until
     the job has finished; the bar, the message, the download link and the retry button follow.
   - A `form[data-job-form]`, or a submit button with `data-job-submit` (its formaction queues the
     job, its own data-job-target names where the bar goes), is sent by fetch; the 202 answer's job gets a progress bar in the
     element named by `data-job-target` (a CSS selector). Refusals (the API's envelope) are shown
     there too. Without script the form posts normally and the server shows the job's page.
   - window.consoleJobs.show(target, job) / .watch(element) for pages that submit jobs their own way.
   Polls carry X-Console-Background: a forgotten tab still times out. */
(function () {
  "use strict";
  var POLL_MS = 1000;
  var MAX_POLL_MS = 8000;
  var FINISHED = {succeeded: true, failed: true, expired: true};

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  /* The markup of console/_jobs.html, for a job that arrived by fetch. */
  function build(job) {
    var box = el("div", "job");
    box.setAttribute("data-job-url", job.url);
    box.setAttribute("data-testid", "job");
    var head = el("div", "job-head");
    head.appendChild(el("strong", "job-title", job.title));
    head.appendChild(el("span", "job-status tag", job.status_label));
    box.appendChild(head);
    var bar = el("progress", "job-bar");
    bar.max = 100;
    bar.setAttribute("aria-label", job.title + "进度");
    box.appendChild(bar);
    var message = el("p", "job-message");
    message.setAttribute("aria-live", "polite");
    message.appendChild(el("span", "job-percent"));
    message.appendChild(el("span", "job-text"));
    box.appendChild(message);
    var error = el("p", "job-error");
    error.setAttribute("role", "alert");
    error.hidden = true;
    box.appendChild(error);
    var actions = el("div", "job-actions");
    var link = el("a", "button button-primary job-download", "下载");
    link.hidden = true;
    actions.appendChild(link);
    var retry = el("form", "job-retry-form");
    retry.method = "post";
    retry.action = job.url + "/retry";
    retry.hidden = true;
    var token = el("input");
    token.type = "hidden";
    token.name = "csrf_token";
    token.value = csrfToken();
    retry.appendChild(token);
    retry.appendChild(el("button", "button", "重试"));
    actions.appendChild(retry);
    box.appendChild(actions);
    update(box, job);
    return box;
  }

  function update(box, job) {
    box.className = "job is-" + job.status;
    box.querySelector(".job-status").textContent = job.status_label;
    var bar = box.querySelector(".job-bar");
    bar.value = job.progress.percent;
    bar.textContent = job.progress.percent + "%";
    box.querySelector(".job-percent").textContent = job.progress.percent + "%";
    box.querySelector(".job-text").textContent = job.message || "";
    var error = box.querySelector(".job-error");
    error.hidden = !job.error;
    error.textContent = job.error ? job.error.message : "";
    var link = box.querySelector(".job-download");
    if (job.result) {
      link.href = job.result.url;
      link.textContent = "下载「" + job.result.filename + "」";
    }
    link.hidden = !job.result;
    box.querySelector(".job-retry-form").hidden = job.status !== "failed";
  }

  function watch(box) {
    if (box.getAttribute("data-job-watched")) return;
    box.setAttribute("data-job-watched", "1");
    var wait = POLL_MS;

    function poll() {
      consoleFetch(box.getAttribute("data-job-url"), {background: true})
        .then(function (response) { return response.json(); })
        .then(function (job) {
          if (job.error && !job.status) {  /* the envelope: the job is gone or no longer ours */
            showError(box, job.error.message);
            return;
          }
          wait = POLL_MS;
          update(box, job);
          if (FINISHED[job.status]) {
            box.dispatchEvent(new CustomEvent("job:finished", {bubbles: true, detail: job}));
            if (job.status === "succeeded") box.querySelector(".job-download").focus();
            return;
          }
          window.setTimeout(poll, wait);
        })
        .catch(function () {
          wait = Math.min(wait * 2, MAX_POLL_MS);  /* the network hiccupped: try again, less often */
          window.setTimeout(poll, wait);
        });
    }
    if (!FINISHED[(box.className.match(/is-(\w+)/) || [])[1]]) poll();
  }

  function showError(target, message) {
    var error = target.querySelector(".job-error");
    if (!error) {
      error = el("p", "job-error form-alert");
      error.setAttribute("role", "alert");
      target.appendChild(error);
    }
    error.hidden = false;
    error.textContent = message;
  }

  function show(target, job) {
    target.textContent = "";
    var box = build(job);
    target.appendChild(box);
    watch(box);
    return box;
  }

  /* `button`: the submit button that queues the job (its formaction and data-job-target win). */
  function submitByFetch(form, button) {
    var named = (button && button.getAttribute("data-job-target")) || form.getAttribute("data-job-target");
    var target = (named && document.querySelector(named)) || form;
    var url = button && button.hasAttribute("formaction") ? button.formAction : form.action;
    button = button || form.querySelector("[type=submit]");
    if (button) button.disabled = true;
    consoleFetch(url, {method: "POST", body: new FormData(form)})
      .then(function (response) { return response.json(); })
      .then(function (body) {
        if (body.error) {
          target.textContent = "";
          showError(target, body.error.message);
        } else {
          show(target, body);
        }
      })
      .catch(function () {
        target.textContent = "";
        showError(target, "网络异常，任务未能提交，请稍后重试");
      })
      .then(function () { if (button) button.disabled = false; });
  }

  /* A retry button (a job's own form) restarts the polling on the same box. */
  function retryByFetch(form) {
    var box = form.closest(".job");
    consoleFetch(form.action, {method: "POST", body: new FormData(form)})
      .then(function (response) { return response.json(); })
      .then(function (job) {
        if (job.error && !job.status) { showError(box, job.error.message); return; }
        box.removeAttribute("data-job-watched");
        update(box, job);
        watch(box);
      });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var submitter = event.submitter;
    if (submitter && submitter.hasAttribute("data-job-submit")) {
      event.preventDefault();
      submitByFetch(form, submitter);
    } else if (form.matches("form[data-job-form]")) {
      event.preventDefault();
      submitByFetch(form, null);
    } else if (form.matches(".job-retry-form")) {
      event.preventDefault();
      retryByFetch(form);
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll(".job[data-job-url]"), watch);
  });

  window.consoleJobs = {show: show, watch: watch};
})();
