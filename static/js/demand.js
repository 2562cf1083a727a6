// Demand form: fill the spec windows with the typical ones for the chosen end use.
// Without JavaScript the "fill in" button posts the form and the server does the same.
(function () {
  "use strict";
  var form = document.getElementById("demand-form");
  if (!form || !form.dataset.presets) { return; }
  var presets = JSON.parse(form.dataset.presets);
  var endUse = document.getElementById("end_use");
  var button = document.getElementById("apply_preset");
  var rows = Array.prototype.slice.call(form.querySelectorAll(".spec-row"));

  function fields(row) {
    return {
      parameter: row.querySelector("select"),
      minimum: row.querySelector("input[name$='-minimum']"),
      maximum: row.querySelector("input[name$='-maximum']")
    };
  }
  function blank() {
    return rows.every(function (row) {
      var f = fields(row);
      return !f.parameter.value && !f.minimum.value && !f.maximum.value;
    });
  }
  function fill(code) {
    var windows = presets[code] || [];
    rows.forEach(function (row, i) {
      var f = fields(row);
      var w = windows[i];
      f.parameter.value = w ? w[0] : "";
      f.minimum.value = w ? w[1] : "";
      f.maximum.value = w ? w[2] : "";
    });
  }
  if (button) {
    button.addEventListener("click", function (event) {
      if (!endUse.value) { return; }
      event.preventDefault();
      fill(endUse.value);
    });
  }
  if (endUse) {
    endUse.addEventListener("change", function () {
      if (endUse.value && blank()) { fill(endUse.value); }
    });
  }
})();
