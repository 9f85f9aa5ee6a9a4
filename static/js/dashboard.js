/*
 * CreatorFlow dashboard: connection indicator, "Updated Ns ago", reconnection after any
 * close, filters kept across reconnects, and a browser notification per new urgent alert.
 * htmx and its ws extension (vendored by django-htmx) do the swapping.
 */
(function () {
  "use strict";

  // Codes the ws extension retries by itself (abnormal closure, server error, restart, try later).
  var EXTENSION_RETRIES = [1006, 1011, 1012, 1013];
  var CLOSE_UNAUTHENTICATED = 4401;
  var RECONNECT_MAX_MS = 10000;

  // Exponential backoff with jitter, capped: a restarted server is found again within seconds.
  function reconnectDelay(retryCount) {
    var ceiling = Math.min(RECONNECT_MAX_MS, 500 * Math.pow(2, retryCount));
    return ceiling / 2 + Math.random() * ceiling / 2;
  }
  htmx.config.wsReconnectDelay = reconnectDelay;

  // Every (re)connect carries the current filters, so the server's snapshot matches the page.
  htmx.createWebSocket = function (url) {
    var socket = new WebSocket(url + window.location.search, []);
    socket.binaryType = htmx.config.wsBinaryType;
    return socket;
  };

  var lastUpdate = Date.now();
  var ownRetries = 0;
  var unloading = false;
  var knownUrgent = new Set();

  function statusElement() { return document.getElementById("connection-status"); }

  function setState(state) {
    var element = statusElement();
    if (!element) { return; }
    element.dataset.state = state;
    var labels = { connecting: "Connecting…", live: "Live", disconnected: "Disconnected" };
    element.querySelector(".connection-label").textContent = labels[state];
  }

  function tick() {
    var element = document.getElementById("updated-ago");
    if (!element) { return; }
    var seconds = Math.max(0, Math.round((Date.now() - lastUpdate) / 1000));
    element.textContent = seconds < 2 ? "Updated just now" : "Updated " + formatAge(seconds) + " ago";
  }

  function formatAge(seconds) {
    if (seconds < 60) { return seconds + "s"; }
    if (seconds < 3600) { return Math.floor(seconds / 60) + "m"; }
    return Math.floor(seconds / 3600) + "h";
  }

  function markUpdated() {
    lastUpdate = Date.now();
    tick();
  }

  // --- notifications ---------------------------------------------------------------------

  function urgentAlerts() {
    return document.querySelectorAll('#alert-list [data-urgent="true"][data-status="active"]');
  }

  function rememberUrgent() {
    urgentAlerts().forEach(function (item) { knownUrgent.add(item.dataset.alertId); });
  }

  function notifyNewUrgent() {
    urgentAlerts().forEach(function (item) {
      var id = item.dataset.alertId;
      if (knownUrgent.has(id)) { return; }
      knownUrgent.add(id);
      if (!("Notification" in window) || Notification.permission !== "granted") { return; }
      var message = item.querySelector(".alert-message");
      // The tag makes the browser show one notification per alert, whatever the number of tabs.
      new Notification(item.dataset.title || "CreatorFlow alert", {
        body: message ? message.textContent.trim() : "",
        tag: "creatorflow-alert-" + id,
      });
    });
  }

  function setUpNotificationButton() {
    var button = document.getElementById("notifications-enable");
    if (!button || !("Notification" in window) || Notification.permission !== "default") { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      Notification.requestPermission().then(function () { button.hidden = true; });
    });
  }

  // --- filters ---------------------------------------------------------------------------

  function rememberFilter(event) {
    var select = event.target.closest("[data-filter]");
    if (!select) { return; }
    var params = new URLSearchParams(window.location.search);
    if (select.value) { params.set(select.name, select.value); } else { params.delete(select.name); }
    var query = params.toString();
    window.history.replaceState(null, "", window.location.pathname + (query ? "?" + query : ""));
  }

  // --- wiring ----------------------------------------------------------------------------

  document.addEventListener("htmx:wsOpen", function () {
    ownRetries = 0;
    setState("live");
  });

  document.addEventListener("htmx:wsClose", function (event) {
    setState("disconnected");
    var code = event.detail.event.code;
    if (unloading) { return; }
    if (code === CLOSE_UNAUTHENTICATED) {
      window.location.assign(document.getElementById("dashboard").dataset.loginUrl);
      return;
    }
    if (EXTENSION_RETRIES.indexOf(code) >= 0) { return; }
    // Any other close (a clean 1000 at the server's socket time limit, 1001 going away, ...)
    // would leave the page silently stale: reconnect with the same backoff.
    var socketWrapper = event.detail.socketWrapper;
    window.setTimeout(function () { socketWrapper.reconnect(); }, reconnectDelay(ownRetries++));
  });

  document.addEventListener("htmx:wsAfterMessage", function () {
    markUpdated();
    notifyNewUrgent();
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail.successful) { markUpdated(); }
  });

  document.addEventListener("change", rememberFilter);
  window.addEventListener("pagehide", function () { unloading = true; });

  document.addEventListener("DOMContentLoaded", function () {
    rememberUrgent();
    setUpNotificationButton();
    markUpdated();
    window.setInterval(tick, 1000);
  });
})();
