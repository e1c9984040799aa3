// Ticket Hub: small progressive enhancements on top of htmx. Nothing here is needed for
// the site to work; without it the forms post and the pages refresh.
(function () {
  "use strict";
  // Polling costs nothing while the tab is hidden: skip the request, refresh on return.
  document.addEventListener("htmx:beforeRequest", function (evt) {
    var elt = evt.detail.elt;
    if (document.hidden && elt && elt.matches("[hx-trigger^='every']")) evt.preventDefault();
  });
})();
