/* 人脸识别 camera: where the browser can open the camera (getUserMedia), show a live picture and a
   "Take photo" button that puts the photo into the form's file input, as if it had been chosen.
   Without JavaScript, or when the camera cannot be opened, the file input alone does the job: on a
   phone it opens the camera too (capture), or lets the person choose a photo.
   The picture never leaves the page except in the form's own POST. No inline script (CSP). */
(function () {
  "use strict";

  function setUp(box) {
    var form = box.closest("form");
    var input = form && form.querySelector("input[type=file][name=photo]");
    var video = box.querySelector("[data-camera-video]");
    var preview = box.querySelector("[data-camera-preview]");
    var openButton = box.querySelector("[data-camera-open]");
    var takeButton = box.querySelector("[data-camera-take]");
    var status = box.querySelector("[data-camera-status]");
    var canSetFiles = typeof window.DataTransfer === "function";
    if (!input || !video || !openButton || !takeButton || !canSetFiles) {
      return;
    }
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.isSecureContext) {
      return; // plain HTTP or an old browser: the file input stays the only way, and it works
    }
    var stream = null;
    var previewUrl = null;

    function text(name) {
      return openButton.getAttribute("data-label-" + name) || "";
    }

    function say(message) {
      if (status) {
        status.textContent = message;
      }
    }

    function stopCamera() {
      if (stream) {
        stream.getTracks().forEach(function (track) {
          track.stop();
        });
        stream = null;
      }
      video.hidden = true;
      takeButton.hidden = true;
    }

    function openCamera() {
      openButton.disabled = true;
      say(text("busy"));
      navigator.mediaDevices
        .getUserMedia({ video: { facingMode: openButton.getAttribute("data-facing") || "user" }, audio: false })
        .then(function (media) {
          stream = media;
          video.srcObject = media;
          video.hidden = false;
          if (preview) {
            preview.hidden = true;
          }
          takeButton.hidden = false;
          return video.play();
        })
        .then(function () {
          say(text("ready"));
          takeButton.focus();
        })
        .catch(function () {
          stopCamera();
          say(text("denied"));
        })
        .then(function () {
          openButton.disabled = false;
        });
    }

    function takePhoto() {
      if (!stream || !video.videoWidth) {
        return;
      }
      var canvas = document.createElement("canvas");
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
      canvas.toBlob(
        function (blob) {
          if (!blob) {
            say(text("denied"));
            return;
          }
          var file = new File([blob], "face.jpg", { type: "image/jpeg" });
          var files = new DataTransfer();
          files.items.add(file);
          input.files = files.files;
          input.dispatchEvent(new Event("change", { bubbles: true }));
          if (preview) {
            if (previewUrl) {
              URL.revokeObjectURL(previewUrl);
            }
            previewUrl = URL.createObjectURL(blob);
            preview.src = previewUrl;
            preview.hidden = false;
          }
          stopCamera();
          openButton.textContent = text("open");
          say(text("taken"));
        },
        "image/jpeg",
        0.9
      );
    }

    box.hidden = false;
    openButton.addEventListener("click", openCamera);
    takeButton.addEventListener("click", takePhoto);
    // The camera light goes off when the person leaves the page or sends the form.
    window.addEventListener("pagehide", stopCamera);
    form.addEventListener("submit", stopCamera);
  }

  function init() {
    var boxes = document.querySelectorAll("[data-camera]");
    for (var i = 0; i < boxes.length; i += 1) {
      setUp(boxes[i]);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
