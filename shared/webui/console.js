// /console: the operator's view of the whole platform, read from the
// operator API with a token kept in this tab's sessionStorage.
"use strict";
(function () {
  const RB = window.RB;
  const STORE = "ratebill.operatorToken";
  const $ = (id) => document.getElementById(id);
  const form = $("token-form"), input = $("token"), msg = $("message");
  let token = sessionStorage.getItem(STORE) || "";
  let cursor = null;

  const auth = () => ({ Authorization: "Bearer " + token });

  for (const [name, r] of Object.entries(RB.ranges)) {
    $("charts").append(RB.chartBox("chart-" + name, r.title));
    $("customer-charts").append(RB.chartBox("customer-chart-" + name, r.title));
  }

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    token = input.value.trim();
    if (!token) return;
    sessionStorage.setItem(STORE, token);
    input.value = "";
    load();
  });
  $("forget").addEventListener("click", () => {
    sessionStorage.removeItem(STORE);
    token = "";
    signedIn(false);
    RB.show(msg, "The token was removed from this tab.", "info");
    input.focus();
  });
  $("more").addEventListener("click", () => users(false));
  $("customer-close").addEventListener("click", (ev) => {
    ev.preventDefault();
    history.replaceState(null, "", location.pathname);
    $("customer").hidden = true;
    $("traffic-title").focus();
  });
  window.addEventListener("hashchange", customer);

  function fail(r) {
    RB.show(msg, RB.problem(r, "The operator token"), "error");
    if (r.status === 401) {
      sessionStorage.removeItem(STORE);
      token = "";
      signedIn(false);
      document.body.dataset.state = "unauthorized";
    } else {
      document.body.dataset.state = "error-" + r.status;
    }
  }

  async function load() {
    document.body.dataset.state = "loading";
    RB.show(msg, "Loading…", "info");
    const names = Object.keys(RB.ranges);
    const answers = await Promise.all([
      ...names.map((n) => RB.call("admin/usage/history?" + RB.ranges[n].q, auth())),
      RB.call("admin/usage/top?by=requests&granularity=hour&limit=10", auth()),
      RB.call("admin/usage/top?by=denied&granularity=hour&limit=10", auth()),
    ]);
    const bad = answers.find((r) => r.status !== 200);
    if (bad) { fail(bad); return; }
    RB.show(msg, "", "info");
    signedIn(true);
    names.forEach((n, i) => {
      const box = $("chart-" + n);
      RB.totals(box, answers[i].body);
      RB.chart(box, answers[i].body, RB.ranges[n].fmt);
    });
    top($("top-requests"), answers[names.length].body.items, ["requests", "denied"]);
    top($("top-denied"), answers[names.length + 1].body.items, ["denied", "requests"]);
    await Promise.all([health(), users(true)]);
    await customer();
    if (document.body.dataset.state === "loading") document.body.dataset.state = "ready";
  }

  function signedIn(yes) {
    $("signed").hidden = !yes;
    form.hidden = yes;
    $("token-hint").hidden = yes;
    $("signed-in").hidden = !yes;
    if (yes) {
      const who = $("who");
      who.textContent = "Signed in with token ";
      who.append(RB.el("code", { text: token.slice(0, 8) + "…" }), ". It is kept in this tab only.");
    }
  }

  function userLink(id, name) {
    return RB.el("a", { href: "#user=" + id, "aria-label": "Usage of " + name }, name);
  }

  function top(table, items, cols) {
    const body = table.tBodies[0];
    body.textContent = "";
    if (items.length === 0) body.append(RB.el("tr", {}, RB.el("td", { colspan: "3", class: "empty", text: "None in the last 24 hours." })));
    for (const c of items) {
      body.append(RB.el("tr", { "data-user-id": String(c.user_id) },
        RB.el("td", {}, userLink(c.user_id, c.username || "user " + c.user_id)),
        RB.el("td", { class: "num", text: RB.num(c[cols[0]]) }),
        RB.el("td", { class: "num", text: RB.num(c[cols[1]]) })));
    }
  }

  // health reads GET /health, which answers 503 with the same body when
  // a dependency is down.
  async function health() {
    const r = await RB.call("health", {});
    const box = $("health");
    box.textContent = "";
    const checks = (r.body && r.body.checks) || {};
    if (Object.keys(checks).length === 0) {
      box.append(RB.el("div", { class: "stat" }, RB.el("div", { class: "k", text: "Health" }), RB.el("div", { class: "v", text: r.status ? "unknown (" + r.status + ")" : "unreachable" })));
      return;
    }
    for (const [name, c] of Object.entries(checks)) {
      const ok = c.status === "ok";
      box.append(RB.el("div", { class: "stat", "data-check": name, "data-status": c.status },
        RB.el("div", { class: "k", text: name }),
        RB.el("div", { class: "v" }, RB.el("span", { class: "badge " + (ok ? "ok" : "bad"), text: ok ? "up" : "down" })),
        RB.el("div", { class: "hint", text: (c.latency_ms !== undefined ? c.latency_ms.toFixed(1) + " ms" : "") + (c.detail ? " · " + c.detail : "") })));
    }
  }

  async function users(first) {
    if (first) cursor = null;
    const r = await RB.call("admin/users?limit=50" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""), auth());
    if (r.status !== 200) { fail(r); return; }
    const body = $("users").tBodies[0];
    if (first) body.textContent = "";
    for (const u of r.body.items) {
      const status = u.suspended_at ? ["suspended", "bad"] : ["active", "ok"];
      body.append(RB.el("tr", { "data-user-id": String(u.id) },
        RB.el("td", { class: "num", text: String(u.id) }),
        RB.el("td", {}, userLink(u.id, u.username)),
        RB.el("td", { class: "opt", text: u.email }),
        RB.el("td", { class: "opt", text: RB.when(u.created_at) }),
        RB.el("td", {}, RB.el("span", { class: "badge " + status[1], text: status[0] }))));
    }
    if (first && r.body.items.length === 0) body.append(RB.el("tr", {}, RB.el("td", { colspan: "5", class: "empty", text: "No customers yet." })));
    cursor = r.body.next_cursor;
    $("more").hidden = !cursor;
  }

  // customer shows one customer's usage when the address ends in
  // #user=ID (links from the tables; the id is not a secret).
  async function customer() {
    const m = /^#user=([1-9][0-9]{0,17})$/.exec(location.hash);
    if (!m || !token) { $("customer").hidden = true; return; }
    const id = m[1];
    const names = Object.keys(RB.ranges);
    const answers = await Promise.all([
      ...names.map((n) => RB.call("admin/usage/history?user=" + id + "&" + RB.ranges[n].q, auth())),
      RB.call("admin/users/" + id, auth()),
    ]);
    const bad = answers.find((r) => r.status !== 200);
    if (bad) { RB.show(msg, bad.status === 404 ? "There is no customer " + id + "." : RB.problem(bad, "The operator token"), "error"); return; }
    const u = answers[names.length].body;
    $("customer-title").textContent = "Customer " + u.username + " (id " + u.id + ")";
    $("customer").hidden = false;
    $("customer").dataset.userId = id;
    const cap = $("customer-cap");
    cap.textContent = u.spend_cap === null ? "No cap" : u.spend_cap;
    cap.classList.toggle("none", u.spend_cap === null);
    cap.dataset.amount = u.spend_cap === null ? "" : u.spend_cap;
    const lim = $("customer-limit");
    lim.textContent = u.limit ? RB.num(u.limit.limit) + " per " + RB.num(u.limit.window) + " s" : "Plan default";
    lim.classList.toggle("none", !u.limit);
    $("customer-requests").textContent = RB.num(u.usage.total_requests);
    names.forEach((n, i) => {
      const box = $("customer-chart-" + n);
      RB.totals(box, answers[i].body);
      RB.chart(box, answers[i].body, RB.ranges[n].fmt);
    });
    $("customer-title").focus();
  }

  if (token) load(); else input.focus();
})();
