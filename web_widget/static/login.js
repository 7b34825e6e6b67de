// Log in or sign up with the JSON API; the session comes back as an HttpOnly cookie.
(() => {
  "use strict";
  const status = document.getElementById("auth-status");
  const params = new URLSearchParams(location.search);
  // back where the person was (an item's page), only to a path of this site
  const wanted = params.get("next") || "";
  const next = params.get("embed") ? "/app?embed=1" : (/^\/(?![\/\\])[\w\-./]*$/.test(wanted) ? wanted : "/app");
  for (const [id, path] of [["login", "/api/auth/login"], ["signup", "/api/auth/signup"]]) {
    const form = document.getElementById(id);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      status.textContent = "";
      const body = Object.fromEntries(new FormData(form).entries());
      const res = await fetch(path, { method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      if (res.ok) { location.href = next; return; }
      const data = await res.json().catch(() => ({}));
      status.textContent = data.error ? data.error.message : "잠시 뒤 다시 시도해 주세요.";
    });
  }
})();
