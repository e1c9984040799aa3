// Ticket Hub: small progressive enhancements on top of htmx. Nothing here is needed for
// the site to work: without JavaScript the forms post, the pages refresh themselves and
// the offer's end is shown as a clock time.
(function () {
  "use strict";

  // Polls go on in a hidden tab, at the cadence the server chose (browsers may slow them
  // further), so an offer still reaches someone who switched tabs: the tab's title says so
  // at once, and the page announces it when they come back. Coming back also asks at once.
  var baseTitle = document.title;
  var heldAnnouncement = null;
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) return;
    if (heldAnnouncement !== null) {
      var announcer = document.getElementById("queue-announcer");
      if (announcer) announcer.textContent = heldAnnouncement;
      heldAnnouncement = null;
    }
    if (!window.htmx) return;
    document.querySelectorAll("[hx-trigger*='visible-again']").forEach(function (elt) {
      window.htmx.trigger(elt, "visible-again");
    });
  });
  function markTitle() {
    var status = document.getElementById("queue-status");
    var offered = status && status.dataset.status === "offered";
    document.title = offered ? "Ticket held for you · " + baseTitle : baseTitle;
  }
  document.addEventListener("htmx:afterSettle", markTitle);

  // An unchanged status (same ETag; the browser revalidated it with a 304) is not re-rendered.
  function bareTag(tag) { return (tag || "").replace(/^W\//, "").replace(/"/g, ""); }
  document.addEventListener("htmx:beforeSwap", function (evt) {
    var xhr = evt.detail.xhr, target = evt.detail.target;
    if (!xhr || !target || !target.dataset || !target.dataset.etag) return;
    var tag = bareTag(xhr.getResponseHeader("ETag"));
    if (tag && tag === bareTag(target.dataset.etag) && xhr.status === 200) {
      evt.detail.shouldSwap = false;
    }
  });

  // Countdowns (to the end of an offer, to an on-sale): h:mm:ss, or m:ss under an hour.
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function tick() {
    document.querySelectorAll("[data-countdown-to]").forEach(function (el) {
      var left = Math.max(0, Math.floor((Date.parse(el.dataset.countdownTo) - Date.now()) / 1000));
      var h = Math.floor(left / 3600), m = Math.floor(left / 60) % 60, s = left % 60;
      el.textContent = h > 0 ? h + ":" + pad(m) + ":" + pad(s) : m + ":" + pad(s);
      var line = el.closest(".countdown-line");
      if (line) line.hidden = false;
    });
    // The live countdown replaces the no-JS page's "N minutes from when this page was shown".
    document.querySelectorAll(".noscript-left").forEach(function (el) { el.hidden = true; });
  }
  setInterval(tick, 1000);
  document.addEventListener("DOMContentLoaded", tick);
  document.addEventListener("htmx:afterSettle", tick);

  // Tell screen readers politely when the buyer's place changes; the announcer sits outside
  // the swapped widget, so it is not replaced (which would silence it).
  var lastMessage = null;
  function announce() {
    var status = document.getElementById("queue-status");
    var announcer = document.getElementById("queue-announcer");
    if (!status || !announcer) return;
    var s = status.dataset.status, message = "";
    if (s === "lobby") message = "You are in the lobby. Places are drawn when sales open.";
    else if (s === "waiting") message = "You are number " + status.dataset.position + " in line.";
    else if (s === "offered") message = "A ticket is held for you. Buy it before the offer ends.";
    else if (s === "purchased") message = "You have a ticket for this event.";
    else if (s === "expired") message = "Your place in line has ended.";
    if (lastMessage !== null && message !== lastMessage) {
      if (document.hidden) heldAnnouncement = message;
      else announcer.textContent = message;
    }
    lastMessage = message;
  }
  document.addEventListener("DOMContentLoaded", announce);
  document.addEventListener("htmx:afterSettle", announce);

  // "Print this ticket": only with JavaScript (the browser's own Print works without it,
  // and the print layout is the same either way).
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-print]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function () { window.print(); });
    });
  });
})();
