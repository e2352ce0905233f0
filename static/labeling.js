// The labeling workspace's keys. Every action has a key (shown on the page); the server answers with the next item.
(function () {
  "use strict";
  const $ = (selector) => document.querySelector(selector);
  const form = () => $("#answer-form");

  function choose(categoryId, path) {
    const chosen = $("#chosen-category");
    if (!chosen) return;
    chosen.value = categoryId;
    document.querySelectorAll(".suggestion, .pick").forEach((el) => el.classList.toggle("chosen", el.dataset.category === String(categoryId)));
    $("#chosen-path").textContent = path || "";
  }

  function send(action, extra) {
    const f = form();
    if (!f && action !== "undo") return;
    if (!f) {  // the empty-queue page still allows an undo
      htmx.ajax("POST", "/label/answer/", { target: "#item", swap: "outerHTML", values: { action: "undo" } });
      return;
    }
    f.querySelector("[name=action]").value = action;
    if (extra) Object.entries(extra).forEach(([k, v]) => { f.querySelector(`[name=${k}]`).value = v; });
    f.requestSubmit();
  }

  function movePick(step) {
    const picks = Array.from(document.querySelectorAll("#picker-results .pick"));
    if (!picks.length) return;
    let index = picks.findIndex((el) => el.classList.contains("active"));
    picks.forEach((el) => el.classList.remove("active"));
    index = Math.max(0, Math.min(picks.length - 1, index + step));
    picks[index].classList.add("active");
    picks[index].scrollIntoView({ block: "nearest" });
  }

  // htmx keeps the focus on an element with the same id across a swap: after the next item arrives, the search box
  // must not keep it, or the next key (1-5, s, u...) would be typed into it.
  document.body.addEventListener("htmx:afterSettle", (event) => {
    if (event.detail.target && event.detail.target.id === "item" && document.activeElement) document.activeElement.blur();
  });

  document.addEventListener("click", (event) => {
    const target = event.target.closest(".suggestion, .pick");
    if (target) choose(target.dataset.category, target.dataset.path);
  });

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const inPicker = event.target.id === "picker-input";
    if (inPicker) {
      if (event.key === "ArrowDown" || event.key === "ArrowUp") { event.preventDefault(); movePick(event.key === "ArrowDown" ? 1 : -1); }
      else if (event.key === "Enter") {
        event.preventDefault();
        const active = $("#picker-results .pick.active");
        if (active) { choose(active.dataset.category, active.dataset.path); send("label"); }
      } else if (event.key === "Escape") { event.target.blur(); }
      return;
    }
    if (["INPUT", "TEXTAREA", "SELECT"].includes(event.target.tagName)) return;
    if (/^[1-5]$/.test(event.key)) {
      const button = document.querySelector(`.suggestion[data-key="${event.key}"]`);
      if (button) { event.preventDefault(); choose(button.dataset.category, button.dataset.path); }
    } else if (event.key === "Enter") {
      if ($("#chosen-category") && $("#chosen-category").value) { event.preventDefault(); send("label"); }
    } else if (event.key === "/") {
      event.preventDefault(); const input = $("#picker-input"); if (input) input.focus();
    } else if (event.key === "s") {
      event.preventDefault(); send("skip");
    } else if (event.key === "f") {
      event.preventDefault();
      const reason = window.prompt("Why flag this item?");
      if (reason && reason.trim()) send("flag", { reason: reason.trim() });
    } else if (event.key === "x") {
      event.preventDefault(); send("dismiss");
    } else if (event.key === "u") {
      event.preventDefault(); send("undo");
    } else if (event.key === "?") {
      event.preventDefault(); const help = $("#help"); help.hidden = !help.hidden;
    }
  });
})();
