// ctctsync control plane: the little JavaScript the pages need, no framework.
//
// 1. [data-poll="URL"]: replace the element's content with the HTML fragment at URL every
//    ~1.5 s, until the server answers with the header "X-Poll-Done: 1" (nothing in flight).
// 2. [data-log="URL"]: append process-log lines from the JSON endpoint at URL
//    (?after=<last seq>) until the job is finished.
// 3. [data-check-all] / [data-check-none]: select every / no optional field of one table.
// Pages work without JavaScript; a reload shows the same information. Hidden tabs poll
// less often.
(function () {
  "use strict";

  var POLL_MS = 1500;

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
            if (html !== shown) { el.innerHTML = html; shown = html; }
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
    document.querySelectorAll("[data-poll]").forEach(pollFragment);
    document.querySelectorAll("pre[data-log]").forEach(pollLog);
    wireCheckButtons();
  });
})();
