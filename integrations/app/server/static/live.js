// Live updates for an active run's page: the server sends the re-rendered (escaped) timeline as
// server-sent events; without JavaScript the page refreshes itself instead (see run.html).
(function () {
  "use strict";
  var root = document.getElementById("timeline");
  if (!root || !window.EventSource) { return; }
  var url = root.getAttribute("data-events");
  if (!url) { return; }
  var source = new EventSource(url);
  source.addEventListener("update", function (event) { root.innerHTML = event.data; });
  source.addEventListener("end", function () {
    source.close();
    root.removeAttribute("data-events");
  });
})();
