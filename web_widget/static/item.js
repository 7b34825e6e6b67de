// An item's page: 문의하기 opens the deal room with its owner at once (logging in first if needed), with a
// first message ready in the composer.
(() => {
  "use strict";
  const ask = document.getElementById("ask");
  if (!ask) return;
  ask.addEventListener("click", async () => {
    ask.disabled = true;
    const res = await fetch(`/api/items/${ask.dataset.item}/room`, {
      method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" }, body: "{}",
    }).catch(() => null);
    if (res && res.status === 401) { location.href = `/login?next=${encodeURIComponent(location.pathname)}`; return; }
    const data = res ? await res.json().catch(() => ({})) : {};
    if (!res || !res.ok) {
      document.getElementById("ask-status").textContent = data.error ? data.error.message : "잠시 뒤 다시 눌러 주세요.";
      ask.disabled = false;
      return;
    }
    if (data.suggest) sessionStorage.setItem(`billi:suggest:${data.room.id}`, data.suggest);
    location.href = `/app#room=${data.room.id}`;
  });
})();
