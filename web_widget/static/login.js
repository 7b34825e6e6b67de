// Log in or sign up with the JSON API; the session comes back as an HttpOnly cookie. A refusal is said beside the
// field it is about (forms.js), with focus moved there.
(() => {
  "use strict";
  const params = new URLSearchParams(location.search);
  // back where the person was (an item's page), only to a path of this site
  const wanted = params.get("next") || "";
  const next = params.get("embed") ? "/app?embed=1" : (/^\/(?![\/\\])[\w\-./]*$/.test(wanted) ? wanted : "/app");
  // A wrong e-mail or password is said under the password (which of the two is never told).
  for (const [id, path, fallback] of [["login", "/api/auth/login", "password"], ["signup", "/api/auth/signup", null]]) {
    const form = document.getElementById(id);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      BilliForms.clear(form);
      const body = Object.fromEntries(new FormData(form).entries());
      const res = await fetch(path, { method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) }).catch(() => null);
      if (res && res.ok) { location.href = next; return; }
      if (!res) { BilliForms.show(form, null, "연결이 끊겼어요. 잠시 뒤 다시 시도해 주세요."); return; }
      await BilliForms.showAnswer(form, res, fallback);
    });
  }
})();
