// Shipline dashboard: refreshes the live part of a page (<main data-poll=MS>)
// by fetching the same page's server-rendered fragment (?part=live) and
// swapping it in when it changed, so running work moves on screen without a
// reload. It leaves the page alone while the user is typing in it.
(function () {
  "use strict";
  var main = document.getElementById("live");
  if (!main || !main.dataset.poll) { return; }
  var every = parseInt(main.dataset.poll, 10) || 2000;
  var last = main.innerHTML;
  function busy() {
    var a = document.activeElement;
    if (a && main.contains(a) && (a.tagName === "INPUT" || a.tagName === "TEXTAREA" || a.tagName === "SELECT")) { return true; }
    var fields = main.querySelectorAll("input:not([type=hidden]), textarea");
    for (var i = 0; i < fields.length; i++) {
      if (fields[i].type !== "checkbox" && fields[i].value !== fields[i].defaultValue) { return true; }
    }
    return false;
  }
  function tick() {
    var url = new URL(window.location.href);
    url.searchParams.set("part", "live");
    fetch(url.toString(), { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html !== null && html !== last && !busy()) {
          main.innerHTML = html;
          last = main.innerHTML;
          main.dataset.updated = String((parseInt(main.dataset.updated || "0", 10) || 0) + 1);
        }
      })
      .catch(function () {})
      .then(function () { setTimeout(tick, every); });
  }
  setTimeout(tick, every);
})();
