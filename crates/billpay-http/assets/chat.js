// Live chat, progressive enhancement: the page works without this file (plain form posts and
// a "check for new messages" link). With it, sending does not reload the page and new
// messages appear as they arrive (server-sent events; the browser reconnects on its own and
// sends the number of the last message it has, so nothing is missed). It also tells the other
// side when this one is typing (at most every 3 seconds; never stored) and that messages were
// read, and shows the other side's typing and "Read" under this side's last read message.
(function () {
  "use strict";
  var log = document.getElementById("chat-log");
  var form = document.getElementById("chat-form");
  if (!log || !window.EventSource) { return; }
  var after = parseInt(log.getAttribute("data-after") || "0", 10);
  var stream = log.getAttribute("data-stream") || "/chat/events";
  var side = log.getAttribute("data-side") || "customer";
  var typingUrl = log.getAttribute("data-typing");
  var readUrl = log.getAttribute("data-read");
  var typingLine = document.getElementById("chat-typing");
  var own = side === "agent" ? "msg-agent" : "msg-customer";
  var refresh = form ? form.querySelector(".refresh") : null;
  if (refresh) { refresh.hidden = true; }
  var csrfInput = document.querySelector("input[name=csrf]");
  var csrf = csrfInput ? csrfInput.value : "";

  function post(url, fields) {
    if (!url || !csrf) { return; }
    var body = new URLSearchParams(fields || {});
    body.set("csrf", csrf);
    fetch(url, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      redirect: "manual",
      headers: { "Content-Type": "application/x-www-form-urlencoded" }
    }).catch(function () { /* a lost indicator is harmless */ });
  }

  var readTimer = null;
  var readSent = 0;
  function markRead() {
    if (readTimer || document.hidden) { return; }
    readTimer = setTimeout(function () {
      readTimer = null;
      if (after > readSent) { readSent = after; post(readUrl, { seq: String(after) }); }
    }, 500);
  }

  var typingTimer = null;
  function showTyping(on) {
    if (!typingLine) { return; }
    typingLine.textContent = on
      ? (side === "agent" ? "The customer is typing…" : "The representative is typing…")
      : "";
    if (typingTimer) { clearTimeout(typingTimer); typingTimer = null; }
    if (on) { typingTimer = setTimeout(function () { showTyping(false); }, 5000); }
  }

  function showReceipt(mark) {
    var old = log.querySelectorAll(".receipt");
    for (var i = 0; i < old.length; i++) { old[i].parentNode.removeChild(old[i]); }
    var mine = log.querySelectorAll("li." + own);
    for (var j = mine.length - 1; j >= 0; j--) {
      var seq = parseInt(mine[j].id.slice(1), 10);
      if (seq <= mark) {
        var r = document.createElement("span");
        r.className = "receipt";
        r.textContent = "Read";
        mine[j].appendChild(document.createTextNode(" "));
        mine[j].appendChild(r);
        return;
      }
    }
  }

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
    if ("msg-" + m.sender !== own) { showTyping(false); }
    markRead();
  }

  var source = new EventSource(stream + "?after=" + after);
  source.addEventListener("message", function (e) {
    try { add(JSON.parse(e.data)); } catch (err) { /* a malformed event is skipped */ }
  });
  source.addEventListener("typing", function () { showTyping(true); });
  source.addEventListener("read", function (e) {
    try {
      var marks = JSON.parse(e.data);
      showReceipt(side === "agent" ? marks.customer : marks.agent);
    } catch (err) { /* a malformed event is skipped */ }
  });
  source.addEventListener("state", function () { window.location.reload(); });
  document.addEventListener("visibilitychange", markRead);

  if (form) {
    var text = form.querySelector("textarea[name=message]");
    var lastTyping = 0;
    if (text) {
      text.addEventListener("input", function () {
        var now = Date.now();
        if (now - lastTyping > 3000 && text.value.trim()) {
          lastTyping = now;
          post(typingUrl);
        }
      });
    }
    form.addEventListener("submit", function (e) {
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
          lastTyping = 0;
          text.focus();
        } else {
          form.submit();
        }
      }, function () { form.submit(); });
    });
  }
})();
