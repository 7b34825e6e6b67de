// 빌리마켓 chat app. Every piece of user or bot content is put on the page as text (textContent, attributes
// set one by one) — never as HTML. Links in messages are not turned into anything clickable.
(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const me = { id: Number(document.body.dataset.userId), nickname: document.body.dataset.nickname };
  const el = (tag, cls, text) => {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  };
  const store = {
    get(key, fallback) { try { return JSON.parse(localStorage.getItem(key)) ?? fallback; } catch { return fallback; } },
    set(key, value) { try { localStorage.setItem(key, JSON.stringify(value)); } catch { /* private mode */ } },
  };
  const seenKey = `billi:seen:${me.id}`;
  const queueKey = `billi:queue:${me.id}`;
  const state = {
    rooms: new Map(),          // id → room from /api/rooms
    messages: new Map(),       // room id → Map(seq → message)
    seen: store.get(seenKey, {}),      // room id → last seq this device has
    queue: store.get(queueKey, []),    // messages typed while offline: {room, text, client_msg_id, failed}
    current: null,
    readBy: new Map(),         // room id → the other person's read seq
    commands: [],
    typingTimer: null,
    wishCounts: new Map(),     // item id → its 찜 count as a press here last heard it
  };
  const log = $("log");
  const socket = io({ transports: ["websocket"], withCredentials: true });

  // -- rooms ------------------------------------------------------------------------------------------
  async function loadRooms() {
    const res = await fetch("/api/rooms", { credentials: "same-origin" });
    if (res.status === 401) { location.href = "/login"; return; }
    const data = await res.json();
    state.rooms = new Map(data.rooms.map((r) => [r.id, r]));
    renderRooms();
    // /app#room=<id> (where the bank's return page sends people back) opens that room
    const wanted = Number((location.hash.match(/^#room=(\d+)$/) || [])[1]);
    if (state.current === null && data.rooms.length) {
      openRoom(state.rooms.has(wanted) ? wanted : data.rooms[0].id, window.innerWidth > 720 || state.rooms.has(wanted));
    }
  }

  function renderRooms() {
    const list = $("room-list");
    list.replaceChildren();
    for (const r of state.rooms.values()) {
      const li = el("li");
      const b = el("button", "room" + (r.id === state.current ? " active" : ""));
      b.type = "button";
      b.dataset.room = r.id;
      if (r.kind === "deal" && r.item && r.item.thumbnail) {
        const img = el("img", "thumb"); img.src = r.item.thumbnail; img.alt = ""; b.append(img);
      } else {
        b.append(el("span", "thumb bot-face", r.kind === "assistant" ? "빌" : "거래"));
      }
      const text = el("span", "room-text");
      const title = r.kind === "assistant" ? "빌리 도우미" : (r.other ? r.other.nickname : "거래");
      const top = el("span", "room-top");
      top.append(el("strong", "", title));
      if (r.last_message && r.last_message.ts) top.append(el("time", "room-time", when(r.last_message.ts)));
      text.append(top);
      const second = r.kind === "deal" && r.item ? `${r.item.title} · ` : "";
      if (r.last_message || second) text.append(el("span", "last", second + (r.last_message ? (r.last_message.text || "사진") : "")));
      b.append(text);
      if (r.kind === "deal" && r.deal_chip) b.append(el("span", "chip", r.deal_chip));
      if (r.unread) b.append(el("span", "badge", r.unread > 99 ? "99+" : r.unread));
      b.setAttribute("aria-label", `${title}${r.unread ? `, 안 읽은 메시지 ${r.unread}개` : ""}`);
      b.addEventListener("click", () => openRoom(r.id, true));
      li.append(b);
      list.append(li);
    }
  }

  // "14:05" today, "어제", "11월 28일" before
  function when(ts) {
    const d = new Date(ts), now = new Date();
    if (d.toDateString() === now.toDateString()) return d.toLocaleTimeString("ko-KR", { hour: "2-digit", minute: "2-digit" });
    const y = new Date(now.getTime() - 86400000);
    if (d.toDateString() === y.toDateString()) return "어제";
    return `${d.getMonth() + 1}월 ${d.getDate()}일`;
  }

  async function openRoom(id, focus) {
    state.current = id;
    document.body.classList.add("in-room");
    const r = state.rooms.get(id);
    $("room-title").textContent = r ? (r.kind === "assistant" ? "빌리 도우미" : `${r.other ? r.other.nickname : "거래"}`) : "대화방";
    // the date picker is for the person who would borrow, in a deal room (an item in context)
    $("dates-open").hidden = !(r && r.kind === "deal" && r.role === "borrower");
    $("room-menu").hidden = !(r && r.kind === "deal" && r.other);
    $("room-menu").open = false;
    state.deal = null;
    $("deal").hidden = true;
    log.replaceChildren();
    if (r && r.kind === "deal") loadDeal(id);
    await join(id);
    renderLog(id);
    if (r) { r.unread = 0; renderRooms(); }
    const suggested = sessionStorage.getItem(`billi:suggest:${id}`);
    if (suggested !== null) {  // 문의하기 brought the person here: a first message to send or change
      sessionStorage.removeItem(`billi:suggest:${id}`);
      if (!$("text").value) $("text").value = suggested;
    }
    if (focus) $("text").focus();
  }

  // -- the deal pinned on top of a deal room ------------------------------------------------------------
  async function loadDeal(id) {
    const res = await fetch(`/api/rooms/${id}/deal`, { credentials: "same-origin" });
    if (!res.ok || state.current !== id) return;
    const { deal } = await res.json();
    state.deal = deal;
    const box = $("deal");
    if (!deal) { box.hidden = true; return; }
    if (deal.item.thumbnail) $("deal-img").src = deal.item.thumbnail; else $("deal-img").removeAttribute("src");
    $("deal-title").textContent = deal.item.title;
    const c = deal.contract;
    $("deal-dates").textContent = c ? c.dates : `하루 ${won(deal.item.price_per_day)} · 보증금 ${won(deal.item.deposit)}`;
    $("deal-money").textContent = c ? `${c.amount_label} ${won(c.amount)}` : "";
    $("deal-appt").textContent = c && c.appointment ? `약속 ${c.appointment}` : "";
    $("deal-appt").hidden = !(c && c.appointment);
    $("deal-chip").textContent = deal.chip;
    const actions = $("deal-actions");
    actions.replaceChildren();
    if (deal.actions.length) actions.append(buttonsNode(deal.actions, null));
    box.hidden = false;
  }
  const won = (n) => `${Number(n).toLocaleString("ko-KR")}원`;

  async function join(id) {
    const after = state.seen[id];
    const r = state.rooms.get(id);
    // the assistant room, the first time this browser opens it: the bot's welcome comes first (said once, whoever
    // asks again, and only to a newcomer — notices may have come before it)
    const welcome = Boolean(r && r.kind === "assistant" && !welcomed(id));
    const ack = await socket.timeout(10000).emitWithAck("join", after ? { room: id, after_seq: after } : { room: id, welcome });
    if (!ack.ok) return;
    if (welcome) try { localStorage.setItem(`billi.welcomed.${id}`, "1"); } catch (e) { /* private mode: asked again */ }
    const box = state.messages.get(id) || new Map();
    state.messages.set(id, box);
    for (const m of ack.messages) box.set(m.seq, m);
    if (!after && ack.messages.length) {  // the latest page (contiguous): the prefix this device holds ends here
      state.seen[id] = ack.messages[ack.messages.length - 1].seq; store.set(seenKey, state.seen);
    }
    remember(id);
    if (ack.has_more) catchUp(id);  // more than a page was missed
    if (box.size === 0 || (after && ack.messages.length === 0 && box.size === 0)) {
      const page = await socket.timeout(10000).emitWithAck("history", { room: id, limit: 50 });
      if (page.ok) for (const m of page.messages) box.set(m.seq, m);
    }
  }

  // What this device has of a room is a gap-free run of seqs (another member's private messages come as
  // {seq, hidden} placeholders, so there are no holes); state.seen is where that run ends. A message past it
  // means something was missed: the gap is fetched, never skipped.
  function remember(room) {
    const box = state.messages.get(room);
    if (!box) return;
    // a room this device never caught up with starts where its first page began (a page is contiguous)
    let upto = state.seen[room] !== undefined ? state.seen[room] : (box.size ? Math.min(...box.keys()) - 1 : 0);
    while (box.has(upto + 1)) upto++;
    if (upto !== state.seen[room]) { state.seen[room] = upto; store.set(seenKey, state.seen); }
    const newest = Math.max(0, ...box.keys());
    if (newest > upto) catchUp(room);
  }

  const catching = new Set();
  async function catchUp(room) {
    if (catching.has(room) || !socket.connected) return;
    catching.add(room);
    try {
      for (let round = 0; round < 50; round++) {
        const after = state.seen[room] || 0;
        const page = await socket.timeout(10000).emitWithAck("history", { room, after_seq: after, limit: 100 }).catch(() => null);
        if (!page || !page.ok) return;
        const box = state.messages.get(room) || new Map();
        state.messages.set(room, box);
        for (const m of page.messages) if (!box.has(m.seq)) box.set(m.seq, m);
        const before = state.seen[room];
        remember(room);
        if (room === state.current && page.messages.length) renderLog(room);
        if (!page.has_more || state.seen[room] === before) return;
      }
    } finally {
      catching.delete(room);
      // a gap that opened while this ran is fetched too
      const box = state.messages.get(room);
      if (box && Math.max(0, ...box.keys()) > (state.seen[room] || 0) && socket.connected) setTimeout(() => catchUp(room), 200);
    }
  }

  // -- messages ---------------------------------------------------------------------------------------
  function renderLog(id) {
    log.replaceChildren();
    const box = state.messages.get(id) || new Map();
    let day = null;
    for (const m of [...box.values()].sort((a, b) => a.seq - b.seq)) {
      if (m.hidden) continue;  // another member's private message: only its seq is known here
      const d = new Date(m.ts).toLocaleDateString("ko-KR", { year: "numeric", month: "long", day: "numeric", weekday: "short" });
      if (d !== day) { log.append(el("div", "day", d)); day = d; }
      log.append(messageNode(m));
    }
    for (const q of state.queue.filter((q) => q.room === id)) log.append(pendingNode(q));
    settle();
    markRead(id);
  }

  function messageNode(m) {
    const mine = m.sender.kind === "user" && m.sender.id === me.id;
    const node = el("article", `msg ${m.sender.kind}${mine ? " mine" : ""}`);
    node.dataset.seq = m.seq;
    if (!mine) node.append(el("div", "who", m.sender.name || (m.sender.kind === "bot" ? "빌리" : "")));
    if (m.audience) { node.classList.add("private"); node.append(el("div", "only-me", "나에게만 보여요")); }
    if (m.text) node.append(el("p", "text", m.text));
    if (m.image) {
      const img = el("img", "photo"); img.src = m.image.thumbnail || m.image.url; img.alt = "보낸 사진";
      img.tabIndex = 0;
      const open = () => lightbox(m.image.url);
      img.addEventListener("click", open);
      img.addEventListener("keydown", (e) => { if (e.key === "Enter") open(); });
      node.append(img);
    }
    const rows = (m.cards || []).filter((c) => c.row);
    if (rows.length) {  // search results: compact rows, the bubble as wide as the room
      node.classList.add("results");
      const list = el("div", "rows");
      for (const c of m.cards) list.append(c.row ? rowNode(c, m) : cardNode(c, m));
      node.append(list);
    } else {
      for (const c of m.cards || []) node.append(cardNode(c, m));
    }
    if (m.buttons && m.buttons.length) node.append(buttonsNode(m.buttons, m));
    if (m.form === "home" && !mine) node.append(homeForm());
    if (m.quick_replies && m.quick_replies.length) {
      const q = el("div", "quick");
      for (const reply of m.quick_replies) {
        const chip = typeof reply === "string" ? { label: reply, send: reply } : reply;
        const b = el("button", "chip-button", chip.label); b.type = "button";
        b.addEventListener("click", () => sendChip(chip));
        q.append(b);
      }
      node.append(q);
    }
    const meta = el("div", "meta", new Date(m.ts).toLocaleTimeString("ko-KR", { hour: "2-digit", minute: "2-digit" }));
    if (mine && (state.readBy.get(m.room) || 0) >= m.seq) meta.append(el("span", "read", " · 읽음"));
    node.append(meta);
    return node;
  }

  function cardNode(c, m) {
    const card = el("section", "card");
    if (c.image) { const img = el("img", "card-img"); img.src = c.image; img.alt = ""; card.append(img); }
    const body = el("div", "card-body");
    body.append(el("h3", "", c.title));
    if (c.subtitle) body.append(el("p", "sub", c.subtitle));
    if (c.fields && c.fields.length) {
      const dl = el("dl");
      for (const [k, v] of c.fields) { dl.append(el("dt", "", k), el("dd", "", v)); }
      body.append(dl);
    }
    if (c.buttons && c.buttons.length) body.append(buttonsNode(c.buttons, m));
    card.append(body);
    return card;
  }

  // A search result as a compact row (photo left; title; 동네 · when; price; deposit; rating and 찜 count), with
  // 찜 and 문의하기 on the right — or "내 물건" on one's own.
  function rowNode(c, m) {
    const r = c.row;
    const card = el("section", "card row-card");
    card.dataset.item = c.item_id;
    if (c.image) { const img = el("img", "row-img"); img.src = c.image; img.alt = ""; img.loading = "lazy"; card.append(img); }
    else card.append(el("div", "row-img none"));
    const body = el("div", "row-body");
    body.append(el("h3", "row-title", r.title));
    body.append(el("p", "row-meta", [r.place, ago(r.posted_at), r.distance].filter(Boolean).join(" · ")));
    body.append(el("p", "row-price", r.price));
    body.append(el("p", "row-meta", r.deposit));
    const trust = el("p", "row-meta");
    if (r.rating) trust.append(el("span", "", r.rating));
    const count = state.wishCounts.get(c.item_id) ?? r.wishes;  // (a press here knows a newer count)
    const hearts = el("span", "wishes", `♡ ${count}`);
    hearts.dataset.wishesFor = c.item_id;
    hearts.setAttribute("aria-label", `찜 ${count}`);
    trust.append(hearts);
    body.append(trust);
    card.append(body);
    const side = el("div", "row-actions");
    if (r.mine) side.append(el("span", "mine-badge", r.mine_label || "내 물건"));  // (no 문의하기 on one's own)
    if (c.buttons && c.buttons.length) side.append(buttonsNode(c.buttons, m));
    card.append(side);
    return card;
  }

  // "방금", "3시간 전", "2일 전", then the date
  function ago(ts) {
    if (!ts) return "";
    const minutes = Math.max(0, Math.round((Date.now() - new Date(ts).getTime()) / 60000));
    if (minutes < 1) return "방금";
    if (minutes < 60) return `${minutes}분 전`;
    if (minutes < 60 * 24) return `${Math.floor(minutes / 60)}시간 전`;
    if (minutes < 60 * 24 * 30) return `${Math.floor(minutes / 1440)}일 전`;
    const d = new Date(ts);
    return `${d.getMonth() + 1}월 ${d.getDate()}일`;
  }

  function wishesShown(itemId, count) {
    state.wishCounts.set(Number(itemId), count);
    for (const n of log.querySelectorAll(`[data-wishes-for="${Number(itemId)}"]`)) {
      n.textContent = `♡ ${count}`; n.setAttribute("aria-label", `찜 ${count}`);
    }
  }

  // Setting one's 동네 where the bot asks: a 동 name typed here, or the browser's location when the person
  // presses for it (the browser then asks for consent). Kept as the 동 only; never a prompt() box.
  let homeForms = 0;
  function homeForm() {
    const id = `home-${++homeForms}`;
    const form = el("form", "home-form");
    form.setAttribute("aria-label", "내 동네 정하기");
    const label = el("label", "", "동 이름"); label.htmlFor = id;
    const input = el("input"); input.id = id; input.name = "place"; input.maxLength = 30; input.required = true;
    input.placeholder = "예) 역삼동"; input.autocomplete = "address-level3";
    const ok = el("button", "button", "정하기"); ok.type = "submit";
    const here = el("button", "button", "현재 위치로 정하기"); here.type = "button";
    form.append(label, input, ok, here);
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const place = input.value.trim();
      if (place) inAssistant({ label: `내 동네: ${place}`, send: `/동네 ${place}` });
    });
    here.addEventListener("click", () => {
      if (!navigator.geolocation) { toast("이 브라우저는 위치를 알려 주지 않아요. 동 이름을 적어 주세요."); input.focus(); return; }
      navigator.geolocation.getCurrentPosition(
        (p) => inAssistant({ label: "현재 위치로 동네 정하기", send: `/동네 ${p.coords.latitude.toFixed(3)},${p.coords.longitude.toFixed(3)}` }),
        () => { toast("위치를 알 수 없어요. 동 이름을 적어 주세요."); input.focus(); }, { timeout: 8000 });
    });
    return form;
  }

  function buttonsNode(buttons, m) {
    const row = el("div", "buttons");
    for (const b of buttons) {
      if (b.disabled) {  // used, or overtaken by a later step
        const off = el("button", "button done", b.label); off.type = "button"; off.disabled = true;
        off.setAttribute("aria-disabled", "true");
        row.append(off);
        continue;
      }
      if (b.url) {
        // A link the bot gave (the bank's consent page): opened on a person's click, never by itself.
        const a = el("a", "button", b.label);
        if (b.url.startsWith("/")) a.href = b.url;
        a.target = "_blank"; a.rel = "noopener";
        row.append(a);
        continue;
      }
      const button = el("button", "button", b.label); button.type = "button";
      button.addEventListener("click", async () => {
        if (b.form === "review") { openReview(b, m); return; }
        if (b.form === "dates") { openDates(b.dates); return; }
        if (b.form === "appointment") { openSheet("appt", b, m); return; }
        button.disabled = true;
        const ack = await press(b, m, undefined);
        if (!ack || !ack.ok) button.disabled = false;
      });
      row.append(button);
    }
    return row;
  }

  // A press: the answer is for the presser alone (a toast); 문의하기 opens the deal room it names.
  async function press(b, m, input) {
    const data = { room: state.current, token: b.token };
    if (m) data.seq = m.seq;
    if (input) data.input = input;
    const ack = await socket.timeout(45000).emitWithAck("action", data).catch(() => null);
    if (!ack || !ack.ok) { if (!input) toast(ack && ack.error ? ack.error.message : "잠시 뒤 다시 눌러 주세요."); return ack; }
    if (ack.message) toast(ack.message, true);
    if (typeof ack.wishes === "number") wishesShown(ack.item, ack.wishes);
    if (ack.open_room) {
      if (ack.suggest) sessionStorage.setItem(`billi:suggest:${ack.open_room}`, ack.suggest);
      await loadRooms();
      openRoom(ack.open_room, true);
    }
    return ack;
  }

  // Sheets a button opens (a review, a meeting): what is filled in goes with the press, privately; a refusal
  // is shown next to the form, which stays open.
  let sheet = null;
  function openSheet(id, b, m) {
    sheet = { b, m };
    $(`${id}-form`).reset();
    $(`${id}-error`).textContent = "";
    $(id).showModal();
  }
  const openReview = (b, m) => openSheet("review", b, m);
  async function sendSheet(id, input) {
    const ack = await press(sheet.b, sheet.m, input);
    if (ack && ack.ok) { $(id).close(); return; }
    $(`${id}-error`).textContent = ack && ack.error ? ack.error.message : "잠시 뒤 다시 보내 주세요.";
  }
  $("review-cancel").addEventListener("click", () => $("review").close());
  $("review-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const picked = $("review-form").querySelector('input[name="stars"]:checked');
    sendSheet("review", { stars: picked ? Number(picked.value) : 0, text: $("review-text").value });
  });
  $("appt-cancel").addEventListener("click", () => $("appt").close());
  $("appt-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sendSheet("appt", { at: $("appt-at").value, place: $("appt-place").value });
  });

  function replaceMessage(m) {
    const box = state.messages.get(m.room);
    if (!box || !box.has(m.seq)) return;
    box.set(m.seq, m);
    if (m.room !== state.current) return;
    const old = log.querySelector(`article[data-seq="${m.seq}"]`);
    if (old) old.replaceWith(messageNode(m));
  }

  function pendingNode(q) {
    const node = el("article", "msg user mine pending");
    node.dataset.pending = q.client_msg_id;
    node.append(el("p", "text", q.text));
    const meta = el("div", "meta", q.failed ? "보내지 못했어요 " : "보내는 중…");
    if (q.failed) {
      const retry = el("button", "link", "다시 보내기"); retry.type = "button";
      retry.addEventListener("click", () => { q.failed = false; saveQueue(); flushQueue(); renderLog(state.current); });
      meta.append(retry);
    }
    node.append(meta);
    return node;
  }

  function addMessage(m) {
    const box = state.messages.get(m.room) || new Map();
    state.messages.set(m.room, box);
    const fresh = !box.has(m.seq);
    box.set(m.seq, m);
    remember(m.room);
    if (m.hidden) return;  // another member's private message: nothing to show, not unread
    const r = state.rooms.get(m.room);
    if (r) { r.last_message = { text: m.text || "사진", seq: m.seq, ts: m.ts }; r.last_seq = m.seq; }
    if (m.room === state.current) {
      const nearBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 80;
      if (m.client_msg_id) log.querySelector(`[data-pending="${CSS.escape(m.client_msg_id)}"]`)?.remove();
      if (fresh) log.append(messageNode(m));
      if (fresh && (m.cards || []).some((c) => c.row)) showFromTop(log.lastElementChild);
      else if (nearBottom || (m.sender.id === me.id)) scrollDown(true); else $("jump").hidden = false;
      if (document.visibilityState === "visible") markRead(m.room);
    } else if (r && fresh && m.sender.id !== me.id) {
      r.unread = (r.unread || 0) + 1;
    }
    if (m.cards || m.buttons) refreshRoomsSoon();  // a bot step may have changed the deal's status chip
    renderRooms();
  }

  let roomsTimer = null;
  function refreshRoomsSoon() { clearTimeout(roomsTimer); roomsTimer = setTimeout(loadRooms, 500); }

  // Results are read from their first row: the message's top at the top of the view, not its middle.
  function showFromTop(node) {
    log.scrollTo({ top: Math.max(0, node.offsetTop - 8), behavior: "auto" });
    $("jump").hidden = true;  // (the rest of the results is below, nothing new)
  }
  function settle() {
    const last = log.querySelector("article.msg:last-of-type");
    if (last && last.classList.contains("results")) showFromTop(last); else scrollDown(true);
  }

  function scrollDown(instant) {
    log.scrollTo({ top: log.scrollHeight, behavior: instant ? "auto" : "smooth" });
    $("jump").hidden = true;
  }

  function markRead(room) {
    const seq = state.seen[room];
    if (seq) socket.emit("read", { room, seq });
  }

  // -- sending ----------------------------------------------------------------------------------------
  const newId = () => (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2));

  // A chip: its words are what the person says; a command behind them runs in their own assistant room (in a
  // deal room the command itself is sent, for both people to read).
  function welcomed(id) {
    try { return Boolean(localStorage.getItem(`billi.welcomed.${id}`)); } catch (e) { return false; }
  }

  // One's 동네 and where one is go to one's own assistant room, never into a deal room the other member reads.
  async function inAssistant(chip) {
    const mine = [...state.rooms.values()].find((r) => r.kind === "assistant");
    if (!mine) return;
    if (state.current !== mine.id) await openRoom(mine.id, true);
    sendChip(chip);
  }

  function sendChip(chip) {
    const r = state.rooms.get(state.current);
    if (chip.send.startsWith("/") && r && r.kind === "assistant") send(chip.label, null, chip.send);
    else send(chip.send);
  }

  function send(text, dates, command) {
    text = text.trim();
    if (!text || state.current === null) return;
    const q = { room: state.current, text, client_msg_id: newId(), failed: false };
    if (dates) q.dates = dates;  // the date picker's exact choice goes with its words
    if (command) q.command = command;
    state.queue.push(q);
    saveQueue();
    log.append(pendingNode(q));
    scrollDown(false);
    flushQueue();
  }

  function saveQueue() { store.set(queueKey, state.queue); }

  // One flush at a time, in order: a "too fast" answer pauses it (one timer) at that message.
  let flushing = false, flushTimer = null;
  async function flushQueue() {
    if (!socket.connected || flushing) return;
    flushing = true;
    try { await flushOnce(); } finally { flushing = false; }
  }
  async function flushOnce() {
    for (const q of [...state.queue]) {
      if (q.failed || q.sending) continue;
      q.sending = true;
      let ack = null;
      try {
        const data = { room: q.room, text: q.text, client_msg_id: q.client_msg_id };
        if (q.dates) data.dates = q.dates;
        if (q.command) data.command = q.command;
        ack = await socket.timeout(10000).emitWithAck("message", data);
      } catch { ack = null; }
      q.sending = false;
      if (!ack) {  // no answer in time: it stays queued and goes again shortly with the same id (stored once)
        clearTimeout(flushTimer);
        flushTimer = setTimeout(flushQueue, 3000);
        return;
      }
      if (ack && ack.ok) {
        state.queue = state.queue.filter((x) => x !== q);
        saveQueue();
        // the receipt says where it was stored; the text and sender are ours
        if (ack.message) addMessage({ ...ack.message, text: q.text, sender: { id: me.id, kind: "user", name: me.nickname } });
      } else if (ack && !ack.ok && ack.error.retry_after) {
        // sending faster than allowed (a queue flushed after being offline): wait as told, then go on — nothing
        // is refused or lost
        clearTimeout(flushTimer);
        flushTimer = setTimeout(flushQueue, ack.error.retry_after * 1000);
        return;
      } else if (ack && !ack.ok) {
        q.failed = true; saveQueue();
        toast(ack.error.message);
        if (q.room === state.current) renderLog(q.room);
      }
    }
  }

  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    const box = $("text");
    send(box.value);
    box.value = "";
    hideSuggest();
  });
  $("text").addEventListener("keydown", (e) => {
    const s = $("suggest");
    if (!s.hidden && (e.key === "ArrowDown" || e.key === "ArrowUp")) {
      e.preventDefault();
      const items = [...s.querySelectorAll("li")];
      const at = items.findIndex((li) => li.getAttribute("aria-selected") === "true");
      const next = (at + (e.key === "ArrowDown" ? 1 : -1) + items.length) % items.length;
      items.forEach((li, i) => li.setAttribute("aria-selected", String(i === next)));
      return;
    }
    if (!s.hidden && (e.key === "Tab" || (e.key === "Enter" && s.querySelector('[aria-selected="true"]')))) {
      const pick = s.querySelector('[aria-selected="true"]') || s.querySelector("li");
      if (pick) { e.preventDefault(); choose(pick.dataset.value); return; }
    }
    if (e.key === "Escape") { hideSuggest(); return; }
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); $("composer").requestSubmit(); }
  });
  $("text").addEventListener("input", () => {
    const now = Date.now();
    if (state.current !== null && (!state.lastTyping || now - state.lastTyping > 2000)) {
      state.lastTyping = now; socket.emit("typing", { room: state.current });
    }
    suggest($("text").value);
  });

  // -- suggestions: slash-commands, then titles while typing a search ----------------------------------
  // The commands' list is fetched when someone first types "/" (most people never do: chips and words suffice).
  let commandsAsked = null;
  function commandsLoaded() {
    commandsAsked = commandsAsked || fetch("/api/bot/commands").then((r) => r.json())
      .then((d) => { state.commands = d.commands; }).catch(() => { commandsAsked = null; });
    return commandsAsked;
  }

  async function suggest(value) {
    if (!value.startsWith("/")) { hideSuggest(); return; }
    if (!state.commands.length) { await commandsLoaded(); if ($("text").value !== value) return; }
    const [head, ...rest] = value.slice(1).split(" ");
    if (rest.length === 0) {
      const hits = state.commands.filter((c) => [c.name, ...c.aliases].some((w) => w.startsWith(head.toLowerCase())));
      showSuggest(hits.map((c) => ({ value: `/${c.aliases[0] || c.name} `, label: `${c.usage} — ${c.summary}` })));
      return;
    }
    const cmd = state.commands.find((c) => c.name === "search");
    if (cmd && [cmd.name, ...cmd.aliases].includes(head) && rest.join(" ").trim().length >= 1) {
      const q = rest.join(" ");
      const res = await fetch(`/api/search/complete?q=${encodeURIComponent(q)}`);
      if (!res.ok) return;
      const data = await res.json();
      if ($("text").value !== value) return;
      showSuggest((data.suggestions || data.titles || []).map((t) => ({ value: `/${head} ${t}`, label: t })));
      return;
    }
    hideSuggest();
  }
  function showSuggest(options) {
    const s = $("suggest");
    s.replaceChildren();
    for (const o of options.slice(0, 8)) {
      const li = el("li", "", o.label);
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", "false");
      li.dataset.value = o.value;
      li.addEventListener("mousedown", (e) => { e.preventDefault(); choose(o.value); });
      s.append(li);
    }
    s.hidden = options.length === 0;
  }
  function hideSuggest() { $("suggest").hidden = true; }
  function choose(value) { $("text").value = value; hideSuggest(); $("text").focus(); suggest(value); }

  // -- tools: location, photo, dates ------------------------------------------------------------------
  $("tools-open").addEventListener("click", () => {
    const open = $("tools").hidden;
    $("tools").hidden = !open;
    $("tools-open").setAttribute("aria-expanded", String(open));
    if (open) $("tools").querySelector("button:not([hidden]), label")?.focus();
  });
  const closeTools = () => { $("tools").hidden = true; $("tools-open").setAttribute("aria-expanded", "false"); };

  $("locate").addEventListener("click", () => {
    // Where one is goes to the assistant room only, never into a deal room, whose other member would read it;
    // without the browser's location, the items near one's own 동네 (the bot asks for it when none is set).
    // Rounded to ~100 m (3 decimals), as the 동네 is: an unsent message waits in this browser's storage.
    closeTools();
    const mine = () => inAssistant({ label: "내 주변 물건", send: "/주변" });
    if (!navigator.geolocation) { mine(); return; }
    navigator.geolocation.getCurrentPosition(
      (p) => inAssistant({ label: "내 위치 주변 물건", send: `/주변 ${p.coords.latitude.toFixed(3)},${p.coords.longitude.toFixed(3)}` }),
      mine, { timeout: 8000 });
  });

  $("photo").addEventListener("change", () => {
    closeTools();
    const file = $("photo").files[0];
    $("photo").value = "";
    if (!file || state.current === null) return;
    const box = $("upload");
    const preview = $("upload-preview");
    preview.src = URL.createObjectURL(file);
    box.hidden = false;
    const form = new FormData();
    form.append("photo", file);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api/rooms/${state.current}/images?client_msg_id=${newId()}`);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) $("upload-progress").value = Math.round((e.loaded / e.total) * 100); };
    xhr.onload = () => {
      box.hidden = true; URL.revokeObjectURL(preview.src);
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status >= 400) toast(body.error ? body.error.message : "사진을 올리지 못했어요.");
      else if (body.message) addMessage(body.message);
    };
    xhr.onerror = () => { box.hidden = true; toast("사진을 올리지 못했어요. 연결을 확인해 주세요."); };
    xhr.send(form);
  });

  const dates = $("dates");
  let quoted = null;
  function openDates(preset) {
    closeTools();
    if (!state.deal) return;
    const today = new Date();
    const iso = (d) => new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 10);
    $("date-start").min = $("date-end").min = iso(today);
    if (preset && preset.start && preset.end) { $("date-start").value = preset.start; $("date-end").value = preset.end; }
    if (!$("date-start").value) $("date-start").value = iso(new Date(today.getTime() + 86400000));
    if (!$("date-end").value) $("date-end").value = iso(new Date(today.getTime() + 2 * 86400000));
    dates.showModal();
    quote();
  }
  async function quote() {
    quoted = null;
    $("dates-send").disabled = true;
    const total = $("dates-total");
    total.replaceChildren();
    $("dates-error").textContent = "";
    const s = $("date-start").value, e = $("date-end").value;
    if (!s || !e || !state.deal) return;
    const res = await fetch(`/api/items/${state.deal.item.id}/quote?start=${s}&end=${e}`);
    const data = await res.json().catch(() => ({}));
    if ($("date-start").value !== s || $("date-end").value !== e) return;  // changed meanwhile
    if (!res.ok) { $("dates-error").textContent = data.error ? data.error.message : "날짜를 확인해 주세요."; return; }
    const q = data.quote;
    for (const [k, v, cls] of [["기간", data.dates], ["대여료", won(q.rent)], ["수수료", won(q.fee)],
      ["보증금 (반납 후 돌려받아요)", won(q.deposit)], ["결제 금액", won(q.total), "sum"]]) {
      total.append(el("dt", cls || "", k), el("dd", cls || "", v));
    }
    quoted = data;
    $("dates-send").disabled = false;
  }
  $("date-start").addEventListener("change", () => {
    if ($("date-end").value < $("date-start").value) $("date-end").value = $("date-start").value;
    quote();
  });
  $("date-end").addEventListener("change", quote);
  $("dates-open").addEventListener("click", openDates);
  $("dates-cancel").addEventListener("click", () => dates.close());
  $("dates-form").addEventListener("submit", (e) => {
    if (!quoted) { e.preventDefault(); return; }
    // "12월 5일(토) ~ 12월 6일(일), 2일 빌리고 싶어요": the owner reads these words; the dates go exactly
    send(quoted.message, { start: $("date-start").value, end: $("date-end").value });
  });

  function lightbox(url) {
    $("lightbox-img").src = url;
    $("lightbox").showModal();
  }
  $("lightbox-close").addEventListener("click", () => $("lightbox").close());
  $("jump").addEventListener("click", () => scrollDown(false));
  log.addEventListener("scroll", () => { if (log.scrollHeight - log.scrollTop - log.clientHeight < 40) $("jump").hidden = true; });
  $("back").addEventListener("click", () => { document.body.classList.remove("in-room"); $("rooms").querySelector("button")?.focus(); });

  // -- 차단하기 / 신고하기 (the deal room's menu) ----------------------------------------------------------------
  async function postJson(path, body, method = "POST") {
    const res = await fetch(path, { method, credentials: "same-origin",
                                    ...(body ? { headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) } : {}) });
    const data = await res.json().catch(() => ({}));
    return { ok: res.ok, data };
  }
  const dealRoom = () => state.rooms.get(state.current);

  // The menu says 차단 풀기 when the other person is already blocked (asked each time it opens).
  $("room-menu").addEventListener("toggle", async () => {
    const r = dealRoom();
    if (!$("room-menu").open || !r || !r.other) return;
    $("block-person").dataset.blocked = "";
    $("block-person").textContent = "차단하기";
    const res = await fetch("/api/me/blocks", { credentials: "same-origin" });
    if (!res.ok) return;
    const { blocks } = await res.json();
    const blocked = blocks.some((b) => b.id === r.other.id);
    $("block-person").dataset.blocked = blocked ? "1" : "";
    $("block-person").textContent = blocked ? "차단 풀기" : "차단하기";
  });

  $("block-person").addEventListener("click", async () => {
    const r = dealRoom();
    const unblock = $("block-person").dataset.blocked === "1";
    $("room-menu").open = false;
    if (!r || !r.other) return;
    const name = r.other.nickname;
    const ask = unblock ? `${name}님의 차단을 풀까요?`
      : `${name}님을 차단할까요?\n차단하면 서로 문의, 메시지, 대여 요청을 주고받을 수 없어요. 이미 결제한 대여는 그대로 이어져요.`;
    if (!confirm(ask)) return;
    const { ok, data } = await postJson(`/api/people/${r.other.id}/block`, null, unblock ? "DELETE" : "POST");
    const done = unblock ? `${name}님의 차단을 풀었어요.` : `${name}님을 차단했어요.`;
    toast(ok ? done : (data.error ? data.error.message : "잠시 뒤에 다시 시도해 주세요."), ok);
  });

  $("report-open").addEventListener("click", () => {
    const r = dealRoom();
    $("room-menu").open = false;
    if (!r || !r.other) return;
    $("report-person").textContent = `${r.other.nickname}님`;
    $("report-item").textContent = r.item ? r.item.title : "이 물건";
    $("report-item").parentElement.hidden = !r.item;
    $("report-form").reset();
    $("report-dialog").showModal();
  });
  $("report-cancel").addEventListener("click", () => $("report-dialog").close());
  $("report-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const r = dealRoom();
    if (!r || !r.other) return;
    const kind = $("report-form").elements.kind.value;
    const body = { kind, id: kind === "item" ? r.item.id : r.other.id, reason: $("report-reason").value,
                   note: $("report-note").value };
    if (!confirm("이 내용으로 신고할까요?")) return;
    const { ok, data } = await postJson("/api/reports", body);
    if (ok) $("report-dialog").close();
    toast(ok ? "신고를 받았어요. 운영자가 확인할게요." : (data.error ? data.error.message : "잠시 뒤에 다시 시도해 주세요."), ok);
  });

  // Words for this person alone (a refusal, or what a press did): shown for a moment, never stored in the room.
  let toastTimer = null;
  function toast(text, good) {
    const t = $("toast");
    t.textContent = text;
    t.classList.toggle("good", Boolean(good));
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, 5000);
  }

  // -- the socket --------------------------------------------------------------------------------------
  socket.on("connect", async () => {
    $("conn").textContent = "연결됨";
    document.body.classList.remove("offline");
    await loadRooms();
    for (const room of state.messages.keys()) if (room !== state.current) catchUp(room);
    if (state.current !== null) {
      await join(state.current);
      // buttons retired while this client was away come back disabled with the latest page
      const page = await socket.timeout(10000).emitWithAck("history", { room: state.current, limit: 50 }).catch(() => null);
      const box = state.messages.get(state.current);
      if (page && page.ok && box) for (const m of page.messages) box.set(m.seq, m);
      renderLog(state.current);
      if (state.rooms.get(state.current)?.kind === "deal") loadDeal(state.current);
    }
    flushQueue();
  });
  // Offline, in words a person reads (never the transport's own, such as "websocket error")
  const OFFLINE = "연결이 끊겼어요. 다시 연결하는 중…";
  socket.on("disconnect", () => { $("conn").textContent = OFFLINE; document.body.classList.add("offline"); });
  socket.on("connect_error", (err) => {
    if (err && err.data && err.data.code === "chat.login_required") { location.href = "/login"; return; }
    $("conn").textContent = OFFLINE;
    document.body.classList.add("offline");
  });
  socket.on("session_ended", (e) => {  // logged out (here, in another tab, everywhere) or expired: back to log-in
    toast(e.message);
    setTimeout(() => { location.href = "/login"; }, 1500);
  });
  socket.on("message", addMessage);
  socket.on("message_update", replaceMessage);
  // this node could not hear other nodes for a while: what was said meanwhile is fetched, per room
  let resyncTimer = null;
  socket.on("resync", () => {
    clearTimeout(resyncTimer);  // (every client of a node hears it at once: spread them over a few seconds)
    resyncTimer = setTimeout(async () => {
      await loadRooms();
      for (const room of state.messages.keys()) catchUp(room);
    }, Math.random() * 3000);
  });
  socket.on("notice", (n) => { if (n.room === state.current || state.current === null) toast(n.message); });
  socket.on("deal_update", (u) => { if (u.room === state.current) loadDeal(u.room); refreshRoomsSoon(); });
  socket.on("room_update", async (u) => {
    if (typeof u.notifications === "number") {
      const bell = $("bell-count");
      bell.textContent = u.notifications; bell.hidden = u.notifications === 0;
    }
    if (u.new) { await loadRooms(); }
  });
  socket.on("typing", (t) => {
    if (t.room !== state.current || !t.user || t.user.id === me.id) return;
    $("typing").textContent = `${t.user.name || "상대방"}님이 입력하고 있어요…`;
    clearTimeout(state.typingTimer);
    state.typingTimer = setTimeout(() => { $("typing").textContent = ""; }, 3000);
  });
  socket.on("read", (r) => {
    if (r.user_id === me.id) return;
    state.readBy.set(r.room, Math.max(state.readBy.get(r.room) || 0, r.seq));
    if (r.room === state.current) {
      for (const node of log.querySelectorAll("article.mine[data-seq]")) {
        if (Number(node.dataset.seq) <= r.seq && !node.querySelector(".read")) node.querySelector(".meta")?.append(el("span", "read", " · 읽음"));
      }
    }
  });
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible" && state.current !== null) markRead(state.current); });
  window.addEventListener("online", () => { if (!socket.connected) socket.connect(); });

  // The home-screen shell is not needed to show this page: registered once it has loaded and settled, so the
  // first load carries only what the page itself shows.
  if ("serviceWorker" in navigator) {
    window.addEventListener("load", () => setTimeout(() => navigator.serviceWorker.register("/sw.js").catch(() => {}), 5000));
  }
})();
