/* 首页 charts (app/console/pages/home.py): the monthly trend as lines, the child regions (or
   markets) as bars; clicking a region's bar opens its dashboard. Data from the page's
   <script type="application/json" id="dashboard-data">; drawn by the vendored Chart.js. */
(function () {
  "use strict";
  var COLORS = ["#b3261e", "#1d4ed8", "#1b7f3b", "#c77700", "#6b21a8"];
  var FONT = 'system-ui, -apple-system, "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", sans-serif';

  function readData() {
    var node = document.getElementById("dashboard-data");
    return node ? JSON.parse(node.textContent) : null;
  }

  function narrow() { return window.matchMedia("(max-width: 760px)").matches; }

  function datasets(series, type) {
    return series.map(function (one, index) {
      var color = COLORS[index % COLORS.length];
      return {label: one.label, data: one.values, borderColor: color, backgroundColor: type === "bar" ? color + "cc" : color,
              borderWidth: 2, pointRadius: 3, cubicInterpolationMode: "monotone", maxBarThickness: 36};
    });
  }

  function common() {
    return {
      responsive: true, maintainAspectRatio: false, animation: false,
      interaction: {mode: "index", intersect: false},
      plugins: {legend: {position: "bottom", labels: {boxWidth: 12, font: {family: FONT, size: narrow() ? 11 : 12}}},
                tooltip: {titleFont: {family: FONT}, bodyFont: {family: FONT}}},
      scales: {x: {ticks: {font: {family: FONT, size: narrow() ? 10 : 12}, maxRotation: 45, autoSkip: true}},
               y: {beginAtZero: true, ticks: {precision: 0, font: {family: FONT}}}}
    };
  }

  function drawTrend(canvas, trend) {
    return new Chart(canvas, {type: "line", data: {labels: trend.labels, datasets: datasets(trend.series, "line")},
                              options: common()});
  }

  function drawBars(canvas, bars) {
    var options = common();
    var links = bars.links || [];
    options.onClick = function (event, elements, chart) {
      var hit = chart.getElementsAtEventForMode(event, "index", {intersect: false}, false);
      if (!hit.length) return;
      var link = links[hit[0].index];
      if (link) window.location.assign(link);
    };
    options.onHover = function (event, elements, chart) {
      var hit = chart.getElementsAtEventForMode(event, "index", {intersect: false}, false);
      chart.canvas.style.cursor = hit.length && links[hit[0].index] ? "pointer" : "default";
    };
    if (narrow() && bars.labels.length > 4) options.indexAxis = "y";  /* long names read across on a phone */
    if (options.indexAxis === "y") {
      options.scales = {y: {ticks: {font: {family: FONT, size: 11}, autoSkip: false}},
                        x: {beginAtZero: true, ticks: {precision: 0, font: {family: FONT, size: 10}}}};
      canvas.parentNode.style.height = Math.max(260, bars.labels.length * 56 + 80) + "px";
    }
    return new Chart(canvas, {type: "bar", data: {labels: bars.labels, datasets: datasets(bars.series, "bar")},
                              options: options});
  }

  document.addEventListener("DOMContentLoaded", function () {
    var data = readData();
    if (!data || typeof Chart === "undefined") return;
    var trendCanvas = document.getElementById("trend-chart");
    var barsCanvas = document.getElementById("bars-chart");
    window.consoleCharts = {};
    if (trendCanvas && data.trend) window.consoleCharts.trend = drawTrend(trendCanvas, data.trend);
    if (barsCanvas && data.bars) window.consoleCharts.bars = drawBars(barsCanvas, data.bars);
    document.documentElement.setAttribute("data-charts", "drawn");
  });
})();
