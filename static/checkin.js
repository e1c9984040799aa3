// Ticket Hub: the door's camera scanner. Only where the browser can read QR codes itself
// (the standard BarcodeDetector API) and has a camera does the "Scan with camera" button
// appear; everywhere else the page works as it is: type or paste the code, or use a
// handheld scanner (it types the code and presses Enter). No library, no inline script.
(function () {
  "use strict";

  var SCAN_EVERY_MS = 250;
  var SAME_CODE_PAUSE_MS = 4000; // a code held in front of the camera is sent once

  var form, input, startButton, stopButton, panel, video, statusLine;
  var detector = null, stream = null, timer = null, lastCode = "", lastSentAt = 0;

  function say(text) {
    if (statusLine) statusLine.textContent = text;
  }

  function send(code) {
    input.value = code;
    // requestSubmit fires the submit event, so htmx (when loaded) sends it; else a plain POST.
    if (typeof form.requestSubmit === "function") form.requestSubmit();
    else form.submit();
  }

  function scan() {
    timer = null;
    if (!stream) return;
    detector.detect(video).then(function (codes) {
      if (!stream) return;
      var code = codes.length ? codes[0].rawValue : "";
      var now = Date.now();
      if (code && (code !== lastCode || now - lastSentAt > SAME_CODE_PAUSE_MS)) {
        lastCode = code;
        lastSentAt = now;
        send(code);
      }
      timer = setTimeout(scan, SCAN_EVERY_MS);
    }, function () {
      // No frame yet (the video is still starting): try again shortly.
      if (stream) timer = setTimeout(scan, SCAN_EVERY_MS * 2);
    });
  }

  function stop() {
    if (timer) clearTimeout(timer);
    timer = null;
    if (stream) stream.getTracks().forEach(function (track) { track.stop(); });
    stream = null;
    video.srcObject = null;
    panel.hidden = true;
    startButton.hidden = false;
  }

  function start() {
    startButton.disabled = true;
    say("Starting the camera…");
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false })
      .then(function (media) {
        stream = media;
        video.srcObject = media;
        panel.hidden = false;
        startButton.hidden = true;
        return video.play();
      })
      .then(function () {
        say("Point the camera at the ticket's QR code.");
        scan();
      })
      .catch(function (error) {
        stop();
        say("The camera couldn't start (" + (error && error.name || "error") +
            "). Type or paste the code instead.");
      })
      .then(function () { startButton.disabled = false; });
  }

  function feedback() {
    var result = document.getElementById("checkin-result");
    var outcome = result && result.dataset.outcome;
    if (!outcome || typeof navigator.vibrate !== "function") return;
    // One short buzz to admit, a long pattern to refuse: the door is a noisy place.
    navigator.vibrate(outcome === "admitted" ? 120 : [200, 100, 200, 100, 400]);
  }

  function enhanceForm() {
    // The answer to an empty field is a 400 with a message: show it like any answer.
    // (htmx fires beforeSwap on the target; the form that asked is requestConfig.elt.)
    document.addEventListener("htmx:beforeSwap", function (evt) {
      var asker = evt.detail.requestConfig && evt.detail.requestConfig.elt;
      if (asker === form && evt.detail.xhr && evt.detail.xhr.status === 400) {
        evt.detail.shouldSwap = true;
        evt.detail.isError = false;
      }
    });
    // Ready for the next ticket: an empty field, focused unless the camera is reading. A
    // busy server (503) leaves the code in place, so pressing Check in again retries it.
    document.addEventListener("htmx:afterRequest", function (evt) {
      if (evt.detail.elt !== form) return;
      if (evt.detail.xhr && evt.detail.xhr.status === 200) input.value = "";
      if (!stream) input.focus();
    });
    document.addEventListener("htmx:afterSettle", feedback);
  }

  function enhanceCamera() {
    if (!("BarcodeDetector" in window) || !navigator.mediaDevices ||
        typeof navigator.mediaDevices.getUserMedia !== "function") return;
    var formats = typeof window.BarcodeDetector.getSupportedFormats === "function"
      ? window.BarcodeDetector.getSupportedFormats() : Promise.resolve(["qr_code"]);
    formats.then(function (supported) {
      if (supported.indexOf("qr_code") === -1) return;
      detector = new window.BarcodeDetector({ formats: ["qr_code"] });
      startButton.hidden = false;
      startButton.addEventListener("click", start);
      stopButton.addEventListener("click", function () {
        stop();
        say("Camera stopped.");
        startButton.focus();
      });
      window.addEventListener("pagehide", stop);
    }).catch(function () { /* no detector after all: the form still works */ });
  }

  document.addEventListener("DOMContentLoaded", function () {
    form = document.getElementById("checkin-form");
    if (!form) return;
    input = form.querySelector("input[name=token]");
    startButton = document.getElementById("scan-start");
    stopButton = document.getElementById("scan-stop");
    panel = document.getElementById("scanner");
    video = document.getElementById("scanner-video");
    statusLine = document.getElementById("scanner-status");
    enhanceForm();
    enhanceCamera();
  });
})();
