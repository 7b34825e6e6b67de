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

  // "2026-12-24" → "12월 24일"
  const day = (iso) => { const [, m, d] = iso.split("-").map(Number); return `${m}월 ${d}일`; };
  const dates = (c) => c.start_date === c.end_date ? day(c.start_date) : `${day(c.start_date)} ~ ${day(c.end_date)} (${c.days}일)`;

  // A card: the photo and title linking to the item's page, lines of text, and links (the deal room).
  function card(photo, title, href, lines, links) {
    const li = el("li");
    li.className = "row-card";
    const img = el("img");
    img.alt = "";
    img.loading = "lazy";
    if (photo) img.src = photo;
    const body = el("div");
    body.className = "body";
    const h = el("h3");
    if (href) { const a = el("a", title); a.href = href; h.append(a); } else h.textContent = title;
    body.append(h);
    for (const [cls, text] of lines) { if (!text) continue; const p = el("p", text); if (cls) p.className = cls; body.append(p); }
    if (links.length) {
      const row = el("p");
      row.className = "links";
      for (const [text, url] of links) { const a = el("a", text); a.href = url; row.append(a); }
      body.append(row);
    }
    li.append(img, body);
    return li;
  }

  function cards(id, rows, make) {
    const ul = $(id);
    ul.replaceChildren();
    if (!rows.length) { const li = el("li", "아직 없어요"); li.className = "empty"; ul.append(li); return; }
    for (const r of rows) ul.append(make(r));
  }

  const title = (c) => c.item.title || `물건 #${c.item_id}`;
  const money = (c) => c.money ? `${c.money.label} ${won(c.money.amount)} · ${c.money.state}` : "";
  function deal(c, role) {
    const who = role === "borrower" ? `빌려준 이웃 ${c.other.nickname}` : `빌린 이웃 ${c.other.nickname}`;
    return card(c.item.thumbnail, title(c), c.item.url, [
      ["state", c.state_label],
      ["", `${dates(c)} · ${who}`],
      ["", `대여료 ${won(c.rent + c.extra_rent)} · 보증금 ${won(c.deposit)}`],
      ["money", money(c)],
      ["note", c.operator_note],
    ], [["대화방 열기", c.room_url]]);
  }

  async function load() {
    const res = await fetch("/api/me/page", { credentials: "same-origin" });
    if (res.status === 401) { location.href = "/login"; return; }
    const p = await res.json();
    const onTime = p.trust.on_time_rate === null ? "-" : `${Math.round(p.trust.on_time_rate * 100)}%`;
    $("profile-name").textContent = p.profile.nickname;
    $("profile-rating").textContent = p.rating.label;
    $("profile-rating").title = p.rating.hint;  // one line explaining the score
    $("profile").textContent = `완료한 거래 ${p.trust.completed}건 · 제때 반납 ${onTime} · 파손 청구 ${p.trust.claims}건`;
    if (p.profile.profile_photo) { $("avatar").src = p.profile.profile_photo; $("avatar").hidden = false; }
    $("nick").value = p.profile.nickname;
    const borrowed = [...p.borrowed.current, ...p.borrowed.past];
    const lent = [...p.lent.current, ...p.lent.past];
    const owed = [...lent.map((c) => [c, "owner"]), ...borrowed.map((c) => [c, "borrower"])].filter(([c]) => c.money);
    cards("money", owed, ([c]) => card(c.item.thumbnail, `${c.money.label} ${won(c.money.amount)}`, null, [
      ["money", c.money.state], ["", `${title(c)} · ${dates(c)} · ${c.state_label}`]], [["대화방 열기", c.room_url]]));
    cards("borrowed", borrowed, (c) => deal(c, "borrower"));
    cards("lent", lent, (c) => deal(c, "owner"));
    cards("my-items", p.items, (i) => card(i.thumbnail, i.title, `/items/${i.id}`, [
      ["state", i.rental_status_label], ["", `하루 ${won(i.price_per_day)} · 보증금 ${won(i.deposit)}`]], []));
    cards("wishes", p.wishes, (i) => card(i.thumbnail, i.title, `/items/${i.id}`, [
      ["", `하루 ${won(i.price_per_day)} · 보증금 ${won(i.deposit)}`]], []));
    list("reviews", p.reviews.received, (r) => `${"★".repeat(r.stars)} ${r.author.nickname}: ${r.text}`);
    $("account").textContent = p.bank_account ? `${p.bank_account.bank_name} ${p.bank_account.account}` : "연결된 계좌가 없어요. 처음 결제할 때 채팅에서 연결해요.";
    $("unlink").hidden = !p.bank_account;
    const n = await (await fetch("/api/me/notifications", { credentials: "same-origin" })).json();
    list("notifications", n.notifications, (x) => `${x.read ? "" : "● "}${x.text}`);
    if (n.unread) fetch("/api/me/notifications/read", { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" }, body: "{}" });
    $("me").setAttribute("aria-busy", "false");
  }

  $("nick-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const res = await fetch("/api/me", { method: "PATCH", credentials: "same-origin", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ nickname: $("nick").value }) });
    if (!res.ok) { await BilliForms.showAnswer($("nick-form"), res, "nickname"); return; }
    BilliForms.clear($("nick-form"));
    status.textContent = "닉네임을 바꿨어요.";
    load();
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
    BilliForms.clear(pw);
    if (pw.elements.new.value !== pw.elements.again.value) { BilliForms.show(pw, "again", "새 비밀번호 두 개가 달라요."); return; }
    const res = await send("POST", "/api/me/password", { current: pw.elements.current.value, new: pw.elements.new.value });
    if (!res.ok) { await BilliForms.showAnswer(pw, res, "current"); return; }
    status.textContent = await messageOf(res);
    pw.reset();
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
