// Times in the reader's own time zone, live countdowns, and the form's time zone field.
(function () {
  "use strict";
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  document.querySelectorAll("input[name=time_zone]").forEach(function (input) {
    input.value = zone;
  });
  document.querySelectorAll("[data-zone-name]").forEach(function (el) {
    el.textContent = zone;
  });
  document.querySelectorAll("time.local").forEach(function (el) {
    var when = new Date(el.getAttribute("datetime"));
    if (!isNaN(when)) {
      el.textContent = when.toLocaleString(undefined, {
        year: "numeric", month: "short", day: "numeric",
        hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short"
      });
      el.title = el.getAttribute("datetime");
    }
  });
  function pad(n) { return n < 10 ? "0" + n : "" + n; }
  function render(el) {
    var left = Math.round((new Date(el.dataset.until) - Date.now()) / 1000);
    if (left <= 0) { el.textContent = "firing now"; return; }
    var d = Math.floor(left / 86400), h = Math.floor(left % 86400 / 3600),
        m = Math.floor(left % 3600 / 60), s = left % 60;
    el.textContent = "in " + (d ? d + "d " : "") + pad(h) + ":" + pad(m) + ":" + pad(s);
  }
  function tick() { document.querySelectorAll(".countdown[data-until]").forEach(render); }
  if (document.querySelector(".countdown[data-until]")) {
    tick();
    setInterval(tick, 250);
  }

  // Once a prebooking's time has come, ask the server (our own small JSON endpoint) how it went
  // and show the outcome in place: no reload, and no Cancel button left on a sent booking.
  var holder = document.querySelector("[data-status-url]");
  if (!holder) { return; }
  function watched() {
    var rows = holder.matches("[data-prebooking]") ? [holder]
      : Array.prototype.slice.call(holder.querySelectorAll("[data-prebooking]"));
    return rows.filter(function (row) { return !row.hasAttribute("data-final"); });
  }
  function due(row) {
    var countdown = row.querySelector(".countdown[data-until]");
    var status = row.querySelector("[data-status]");
    if (status && status.textContent.trim().toLowerCase() === "firing") { return true; }
    return !countdown || new Date(countdown.dataset.until) - Date.now() < 2000;
  }
  function show(row, item) {
    var status = row.querySelector("[data-status]");
    if (status) {
      status.textContent = item.label;
      status.className = "badge badge-" + item.status;
    }
    if (!item.final) { return; }
    row.setAttribute("data-final", "");
    row.querySelectorAll(".countdown[data-until]").forEach(function (el) {
      el.removeAttribute("data-until");
      el.classList.remove("countdown");
      el.textContent = "–";
    });
    row.querySelectorAll("[data-outcome]").forEach(function (el) { el.textContent = item.outcome; });
    row.querySelectorAll("[data-cancel]").forEach(function (el) { el.remove(); });
  }
  function poll() {
    var rows = watched().filter(due);
    if (!rows.length) { return; }
    var byId = {};
    rows.forEach(function (row) { byId[row.dataset.prebooking] = row; });
    var url = holder.dataset.statusUrl + "?ids=" + Object.keys(byId).join(",");
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (answer) { return answer.ok ? answer.json() : { prebookings: [] }; })
      .then(function (data) {
        data.prebookings.forEach(function (item) {
          if (byId[item.id]) { show(byId[item.id], item); }
        });
      })
      .catch(function () { /* offline for a moment: the next poll tries again */ });
  }
  setInterval(poll, 2000);
})();
