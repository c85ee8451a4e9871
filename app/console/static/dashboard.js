/* 首页 charts (app/console/pages/home.py): the monthly trend as lines, the child regions (or
   markets) as bars; clicking a region's bar opens its dashboard; the 骑手随手拍 panel's
   categories, months and grid heat map. Data from the page's
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

  /* -- 骑手随手拍 ------------------------------------------------------------------------------ */
  function plain(options) {  /* one series: no legend, tooltips by the bar */
    options.plugins.legend = {display: false};
    options.interaction = {mode: "nearest", intersect: false, axis: options.indexAxis === "y" ? "y" : "x"};
    return options;
  }

  function drawReportCategories(canvas, categories) {
    var options = plain(common());
    options.indexAxis = "y";  /* category names read across */
    options.scales = {y: {ticks: {font: {family: FONT, size: narrow() ? 11 : 12}, autoSkip: false}},
                      x: {beginAtZero: true, ticks: {precision: 0, font: {family: FONT, size: 11}}}};
    return new Chart(canvas, {type: "bar", options: options, data: {labels: categories.labels, datasets: [
      {label: "举报件数", data: categories.values, backgroundColor: COLORS[0] + "cc", borderColor: COLORS[0],
       borderWidth: 1, maxBarThickness: 22}]}});
  }

  function drawReportMonths(canvas, months) {
    var options = plain(common());
    return new Chart(canvas, {type: "bar", options: options, data: {labels: months.labels, datasets: [
      {label: "新增举报", data: months.values, backgroundColor: COLORS[1] + "cc", borderColor: COLORS[1],
       borderWidth: 1, maxBarThickness: 28}]}});
  }

  /* The heat map: each aggregated cell a rectangle of its 0.01° (never a single report's place),
     shaded from light to dark red by its count, like the legend under it (.heat-scale). The axes
     are longitude and latitude, their ranges widened so that a kilometre is as long across as
     up and down (a degree of longitude is cos(latitude) of a degree of latitude). */
  var HEAT_LIGHT = [243, 177, 170], HEAT_DARK = [140, 29, 24];

  function heatColor(count, low, high) {
    var t = high > low ? (count - low) / (high - low) : 1;
    var rgb = HEAT_LIGHT.map(function (light, i) { return Math.round(light + (HEAT_DARK[i] - light) * t); });
    return "rgb(" + rgb.join(",") + ")";
  }

  function heatRanges(heat, width, height) {
    var half = heat.cell_degrees / 2, cells = heat.cells;
    var lats = cells.map(function (c) { return c.lat; }), lngs = cells.map(function (c) { return c.lng; });
    var south = Math.min.apply(null, lats) - 3 * half, north = Math.max.apply(null, lats) + 3 * half;
    var west = Math.min.apply(null, lngs) - 3 * half, east = Math.max.apply(null, lngs) + 3 * half;
    var across = Math.cos((south + north) / 2 * Math.PI / 180);
    var areaWidth = Math.max(width - 70, 60), areaHeight = Math.max(height - 50, 60);  /* less the axes */
    var perPixel = Math.max((east - west) * across / areaWidth, (north - south) / areaHeight);
    var midLng = (west + east) / 2, midLat = (south + north) / 2;
    var spanLng = perPixel * areaWidth / across, spanLat = perPixel * areaHeight;
    return {x: [midLng - spanLng / 2, midLng + spanLng / 2], y: [midLat - spanLat / 2, midLat + spanLat / 2]};
  }

  function fitHeat(options, heat, size) {
    var ranges = heatRanges(heat, size.width, size.height);
    options.scales.x.min = ranges.x[0]; options.scales.x.max = ranges.x[1];
    options.scales.y.min = ranges.y[0]; options.scales.y.max = ranges.y[1];
  }

  function degrees(prefix) {
    return function (value) { return prefix + " " + Number(value).toFixed(2) + "°"; };
  }

  function drawReportHeat(canvas, heat) {
    var counts = heat.cells.map(function (c) { return c.count; });
    var low = Math.min.apply(null, counts), high = Math.max.apply(null, counts), half = heat.cell_degrees / 2;
    var cellsPlugin = {id: "heatCells", beforeDatasetsDraw: function (chart) {
      var x = chart.scales.x, y = chart.scales.y, ctx = chart.ctx, area = chart.chartArea;
      ctx.save();
      ctx.beginPath(); ctx.rect(area.left, area.top, area.right - area.left, area.bottom - area.top); ctx.clip();
      heat.cells.forEach(function (cell) {
        var left = x.getPixelForValue(cell.lng - half), right = x.getPixelForValue(cell.lng + half);
        var top = y.getPixelForValue(cell.lat + half), bottom = y.getPixelForValue(cell.lat - half);
        ctx.fillStyle = heatColor(cell.count, low, high);
        ctx.fillRect(left, top, Math.max(right - left, 2), Math.max(bottom - top, 2));
        ctx.strokeStyle = "#ffffff"; ctx.lineWidth = 1;
        ctx.strokeRect(left, top, right - left, bottom - top);
      });
      ctx.restore();
    }};
    var options = common();
    options.plugins.legend = {display: false};
    options.interaction = {mode: "nearest", intersect: true};
    options.plugins.tooltip.callbacks = {
      title: function () { return ""; },
      label: function (item) {
        var cell = heat.cells[item.dataIndex];
        return "北纬 " + cell.lat.toFixed(3) + "°，东经 " + cell.lng.toFixed(3) + "° 一带：" + cell.count + " 件";
      }};
    options.scales = {  /* ticks at round degrees only (not at the widened ends) */
      x: {type: "linear", grid: {color: "#eef0f3"},
          ticks: {font: {family: FONT, size: 10}, maxTicksLimit: narrow() ? 5 : 8, includeBounds: false,
                  callback: degrees("东经")}},
      y: {type: "linear", grid: {color: "#eef0f3"},
          ticks: {font: {family: FONT, size: 10}, maxTicksLimit: 6, includeBounds: false, callback: degrees("北纬")}}};
    fitHeat(options, heat, {width: canvas.parentNode.clientWidth, height: canvas.parentNode.clientHeight});
    options.onResize = function (chart, size) { fitHeat(chart.options, heat, size); };
    return new Chart(canvas, {type: "scatter", options: options, plugins: [cellsPlugin], data: {datasets: [{
      label: "举报件数", data: heat.cells.map(function (c) { return {x: c.lng, y: c.lat}; }),
      pointRadius: 0, pointHoverRadius: 0,
      pointHitRadius: function (context) {  /* the whole cell answers the pointer */
        var x = context.chart.scales.x;
        return x ? Math.max(4, Math.abs(x.getPixelForValue(half) - x.getPixelForValue(0))) : 6;
      }}]}});
  }

  function drawReports(charts, reports) {
    var categories = document.getElementById("report-categories-chart");
    var months = document.getElementById("report-months-chart");
    var heat = document.getElementById("report-heat-chart");
    if (categories && reports.categories) {
      charts.reportCategories = drawReportCategories(categories, reports.categories);
    }
    if (months && reports.months) charts.reportMonths = drawReportMonths(months, reports.months);
    if (heat && reports.heat) charts.reportHeat = drawReportHeat(heat, reports.heat);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var data = readData();
    if (!data || typeof Chart === "undefined") return;
    var trendCanvas = document.getElementById("trend-chart");
    var barsCanvas = document.getElementById("bars-chart");
    window.consoleCharts = {};
    if (trendCanvas && data.trend) window.consoleCharts.trend = drawTrend(trendCanvas, data.trend);
    if (barsCanvas && data.bars) window.consoleCharts.bars = drawBars(barsCanvas, data.bars);
    if (data.reports) drawReports(window.consoleCharts, data.reports);
    document.documentElement.setAttribute("data-charts", "drawn");
  });
})();
