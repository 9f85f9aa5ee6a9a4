/*
 * CreatorFlow dashboard: connection indicator, "Updated Ns ago", reconnection after any
 * close, filters kept across reconnects, and a browser notification per new urgent alert.
 * While disconnected the data is marked stale and actions are paused, saying why; an action
 * that fails says so. htmx and its ws extension (vendored by django-htmx) do the swapping.
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

  var PAUSED_REASON = "Paused while disconnected: the dashboard reconnects by itself, then this works again.";

  function setState(state) {
    var element = statusElement();
    if (!element) { return; }
    element.dataset.state = state;
    var labels = { connecting: "Connecting…", live: "Live", disconnected: "Disconnected" };
    element.querySelector(".connection-label").textContent = labels[state];
    var main = document.getElementById("dashboard");
    if (main) { main.dataset.connection = state; }
    markStale(state === "disconnected");
  }

  function clock(moment) {
    function two(number) { return (number < 10 ? "0" : "") + number; }
    return two(moment.getHours()) + ":" + two(moment.getMinutes()) + ":" + two(moment.getSeconds());
  }

  // Actions need a live connection: what they change would not show, and the page may be stale.
  function pauseActions(paused) {
    var main = document.getElementById("dashboard");
    if (!main) { return; }
    main.querySelectorAll("button, select, input").forEach(function (control) {
      if (paused && !control.disabled) {
        control.disabled = true;
        control.dataset.disabledReason = PAUSED_REASON;
        control.dataset.savedTitle = control.title || "";
        control.title = PAUSED_REASON;
      } else if (!paused && control.dataset.disabledReason) {
        control.disabled = false;
        control.title = control.dataset.savedTitle || "";
        delete control.dataset.disabledReason;
        delete control.dataset.savedTitle;
      }
    });
  }

  function markStale(stale) {
    var note = document.getElementById("stale-note");
    if (note) {
      note.hidden = !stale;
      var since = document.getElementById("stale-since");
      if (since && stale) { since.textContent = "last updated " + clock(new Date(lastUpdate)); }
    }
    pauseActions(stale);
  }

  function actionFailed(message) {
    var element = document.getElementById("action-status");
    if (!element) { return; }
    element.textContent = message;
    element.hidden = false;
  }

  function actionDone() {
    var element = document.getElementById("action-status");
    if (element) { element.hidden = true; }
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

  // --- rows pushed on their own ----------------------------------------------------------

  // A pushed row arrives appended to its list (hx-swap-oob="beforeend:#list"). The list then
  // keeps the newest row of each id, in its order (data-sort, compared part by part; data-order
  // asc or desc) and no longer than data-limit: what a fresh render of the list shows.
  var ROW_LISTS = /hx-swap-oob="beforeend:#([\w-]+)"/g;
  var listsInMessage = [];

  function compareKeys(a, b) {
    for (var i = 0; i < Math.max(a.length, b.length); i++) {
      if (a[i] === b[i]) { continue; }
      if (a[i] === undefined) { return -1; }
      if (b[i] === undefined) { return 1; }
      return a[i] < b[i] ? -1 : 1;
    }
    return 0;
  }

  function arrangeRows(list) {
    var seen = new Set();
    var rows = [];
    Array.from(list.children).reverse().forEach(function (row) {
      // Rows without a place (an "empty" note) and older copies of a row just pushed go.
      if (!row.dataset.sort || seen.has(row.id)) { row.remove(); return; }
      seen.add(row.id);
      rows.push({ row: row, key: JSON.parse(row.dataset.sort) });
    });
    var sign = list.dataset.order === "desc" ? -1 : 1;
    rows.sort(function (a, b) { return sign * compareKeys(a.key, b.key); });
    var limit = parseInt(list.dataset.limit, 10) || rows.length;
    rows.forEach(function (entry, index) {
      if (index >= limit) { entry.row.remove(); return; }
      if (list.children[index] !== entry.row) { list.insertBefore(entry.row, list.children[index] || null); }
    });
    if (rows.length) { list.hidden = false; }
  }

  // Pushed rows travel in a <template> (table rows parse inside one wherever it stands, so they
  // share a frame with whole fragments). htmx appends the swapped element's children, and a
  // template keeps its rows in its content: hand them over as its children before the swap.
  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    var fragment = event.detail.fragment;
    if (fragment instanceof HTMLTemplateElement) { fragment.appendChild(fragment.content); }
  });

  // --- wiring ----------------------------------------------------------------------------

  // Live once the snapshot is on the page, not when the socket opens: until then the page shows
  // what it had, and a click or a typed word would meet a page about to be replaced.
  var snapshotPending = false;

  document.addEventListener("htmx:wsOpen", function () {
    ownRetries = 0;
    snapshotPending = true;
  });

  document.addEventListener("htmx:wsClose", function (event) {
    snapshotPending = false;
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

  document.addEventListener("htmx:wsBeforeMessage", function (event) {
    listsInMessage = [];
    var message = typeof event.detail.message === "string" ? event.detail.message : "";
    var match;
    ROW_LISTS.lastIndex = 0;
    while ((match = ROW_LISTS.exec(message)) !== null) { listsInMessage.push(match[1]); }
  });

  document.addEventListener("htmx:wsAfterMessage", function () {
    listsInMessage.forEach(function (id) {
      var list = document.getElementById(id);
      if (list) { arrangeRows(list); }
    });
    listsInMessage = [];
    if (snapshotPending) {
      snapshotPending = false;
      setState("live");
    }
    markUpdated();
    notifyNewUrgent();
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail.successful) { markUpdated(); actionDone(); }
  });

  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    var text = (xhr.getResponseHeader("Content-Type") || "").indexOf("text/plain") === 0 ? xhr.responseText : "";
    actionFailed("Not done: " + (text || "the server answered " + xhr.status + ". Try again.") );
  });

  document.addEventListener("htmx:sendError", function () {
    actionFailed("Not done: CreatorFlow could not be reached. Check the connection and try again.");
  });

  // Swaps while disconnected (an answer still on its way) must not bring back live buttons.
  document.addEventListener("htmx:oobAfterSwap", function () {
    var main = document.getElementById("dashboard");
    if (main && main.dataset.connection === "disconnected") { pauseActions(true); }
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) { return; }
    var source = document.getElementById(button.dataset.copy);
    if (!source || !navigator.clipboard) { return; }
    navigator.clipboard.writeText(source.textContent.trim()).then(function () {
      button.textContent = "Copied";
    }, function () {
      button.textContent = "Select and copy";
    });
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
