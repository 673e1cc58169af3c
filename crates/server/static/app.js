// TradeSignal web UI behaviour. A static, content-hashed file loaded with the page's CSP nonce: no
// inline handlers, no eval, no HTML built from strings. Every page works without it.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // Service status in the header.
  var status = document.getElementById("status");
  if (status) {
    fetch("/readyz", { headers: { "Accept": "application/json" } })
      .then(function (r) {
        status.textContent = r.ok ? "service ready" : "service degraded";
        status.className = r.ok ? "status-ok" : "status-down";
      })
      .catch(function () {
        status.textContent = "service unreachable";
        status.className = "status-down";
      });
  }

  // Forms that do something hard to undo ask first.
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) {
        event.preventDefault();
      }
    });
  });

  // The live password-strength meter. The server's policy decides at submit; this only advises.
  document.querySelectorAll("input[data-strength]").forEach(function (input) {
    var meter = document.getElementById(input.getAttribute("data-strength"));
    var feedback = document.getElementById(input.getAttribute("data-strength") + "-feedback");
    var emailField = document.getElementById(input.getAttribute("data-email-field") || "");
    var timer = null;
    var sequence = 0;
    function show(score, acceptable, lines) {
      if (meter) { meter.setAttribute("data-score", String(score)); }
      if (!feedback) { return; }
      while (feedback.firstChild) { feedback.removeChild(feedback.firstChild); }
      var head = document.createElement("li");
      head.textContent = acceptable ? "Strong enough." : "Not accepted yet.";
      feedback.appendChild(head);
      lines.forEach(function (line) {
        var item = document.createElement("li");
        item.textContent = line;
        feedback.appendChild(item);
      });
    }
    input.addEventListener("input", function () {
      clearTimeout(timer);
      var password = input.value;
      if (!password) { show(0, false, []); return; }
      timer = setTimeout(function () {
        var mine = ++sequence;
        var body = { password: password };
        if (emailField && emailField.value) { body.email = emailField.value; }
        fetch("/api/v1/auth/password-strength", {
          method: "POST",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
          body: JSON.stringify(body),
          credentials: "same-origin"
        })
          .then(function (r) { return r.ok ? r.json() : null; })
          .then(function (answer) {
            if (answer && mine === sequence) {
              show(answer.score, answer.acceptable, answer.feedback || []);
            }
          })
          .catch(function () { /* the meter is advice; the form still submits */ });
      }, 250);
    });
  });
})();
