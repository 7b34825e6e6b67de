// 빌리마켓 chat bubble for other sites: <script src="https://<billi>/widget.js" async></script>
// Adds a round button at the bottom right that opens the chat app in a frame (the app allows framing only by
// itself and the sites in BILLI_WIDGET_EMBED_ORIGINS).
(() => {
  "use strict";
  const script = document.currentScript;
  const origin = script ? new URL(script.src).origin : location.origin;
  if (document.getElementById("billi-bubble")) return;
  const button = document.createElement("button");
  button.id = "billi-bubble";
  button.type = "button";
  button.setAttribute("aria-label", "빌리마켓 채팅 열기");
  button.setAttribute("aria-expanded", "false");
  button.textContent = "빌리";
  Object.assign(button.style, {
    position: "fixed", right: "20px", bottom: "20px", width: "60px", height: "60px", borderRadius: "50%",
    border: "none", background: "#b8420f", color: "#fff", fontSize: "16px", fontWeight: "700", cursor: "pointer", zIndex: 2147483000,
    boxShadow: "0 4px 16px rgba(0,0,0,.25)",
  });
  const frame = document.createElement("iframe");
  frame.id = "billi-frame";
  frame.title = "빌리마켓 채팅";
  frame.src = origin + "/app?embed=1";
  frame.hidden = true;
  Object.assign(frame.style, {
    position: "fixed", right: "20px", bottom: "90px", width: "min(380px, calc(100vw - 24px))",
    height: "min(600px, calc(100vh - 120px))", border: "1px solid #ddd", borderRadius: "16px",
    zIndex: 2147483000, background: "#fff", boxShadow: "0 8px 32px rgba(0,0,0,.25)",
  });
  button.addEventListener("click", () => {
    frame.hidden = !frame.hidden;
    button.setAttribute("aria-expanded", String(!frame.hidden));
    button.textContent = frame.hidden ? "빌리" : "닫기";
  });
  document.body.append(frame, button);
})();
