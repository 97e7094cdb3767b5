/* Open statistics (/stats): draws the charts over the tables with ECharts (static/vendor/echarts).
   Progressive enhancement: the tables are the content; without JavaScript, or if ECharts fails to
   load, the charts simply stay hidden. The numbers come from the page's
   <script type="application/json" id="stats-data"> block (no inline code: CSP script-src 'self'). */
(function () {
  "use strict";

  function readData() {
    var block = document.getElementById("stats-data");
    if (!block) { return null; }
    try { return JSON.parse(block.textContent); } catch (e) { return null; }
  }

  var data = readData();
  if (!data || typeof window.echarts === "undefined") { return; }

  var root = document.documentElement;
  var contrast = root.classList.contains("a11y-contrast");
  var fontSize = Math.round(parseFloat(window.getComputedStyle(root).fontSize || "16") * 0.85);
  var ink = contrast ? "#000" : "#1f2329";
  // The portal's red and blue, a green and an amber; in high contrast, dark colours with patterns.
  var palette = contrast ? ["#000", "#555", "#7a0000", "#00309c"] : ["#b3171e", "#2f6db5", "#2e8b57", "#d48806"];
  var charts = [];

  function percentAxis() {
    return { type: "value", min: 0, max: 100, axisLabel: { formatter: "{value}%", color: ink, fontSize: fontSize },
      splitLine: { show: false } };
  }

  function countAxis(name) {
    return { type: "value", name: name, minInterval: 1, nameTextStyle: { color: ink, fontSize: fontSize },
      axisLabel: { color: ink, fontSize: fontSize } };
  }

  function base() {
    return {
      animation: false,
      color: palette,
      textStyle: { fontSize: fontSize, color: ink },
      // Patterns on the bars in high contrast. ECharts' own description stays off: the container
      // carries the page's summary as its aria-label, and the table the numbers.
      aria: { enabled: contrast, label: { enabled: false }, decal: { show: contrast } },
      tooltip: { trigger: "axis", textStyle: { fontSize: fontSize } },
      legend: { top: 0, textStyle: { color: ink, fontSize: fontSize } },
      grid: { top: fontSize * 4, left: 8, right: 8, bottom: 8, containLabel: true }
    };
  }

  function show(name, option) {
    var figure = document.querySelector("[data-chart='" + name + "']");
    if (!figure) { return; }
    figure.hidden = false;
    var chart = window.echarts.init(figure.querySelector(".stats-chart"), null, { renderer: "canvas" });
    chart.setOption(option);
    charts.push(chart);
  }

  var monthly = base();
  monthly.xAxis = { type: "category", data: data.months, axisLabel: { color: ink, fontSize: fontSize } };
  monthly.yAxis = [countAxis("件"), percentAxis()];
  monthly.series = [
    { name: data.receivedLabel, type: "bar", data: data.received },
    { name: "答复公开", type: "bar", data: data.replied },
    { name: "按期率", type: "line", yAxisIndex: 1, data: data.onTimeRate, connectNulls: true, symbolSize: 8 },
    { name: "满意率", type: "line", yAxisIndex: 1, data: data.satisfactionRate, connectNulls: true, symbolSize: 8,
      lineStyle: { type: "dashed" } }
  ];
  monthly.tooltip.valueFormatter = function (value) { return value === null || value === undefined ? "—" : value; };
  show("monthly", monthly);

  if (data.units && data.units.length) {
    var top = Math.min(data.units.length, 15);
    var units = base();
    units.grid.right = 24;
    units.xAxis = countAxis("");
    // The busiest unit at the top: ECharts draws a category axis from the bottom up.
    units.yAxis = { type: "category", inverse: true, data: data.units.slice(0, top),
      axisLabel: { color: ink, fontSize: fontSize } };
    units.series = [
      { name: "交办", type: "bar", data: data.unitReceived.slice(0, top) },
      { name: "答复公开", type: "bar", data: data.unitReplied.slice(0, top) },
      { name: "按期答复", type: "bar", data: data.unitOnTime.slice(0, top) }
    ];
    var box = document.getElementById("stats-chart-units");
    if (box) { box.style.height = Math.max(240, 80 + top * 3 * fontSize) + "px"; }
    show("units", units);
  }

  var pending = null;
  window.addEventListener("resize", function () {
    if (pending) { window.clearTimeout(pending); }
    pending = window.setTimeout(function () {
      charts.forEach(function (chart) { chart.resize(); });
    }, 150);
  });
})();
