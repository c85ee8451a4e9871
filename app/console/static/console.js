/* 小个专党建管理后台: shared helpers and the scan-login page. No inline scripts (CSP). */
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  /* fetch() for the console: same-origin cookies, JSON answers, and the CSRF header on every
     state-changing request. options.background: a poll that does not count as activity (a
     forgotten tab still times out). Errors come back as the API's envelope {error: {…}}. */
  function consoleFetch(url, options) {
    options = options || {};
    var headers = new Headers(options.headers || {});
    headers.set("Accept", "application/json");
    var method = (options.method || "GET").toUpperCase();
    if (method !== "GET" && method !== "HEAD") headers.set("X-CSRF-Token", csrfToken());
    if (options.background) headers.set("X-Console-Background", "1");
    return fetch(url, {method: method, headers: headers, body: options.body, credentials: "same-origin",
                       cache: "no-store"}).then(function (response) {
      if (response.status === 401) {
        return response.json().then(function (body) {
          var target = body && body.error && body.error.details && body.error.details.login_url;
          window.location.assign(target || "/console/login");
          throw new Error("login required");
        });
      }
      return response;
    });
  }
  window.consoleFetch = consoleFetch;

  /* 扫码登录: poll the ticket every 2 s; once the phone confirmed, redeem it (a form post, so the
     session cookie arrives with a normal navigation). */
  function scanLogin(box) {
    var state = document.getElementById("login-state");
    var form = document.getElementById("redeem-form");
    var refresh = document.getElementById("refresh-qr");
    var failures = 0;
    var stopped = false;

    function say(text, kind) {
      state.textContent = text;
      state.className = "login-state" + (kind ? " is-" + kind : "");
    }

    function stop(text) {
      stopped = true;
      say(text, "stopped");
      box.classList.add("is-stale");
      refresh.classList.replace("button-quiet", "button-primary");
      refresh.focus();
    }

    function poll() {
      if (stopped) return;
      fetch(box.getAttribute("data-status-url"), {headers: {"Accept": "application/json"},
                                                  credentials: "same-origin", cache: "no-store"})
        .then(function (response) { return response.json(); })
        .then(function (body) {
          failures = 0;
          if (body.error) { stop(body.error.message); return; }
          if (body.status === "confirmed") {
            stopped = true;
            say("已在手机上确认，正在登录…", "ok");
            form.submit();
            return;
          }
          if (body.status === "pending") { say("等待扫码…"); }
          else { stop(body.message); return; }
          window.setTimeout(poll, 2000);
        })
        .catch(function () {
          failures += 1;
          say("网络异常，正在重试…", "warning");
          window.setTimeout(poll, Math.min(2000 * failures, 10000));
        });
    }
    poll();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("scan-login");
    if (box) scanLogin(box);
  });
})();
