// Demand page: while its matching lots are being computed, reload the page every few seconds
// (at most ten times). Without JavaScript the notice carries a reload link.
(function () {
  "use strict";
  var key = "rmx-pending-reloads:" + window.location.pathname;
  if (!document.getElementById("matches-pending")) {
    window.sessionStorage.removeItem(key);
    return;
  }
  var done = parseInt(window.sessionStorage.getItem(key) || "0", 10);
  if (done >= 10) { return; }
  window.setTimeout(function () {
    window.sessionStorage.setItem(key, String(done + 1));
    window.location.reload();
  }, 3000);
})();
