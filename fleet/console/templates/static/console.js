// Live updates: the server says "refresh" on /events when something shown has changed; the
// page's live part is fetched again (?fragment=1) and swapped in. Without JavaScript the pages
// still work; they are just not live.
(function () {
  "use strict";
  const live = document.getElementById("live");
  if (!live || !window.EventSource) {
    return;
  }
  let busy = false;
  let again = false;
  let held = false;
  // a technician typing an answer to a help request keeps what they typed: the refresh waits
  // until the field loses focus
  function typing() {
    const el = document.activeElement;
    return Boolean(el && live.contains(el) && el.matches("input, textarea, select, button"));
  }
  live.addEventListener("focusout", function () {
    if (held) {
      held = false;
      setTimeout(refresh, 0);
    }
  });
  async function refresh() {
    if (typing()) {
      held = true;
      return;
    }
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    try {
      const url = new URL(window.location.href);
      url.searchParams.set("fragment", "1");
      const response = await fetch(url, { credentials: "same-origin", redirect: "error" });
      if (response.ok) {
        live.innerHTML = await response.text();
        document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || 0) + 1);
      }
    } catch (err) {
      // a failed refresh is retried at the next change
    } finally {
      busy = false;
      if (again) {
        again = false;
        refresh();
      }
    }
  }
  const source = new EventSource("/events");
  source.addEventListener("refresh", refresh);
  source.addEventListener("open", function () { document.body.dataset.live = "open"; });
})();
