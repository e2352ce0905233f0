// Behaviour every page shares, as delegated listeners: the Content-Security-Policy allows no inline handlers, and
// delegation also covers what htmx swaps in later.
(function () {
  "use strict";

  document.addEventListener("change", (event) => {
    // <select data-autosubmit>: the language switch, the workspace's queue.
    const select = event.target.closest("select[data-autosubmit]");
    if (select && select.form) select.form.submit();
  });

  document.addEventListener("click", (event) => {
    // The type-ahead picker's options: fill the form's category, show its path, close the list.
    const option = event.target.closest("button[data-category-option]");
    if (option) {
      const form = option.closest("form");
      form.querySelector("[name=category]").value = option.dataset.id;
      const search = document.getElementById("category-search");
      if (search) search.value = option.dataset.path;
      option.parentElement.replaceChildren();
      if (form.dataset.autosubmit) form.requestSubmit();
      return;
    }
    // The taxonomy browser's expand/collapse arrows (htmx loads the children on the first click).
    const toggle = event.target.closest("button[data-subtree-toggle]");
    if (toggle) {
      const open = toggle.textContent === "▸";
      toggle.textContent = open ? "▾" : "▸";
      toggle.parentElement.querySelector(".sub").hidden = !open;
      return;
    }
    const back = event.target.closest("a[data-history-back]");
    if (back && window.history.length > 1) {
      event.preventDefault();
      window.history.back();
    }
  });
})();
