/* 电子社保卡 dynamic QR code (R42): count down the seconds the code is valid and fetch a fresh one shortly
   before it expires, from the panel's data-fragment-url (an HTML fragment: the SVG and its expiry).
   Without JavaScript the page shows the code, until when it is valid, and a "Refresh code" link that
   reloads the page. Refreshing pauses while the page is hidden and resumes at once when it is shown.
   No inline script: the page's CSP forbids it. */
(function () {
  "use strict";

  var RETRY_SECONDS = 3; // after a failed fetch, wait this long before the next try

  function setUp(panel) {
    var box = panel.querySelector("[data-qr-box]");
    var status = panel.querySelector("[data-qr-status]");
    var refreshLink = panel.querySelector("[data-qr-refresh]");
    var url = panel.getAttribute("data-fragment-url");
    // Fetch the next code a little before this one expires: 5 s for the usual 60 s, less for short ones.
    var ttl = parseInt(panel.getAttribute("data-ttl"), 10) || 60;
    var early = Math.min(5, Math.max(1, Math.floor(ttl / 4)));
    if (!box || !url || !window.fetch) {
      return;
    }
    var deadline = 0; // when the shown code expires (this device's clock)
    var timer = null;
    var loading = false;
    var retryAt = 0;

    function label(name, n) {
      var text = panel.getAttribute("data-label-" + name) || "";
      return text.replace("%(n)s", String(n));
    }

    function say(text) {
      if (status) {
        status.textContent = text;
      }
    }

    function readExpiry() {
      // The server says how many seconds are left, so a wrong phone clock does not matter.
      var code = box.querySelector("[data-qr-code]");
      var seconds = code ? parseInt(code.getAttribute("data-expires-in"), 10) : NaN;
      deadline = Date.now() + (isNaN(seconds) ? 0 : seconds * 1000);
    }

    function secondsLeft() {
      return Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
    }

    function showCountdown() {
      var countdown = box.querySelector("[data-qr-countdown]");
      var left = secondsLeft();
      if (countdown) {
        countdown.textContent = left > 0 ? label("seconds", left) : "";
      }
      box.classList.toggle("qr-expired", left <= 0);
    }

    function refresh() {
      if (loading) {
        return;
      }
      loading = true;
      fetch(url, { credentials: "same-origin", cache: "no-store", headers: { "X-Requested-With": "fetch" } })
        .then(function (response) {
          if (!response.ok) {
            throw new Error("HTTP " + response.status);
          }
          return response.text();
        })
        .then(function (html) {
          box.innerHTML = html; // our own server's fragment: an SVG and plain text, no script
          readExpiry();
          showCountdown();
          say(label("new"));
        })
        .catch(function () {
          say(secondsLeft() > 0 ? label("failed") : label("expired"));
          deadline = Math.max(deadline, Date.now());
          retryAt = Date.now() + RETRY_SECONDS * 1000;
        })
        .then(function () {
          loading = false;
        });
    }

    function tick() {
      showCountdown();
      if (document.hidden || loading) {
        return;
      }
      var left = secondsLeft();
      if (left <= early && Date.now() >= retryAt) {
        refresh();
      }
    }

    function start() {
      if (timer === null) {
        timer = window.setInterval(tick, 1000);
      }
    }

    function stop() {
      if (timer !== null) {
        window.clearInterval(timer);
        timer = null;
      }
    }

    document.addEventListener("visibilitychange", function () {
      if (document.hidden) {
        stop();
      } else {
        // Back on the page (after another app, or the screen was off): a fresh code at once.
        start();
        refresh();
      }
    });

    if (refreshLink) {
      refreshLink.addEventListener("click", function (event) {
        event.preventDefault();
        retryAt = 0;
        say(label("refreshing"));
        refresh();
      });
    }

    readExpiry();
    showCountdown();
    start();
  }

  function init() {
    var panels = document.querySelectorAll("[data-qr-panel]");
    for (var i = 0; i < panels.length; i += 1) {
      setUp(panels[i]);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
