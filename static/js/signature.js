/* 承诺书 signature pad: draw with a finger, pen or mouse on the canvas; on submit the drawing goes into
   the hidden "signature" field as a PNG data URL. Without JavaScript the pad stays hidden and the typed
   name signs the letter (progressive enhancement). No inline script: the page's CSP forbids it. */
(function () {
  "use strict";

  function setUp(pad) {
    var form = pad.closest("form");
    var canvas = pad.querySelector("canvas");
    var hidden = form && form.querySelector("input[name=signature]");
    var clear = pad.querySelector("[data-signature-clear]");
    var status = pad.querySelector("[data-signature-status]");
    if (!form || !canvas || !hidden || !canvas.getContext) {
      return;
    }
    var context = canvas.getContext("2d");
    var drawing = false;
    var drawn = false;
    var last = null;

    pad.hidden = false;
    hidden.value = "";

    function resetCanvas() {
      // White background: the PDF shows the signature on paper, not on a transparent square.
      context.fillStyle = "#ffffff";
      context.fillRect(0, 0, canvas.width, canvas.height);
      context.lineWidth = 5;
      context.lineCap = "round";
      context.lineJoin = "round";
      context.strokeStyle = "#000000";
      drawn = false;
      hidden.value = "";
      if (status) {
        status.textContent = "";
      }
    }

    function point(event) {
      // The canvas is scaled by CSS; drawing uses its own pixel grid.
      var box = canvas.getBoundingClientRect();
      return {
        x: (event.clientX - box.left) * (canvas.width / box.width),
        y: (event.clientY - box.top) * (canvas.height / box.height)
      };
    }

    canvas.addEventListener("pointerdown", function (event) {
      event.preventDefault();
      drawing = true;
      last = point(event);
      if (canvas.setPointerCapture) {
        canvas.setPointerCapture(event.pointerId);
      }
      context.beginPath();
      context.arc(last.x, last.y, context.lineWidth / 2, 0, Math.PI * 2);
      context.fillStyle = "#000000";
      context.fill();
      drawn = true;
    });
    canvas.addEventListener("pointermove", function (event) {
      if (!drawing) {
        return;
      }
      event.preventDefault();
      var next = point(event);
      context.beginPath();
      context.moveTo(last.x, last.y);
      context.lineTo(next.x, next.y);
      context.stroke();
      last = next;
      drawn = true;
    });
    function stop() {
      if (drawing && status && drawn) {
        status.textContent = status.getAttribute("data-done") || "✓";
      }
      drawing = false;
    }
    canvas.addEventListener("pointerup", stop);
    canvas.addEventListener("pointercancel", stop);
    canvas.addEventListener("pointerleave", stop);

    if (clear) {
      clear.addEventListener("click", resetCanvas);
    }
    form.addEventListener("submit", function () {
      hidden.value = drawn ? canvas.toDataURL("image/png") : "";
    });

    resetCanvas();
  }

  function start() {
    var pads = document.querySelectorAll("[data-signature-pad]");
    for (var i = 0; i < pads.length; i += 1) {
      setUp(pads[i]);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
