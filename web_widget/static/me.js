// My page: everything from one call; every value set as text.
(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const el = (tag, text) => { const n = document.createElement(tag); if (text !== undefined) n.textContent = String(text); return n; };
  const won = (n) => n.toLocaleString("ko-KR") + "원";
  const status = $("me-status");

  function list(id, rows, line) {
    const ul = $(id);
    ul.replaceChildren();
    if (!rows.length) { ul.append(el("li", "아직 없어요")); return; }
    for (const r of rows) ul.append(el("li", line(r)));
  }

  async function load() {
    const res = await fetch("/api/me/page", { credentials: "same-origin" });
    if (res.status === 401) { location.href = "/login"; return; }
    const p = await res.json();
    const rating = p.rating.count ? `★${p.rating.stars.toFixed(1)} (${p.rating.count})` : "평점 아직 없음";
    const onTime = p.trust.on_time_rate === null ? "-" : `${Math.round(p.trust.on_time_rate * 100)}%`;
    $("profile").textContent = `${p.profile.nickname} · ${rating} · 완료한 거래 ${p.trust.completed}건 · 제때 반납 ${onTime} · 파손 청구 ${p.trust.claims}건`;
    $("nick").value = p.profile.nickname;
    list("my-items", p.items, (i) => `#${i.id} ${i.title} — ${i.rental_status_label} · 하루 ${won(i.price_per_day)}`);
    const rental = (c) => `#${c.item_id} ${c.start_date} ~ ${c.end_date} · ${c.state} · ${won(c.total)}` +
      (c.operator_note ? ` · ${c.operator_note}` : "");
    list("borrowed", [...p.borrowed.current, ...p.borrowed.past], rental);
    list("lent", [...p.lent.current, ...p.lent.past], rental);
    list("wishes", p.wishes, (i) => `#${i.id} ${i.title}`);
    list("reviews", p.reviews.received, (r) => `${"★".repeat(r.stars)} ${r.author.nickname}: ${r.text}`);
    $("account").textContent = p.bank_account ? `${p.bank_account.bank_name} ${p.bank_account.account}` : "연결된 계좌가 없어요 (채팅에서 /결제 link)";
    $("unlink").hidden = !p.bank_account;
    const n = await (await fetch("/api/me/notifications", { credentials: "same-origin" })).json();
    list("notifications", n.notifications, (x) => `${x.read ? "" : "● "}${x.text}`);
    if (n.unread) fetch("/api/me/notifications/read", { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" }, body: "{}" });
    $("me").setAttribute("aria-busy", "false");
  }

  $("nick-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const res = await fetch("/api/me", { method: "PATCH", credentials: "same-origin", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ nickname: $("nick").value }) });
    const data = await res.json();
    status.textContent = res.ok ? "닉네임을 바꿨어요." : data.error.message;
    if (res.ok) load();
  });
  $("profile-photo").addEventListener("change", async () => {
    const form = new FormData();
    form.append("photo", $("profile-photo").files[0]);
    const res = await fetch("/api/me/photo", { method: "PUT", credentials: "same-origin", body: form });
    status.textContent = res.ok ? "프로필 사진을 바꿨어요." : (await res.json()).error.message;
  });
  $("unlink").addEventListener("click", async () => {
    const res = await fetch("/api/billipay/account", { method: "DELETE", credentials: "same-origin" });
    status.textContent = res.ok ? "계좌 연결을 해제했어요." : (await res.json()).error.message;
    load();
  });
  // -- the account: password change, log out everywhere, leaving (with confirmation) --------------------------
  const send = (method, path, body) => fetch(path, { method, credentials: "same-origin",
    headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}) });
  const messageOf = async (res) => { const d = await res.json().catch(() => ({})); return d.error ? d.error.message : (d.message || ""); };

  const pw = $("password-form");
  pw.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (pw.elements.new.value !== pw.elements.again.value) { status.textContent = "새 비밀번호 두 개가 달라요."; return; }
    const res = await send("POST", "/api/me/password", { current: pw.elements.current.value, new: pw.elements.new.value });
    status.textContent = await messageOf(res);
    if (res.ok) pw.reset();
  });
  $("logout-everywhere").addEventListener("click", async () => {
    if (!confirm("이 기기를 포함해 로그인된 모든 기기에서 로그아웃할까요?")) return;
    const res = await send("POST", "/api/auth/logout-everywhere");
    if (res.ok) { location.href = "/login"; return; }
    status.textContent = await messageOf(res);
  });
  const dialog = $("leave-dialog");
  $("leave").addEventListener("click", () => { $("leave-status").textContent = ""; dialog.showModal(); });
  $("leave-form").addEventListener("submit", async (e) => {
    if (e.submitter && e.submitter.value !== "leave") return;  // 취소 closes the dialog
    e.preventDefault();
    const res = await send("DELETE", "/api/me", { password: $("leave-form").elements.password.value, confirm: true });
    if (res.ok) { alert(await messageOf(res)); location.href = "/"; return; }
    $("leave-status").textContent = await messageOf(res);
  });
  load();
})();
