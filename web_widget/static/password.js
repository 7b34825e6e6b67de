// Forgotten password: ask for a reset link, then (from the mailed link) choose a new password.
// The link's token rides in the fragment (#…), so it never reaches a server log; it is read here and sent once.
// A refusal is said beside its field (forms.js); what went well is said in the status line.
(() => {
  "use strict";
  const status = document.getElementById("password-status");
  const post = (path, body) => fetch(path, { method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) }).catch(() => null);
  const offline = (form) => BilliForms.show(form, null, "연결이 끊겼어요. 잠시 뒤 다시 시도해 주세요.");

  const forgot = document.getElementById("forgot");
  if (forgot) {
    forgot.addEventListener("submit", async (e) => {
      e.preventDefault();
      status.textContent = "";
      BilliForms.clear(forgot);
      const res = await post("/api/auth/password-reset", { email: forgot.elements.email.value });
      if (!res) { offline(forgot); return; }
      if (!res.ok) { await BilliForms.showAnswer(forgot, res, "email"); return; }
      const data = await res.json().catch(() => ({}));
      status.textContent = data.message || "";
    });
  }

  const reset = document.getElementById("reset");
  if (reset) {
    const token = location.hash.slice(1);
    history.replaceState(null, "", location.pathname);  // out of the address bar and the history
    if (!token) status.textContent = "메일로 받은 링크를 열어 주세요. 링크가 없다면 새 링크를 받아 주세요.";
    reset.addEventListener("submit", async (e) => {
      e.preventDefault();
      BilliForms.clear(reset);
      if (reset.elements.password.value !== reset.elements.again.value) {
        BilliForms.show(reset, "again", "두 비밀번호가 달라요. 같은 비밀번호를 두 번 적어 주세요.");
        return;
      }
      const res = await post("/api/auth/password-reset/confirm", { token, password: reset.elements.password.value });
      if (!res) { offline(reset); return; }
      if (res.ok) { status.textContent = "비밀번호를 바꿨어요. 채팅으로 이동할게요."; location.href = "/app"; return; }
      await BilliForms.showAnswer(reset, res, "password");
    });
  }
})();
