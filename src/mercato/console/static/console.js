// mercato console: follow the order event stream on the orders page and refresh the table.
(function () {
  "use strict";
  var TYPES = ["OrderPlaced", "OrderConfirmed", "OrderShipped", "OrderDelivered", "OrderCancelled"];
  function follow() {
    var state = document.getElementById("live-state");
    if (!state || !window.EventSource) { return; }
    var source = new EventSource(state.getAttribute("data-live"));
    var changed = function () {
      if (window.htmx) { window.htmx.trigger(document.body, "order-changed"); }
    };
    TYPES.forEach(function (type) { source.addEventListener(type, changed); });
    source.addEventListener("open", function () {
      state.textContent = "Live: new and changed orders appear here.";
      state.setAttribute("data-connected", "true");
    });
    source.addEventListener("reconnect", function () {
      state.textContent = "Reconnecting to live updates…";
    });
    source.addEventListener("error", function () {
      state.removeAttribute("data-connected");
      state.textContent = source.readyState === EventSource.CLOSED
        ? "Live updates stopped. Reload the page to resume."
        : "Reconnecting to live updates…";
    });
  }
  document.addEventListener("DOMContentLoaded", follow);
})();
