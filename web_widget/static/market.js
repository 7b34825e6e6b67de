// The start page: nearby items around a chosen place, each card opening the item's page. Every value is set as
// text, never as HTML.
(() => {
  const list = document.getElementById("items");
  const status = document.getElementById("status");
  const more = document.getElementById("more");
  const place = document.getElementById("place");
  const radius = document.getElementById("radius");
  let center = place.value.split(",").map(Number);
  let cursor = null;
  const won = (n) => n.toLocaleString("ko-KR") + "원";
  // Distances are to the item's ~250 m cell, to 100 m: approximate by design (the owner's door is never shown).
  const km = (m) => "약 " + (m < 1000 ? Math.round(m / 10) * 10 + "m" : (m / 1000).toFixed(1).replace(/\.0$/, "") + "km");
  const where = (item) => [...new Set([item.dong, item.place_name])].filter(Boolean).join(" · ");

  function card(item) {
    const li = document.createElement("li");
    li.className = "card";
    const link = document.createElement("a");
    link.href = `/items/${item.id}`;
    const img = document.createElement("img");
    img.alt = "";  // the title beside it says what it is
    img.loading = "lazy";
    if (item.thumbnail) img.src = item.thumbnail;
    const body = document.createElement("div");
    body.className = "body";
    const h = document.createElement("h3");
    h.textContent = item.title;
    const price = document.createElement("div");
    price.className = "price";
    price.textContent = `하루 ${won(item.price_per_day)}`;
    const meta = document.createElement("div");
    meta.className = "meta";
    meta.textContent = `보증금 ${won(item.deposit)} · ${where(item)} · ${km(item.distance_m)} · ♡ ${item.wish_count}`;
    body.append(h, price, meta);
    link.append(img, body);
    li.append(link);
    return li;
  }

  async function load(reset) {
    if (reset) { list.replaceChildren(); cursor = null; }
    const q = new URLSearchParams({ lat: center[0], lng: center[1], radius_m: radius.value, limit: 20 });
    if (cursor) q.set("cursor", cursor);
    status.textContent = "불러오는 중…";
    const res = await fetch(`/api/items/nearby?${q}`);
    const data = await res.json();
    if (!res.ok) { status.textContent = data.error.message; return; }
    data.items.forEach((it) => list.append(card(it)));
    cursor = data.next_cursor;
    more.hidden = !cursor;
    status.textContent = list.children.length ? `가까운 물건 ${list.children.length}개` : "이 근처에는 아직 물건이 없어요.";
  }

  place.addEventListener("change", () => { center = place.value.split(",").map(Number); load(true); });
  radius.addEventListener("change", () => load(true));
  more.addEventListener("click", () => load(false));
  document.getElementById("locate").addEventListener("click", () => {
    if (!navigator.geolocation) { status.textContent = "이 브라우저는 위치를 알려 주지 않아요."; return; }
    navigator.geolocation.getCurrentPosition(
      (pos) => { center = [pos.coords.latitude, pos.coords.longitude]; load(true); },
      () => { status.textContent = "위치를 알 수 없어요. 동네를 골라 주세요."; });
  });
  load(true);
})();
