// ctctsync control plane: the little JavaScript the pages need, no framework.
//
// 1. [data-poll="URL"]: replace the element's content with the HTML fragment at URL every
//    ~1.5 s, until the server answers with the header "X-Poll-Done: 1" (nothing in flight).
//    What the reader was doing survives the swap: the sideways scroll of each scroll region
//    (a phone's Jobs table) and keyboard focus, matched by id or aria-label; an unchanged
//    fragment is not swapped at all.
// 2. [data-log="URL"]: append process-log lines from the JSON endpoint at URL
//    (?after=<last seq>) until the job is finished.
// 3. [data-check-all] / [data-check-none]: select every / no optional field of one table.
// 4. time[data-local-time]: an absolute UTC time from the server, shown in the reader's time
//    zone (the UTC time stays in its title); polled fragments are converted as they arrive.
// Pages work without JavaScript; a reload shows the same information. Hidden tabs poll
// less often.
(function () {
  "use strict";

  var POLL_MS = 1500;

  // Elements whose scroll offsets a swap must keep: named, so old and new can be paired.
  var KEEP_SCROLL = "[id].table-scroll, [aria-label].table-scroll, .scroll-x[id], [data-keep-scroll]";

  function keyOf(node) {
    return node.id ? "#" + node.id : (node.getAttribute("aria-label") || "");
  }

  function formatter(withYear) {
    var parts = { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
                  timeZoneName: "short" };
    if (withYear) { parts.year = "numeric"; }
    return new Intl.DateTimeFormat(undefined, parts);
  }
  var LOCAL = (window.Intl && Intl.DateTimeFormat) ? [formatter(false), formatter(true)] : null;

  function localTimes(root) {
    if (!LOCAL) { return; }
    var thisYear = new Date().getFullYear();
    root.querySelectorAll("time[data-local-time]").forEach(function (t) {
      var at = new Date(t.getAttribute("datetime"));
      // the year only when it is not this one: shorter cells on a phone
      if (!isNaN(at.getTime())) { t.textContent = LOCAL[at.getFullYear() === thisYear ? 0 : 1].format(at); }
    });
  }

  function swapKeepingPlace(el, html) {
    var offsets = {};
    el.querySelectorAll(KEEP_SCROLL).forEach(function (node) {
      var key = keyOf(node);
      if (key) { offsets[key] = [node.scrollLeft, node.scrollTop]; }
    });
    var focused = document.activeElement;
    var focusKey = focused && el.contains(focused) ? keyOf(focused) : "";
    el.innerHTML = html;
    localTimes(el);
    el.querySelectorAll(KEEP_SCROLL).forEach(function (node) {
      var at = offsets[keyOf(node)];
      if (at) { node.scrollLeft = at[0]; node.scrollTop = at[1]; }
    });
    if (focusKey) {
      var again = Array.prototype.find.call(
        el.querySelectorAll("[id], [aria-label]"), function (n) { return keyOf(n) === focusKey; });
      if (again) { again.focus({ preventScroll: true }); }
    }
  }

  function pollFragment(el) {
    var url = el.getAttribute("data-poll");
    // The element is an aria-live region: a screen reader reads what changes in it, so it
    // is only rewritten when the fragment differs from what is shown.
    var shown = null;
    function tick() {
      if (document.hidden) { window.setTimeout(tick, POLL_MS * 2); return; }
      fetch(url, { headers: { "Accept": "text/html" }, credentials: "same-origin" })
        .then(function (resp) {
          if (resp.redirected || !resp.ok) { return null; }
          var done = resp.headers.get("X-Poll-Done") === "1";
          return resp.text().then(function (html) {
            if (html !== shown) { swapKeepingPlace(el, html); shown = html; }
            if (!done) { window.setTimeout(tick, POLL_MS); }
          });
        })
        .catch(function () { window.setTimeout(tick, POLL_MS * 2); });
    }
    window.setTimeout(tick, POLL_MS);
  }

  function levelClass(level) {
    return "lvl-" + String(level || "INFO").replace(/[^A-Z]/g, "");
  }

  function appendLines(pre, lines) {
    var atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
    lines.forEach(function (line) {
      var row = document.createElement("span");
      row.className = levelClass(line.level);
      var ts = document.createElement("span");
      ts.className = "ts";
      ts.textContent = line.at + " ";
      row.appendChild(ts);
      row.appendChild(document.createTextNode(line.level + " " + line.message + "\n"));
      pre.appendChild(row);
    });
    var empty = pre.querySelector(".log-empty");
    if (empty && lines.length) { empty.remove(); }
    if (atBottom) { pre.scrollTop = pre.scrollHeight; }
  }

  function pollLog(pre) {
    var url = pre.getAttribute("data-log");
    var after = parseInt(pre.getAttribute("data-after") || "0", 10);
    var badge = document.getElementById("log-live");
    function tick() {
      if (document.hidden) { window.setTimeout(tick, POLL_MS * 2); return; }
      fetch(url + "?after=" + after, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
        .then(function (resp) { return resp.ok && !resp.redirected ? resp.json() : null; })
        .then(function (data) {
          if (!data) { return; }
          appendLines(pre, data.lines);
          after = data.next;
          pre.setAttribute("data-after", String(after));
          if (data.finished) {
            if (badge) { badge.remove(); }
            pre.setAttribute("data-finished", "1");
          } else {
            window.setTimeout(tick, POLL_MS);
          }
        })
        .catch(function () { window.setTimeout(tick, POLL_MS * 2); });
    }
    tick();
  }

  function wireCheckButtons() {
    document.addEventListener("click", function (ev) {
      var btn = ev.target.closest("[data-check-all], [data-check-none]");
      if (!btn) { return; }
      ev.preventDefault();
      var on = btn.hasAttribute("data-check-all");
      var box = document.getElementById(btn.getAttribute(on ? "data-check-all" : "data-check-none"));
      if (!box) { return; }
      box.querySelectorAll("input[type=checkbox]:not([disabled])").forEach(function (cb) {
        cb.checked = on;
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    document.querySelectorAll("[data-poll]").forEach(pollFragment);
    document.querySelectorAll("pre[data-log]").forEach(pollLog);
    wireCheckButtons();
  });
})();
