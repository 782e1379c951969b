/* 柜台 counter pages: keyboard first. Progressive enhancement only: without JavaScript every page works
   (autofocus puts the cursor in the card field, Enter submits, access keys reach the actions). No inline
   script: the pages' CSP forbids it.

   - The card field ([data-counter-card]) gets the focus back after anything else took it on the page,
     unless the clerk is typing elsewhere; Esc clears it.
   - Esc elsewhere follows the page's [data-counter-escape] link (back a step).
   - Keys 1–9 choose the n-th radio button of a [data-counter-radios] group.
   - A form marked [data-counter-once] sends once (the server charges once per key anyway, R34).
   - [data-counter-print] prints; the camera reads QR codes where the browser has BarcodeDetector. */
(function () {
  "use strict";

  function typingIn(element) {
    if (!element || !element.tagName) {
      return false;
    }
    var tag = element.tagName.toLowerCase();
    if (tag === "textarea" || tag === "select" || element.isContentEditable) {
      return true;
    }
    if (tag === "input") {
      var type = (element.getAttribute("type") || "text").toLowerCase();
      return ["checkbox", "radio", "button", "submit", "reset", "hidden"].indexOf(type) === -1;
    }
    return false;
  }

  function cardField() {
    return document.querySelector("[data-counter-card]");
  }

  function firstField() {
    // A step's own field when nothing has autofocus: the checked radio, else the first input of the form.
    var autofocus = document.querySelector("[autofocus]");
    if (autofocus) {
      return autofocus;
    }
    var form = document.querySelector("form.form");
    if (!form) {
      return null;
    }
    return (
      form.querySelector("input[type=radio]:checked") ||
      form.querySelector("input:not([type=hidden]), select, textarea, button")
    );
  }

  function focusStart() {
    var target = firstField();
    if (target && document.activeElement !== target) {
      target.focus();
      if (target === cardField() && target.value) {
        target.select();
      }
    }
  }

  document.addEventListener("DOMContentLoaded", focusStart);
  // Back from the browser's cache (history back): the focus comes back too.
  window.addEventListener("pageshow", focusStart);

  // A click on nothing in particular (the page's background) must not leave the reader typing into nowhere.
  document.addEventListener("click", function (event) {
    var field = cardField();
    if (!field || !document.body.contains(field)) {
      return;
    }
    var target = event.target;
    if (target.closest("a, button, input, select, textarea, label, summary, video")) {
      return;
    }
    if (window.getSelection && String(window.getSelection())) {
      return; // the clerk is selecting text to copy
    }
    field.focus();
  });

  // Alt+letter runs the action with that access key: the same in every browser (Firefox wants Alt+Shift,
  // a Mac Ctrl+Option), and also where the browser leaves access keys out (headless, kiosks).
  document.addEventListener("keydown", function (event) {
    if (!event.altKey || event.ctrlKey || event.metaKey || !/^Key[A-Z]$/.test(event.code || "")) {
      return;
    }
    var letter = event.code.slice(3).toLowerCase();
    var target = document.querySelector('[accesskey="' + letter + '"]:not([hidden])');
    if (target) {
      event.preventDefault();
      target.click();
    }
  });

  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey) {
      return;
    }
    var active = document.activeElement;
    if (event.key === "Escape") {
      var field = cardField();
      if (active === field && field.value) {
        field.value = "";
        event.preventDefault();
        return;
      }
      if (stream) {
        stopCamera();
        event.preventDefault();
        return;
      }
      var back = document.querySelector("[data-counter-escape]");
      if (back) {
        event.preventDefault();
        window.location.assign(back.getAttribute("href"));
      }
      return;
    }
    if (/^[1-9]$/.test(event.key) && !typingIn(active)) {
      var group = document.querySelector("[data-counter-radios]");
      if (!group) {
        return;
      }
      var radios = group.querySelectorAll("input[type=radio]");
      var radio = radios[parseInt(event.key, 10) - 1];
      if (radio) {
        radio.checked = true;
        radio.focus();
        event.preventDefault();
      }
    }
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute("data-counter-once")) {
      return;
    }
    if (form.getAttribute("data-counter-sent") === "1") {
      event.preventDefault();
      return;
    }
    form.setAttribute("data-counter-sent", "1");
  });

  // Printing the receipt.
  document.addEventListener("DOMContentLoaded", function () {
    var print = document.querySelector("[data-counter-print]");
    if (print) {
      print.hidden = false;
      print.addEventListener("click", function () {
        window.print();
      });
    }
  });

  // The camera, where the browser can read QR codes itself (no library, nothing from a CDN).
  var stream = null;
  var timer = null;

  function stopCamera() {
    if (timer) {
      window.clearInterval(timer);
      timer = null;
    }
    if (stream) {
      stream.getTracks().forEach(function (track) {
        track.stop();
      });
      stream = null;
    }
    var box = document.querySelector("[data-counter-camera-box]");
    if (box) {
      box.hidden = true;
    }
    var field = cardField();
    if (field) {
      field.focus();
    }
  }

  function startCamera(button) {
    var form = button.closest("form");
    var box = form.querySelector("[data-counter-camera-box]");
    var video = form.querySelector("[data-counter-video]");
    var field = cardField();
    var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    navigator.mediaDevices
      .getUserMedia({ video: { facingMode: "environment" }, audio: false })
      .then(function (media) {
        stream = media;
        video.srcObject = media;
        box.hidden = false;
        return video.play();
      })
      .then(function () {
        timer = window.setInterval(function () {
          detector
            .detect(video)
            .then(function (codes) {
              if (codes.length && codes[0].rawValue) {
                field.value = codes[0].rawValue;
                stopCamera();
                form.submit();
              }
            })
            .catch(function () {});
        }, 300);
      })
      .catch(function () {
        stopCamera();
        button.hidden = true; // no camera, or no permission: the scanner or the keyboard remain
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var button = document.querySelector("[data-counter-camera]");
    if (!button || !("BarcodeDetector" in window) || !navigator.mediaDevices || !window.isSecureContext) {
      return;
    }
    button.hidden = false;
    button.addEventListener("click", function () {
      startCamera(button);
    });
    var stop = document.querySelector("[data-counter-camera-stop]");
    if (stop) {
      stop.addEventListener("click", stopCamera);
    }
  });
})();
