/* The projector's check-in screen (app/console/pages/orgs.py `projector`): the rotating code,
   a countdown to the next one and the live count. Needs console.js (consoleFetch).

   Asks the console's JSON endpoint every data-poll-ms (the count) and as soon as the countdown
   ends (the next code). While check-in is open the polls count as activity (someone is running
   the meeting); before and after they are background polls, so a forgotten screen times out. */
(function () {
  "use strict";
  var screen = document.querySelector("[data-code-url]");
  if (!screen) return;
  var url = screen.getAttribute("data-code-url");
  var pollMs = parseInt(screen.getAttribute("data-poll-ms"), 10) || 3000;
  var img = document.getElementById("checkin-qr");
  var placeholder = document.getElementById("qr-placeholder");
  var countdown = document.getElementById("countdown");
  var bar = document.getElementById("countdown-bar");
  var count = document.getElementById("checked-in");
  var state = document.getElementById("projector-state");
  var slot = null;
  var secondsLeft = 0;
  var windowState = "open";
  var pending = false;
  var failures = 0;
  var timer = null;

  function say(text, kind) {
    state.textContent = text || "";
    state.className = "projector-state" + (kind ? " is-" + kind : "");
  }

  function show(code) {
    if (code.slot !== slot) {
      slot = code.slot;
      img.src = code.image;
      img.hidden = false;
      if (placeholder) placeholder.hidden = true;
    }
    secondsLeft = code.expires_in;
    bar.max = code.slot_seconds;
    count.textContent = code.checked_in;
    windowState = code.window;
    if (code.window === "not_open") say("签到将于 " + code.opens_at + " 开始，届时可扫码。", "waiting");
    else if (code.window === "closed") say("签到已于 " + code.closes_at + " 结束。", "closed");
    else say("");
    render();
  }

  function render() {
    countdown.textContent = Math.max(0, secondsLeft);
    bar.value = Math.max(0, secondsLeft);
  }

  function refresh() {
    if (pending) return;
    pending = true;
    window.consoleFetch(url, {background: windowState !== "open"})
      .then(function (response) {
        return response.json().then(function (body) { return {ok: response.ok, body: body}; });
      })
      .then(function (answer) {
        pending = false;
        if (!answer.ok) {
          say(answer.body && answer.body.error ? answer.body.error.message : "无法获取签到码", "stopped");
          img.hidden = true;
          stop();
          return;
        }
        failures = 0;
        show(answer.body);
      })
      .catch(function () {
        pending = false;
        failures += 1;
        if (failures > 1) say("网络异常，正在重试…", "warning");
      });
  }

  function tick() {
    secondsLeft -= 1;
    render();
    if (secondsLeft <= 0) refresh();
  }

  function stop() {
    if (timer) window.clearInterval(timer);
    timer = null;
  }

  var polls = 0;
  timer = window.setInterval(function () {
    tick();
    polls += 1000;
    if (polls >= pollMs) { polls = 0; refresh(); }
  }, 1000);
  refresh();

  var full = document.getElementById("fullscreen");
  if (full) {
    if (!document.documentElement.requestFullscreen) full.hidden = true;
    full.addEventListener("click", function () {
      if (document.fullscreenElement) document.exitFullscreen();
      else document.documentElement.requestFullscreen().catch(function () {});
    });
  }
})();
