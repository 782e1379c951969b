/* 审核 reviewers' workbench: keyboard shortcuts, and zoom / rotate of the documents with CSS transforms.
   Progressive enhancement: without JavaScript the pages work as plain forms, the document pages show at
   their full width, and the browser's access keys (accesskey) reach the same buttons. No inline script:
   the page's CSP forbids it.

   Shortcuts (shown on the page): an element with data-shortcut="x" is focused or clicked (data-shortcut-action)
   when x is pressed outside a text field; + − [ ] 0 zoom, rotate and reset the chosen document. */
(function () {
  "use strict";

  var ZOOM_STEP = 1.25;
  var ZOOM_MIN = 0.5;
  var ZOOM_MAX = 4;
  var docs = [];
  var active = null;

  function typingIn(target) {
    if (!target || !target.tagName) {
      return false;
    }
    if (target.isContentEditable) {
      return true;
    }
    var tag = target.tagName.toLowerCase();
    if (tag === "textarea" || tag === "select") {
      return true;
    }
    if (tag === "input") {
      var type = (target.getAttribute("type") || "text").toLowerCase();
      return ["checkbox", "radio", "button", "submit", "reset", "file"].indexOf(type) === -1;
    }
    return false;
  }

  function firstFocusable(element) {
    if (element.matches("button, input, select, textarea, a[href], [tabindex]")) {
      return element;
    }
    return element.querySelector("input, select, textarea, button, a[href]");
  }

  function runShortcut(key) {
    var target = document.querySelector('[data-shortcut="' + key + '"]');
    if (!target) {
      return false;
    }
    if (target.getAttribute("data-shortcut-action") === "click") {
      target.click();
      return true;
    }
    var focusable = firstFocusable(target);
    if (!focusable) {
      return false;
    }
    focusable.scrollIntoView({ block: "center" });
    focusable.focus();
    var hint = document.querySelector('[data-shortcut-hint="' + key + '"]');
    if (hint) {
      hint.hidden = false;
    }
    return true;
  }

  // --- Documents: zoom changes the drawing's width (so the viewport scrolls to every part of it);
  // rotation is a transform, scaled down on a quarter turn so the page stays inside its box.

  function apply(doc) {
    doc.canvas.style.width = Math.round(doc.zoom * 100) + "%";
    doc.images.forEach(function (image) {
      var scale = 1;
      if (doc.rotation % 180 !== 0 && image.naturalWidth && image.naturalHeight) {
        scale = Math.min(image.naturalWidth, image.naturalHeight) / Math.max(image.naturalWidth, image.naturalHeight);
      }
      image.style.transform = doc.rotation || scale !== 1 ? "rotate(" + doc.rotation + "deg) scale(" + scale + ")" : "";
    });
    if (doc.zoomLabel) {
      doc.zoomLabel.textContent = Math.round(doc.zoom * 100) + "%";
    }
    doc.element.setAttribute("data-zoom", doc.zoom.toFixed(2));
    doc.element.setAttribute("data-rotation", String(doc.rotation));
  }

  function act(doc, action) {
    if (action === "zoom-in") {
      doc.zoom = Math.min(ZOOM_MAX, doc.zoom * ZOOM_STEP);
    } else if (action === "zoom-out") {
      doc.zoom = Math.max(ZOOM_MIN, doc.zoom / ZOOM_STEP);
    } else if (action === "rotate-left") {
      doc.rotation = (doc.rotation + 270) % 360;
    } else if (action === "rotate-right") {
      doc.rotation = (doc.rotation + 90) % 360;
    } else if (action === "reset") {
      doc.zoom = 1;
      doc.rotation = 0;
    } else {
      return;
    }
    apply(doc);
  }

  function choose(doc) {
    if (active === doc) {
      return;
    }
    docs.forEach(function (other) {
      other.element.classList.toggle("doc-active", other === doc);
    });
    active = doc;
  }

  function setUpDocument(element) {
    var doc = {
      element: element,
      canvas: element.querySelector("[data-doc-canvas]"),
      images: Array.prototype.slice.call(element.querySelectorAll("[data-doc-image]")),
      zoomLabel: element.querySelector("[data-doc-zoom]"),
      zoom: 1,
      rotation: 0,
    };
    if (!doc.canvas) {
      return null;
    }
    var tools = element.querySelector("[data-doc-tools]");
    if (tools) {
      tools.hidden = false;
      tools.addEventListener("click", function (event) {
        var button = event.target.closest("[data-doc-action]");
        if (button) {
          choose(doc);
          act(doc, button.getAttribute("data-doc-action"));
        }
      });
    }
    element.addEventListener("focusin", function () {
      choose(doc);
    });
    element.addEventListener("pointerdown", function () {
      choose(doc);
    });
    doc.images.forEach(function (image) {
      // The scale of a quarter turn needs the picture's own size, known once it has loaded.
      image.addEventListener("load", function () {
        apply(doc);
      });
    });
    return doc;
  }

  var DOCUMENT_KEYS = { "+": "zoom-in", "=": "zoom-in", "-": "zoom-out", _: "zoom-out", "[": "rotate-left", "]": "rotate-right", 0: "reset" };

  function onKey(event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || typingIn(event.target)) {
      return;
    }
    var key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    if (active && Object.prototype.hasOwnProperty.call(DOCUMENT_KEYS, key)) {
      act(active, DOCUMENT_KEYS[key]);
      event.preventDefault();
      return;
    }
    if (/^[a-z]$/.test(key) && runShortcut(key)) {
      event.preventDefault();
    }
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-doc]"), function (element) {
      var doc = setUpDocument(element);
      if (doc) {
        docs.push(doc);
      }
    });
    if (docs.length) {
      choose(docs[0]);
      Array.prototype.forEach.call(document.querySelectorAll("[data-doc-hint]"), function (hint) {
        hint.hidden = false;
      });
    }
    document.addEventListener("keydown", onKey);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
