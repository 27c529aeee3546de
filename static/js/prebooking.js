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
  var countdowns = document.querySelectorAll(".countdown[data-until]");
  if (countdowns.length) {
    countdowns.forEach(render);
    setInterval(function () { countdowns.forEach(render); }, 250);
  }
})();
