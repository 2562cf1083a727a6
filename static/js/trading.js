/* Live lot panel: polls the lot's state (ETag, 304 when unchanged), updates the minimum next
 * price, the close and countdown, your bids' status; shows the total of a bid or purchase and
 * asks for confirmation. No inline script anywhere (strict CSP). */
(function () {
  "use strict";

  var panel = document.getElementById("trade-panel");
  if (!panel || panel.dataset.live === "on") { return; }
  panel.dataset.live = "on";

  var lang = panel.dataset.lang || "zh-CN";
  var pollMs = parseInt(panel.dataset.pollMs, 10) || 3000;
  var stateUrl = panel.dataset.stateUrl;
  var etag = null;
  var deadline = null; // local clock time of the close, from the server's seconds_left

  function t(name) { return panel.dataset["t" + name] || ""; }

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (_, key) { return values[key]; });
  }

  function money(value) {
    return Number(value).toLocaleString(lang, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }

  function tonnes(value) {
    return Number(value).toLocaleString(lang, { maximumFractionDigits: 3 });
  }

  function setLive(name, text) {
    panel.querySelectorAll('[data-live="' + name + '"]').forEach(function (el) {
      if (el.textContent !== text) {
        el.textContent = text;
        el.classList.add("trade-flash");
        setTimeout(function () { el.classList.remove("trade-flash"); }, 1200);
      }
    });
  }

  function setDeadline(secondsLeft) {
    deadline = (secondsLeft === null || secondsLeft === "" || secondsLeft === undefined)
      ? null : Date.now() + Number(secondsLeft) * 1000;
  }

  function pad(n) { return n < 10 ? "0" + n : String(n); }

  function tick() {
    var el = panel.querySelector("[data-countdown]");
    if (!el || deadline === null) { return; }
    var left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
    var d = Math.floor(left / 86400), h = Math.floor(left % 86400 / 3600);
    var m = Math.floor(left % 3600 / 60), s = left % 60;
    var text;
    if (left === 0) { text = t("Closed"); }
    else if (d > 0) { text = d + " " + t("Days") + " " + h + " " + t("Hours"); }
    else if (h > 0) { text = h + " " + t("Hours") + " " + pad(m) + " " + t("Minutes"); }
    else { text = pad(m) + ":" + pad(s); }
    el.textContent = text;
    el.classList.toggle("text-bg-warning", left > 0 && left < 300);
  }

  function showClose(iso) {
    var el = panel.querySelector('[data-live="closes_at"]');
    if (!el || !iso || el.getAttribute("datetime") === iso) { return; }
    el.setAttribute("datetime", iso);
    el.textContent = new Date(iso).toLocaleString(lang, {
      timeZone: "Asia/Shanghai", year: "numeric", month: "short", day: "numeric",
      hour: "2-digit", minute: "2-digit", second: "2-digit"
    });
    el.classList.add("trade-flash");
  }

  function updateOwn(own) {
    var rows = panel.querySelectorAll("tr[data-bid-id]");
    var known = {};
    rows.forEach(function (row) { known[row.dataset.bidId] = row; });
    var unknown = false;
    own.forEach(function (bid) {
      var row = known[String(bid.id)];
      if (!row) { unknown = true; return; }
      var cell = row.querySelector("[data-bid-status]");
      if (cell && bid.status === "active" && bid.winning !== null) {
        var badge = cell.querySelector(".badge");
        var winning = bid.winning === true;
        if (badge) {
          badge.textContent = winning ? t("Winning") : t("Outbid");
          badge.className = "badge " + (winning ? "text-bg-success" : "text-bg-warning");
        }
      }
      var withdraw = row.querySelector("[data-withdraw]");
      if (withdraw) { withdraw.hidden = !bid.can_withdraw; }
    });
    return unknown;
  }

  function updateForm(state) {
    var version = panel.querySelector('input[name="trade-version"]');
    if (version) { version.value = String(state.version); }
    var price = panel.querySelector('input[name="trade-price"]');
    if (price && state.minimum_next !== null) {
      // Follow the minimum while the buyer has not typed a price of their own.
      var untouched = !price.dataset.touched;
      if (untouched && Number(price.value) < Number(state.minimum_next)) {
        price.value = state.minimum_next;
        showTotal(panel.querySelector("form[data-trade-form]"));
      }
    }
    var seen = panel.querySelector('input[name="trade-seen_remaining"]');
    if (seen) { seen.value = state.remaining; }
  }

  function apply(state) {
    if (state.phase !== panel.dataset.phase) {
      window.location.reload();
      return;
    }
    if (state.minimum_next !== null) { setLive("minimum_next", money(state.minimum_next)); }
    if (state.leading_price !== null) { setLive("leading_price", money(state.leading_price)); }
    if (state.live_count !== null) { setLive("live_count", String(state.live_count)); }
    if (state.subscribed !== null) { setLive("subscribed", tonnes(state.subscribed)); }
    setLive("remaining", tonnes(state.remaining));
    if (state.grid.length) { setLive("grid", state.grid.map(money).join(", ")); }
    showClose(state.closes_at);
    setDeadline(state.seconds_left);
    tick();
    updateForm(state);
    if (updateOwn(state.own)) { window.location.reload(); }
  }

  function poll() {
    var headers = { "Accept": "application/json" };
    if (etag) { headers["If-None-Match"] = etag; }
    fetch(stateUrl, { headers: headers, credentials: "same-origin", cache: "no-cache" })
      .then(function (response) {
        if (response.status === 304) { return null; }
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        etag = response.headers.get("ETag");
        return response.json();
      })
      .then(function (state) { if (state) { apply(state); } })
      .catch(function () { /* offline for a moment: try again on the next tick */ })
      .then(function () { setTimeout(poll, document.hidden ? pollMs * 4 : pollMs); });
  }

  // --- totals and confirmation ----------------------------------------------------------------

  function values(form) {
    var q = form.querySelector('input[name="trade-quantity"]');
    var p = form.querySelector('input[name="trade-price"]');
    var price = p ? Number(p.value) : Number(form.dataset.price);
    var quantity = q ? Number(q.value) : NaN;
    return { price: price, quantity: quantity };
  }

  function summary(form) {
    var v = values(form);
    if (!isFinite(v.price) || !isFinite(v.quantity) || v.quantity <= 0 || (form.querySelector('input[name="trade-price"]') && form.querySelector('input[name="trade-price"]').value === "")) {
      return "";
    }
    var total = v.price * v.quantity;
    var template = total < 0 ? t("Paid") : t("Pay");
    return fill(template, { amount: money(Math.abs(total)) });
  }

  function showTotal(form) {
    if (!form) { return; }
    var out = form.querySelector("[data-total]");
    if (out) { out.textContent = summary(form); }
  }

  panel.querySelectorAll("form[data-trade-form]").forEach(function (form) {
    var price = form.querySelector('input[name="trade-price"]');
    if (price) {
      price.addEventListener("input", function () { price.dataset.touched = "1"; });
    }
    form.addEventListener("input", function () { showTotal(form); });
    showTotal(form);
    form.addEventListener("submit", function (event) {
      var v = values(form);
      if (!isFinite(v.price) || !isFinite(v.quantity)) { return; } // the server explains
      var ask = fill(form.dataset.tradeForm === "buy" ? t("ConfirmBuy") : t("ConfirmBid"),
        { quantity: tonnes(v.quantity), price: money(v.price) });
      if (!window.confirm(ask + "\n" + summary(form))) { event.preventDefault(); }
    });
  });

  setDeadline(panel.dataset.secondsLeft);
  tick();
  setInterval(tick, 1000);
  if (["open", "upcoming", "closing", "decision"].indexOf(panel.dataset.phase) >= 0) {
    setTimeout(poll, pollMs);
  }
})();
