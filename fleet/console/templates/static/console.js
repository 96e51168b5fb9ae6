// Live updates: the server says "refresh" on /events when something shown has changed; the
// page's live part is fetched again (?fragment=1) and merged in place: only what changed is
// replaced. Elements are matched by their id or their data-rollout / data-wave / data-station /
// data-alert key (else by position, tag, a form's action and a field's name), so a field being
// edited keeps its text, its caret and its focus, and a list the reader opened (<details>)
// stays open. A part that went away while a field inside it has focus stays until the field
// loses it. Without JavaScript the pages still work; they are just not live.
(function () {
  "use strict";
  const live = document.getElementById("live");
  if (!live || !window.EventSource) {
    return;
  }
  const KEYS = ["rollout", "wave", "station", "alert", "key"];
  let busy = false;
  let again = false;
  let held = false;

  function key(node) {
    if (node.nodeType !== 1) {
      return null;
    }
    if (node.id) {
      return "#" + node.id;
    }
    for (const name of KEYS) {
      if (node.dataset[name] !== undefined) {
        return name + ":" + node.dataset[name];
      }
    }
    return null;
  }

  function same(a, b) {
    if (a.nodeType !== b.nodeType || key(a) !== null) {
      return false;
    }
    if (a.nodeType !== 1) {
      return true;
    }
    return (
      a.tagName === b.tagName &&
      a.getAttribute("action") === b.getAttribute("action") &&
      a.getAttribute("name") === b.getAttribute("name") &&
      a.getAttribute("type") === b.getAttribute("type")
    );
  }

  // a field whose value the user changed or is changing: the server's value does not replace it
  function edited(el) {
    if (el === document.activeElement) {
      return true;
    }
    if (el.tagName === "TEXTAREA") {
      return el.value !== el.defaultValue;
    }
    if (el.tagName === "INPUT") {
      return el.type === "checkbox" || el.type === "radio"
        ? el.checked !== el.defaultChecked
        : el.value !== el.defaultValue;
    }
    return false;
  }

  function update(old, fresh) {
    if (old.nodeType !== 1) {
      if (old.nodeValue !== fresh.nodeValue) {
        old.nodeValue = fresh.nodeValue;
      }
      return;
    }
    const field = ["INPUT", "TEXTAREA", "SELECT"].includes(old.tagName);
    const keep = field && edited(old);
    for (const attr of Array.from(old.attributes)) {
      if (!fresh.hasAttribute(attr.name) && !(attr.name === "open" && old.tagName === "DETAILS")) {
        if (!(keep && (attr.name === "value" || attr.name === "checked"))) {
          old.removeAttribute(attr.name);
        }
      }
    }
    for (const attr of Array.from(fresh.attributes)) {
      if (attr.name === "open" && old.tagName === "DETAILS") {
        continue; // the reader opens and closes it
      }
      if (keep && (attr.name === "value" || attr.name === "checked")) {
        continue;
      }
      if (old.getAttribute(attr.name) !== attr.value) {
        old.setAttribute(attr.name, attr.value);
      }
    }
    if (old.tagName === "TEXTAREA" && keep) {
      return;
    }
    children(old, fresh);
  }

  function children(parent, fresh) {
    const keyed = new Map();
    for (const child of Array.from(parent.childNodes)) {
      const k = key(child);
      if (k !== null) {
        keyed.set(k, child);
      }
    }
    let cur = parent.firstChild;
    for (const node of Array.from(fresh.childNodes)) {
      const k = key(node);
      let match = null;
      if (k !== null && keyed.has(k)) {
        match = keyed.get(k);
        keyed.delete(k);
      } else if (k === null && cur && same(cur, node)) {
        match = cur;
      }
      if (match === null) {
        parent.insertBefore(node, cur);
        continue;
      }
      if (match === cur) {
        cur = cur.nextSibling;
      } else {
        parent.insertBefore(match, cur);
      }
      update(match, node);
    }
    while (cur) {
      const next = cur.nextSibling;
      if (cur.nodeType === 1 && cur.contains(document.activeElement)) {
        held = true; // gone from the page: it goes when its field loses focus
      } else {
        parent.removeChild(cur);
      }
      cur = next;
    }
  }

  live.addEventListener("focusout", function () {
    if (held) {
      held = false;
      setTimeout(refresh, 0);
    }
  });

  async function refresh() {
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
        const fresh = document.createElement("div");
        fresh.innerHTML = await response.text();
        children(live, fresh);
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

// The rollout form: a release chosen from the signed repository fills the catalog's fields
// (each can still be typed over).
(function () {
  "use strict";
  const choice = document.getElementById("signed-catalog");
  if (!choice) {
    return;
  }
  choice.addEventListener("change", function () {
    const option = choice.selectedOptions[0];
    if (!option || option.value === "") {
      return;
    }
    for (const name of ["target", "version", "sha256", "length", "metadata_url", "targets_url"]) {
      const box = document.getElementById(name);
      const value = option.dataset[name];
      if (box && value !== undefined && (value !== "" || name === "targets_url")) {
        box.value = value;
      }
    }
  });
})();
