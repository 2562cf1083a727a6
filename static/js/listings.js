// Lot form: show the fields of the chosen sale mode and say the price in words.
(function () {
  "use strict";
  var form = document.getElementById("lot-form");
  if (!form) { return; }
  var mode = form.querySelector("#sale_mode");
  var price = form.querySelector("#price");
  var preview = document.getElementById("price-preview");

  function showModeFields() {
    var current = mode ? mode.value : "";
    form.querySelectorAll(".sale-extra").forEach(function (block) {
      var modes = (block.getAttribute("data-modes") || "").split(" ");
      block.hidden = modes.indexOf(current) === -1;
    });
  }

  function sayPrice() {
    if (!price || !preview) { return; }
    var raw = (price.value || "").trim();
    var value = Number(raw);
    if (raw === "" || !isFinite(value)) { preview.textContent = ""; return; }
    var amount = Math.abs(value).toFixed(2);
    var template = value < 0 ? preview.dataset.fee : (value > 0 ? preview.dataset.pay : preview.dataset.free);
    preview.textContent = template.replace("{amount}", amount);
    preview.classList.toggle("text-success", value < 0);
  }

  if (mode) { mode.addEventListener("change", showModeFields); }
  if (price) { price.addEventListener("input", sayPrice); }
  showModeFields();
  sayPrice();
}());
