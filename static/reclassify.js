// "Select the page": one checkbox ticks every proposal on the page (no inline handlers: the page stays CSP-friendly).
document.addEventListener("change", (event) => {
  if (!event.target.matches("[data-select-all]")) return;
  for (const box of document.querySelectorAll('input[name="ids"]')) box.checked = event.target.checked;
});
