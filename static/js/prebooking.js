// Times in the reader's own time zone, live countdowns, the form's time zone field, and the
// live regions that follow a prebooking as it fires.
(function () {
  "use strict";
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  document.querySelectorAll("input[name=time_zone]").forEach(function (input) {
    input.value = zone;
  });
  document.querySelectorAll("[data-zone-name]").forEach(function (el) {
    el.textContent = zone;
  });
  function pad(n) { return n < 10 ? "0" + n : "" + n; }

  // One format on every member page, as the server writes it (2026-12-04 14:00:00 UTC), in the
  // reader's zone.
  var parts = new Intl.DateTimeFormat("en-GB", {
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
    second: "2-digit", hourCycle: "h23", timeZoneName: "short"
  });
  function local(when) {
    var p = {};
    parts.formatToParts(when).forEach(function (part) { p[part.type] = part.value; });
    return p.year + "-" + p.month + "-" + p.day + " " + p.hour + ":" + p.minute + ":" +
      p.second + " " + p.timeZoneName;
  }
  function render(el) {
    var left = Math.round((new Date(el.dataset.until) - Date.now()) / 1000);
    if (left <= 0) { el.textContent = "firing now"; return; }
    var d = Math.floor(left / 86400), h = Math.floor(left % 86400 / 3600),
        m = Math.floor(left % 3600 / 60), s = left % 60;
    el.textContent = "in " + (d ? d + "d " : "") + pad(h) + ":" + pad(m) + ":" + pad(s);
  }
  // What the page does to server-rendered HTML, on load and to each polled fragment alike.
  function enhance(root) {
    root.querySelectorAll("time.local").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (!isNaN(when)) {
        el.textContent = local(when);
        el.title = el.getAttribute("datetime");
      }
    });
    root.querySelectorAll(".countdown[data-until]").forEach(render);
  }
  enhance(document);
  setInterval(function () {
    document.querySelectorAll(".countdown[data-until]").forEach(render);
  }, 250);

  // A live region (the list's sections, a prebooking's card) is polled while something in it
  // is due: its opening is less than 2 s away or past, and it is not final yet. The answer is
  // the region as the server renders it on a reload, so the page never shows a mix of states.
  var live = document.querySelector("[data-live-url]");
  if (!live) { return; }
  function due() {
    return Array.prototype.some.call(live.querySelectorAll("[data-watch]"), function (el) {
      var until = el.dataset.until;
      return !until || new Date(until) - Date.now() < 2000;
    });
  }
  var asking = false;
  function poll() {
    if (asking || !due()) { return; }
    asking = true;
    fetch(live.dataset.liveUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (answer) { return answer.ok ? answer.json() : null; })
      .then(function (data) {
        if (data && typeof data.html === "string") {
          live.innerHTML = data.html;
          enhance(live);
        }
      })
      .catch(function () { /* offline for a moment: the next poll tries again */ })
      .then(function () { asking = false; });
  }
  setInterval(poll, 1000);
})();
