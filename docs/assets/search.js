// Client-side search over the prebuilt index (search-index.js sets window.TRADELAB_SEARCH): no server, works from
// file:// as well as over HTTP. Every word typed must occur in a section's title, page or text; titles weigh most.
(function () {
  const box = document.getElementById("search");
  const list = document.getElementById("search-results");
  if (!box || !list) return;
  const root = box.dataset.root || "";
  const index = (window.TRADELAB_SEARCH || []).map(e => ({...e, lt: e.t.toLowerCase(), lp: e.p.toLowerCase(), lx: e.x.toLowerCase()}));
  const esc = s => s.replace(/[&<>"]/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));

  function score(entry, words) {
    let total = 0;
    for (const w of words) {
      const s = (entry.lt.includes(w) ? 10 : 0) + (entry.lp.includes(w) ? 3 : 0) + (entry.lx.includes(w) ? 1 : 0);
      if (!s) return 0;
      total += s + (entry.lt === w ? 20 : 0);
    }
    return total;
  }

  function snippet(entry, words) {
    const at = Math.max(0, Math.min(...words.map(w => entry.lx.indexOf(w)).filter(i => i >= 0)) - 40);
    return (at ? "…" : "") + entry.x.slice(at, at + 140) + (entry.x.length > at + 140 ? "…" : "");
  }

  function search() {
    const words = box.value.toLowerCase().split(/\s+/).filter(Boolean);
    if (!words.length) { list.hidden = true; list.innerHTML = ""; return; }
    const found = index.map(e => [score(e, words), e]).filter(([s]) => s > 0).sort((a, b) => b[0] - a[0]).slice(0, 15);
    list.innerHTML = found.length
      ? found.map(([, e]) => `<a class="hit" href="${root}${e.u}"><b>${esc(e.t)}</b><span class="where">${esc(e.p)}</span>` +
          `<span class="snippet">${esc(snippet(e, words))}</span></a>`).join("")
      : `<p class="none">Nothing matches “${esc(box.value)}”.</p>`;
    list.hidden = false;
  }

  box.addEventListener("input", search);
  box.addEventListener("keydown", ev => {
    if (ev.key === "Enter") { const first = list.querySelector("a"); if (first) window.location.href = first.href; }
    if (ev.key === "Escape") { box.value = ""; search(); }
  });
  document.addEventListener("keydown", ev => {
    if (ev.key === "/" && document.activeElement !== box) { ev.preventDefault(); box.focus(); }
  });
})();
