(() => {
  const form = document.getElementById("filter");
  const state = form.elements.state, q = form.elements.q;
  const note = document.getElementById("refresh");
  const every = Number(document.body.dataset.refresh) * 1000;
  let refreshes = 0;
  const fromHash = new URLSearchParams(location.hash.slice(1));
  if (fromHash.has("state")) state.value = fromHash.get("state");
  if (fromHash.has("q")) q.value = fromHash.get("q");

  function filtering() { return Boolean(state.value || q.value.trim()); }

  function apply() {
    const words = q.value.toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    for (const row of document.querySelectorAll("#targets tbody tr")) {
      const text = Array.from(row.cells, (c) => c.textContent).join(" ").toLowerCase();
      const show = (!state.value || row.className === state.value)
        && words.every((w) => text.includes(w));
      row.hidden = !show;
      if (show) shown += 1;
    }
    document.getElementById("empty").hidden = shown > 0;
    note.textContent = filtering()
      ? "Auto-refresh paused while filtering."
      : `Refreshes every ${every / 1000} s.`;
  }

  function remember() {
    const url = new URL(location.href);
    url.hash = "";
    url.search = "";
    if (state.value) url.searchParams.set("state", state.value);
    if (q.value.trim()) url.searchParams.set("q", q.value.trim());
    history.replaceState(null, "", url);
  }

  async function refresh() {
    if (filtering()) return;
    try {
      const response = await fetch(location.pathname, { cache: "no-store" });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      for (const id of ["headline", "meta", "summary", "targets"]) {
        document.getElementById(id).replaceWith(page.getElementById(id));
      }
      document.title = page.title;
      document.body.classList.remove("stale");
      refreshes += 1;
      document.body.dataset.refreshes = String(refreshes);
      apply();
    } catch (error) {
      document.body.classList.add("stale");
      note.textContent = `Refresh failed (${error.message}); showing older data.`;
    }
  }

  form.addEventListener("input", () => { apply(); remember(); });
  form.addEventListener("submit", (event) => { event.preventDefault(); apply(); remember(); });
  apply();
  setInterval(refresh, every);
})();
