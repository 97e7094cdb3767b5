/* 督查 dashboard (/supervision): a bar chart of the unit table with ECharts, if it is loaded.
   Progressive enhancement: the tables are the content; without JavaScript, or without
   static/vendor/echarts, the chart stays hidden. Data from <script type="application/json"
   id="supervision-data"> (no inline code: CSP script-src 'self'). */
(function () {
  "use strict";
  var block = document.getElementById("supervision-data");
  var box = document.getElementById("supervision-chart");
  if (!block || !box || typeof window.echarts === "undefined") { return; }
  var data;
  try { data = JSON.parse(block.textContent); } catch (e) { return; }
  if (!data.labels || !data.labels.length) { return; }
  var palette = ["#2f6db5", "#b3171e", "#d48806", "#7a0000"];
  var names = Object.keys(data.series);
  box.hidden = false;
  var chart = window.echarts.init(box);
  chart.setOption({
    color: palette,
    tooltip: { trigger: "axis" },
    legend: { data: names, top: 0 },
    grid: { left: 8, right: 8, top: 36, bottom: 8, containLabel: true },
    xAxis: { type: "category", data: data.labels, axisLabel: { interval: 0, rotate: 30 } },
    yAxis: { type: "value", minInterval: 1 },
    series: names.map(function (name) { return { name: name, type: "bar", data: data.series[name] }; })
  });
  window.addEventListener("resize", function () { chart.resize(); });
}());
