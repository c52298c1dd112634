/* Live updates of the Overview from /live (Server-Sent Events).
   Every value from the stream is set with textContent: event summaries and names come from
   monitored systems and must never be parsed as HTML. */
(function () {
  "use strict";
  var root = document.getElementById("overview");
  if (!root || !root.dataset.liveUrl || !window.EventSource) { return; }
  var MAX_ROWS = 100;
  var RANK = { none: 0, gone: 0, unknown: 1, up: 2, stopped: 3, down: 4 };
  var stateNote = document.getElementById("live-state");
  var events = document.querySelector("#events tbody");
  var banner = document.getElementById("overall");

  function say(text) { if (stateNote) { stateNote.textContent = "Live updates: " + text; } }

  function cell(text, className) {
    var td = document.createElement("td");
    td.textContent = text;
    if (className) { td.className = className; }
    return td;
  }

  function addChange(change) {
    if (!events || events.querySelector('tr[data-event-id="' + String(change.id) + '"]')) { return; }
    var empty = events.querySelector("tr.empty");
    if (empty) { empty.remove(); }
    var row = document.createElement("tr");
    row.dataset.eventId = String(change.id);
    row.className = "fresh";
    var when = document.createElement("td");
    var time = document.createElement("time");
    time.setAttribute("datetime", change.at);
    time.textContent = change.at_text;
    when.appendChild(time);
    row.appendChild(when);
    row.appendChild(cell(change.severity, "sev-" + change.severity));
    row.appendChild(cell(change.type));
    row.appendChild(cell(change.asset));
    row.appendChild(cell(change.summary));
    events.insertBefore(row, events.firstChild);
    while (events.rows.length > MAX_ROWS) { events.deleteRow(events.rows.length - 1); }
  }

  function updateAsset(asset) {
    var row = document.querySelector('#assets tr[data-asset-id="' + String(asset.id) + '"]');
    if (row) {
      var status = row.querySelector('[data-field="status"]');
      if (status) { status.textContent = asset.status; status.className = "status-" + asset.status; }
      var since = row.querySelector('[data-field="since"]');
      if (since) { since.textContent = asset.since; }
      var today = row.querySelector(".history rect:last-of-type");
      var shown = asset.status === "gone" ? "none" : asset.status;
      if (today && RANK[shown] > RANK[today.getAttribute("class").replace("h-", "")]) {
        today.setAttribute("class", "h-" + shown);
      }
      row.classList.remove("fresh");
      void row.offsetWidth;  // restart the highlight
      row.classList.add("fresh");
    }
    if (banner) {
      banner.className = "banner " + asset.overall;
      banner.textContent = asset.overall === "down" ? asset.down + " asset(s) down"
        : (asset.overall === "up" ? "All monitored assets reachable" : "No asset checked yet");
    }
  }

  function parse(message) {
    try { return JSON.parse(message.data); } catch (err) { return null; }
  }

  var source = new EventSource(root.dataset.liveUrl);
  source.addEventListener("open", function () { say("on"); });
  source.addEventListener("error", function () {
    say(source.readyState === EventSource.CLOSED ? "off (reload the page)" : "reconnecting…");
  });
  source.addEventListener("change", function (message) {
    var change = parse(message);
    if (change) { addChange(change); }
  });
  source.addEventListener("asset", function (message) {
    var asset = parse(message);
    if (asset) { updateAsset(asset); }
  });
  window.addEventListener("pagehide", function () { source.close(); });
}());
