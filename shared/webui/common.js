// Shared by /dashboard and /console: calls to the platform's own API
// (same origin, no cookies), the messages for its errors, and charts.
"use strict";
(function () {
  const RB = {};
  const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  const pad = (n) => String(n).padStart(2, "0");

  // call sends one request to this origin. auth is the header to send
  // (X-API-Key or Authorization). It resolves to {status, body, headers};
  // a network failure resolves to status 0.
  RB.call = async function (path, auth, opts) {
    opts = opts || {};
    const headers = Object.assign({ Accept: "application/json" }, auth || {});
    let body;
    if (opts.body !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(opts.body);
    }
    let resp;
    try {
      resp = await fetch(path, { method: opts.method || "GET", headers, body, credentials: "omit", cache: "no-store", redirect: "error" });
    } catch (e) {
      return { status: 0, body: null, headers: new Headers() };
    }
    let data = null;
    const text = await resp.text();
    if (text) { try { data = JSON.parse(text); } catch (e) { data = null; } }
    return { status: resp.status, body: data, headers: resp.headers };
  };

  // problem turns an answer that is not a success into a sentence for a
  // person: what happened and what to do.
  RB.problem = function (r, what) {
    // The detail's own "retry later" is said once, by the sentence.
    const d = r.body && r.body.detail ? String(r.body.detail).replace(/;? *retry (later|after [0-9]+ ?s)\.?$/, "") : "";
    const detail = d ? " (" + d + ")" : "";
    switch (r.status) {
      case 0: return "Cannot reach the platform. Check your connection and try again.";
      case 401: return what + " was not accepted: it is missing, mistyped, unknown, revoked or expired" + detail + ".";
      case 403: return "Access refused" + detail + ".";
      case 429: {
        const after = r.headers.get("Retry-After");
        return "Too many requests" + detail + ". Try again " + (after ? "in " + after + " s." : "in a moment.");
      }
      case 503: return "Service unavailable right now" + (detail || " (a database or Redis is down)") + ". Nothing is shown until it is back; try again in a moment.";
      default: return "Unexpected answer " + r.status + detail + ".";
    }
  };

  RB.el = function (tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const k of kids) e.append(k);
    return e;
  };

  RB.num = (n) => Number(n).toLocaleString("en-US");
  RB.when = function (s) {
    if (!s) return "—";
    const d = new Date(s);
    return d.toISOString().replace("T", " ").slice(0, 16) + " UTC";
  };

  // short is a compact UTC time: "Dec 7, 03:52 UTC".
  RB.short = function (s) {
    const d = new Date(s);
    return months[d.getUTCMonth()] + " " + d.getUTCDate() + ", " + pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + " UTC";
  };

  RB.show = function (el, text, kind) {
    el.className = "message " + (kind || "error");
    el.textContent = text || "";
  };

  // The granularities the pages chart: label, query, tick format.
  RB.ranges = {
    hour: { title: "Last hour (per minute, UTC)", q: "granularity=minute", fmt: "time" },
    day: { title: "Last 24 hours (per hour, UTC)", q: "granularity=hour", fmt: "time" },
    month: { title: "Last 30 days (per day, UTC)", q: "granularity=day", fmt: "date" },
  };

  // label formats an axis tick (Unix seconds) in UTC.
  function label(ts, fmt) {
    const d = new Date(ts * 1000);
    if (fmt === "date") return months[d.getUTCMonth()] + " " + d.getUTCDate();
    return pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes());
  }

  const charts = new Map();
  const bars = (o) => uPlot.paths.bars(o);
  // Whole-number tick steps: the y axis counts calls.
  const counts = [1, 2, 5];
  while (counts[counts.length - 1] < 1e15) counts.push(...counts.slice(-3).map((n) => n * 10));

  // chart draws a series of /usage/history or /admin/usage/history in
  // box (an element with a .plot child): admitted requests and denials.
  RB.chart = function (box, series, fmt) {
    const plot = box.querySelector(".plot");
    // Each bucket's bars sit in the middle of its span [start, start+step),
    // on an axis from the series' from to its to.
    const step = { minute: 60, hour: 3600, day: 86400 }[series.granularity] || 60;
    const from = Date.parse(series.from) / 1000, to = Date.parse(series.to) / 1000;
    const xs = series.points.map((p) => Date.parse(p.start) / 1000 + step / 2);
    const req = series.points.map((p) => p.requests);
    const den = series.points.map((p) => p.denied);
    const width = Math.max(260, plot.clientWidth || box.clientWidth - 20);
    const opts = {
      width, height: 200,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true, range: () => [from, to] }, y: { range: (u, min, max) => [0, Math.max(4, Math.ceil(max * 1.15))] } },
      axes: [
        { stroke: "#4a5566", grid: { stroke: "#eef1f5" }, ticks: { stroke: "#d5dbe3" }, values: (u, splits) => splits.map((ts) => label(ts, fmt)) },
        { stroke: "#4a5566", grid: { stroke: "#eef1f5" }, ticks: { stroke: "#d5dbe3" }, size: 50, incrs: counts, values: (u, vals) => vals.map((v) => RB.num(v)) },
      ],
      series: [
        {},
        // Bars: each bucket is a count; admitted and denied side by side.
        { label: "Admitted", stroke: "#1a56db", fill: "#1a56db", width: 0, paths: bars({ size: [0.45, 24], align: -1 }), points: { show: false } },
        { label: "Denied", stroke: "#c2410c", fill: "#c2410c", width: 0, paths: bars({ size: [0.45, 24], align: 1 }), points: { show: false } },
      ],
    };
    const old = charts.get(plot);
    if (old) old.destroy();
    plot.textContent = "";
    const u = new uPlot(opts, [xs, req, den], plot);
    charts.set(plot, u);
    box.dataset.drawn = "true";
    return u;
  };

  let resizeTimer;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      for (const [plot, u] of charts) u.setSize({ width: Math.max(260, plot.clientWidth), height: 200 });
    }, 150);
  });

  // chartBox builds an empty chart panel with a heading and totals line.
  RB.chartBox = function (id, title) {
    return RB.el("div", { class: "chart", id },
      RB.el("div", { class: "chart-head" }, RB.el("h3", { text: title }), RB.el("span", { class: "totals", "aria-live": "polite" })),
      RB.el("div", { class: "plot", role: "img", "aria-label": title + ": admitted and denied requests over time" }),
      RB.el("div", { class: "legend", "aria-hidden": "true" }, RB.el("span", { class: "admitted", text: "admitted" }), RB.el("span", { class: "denied", text: "denied" })));
  };

  // totals writes a series' sums into a chart panel, in elements the
  // tests read (data-requests, data-units, data-denied).
  RB.totals = function (box, s) {
    const t = box.querySelector(".totals");
    t.textContent = RB.num(s.totals.requests) + " requests · " + RB.num(s.totals.units) + " units · " + RB.num(s.totals.denied) + " denied";
    box.dataset.requests = s.totals.requests;
    box.dataset.units = s.totals.units;
    box.dataset.denied = s.totals.denied;
  };

  window.RB = RB;
})();
