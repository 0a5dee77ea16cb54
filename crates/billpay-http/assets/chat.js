// Live chat, progressive enhancement: the page works without this file (plain form posts and
// a "check for new messages" link). With it, sending does not reload the page and new
// messages appear as they arrive (server-sent events; the browser reconnects on its own and
// sends the number of the last message it has, so nothing is missed).
(function () {
  "use strict";
  var log = document.getElementById("chat-log");
  var form = document.getElementById("chat-form");
  if (!log || !window.EventSource) { return; }
  var after = parseInt(log.getAttribute("data-after") || "0", 10);
  var stream = log.getAttribute("data-stream") || "/chat/events";
  var refresh = form ? form.querySelector(".refresh") : null;
  if (refresh) { refresh.hidden = true; }

  function add(m) {
    if (m.seq <= after || document.getElementById("m" + m.seq)) { return; }
    after = m.seq;
    var li = document.createElement("li");
    li.className = "msg msg-" + m.sender;
    li.id = "m" + m.seq;
    var who = document.createElement("span");
    who.className = "who";
    who.textContent = m.who;
    var body = document.createElement("span");
    body.className = "body";
    body.textContent = m.body;
    li.appendChild(who);
    li.appendChild(document.createTextNode(" "));
    li.appendChild(body);
    if (m.link && m.link.charAt(0) === "/" && m.link.charAt(1) !== "/") {
      var a = document.createElement("a");
      a.className = "button";
      a.href = m.link;
      a.textContent = m.link_text;
      li.appendChild(document.createTextNode(" "));
      li.appendChild(a);
    }
    log.appendChild(li);
    li.scrollIntoView({ block: "nearest" });
  }

  var source = new EventSource(stream + "?after=" + after);
  source.addEventListener("message", function (e) {
    try { add(JSON.parse(e.data)); } catch (err) { /* a malformed event is skipped */ }
  });
  source.addEventListener("state", function () { window.location.reload(); });

  if (form) {
    form.addEventListener("submit", function (e) {
      var text = form.querySelector("textarea[name=message]");
      if (!text || !text.value.trim()) { return; }
      e.preventDefault();
      var body = new URLSearchParams(new FormData(form));
      fetch(form.action, {
        method: "POST",
        body: body,
        credentials: "same-origin",
        redirect: "manual",
        headers: { "Content-Type": "application/x-www-form-urlencoded" }
      }).then(function (r) {
        if (r.type === "opaqueredirect" || r.ok) {
          text.value = "";
          text.focus();
        } else {
          form.submit();
        }
      }, function () { form.submit(); });
    });
  }
})();
