/* The asset page's charts, drawn with uPlot.
 *
 * The server embeds every chart's data (#chart-data) and prints each chart's figures as a table,
 * so the page reads whole without this script; the script draws the lines (the average of each
 * step), a band from each step's min to its max, anomaly windows as shaded spans and forecast lines
 * dashed. Choosing another range fetches /assets/<id>/series.json for every chart on the page and
 * redraws them, tables included, with the range kept in the address; if that fails, the link is
 * followed as a plain link. Text that came from a monitored system (series labels, anything in the
 * JSON) is only ever set as textContent.
 */
(function () {
  "use strict";
  var dataNode = document.getElementById("chart-data");
  if (!dataNode || typeof uPlot === "undefined") {
    return;
  }
  var state = JSON.parse(dataNode.textContent);
  var COLORS = ["#1a73e8", "#d93025", "#188038", "#e37400", "#9334e6", "#00838f", "#c2185b", "#5f6368"];
  var ANOMALY_FILL = "rgba(227, 116, 0, 0.16)";
  var FORECAST = "#7b1fa2";
  var HEIGHT = 220;
  var plots = new Map();

  function figures() {
    return Array.prototype.slice.call(document.querySelectorAll("figure.asset-chart"));
  }

  function figureFor(metric) {
    return figures().filter(function (f) { return f.dataset.metric === metric; })[0] || null;
  }

  var BINARY = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

  function bytes(v) {
    var size = Math.abs(v), unit = 0;
    while (size >= 1024 && unit < BINARY.length - 1) { size /= 1024; unit += 1; }
    return (v < 0 ? "-" : "") + (unit ? size.toPrecision(3) : size.toFixed(0)) + " " + BINARY[unit];
  }

  function plain(v) {
    if (Math.abs(v) >= 10000 || (v !== 0 && v === Math.round(v))) { return Math.round(v).toLocaleString("en"); }
    return Number(v.toPrecision(3)).toString();
  }

  function formatValue(v, unit) {
    if (v === null || v === undefined || !isFinite(v)) { return "–"; }
    switch (unit) {
      case "bytes": return bytes(v);
      case "bytes_per_s": return bytes(v) + "/s";
      case "percent": return v.toFixed(1) + " %";
      case "ratio": return (v * 100).toFixed(1) + " %";
      case "seconds": return Math.abs(v) < 1 ? plain(v * 1000) + " ms" : plain(v) + " s";
      case "ms": return plain(v) + " ms";
      case "per_s": return plain(v) + "/s";
      default: return plain(v);
    }
  }

  /* The legend sits under a chart of ~500 px; the table below it has the whole label. */
  function legendLabel(text) {
    return text.length > 48 ? text.slice(0, 47) + "…" : text;
  }

  /* Tick labels with as many decimals as the spacing of the ticks needs, so that 0.85 %, 0.9 %
     and 0.95 % do not all read "0.9 %". Byte sizes keep three significant digits of their unit. */
  function ticks(splits, unit) {
    var scale = unit === "ratio" ? 100 : 1;
    var suffix = {percent: " %", ratio: " %", per_s: "/s", seconds: " s", ms: " ms"}[unit];
    if (unit === "bytes" || unit === "bytes_per_s" || splits.length < 2) {
      return splits.map(function (v) { return formatValue(v, unit); });
    }
    var step = Math.abs(splits[1] - splits[0]) * scale;
    var decimals = step > 0 ? Math.min(6, Math.max(0, -Math.floor(Math.log10(step)))) : 0;
    return splits.map(function (v) {
      return (v * scale).toLocaleString("en", {minimumFractionDigits: decimals, maximumFractionDigits: decimals}) +
        (suffix || "");
    });
  }

  function undef(v) { return v === null ? undefined : v; }

  /* Columns for uPlot: null (a hole the alignment left) becomes undefined, which uPlot joins
     over; a real gap (no data for more than three usual spacings) gets a row of nulls, which
     uPlot breaks the line at. Forecast points are inserted as rows of their own. */
  function table(chart) {
    var t = {x: chart.times.slice(), lines: [], lows: [], highs: [], forecasts: []};
    chart.series.forEach(function (s) {
      t.lines.push(s.avg.map(undef));
      t.lows.push(s.min ? s.min.map(undef) : null);
      t.highs.push(s.max ? s.max.map(undef) : null);
    });
    function columns() {
      return [t.x].concat(t.lines, t.lows.filter(Boolean), t.highs.filter(Boolean), t.forecasts);
    }
    function insert(i, x, fill) {
      columns().forEach(function (col, k) { col.splice(i, 0, k === 0 ? x : fill); });
    }
    var diffs = [];
    for (var i = 1; i < t.x.length; i++) { diffs.push(t.x[i] - t.x[i - 1]); }
    diffs.sort(function (a, b) { return a - b; });
    var usual = Math.max(diffs.length ? diffs[Math.floor(diffs.length / 2)] : chart.step, chart.step);
    for (var j = t.x.length - 1; j > 0; j--) {
      if (t.x[j] - t.x[j - 1] > 3 * usual) { insert(j, t.x[j - 1] + usual, null); }
    }
    chart.forecasts.forEach(function (f) {
      if (f.line.length !== 2) { return; }
      var col = new Array(t.x.length);
      t.forecasts.push(col);
      f.line.forEach(function (point) {
        var at = Math.round(point[0]), k = 0;
        while (k < t.x.length && t.x[k] < at) { k++; }
        if (t.x[k] !== at) { insert(k, at, undefined); }
        col[k] = point[1];
      });
    });
    return t;
  }

  function clipToPlot(u, draw) {
    var ctx = u.ctx, b = u.bbox;
    ctx.save();
    ctx.beginPath();
    ctx.rect(b.left, b.top, b.width, b.height);
    ctx.clip();
    draw(ctx, b);
    ctx.restore();
  }

  function drawAnomalies(chart) {
    return function (u) {
      clipToPlot(u, function (ctx, b) {
        ctx.fillStyle = ANOMALY_FILL;
        chart.anomalies.forEach(function (a) {
          var from = u.valToPos(a.from, "x", true);
          var to = u.valToPos(a.to === null ? chart.end : a.to, "x", true);
          ctx.fillRect(from, b.top, Math.max(2, to - from), b.height);
        });
      });
    };
  }

  function drawBands(t) {
    return function (u) {
      clipToPlot(u, function (ctx) {
        t.lows.forEach(function (lows, s) {
          var highs = t.highs[s];
          if (!lows || !highs || !u.series[s + 1].show) { return; }
          ctx.fillStyle = COLORS[s % COLORS.length] + "2e";
          var run = [];
          function flush() {
            if (run.length > 1) {
              ctx.beginPath();
              run.forEach(function (i, n) {
                var x = u.valToPos(t.x[i], "x", true), y = u.valToPos(highs[i], "y", true);
                if (n === 0) { ctx.moveTo(x, y); } else { ctx.lineTo(x, y); }
              });
              run.slice().reverse().forEach(function (i) {
                ctx.lineTo(u.valToPos(t.x[i], "x", true), u.valToPos(lows[i], "y", true));
              });
              ctx.closePath();
              ctx.fill();
            }
            run = [];
          }
          for (var i = 0; i < t.x.length; i++) {
            if (lows[i] === null || highs[i] === null) { flush(); } else if (lows[i] !== undefined && highs[i] !== undefined) { run.push(i); }
          }
          flush();
        });
      });
    };
  }

  /* uPlot's default for a flat series is 0 to 100, which reads as 10,000 % for a ratio: pad a
     flat line by a tenth of its value instead, and keep a series that is never negative above 0. */
  var FLAT_ZERO_PAD = {bytes: 1024, bytes_per_s: 1024, percent: 10, ratio: 0.1};

  function extent(columns) {
    var lo = Infinity, hi = -Infinity;
    columns.forEach(function (col) {
      if (!col) { return; }
      for (var i = 0; i < col.length; i++) {
        var v = col[i];
        if (v !== null && v !== undefined) { if (v < lo) { lo = v; } if (v > hi) { hi = v; } }
      }
    });
    return [lo, hi];
  }

  /* The scale covers the min-max bands too: they are drawn by a hook, which uPlot does not
     range for, and a spike the band shows must not be cut off. */
  function yRange(unit, band) {
    return function (u, min, max) {
      if (min === null || max === null) { return [0, 1]; }
      min = Math.min(min, band[0]);
      max = Math.max(max, band[1]);
      if (min === max) {
        var pad = Math.abs(min) * 0.1 || FLAT_ZERO_PAD[unit] || 1;
        return [min >= 0 ? Math.max(0, min - pad) : min - pad, max + pad];
      }
      var r = uPlot.rangeNum(min, max, 0.1, true);
      return [min >= 0 ? Math.max(0, r[0]) : r[0], r[1]];
    };
  }

  function options(chart, t, width) {
    var series = [{}];
    chart.series.forEach(function (s, i) {
      series.push({label: legendLabel(s.label), stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: false,
                   value: function (u, v) { return formatValue(v, chart.unit); }});
    });
    chart.forecasts.filter(function (f) { return f.line.length === 2; }).forEach(function (f) {
      series.push({label: legendLabel("forecast (" + f.rule + "): " + f.label), stroke: FORECAST, width: 1.5, dash: [6, 4],
                   spanGaps: true, value: function (u, v) { return formatValue(v, chart.unit); }});
    });
    var last = chart.end;
    chart.forecasts.forEach(function (f) { if (f.line.length === 2) { last = Math.max(last, f.line[1][0]); } });
    return {
      width: width, height: HEIGHT, series: series,
      // The rest of the page gives times in UTC; so do the axes and the legend.
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); },
      // The whole range, not just where there is data: an hour of data over 90 days looks like one.
      scales: {x: {time: true, range: function () { return [chart.start, last]; }}, y: {range: yRange(chart.unit, extent(t.lows.concat(t.highs)))}},
      axes: [{}, {size: 72, values: function (u, splits) { return ticks(splits, chart.unit); }}],
      hooks: {drawClear: [drawAnomalies(chart), drawBands(t)]},
      legend: {live: true}
    };
  }

  function setText(node, text) { if (node) { node.textContent = text; } }

  function fillTable(fig, chart) {
    var body = fig.querySelector(".chart-summary tbody");
    if (body) {
      body.textContent = "";
      chart.series.forEach(function (s) {
        var row = document.createElement("tr"), head = document.createElement("th");
        head.scope = "row";
        head.textContent = s.label;
        row.appendChild(head);
        ["latest", "min", "max", "avg"].forEach(function (k) {
          var cell = document.createElement("td");
          cell.textContent = s.summary.text[k];
          row.appendChild(cell);
        });
        body.appendChild(row);
      });
    }
    var notes = fig.querySelector(".chart-notes");
    if (notes) {
      notes.textContent = "";
      chart.anomalies.slice(0, 5).forEach(function (a) { note(notes, "anomaly", "Anomaly in " + a.label + ": " + a.text); });
      if (chart.anomalies.length > 5) {
        note(notes, "anomaly", "and " + (chart.anomalies.length - 5) + " earlier anomaly windows in this range");
      }
      chart.forecasts.forEach(function (f) { note(notes, "forecast", "Forecast for " + f.label + ": " + f.text); });
    }
    fig.querySelectorAll(".range-label").forEach(function (n) { setText(n, chart.range_label); });
    var canvas = fig.querySelector(".chart-canvas");
    canvas.setAttribute("aria-label", chart.title + " over the last " + chart.range_label +
                        "; the figures are in the table below the chart.");
    fig.querySelector(".chart-empty").hidden = chart.points > 0;
  }

  function note(list, kind, text) {
    var item = document.createElement("li");
    item.className = kind;
    item.textContent = text;
    list.appendChild(item);
  }

  function render(fig, chart) {
    var old = plots.get(fig);
    if (old) { old.destroy(); plots.delete(fig); }
    var canvas = fig.querySelector(".chart-canvas");
    fig.dataset.range = chart.range;
    fig.dataset.points = String(chart.points);
    if (chart.points > 0) {
      var t = table(chart);
      var data = [t.x].concat(t.lines, t.forecasts);
      plots.set(fig, new uPlot(options(chart, t, Math.max(240, canvas.clientWidth)), data, canvas));
    }
    fig.dataset.drawn = "true";
  }

  function drawAll(charts) {
    charts.forEach(function (chart) {
      var fig = figureFor(chart.metric);
      if (fig) { render(fig, chart); }
    });
  }

  function markRange(key) {
    document.querySelectorAll(".range-picker a[data-range]").forEach(function (a) {
      if (a.dataset.range === key) { a.setAttribute("aria-current", "true"); } else { a.removeAttribute("aria-current"); }
    });
    document.querySelectorAll("#charts form.add-chart input[name=range], #charts figcaption a[href]").forEach(function (n) {
      if (n.tagName === "INPUT") { n.value = key; return; }
      var url = new URL(n.href);
      url.searchParams.set("range", key);
      n.href = url.toString();
    });
  }

  function switchRange(link) {
    var key = link.dataset.range, status = document.getElementById("chart-status");
    var metrics = figures().map(function (f) { return f.dataset.metric; });
    if (!metrics.length) { window.location.assign(link.href); return; }
    var url = new URL("/assets/" + state.asset_id + "/series.json", window.location.href);
    url.searchParams.set("range", key);
    metrics.forEach(function (m) { url.searchParams.append("metric", m); });
    setText(status, "Loading…");
    fetch(url.toString(), {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
      .then(function (payload) {
        payload.charts.forEach(function (chart) {
          var fig = figureFor(chart.metric);
          if (fig) { fillTable(fig, chart); render(fig, chart); }
        });
        state.range = key;
        markRange(key);
        window.history.pushState({range: key}, "", link.href);
        setText(status, "Showing the last " + payload.range_label + ".");
      })
      .catch(function () { window.location.assign(link.href); });
  }

  document.querySelectorAll(".range-picker a[data-range]").forEach(function (a) {
    a.addEventListener("click", function (ev) {
      if (ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) { return; }
      ev.preventDefault();
      switchRange(a);
    });
  });
  window.addEventListener("popstate", function () { window.location.reload(); });

  var resizing = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizing);
    resizing = setTimeout(function () {
      plots.forEach(function (u, fig) {
        u.setSize({width: Math.max(240, fig.querySelector(".chart-canvas").clientWidth), height: HEIGHT});
      });
    }, 150);
  });

  drawAll(state.charts);
})();
