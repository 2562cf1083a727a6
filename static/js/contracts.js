// Contracts: show the weighbridge net (gross − tare) as the user types; the server computes
// the net that counts, this is only a preview.
(function () {
  "use strict";
  var out = document.getElementById("net-out");
  if (!out) { return; }
  var gross = document.getElementById(out.dataset.gross);
  var tare = document.getElementById(out.dataset.tare);
  function toMilli(input) {
    var text = (input.value || "").trim().replace(",", ".");
    if (!/^\d+(\.\d{0,3})?$/.test(text)) { return null; }
    var parts = text.split(".");
    return parseInt(parts[0], 10) * 1000 + parseInt(((parts[1] || "") + "000").slice(0, 3), 10);
  }
  function update() {
    var g = toMilli(gross), t = toMilli(tare);
    if (g === null || t === null || g <= t) { out.textContent = "—"; return; }
    var net = g - t;
    out.textContent = Math.floor(net / 1000) + "." + String(net % 1000).padStart(3, "0");
  }
  gross.addEventListener("input", update);
  tare.addEventListener("input", update);
  update();
})();
