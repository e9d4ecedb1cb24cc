// /dashboard: a customer's usage, window, bill and keys, read from the
// public API with the key kept in this tab's sessionStorage.
"use strict";
(function () {
  const RB = window.RB;
  const STORE = "ratebill.apiKey";
  const $ = (id) => document.getElementById(id);
  const form = $("key-form"), input = $("key"), msg = $("message");
  let key = sessionStorage.getItem(STORE) || "";

  const auth = () => ({ "X-API-Key": key });

  const charts = $("charts");
  for (const [name, r] of Object.entries(RB.ranges)) charts.append(RB.chartBox("chart-" + name, r.title));

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    key = input.value.trim();
    if (!key) return;
    sessionStorage.setItem(STORE, key);
    input.value = "";
    load();
  });
  $("forget").addEventListener("click", () => {
    sessionStorage.removeItem(STORE);
    key = "";
    signedIn(null);
    RB.show(msg, "The key was removed from this tab.", "info");
    input.focus();
  });

  // fail shows why the dashboard cannot be shown; a refused key is
  // forgotten so that the next one can be pasted. Any other failure
  // hides every number (none would be current) and offers to try again.
  function fail(r) {
    RB.show(msg, RB.problem(r, "The API key"), "error");
    $("signed-in").hidden = true;
    if (r.status === 401) {
      sessionStorage.removeItem(STORE);
      key = "";
      signedIn(null);
      document.body.dataset.state = "unauthorized";
      return;
    }
    document.body.dataset.state = "error-" + r.status;
    if (key && !form.hidden) {
      // The key is kept: say so instead of asking for it again.
      form.hidden = true;
      $("key-hint").hidden = true;
      $("signed").hidden = false;
      const who = $("who");
      who.textContent = "Your key ";
      who.append(RB.el("code", { text: key.slice(0, 11) + "…" }), " is kept in this tab; the dashboard shows once the platform answers.");
    }
    if (key) msg.append(RB.el("button", { type: "button", class: "secondary", id: "retry", onclick: load }, "Try again"));
  }

  async function load() {
    document.body.dataset.state = "loading";
    RB.show(msg, "Loading…", "info");
    const names = Object.keys(RB.ranges);
    const answers = await Promise.all([
      ...names.map((n) => RB.call("usage/history?" + RB.ranges[n].q, auth())),
      RB.call("billing", auth()),
      RB.call("billing/invoices", auth()),
      RB.call("keys", auth()),
      RB.call("me", auth()),
      RB.call("billing/cap", auth()),
    ]);
    const bad = answers.find((r) => r.status !== 200);
    if (bad) { fail(bad); return; }
    const [bill, invoices, keys, me, cap] = answers.slice(names.length).map((r) => r.body);
    RB.show(msg, "", "info");
    signedIn(me);
    names.forEach((n, i) => {
      const box = $("chart-" + n);
      RB.totals(box, answers[i].body);
      RB.chart(box, answers[i].body, RB.ranges[n].fmt);
    });
    showWindow(answers[0].body.window);
    showBill(bill, invoices);
    showCap(cap, invoices);
    RB.show($("cap-message"), "", "info"); // an earlier change's message is not news after a reload
    showKeys(keys.items);
    document.body.dataset.state = "ready";
  }

  // signedIn shows who the key belongs to and hides the form, or (me
  // null) the reverse.
  function signedIn(me) {
    $("signed").hidden = !me;
    form.hidden = !!me;
    $("key-hint").hidden = !!me;
    $("signed-in").hidden = !me;
    if (!me) return;
    const who = $("who");
    who.textContent = "Signed in as ";
    who.append(RB.el("strong", { text: me.username }), " with key ", RB.el("code", { text: me.api_key_prefix + "…" }), ". The key is kept in this tab only.");
  }

  function showWindow(w) {
    const meter = $("window-meter");
    if (!w) {
      $("window-used").textContent = "—";
      $("window-resets").textContent = "The limit is not being enforced right now.";
      return;
    }
    const pct = w.limit > 0 ? Math.min(100, Math.round((w.used / w.limit) * 100)) : 0;
    meter.firstElementChild.style.width = pct + "%";
    meter.setAttribute("aria-valuenow", String(pct));
    meter.setAttribute("aria-valuetext", RB.num(w.used) + " of " + RB.num(w.limit) + " units used");
    meter.classList.toggle("full", w.remaining === 0);
    $("window-used").textContent = RB.num(w.used);
    $("window-limit").textContent = RB.num(w.limit);
    $("window-remaining").textContent = RB.num(w.remaining);
    $("window-resets").textContent = "resets " + RB.when(w.resets_at);
    meter.dataset.used = w.used;
    meter.dataset.remaining = w.remaining;
  }

  function showBill(bill, invoices) {
    $("bill-amount").textContent = bill.amount + " " + bill.currency;
    $("bill-amount").dataset.amount = bill.amount;
    $("bill-units").textContent = RB.num(bill.units);
    $("bill-price").textContent = RB.num(bill.requests) + " requests at " + bill.unit_price + " " + bill.currency + " per unit, " + RB.when(bill.period_start) + " to " + RB.when(bill.period_end) + ".";
    const body = $("invoices").tBodies[0];
    body.textContent = "";
    if (invoices.items.length === 0) body.append(RB.el("tr", {}, RB.el("td", { colspan: "4", class: "empty", text: "No invoices yet." })));
    for (const inv of invoices.items) {
      body.append(RB.el("tr", {},
        RB.el("td", { text: inv.period }),
        RB.el("td", {}, RB.el("span", { class: "badge " + (inv.status === "closed" ? "muted" : "ok"), text: inv.status })),
        RB.el("td", { class: "num", text: RB.num(inv.units) }),
        RB.el("td", { class: "num", text: inv.total + " " + inv.currency })));
    }
  }

  // Money arrives as decimal strings ("12.30"); it is compared and
  // subtracted in whole cents (BigInt), never as floating point.
  function cents(s) {
    const m = /^([0-9]+)(?:\.([0-9]{1,2}))?$/.exec(String(s));
    return m ? BigInt(m[1]) * 100n + BigInt((m[2] || "0").padEnd(2, "0")) : null;
  }
  const money = (c) => (c / 100n).toString() + "." + (c % 100n).toString().padStart(2, "0");

  // showCap shows the spend cap (GET /billing/cap) and what is left of it:
  // the cap less this month's invoice so far (the open invoice of
  // GET /billing/invoices). Both are free to read; GET /usage, which
  // reports the gate's own budget, is metered, so the page does not call it.
  function showCap(cap, invoices) {
    const cur = cap.currency;
    $("cap-currency").textContent = cur;
    const now = new Date();
    const period = now.getUTCFullYear() + "-" + String(now.getUTCMonth() + 1).padStart(2, "0");
    const inv = invoices.items.find((i) => i.period === period);
    $("cap-period").textContent = period;
    const spent = inv ? cents(inv.total) : null;
    $("cap-spent").textContent = spent === null ? "—" : money(spent) + " " + cur;
    const amount = $("cap-amount"), left = $("cap-remaining");
    amount.dataset.amount = cap.amount === null ? "" : cap.amount;
    $("cap-clear").disabled = cap.amount === null;
    if (cap.amount === null) {
      amount.textContent = "No cap";
      amount.classList.add("none");
      left.textContent = "—";
      left.dataset.remaining = "";
      $("cap-note").textContent = "Without a cap, calls are limited only by the rate limit.";
      return;
    }
    amount.classList.remove("none");
    amount.textContent = cap.amount + " " + cur;
    if (spent === null) {
      left.textContent = "—";
      left.dataset.remaining = "";
    } else {
      const rest = cents(cap.amount) - spent;
      left.textContent = money(rest > 0n ? rest : 0n) + " " + cur;
      left.dataset.remaining = money(rest > 0n ? rest : 0n);
    }
    $("cap-note").textContent = "Calls are recorded in batches, so what is spent (this month's invoice so far) can be up to a minute behind; the cap itself is enforced on every call.";
  }

  const capForm = $("cap-form"), capInput = $("cap-input"), capErr = $("cap-error"), capMsg = $("cap-message");

  function capInvalid(text) {
    capErr.textContent = text;
    capInput.setAttribute("aria-invalid", text ? "true" : "false");
    if (text) capInput.focus();
  }

  // capFailed turns a refused change into a message: a 422 names the
  // field and why, next to the field.
  function capFailed(r) {
    if (r.status === 422 && r.body && Array.isArray(r.body.errors)) {
      capInvalid(r.body.errors.map((e) => (e.field === "amount" ? "Amount " : e.field + " ") + e.detail + ".").join(" "));
      RB.show(capMsg, "", "info");
      return;
    }
    capInvalid("");
    RB.show(capMsg, RB.problem(r, "The API key"), "error");
  }

  async function refreshCap() {
    const [cap, invoices] = await Promise.all([RB.call("billing/cap", auth()), RB.call("billing/invoices", auth())]);
    if (cap.status === 200 && invoices.status === 200) showCap(cap.body, invoices.body);
  }

  capForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const r = await RB.call("billing/cap", auth(), { method: "PUT", body: { amount: capInput.value.trim() } });
    if (r.status !== 200) { capFailed(r); return; }
    capInvalid("");
    capInput.value = "";
    await refreshCap();
    RB.show(capMsg, "Spend cap set to " + r.body.amount + " " + r.body.currency + " a month.", "ok");
  });
  $("cap-clear").addEventListener("click", async () => {
    const r = await RB.call("billing/cap", auth(), { method: "DELETE" });
    if (r.status !== 204) { capFailed(r); return; }
    capInvalid("");
    await refreshCap();
    RB.show(capMsg, "Spend cap removed: calls are limited only by the rate limit.", "ok");
  });

  function keyStatus(k) {
    const now = Date.now();
    if (k.revoked_at) return ["revoked", "bad"];
    if (k.expires_at && Date.parse(k.expires_at) <= now) return ["expired", "bad"];
    if (k.expires_at) return ["expires " + RB.short(k.expires_at), "muted"];
    return ["active", "ok"];
  }

  function showKeys(keys) {
    const body = $("keys").tBodies[0];
    body.textContent = "";
    for (const k of keys) {
      const [status, cls] = keyStatus(k);
      const usable = !k.revoked_at && !(k.expires_at && Date.parse(k.expires_at) <= Date.now());
      const actions = RB.el("td", { class: "actions" });
      if (usable) {
        actions.append(
          RB.el("button", { type: "button", class: "secondary", "aria-label": "Rotate key " + k.api_key_prefix, onclick: () => rotate(k) }, "Rotate"),
          RB.el("button", { type: "button", class: "danger", "aria-label": "Revoke key " + k.api_key_prefix, onclick: () => revoke(k) }, "Revoke"));
      }
      body.append(RB.el("tr", { "data-key-id": String(k.id) },
        RB.el("td", { text: k.name || "—" }),
        RB.el("td", {}, RB.el("code", { text: k.api_key_prefix + "…" })),
        RB.el("td", { class: "opt nowrap", text: k.last_used_at ? RB.when(k.last_used_at) : "not yet" }),
        RB.el("td", {}, RB.el("span", { class: "badge " + cls, text: status })),
        actions));
    }
  }

  const keyMsg = $("key-message");

  async function rotate(k) {
    if (!window.confirm("Rotate key " + k.api_key_prefix + "…? A new key is issued; the old one stops working after its grace period.")) return;
    const r = await RB.call("keys/" + k.id + "/rotate", auth(), { method: "POST", body: {} });
    if (r.status !== 200 && r.status !== 201) { RB.show(keyMsg, RB.problem(r, "The API key"), "error"); return; }
    keyMsg.className = "message ok";
    keyMsg.textContent = "New key (shown once; copy it now):";
    keyMsg.append(RB.el("code", { class: "newkey", id: "new-key", text: r.body.api_key }));
    if (k.api_key_prefix && key.startsWith(k.api_key_prefix)) {
      key = r.body.api_key; // keep the dashboard working with the key that replaces this one
      sessionStorage.setItem(STORE, key);
      load(); // the signed-in line names the new key
      return;
    }
    const keys = await RB.call("keys", auth());
    if (keys.status === 200) showKeys(keys.body.items);
  }

  async function revoke(k) {
    if (!window.confirm("Revoke key " + k.api_key_prefix + "…? Calls with it will be refused at once.")) return;
    const r = await RB.call("keys/" + k.id, auth(), { method: "DELETE" });
    if (r.status !== 204) { RB.show(keyMsg, RB.problem(r, "The API key"), "error"); return; }
    RB.show(keyMsg, "Key " + k.api_key_prefix + "… revoked.", "ok");
    if (key.startsWith(k.api_key_prefix)) {
      sessionStorage.removeItem(STORE);
      key = "";
      signedIn(null);
      RB.show(msg, "You revoked the key this dashboard was using. Paste another key to continue.", "info");
      return;
    }
    const keys = await RB.call("keys", auth());
    if (keys.status === 200) showKeys(keys.body.items);
  }

  if (key) load(); else input.focus();
})();
