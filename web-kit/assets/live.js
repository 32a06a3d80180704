// Live updates for the deconfliction consoles. The server renders every region itself and
// sends a changed one as {"id": ..., "html": ...} over server-sent events; this script only
// puts it in place. Pages read fine without it (they are whole when served).
(function () {
  "use strict";
  var url = document.body.getAttribute("data-live");
  if (!url || !window.EventSource) { return; }
  var status = document.getElementById("live-status");
  var source = new EventSource(url);
  source.addEventListener("region", function (event) {
    var region;
    try { region = JSON.parse(event.data); } catch (e) { return; }
    var el = document.getElementById(region.id);
    if (el) {
      // Keep what an officer is typing: a region holding the focused field is not replaced.
      if (el.contains(document.activeElement) && document.activeElement.tagName !== "BODY" &&
          document.activeElement.tagName !== "A" && document.activeElement.tagName !== "BUTTON") {
        return;
      }
      el.innerHTML = region.html;
    }
    document.body.setAttribute("data-updated", String(Date.now()));
  });
  source.addEventListener("open", function () { if (status) { status.hidden = true; } });
  source.addEventListener("error", function () { if (status) { status.hidden = false; } });
  source.addEventListener("signed-out", function () { window.location.reload(); });
})();
