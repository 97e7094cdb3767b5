/* Handwritten signatures (审签 第十一条, 退办签字 第十五条) on a tablet or with a mouse.
   The pad's PNG goes into the form's hidden "signature" field when the form is submitted. */
(function () {
  "use strict";
  function setUp(box) {
    var canvas = box.querySelector("canvas");
    var input = box.querySelector("input[name=signature]");
    var note = box.querySelector("[data-sign-note]");
    var pad = new window.SignaturePad(canvas, { penColor: "#111", minWidth: 1.2, maxWidth: 3.2 });
    var size = "";
    function resize() {
      // Only when the canvas really changes size (rotation), and keep what was drawn:
      // browsers also fire "resize" when the address bar hides while scrolling.
      var next = canvas.offsetWidth + "x" + canvas.offsetHeight;
      if (next === size) { return; }
      size = next;
      var strokes = pad.toData();
      var ratio = Math.max(window.devicePixelRatio || 1, 1);
      canvas.width = canvas.offsetWidth * ratio;
      canvas.height = canvas.offsetHeight * ratio;
      canvas.getContext("2d").scale(ratio, ratio);
      pad.clear();
      if (strokes.length) { pad.fromData(strokes); }
    }
    window.addEventListener("resize", resize);
    resize();
    box.querySelector("[data-sign-clear]").addEventListener("click", function () { pad.clear(); input.value = ""; });
    box.closest("form").addEventListener("submit", function (event) {
      if (pad.isEmpty()) {
        event.preventDefault();
        note.textContent = "请先在签名框内手写签名。";
        return;
      }
      note.textContent = "";
      input.value = pad.toDataURL("image/png");
    });
  }
  document.querySelectorAll("[data-signature-pad]").forEach(setUp);
})();
