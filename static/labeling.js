// The labeling workspace's and the review page's keys. Every action has a key (shown on the page).
(function () {
  "use strict";
  const $ = (selector) => document.querySelector(selector);
  const form = () => $("#answer-form");
  try { if (localStorage.getItem("shelfwise-evidence")) document.body.classList.add("show-evidence"); } catch (_) { /* private mode */ }

  function choose(categoryId, path) {
    const chosen = $("#chosen-category");
    if (!chosen) return;
    chosen.value = categoryId;
    document.querySelectorAll(".suggestion, .pick").forEach((el) => el.classList.toggle("chosen", el.dataset.category === String(categoryId)));
    $("#chosen-path").textContent = path || "";
  }

  // --- The workspace: the item after this one is fetched and leased ahead ("on deck"). An answer shows it at once
  // and is saved in the background; answers are sent one at a time, in order. If the server refuses one (the product
  // changed, the lease ran out), its page replaces the item, with the reason. The review page has no deck: its form
  // posts through htmx.
  const state = $("#save-state");
  const workspace = Boolean(state && state.dataset.deckUrl);
  let deck = null;  // the prepared #item, as HTML; "" when the queue had nothing more
  let deckLoading = null;
  let chain = Promise.resolve();
  let pending = 0;

  function csrf() {
    const input = document.querySelector("[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    try { return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || ""; } catch (e) { return ""; }
  }

  function show(html) {
    const holder = document.createElement("template");
    holder.innerHTML = html.trim();
    const item = holder.content.querySelector("#item");
    if (!item) return;
    $("#item").replaceWith(item);
    htmx.process(item);
    if (document.activeElement) document.activeElement.blur();
    loadDeck();
  }

  function saving(delta, text) {
    pending += delta;
    document.body.dataset.pending = String(pending);
    if (state) state.textContent = pending ? state.dataset.saving : text;
  }

  function loadDeck() {
    if (!workspace || deck !== null || deckLoading || !$("#answer-form")) return;
    deckLoading = fetch(state.dataset.deckUrl + window.location.search, { headers: { "HX-Request": "true" } })
      .then((r) => (r.status === 200 ? r.text() : ""))
      .then((html) => { deck = html; })
      .catch(() => { deck = null; })
      .finally(() => { deckLoading = null; });
  }

  function freshen(html) {
    // The server's answer carries the next item to put on deck, and the annotator's counts as they are now.
    const holder = document.createElement("template");
    holder.innerHTML = html.trim();
    deck = holder.content.querySelector("#item") ? html : "";
    ["#stats", "#last-answer"].forEach((selector) => {
      const fresh = holder.content.querySelector(selector);
      const shown = $("#item " + selector);
      if (fresh && shown) shown.replaceWith(fresh);
    });
  }

  async function post(data) {
    const response = await fetch(state.dataset.answerUrl, {
      method: "POST", body: data, headers: { "X-CSRFToken": csrf(), "HX-Request": "true" },
    });
    return { outcome: response.headers.get("X-Answer") || (response.ok ? "saved" : "refused"), html: await response.text() };
  }

  async function answer(data) {
    if (deckLoading) await deckLoading;
    // A second Enter on an item already answered (it has left the screen) is dropped, not sent for the next one.
    const shown = $("#item") && $("#item").dataset.product;
    if (data.get("action") !== "undo" && data.get("product") !== shown) return;
    const ahead = data.get("action") !== "undo" && deck;
    saving(1);
    try {
      if (ahead) {
        data.set("deck", "1");
        show(deck);
        deck = null;  // being replaced by the answer's response
        const { outcome, html } = await post(data);
        if (outcome === "saved") freshen(html);
        else { deck = null; show(html); }
      } else {
        deck = null;  // an undo lets the prepared item go (the server releases it)
        const { html } = await post(data);
        show(html);
      }
      saving(-1, state.dataset.saved);
    } catch (error) {
      saving(-1, state.dataset.failed);
      window.location.reload();
    }
  }

  function send(action, extra) {
    const f = form();
    if (!workspace) {  // the review page
      if (!f) return;
      f.querySelector("[name=action]").value = action;
      if (extra) Object.entries(extra).forEach(([k, v]) => { f.querySelector(`[name=${k}]`).value = v; });
      f.requestSubmit();
      return;
    }
    if (action === "dismiss") return;  // x belongs to the review page
    const data = f ? new FormData(f) : new FormData();
    if (!f) data.set("csrfmiddlewaretoken", csrf());
    if (!f && action !== "undo") return;
    data.set("action", action);
    if (extra) Object.entries(extra).forEach(([k, v]) => data.set(k, v));
    chain = chain.then(() => answer(data));
  }

  if (workspace) {
    loadDeck();
    document.addEventListener("submit", (event) => {  // the Confirm button
      if (event.target.id !== "answer-form") return;
      event.preventDefault();
      if ($("#chosen-category").value) send("label");
    });
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
    } else if (event.key === "e") {
      // The labels behind each suggestion: shown or hidden for every item from now on (remembered on this device).
      event.preventDefault();
      const shown = document.body.classList.toggle("show-evidence");
      try { localStorage.setItem("shelfwise-evidence", shown ? "1" : ""); } catch (_) { /* private mode */ }
    } else if (event.key === "?") {
      event.preventDefault(); const help = $("#help"); help.hidden = !help.hidden;
    }
  });
})();
