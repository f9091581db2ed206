// The Trellis admin: "select all" and the selection count of the list page.
// Loaded from a file (no inline script), so pages work under a strict CSP. Everything here
// is an enhancement: without JavaScript the checkboxes and the action button still work.
(function () {
  "use strict";

  function setUp(form) {
    var all = form.querySelector("[data-select-all]");
    var boxes = Array.prototype.slice.call(form.querySelectorAll('input[name="selected"]'));
    var count = form.querySelector("[data-selection-count]");
    var run = form.querySelector("[data-needs-selection]");

    function update() {
      var checked = boxes.filter(function (box) { return box.checked; }).length;
      if (all) {
        all.checked = checked > 0 && checked === boxes.length;
        all.indeterminate = checked > 0 && checked < boxes.length;
      }
      if (count) {
        count.textContent = checked ? checked + " / " + boxes.length : "";
      }
      if (run) {
        run.disabled = checked === 0;
      }
      boxes.forEach(function (box) {
        var row = box.closest("tr");
        if (row) { row.classList.toggle("selected", box.checked); }
      });
    }

    if (all) {
      all.addEventListener("change", function () {
        boxes.forEach(function (box) { box.checked = all.checked; });
        update();
      });
    }
    boxes.forEach(function (box) { box.addEventListener("change", update); });
    update();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var forms = document.querySelectorAll("form.changelist");
    Array.prototype.forEach.call(forms, setUp);
  });
})();
