// Errors said beside the field they are about (log-in, sign-up, passwords): the message goes right under the
// field (or under the form's button when it is about the whole form), is announced (role=alert), is tied to the
// field (aria-describedby, aria-invalid), and focus moves there — never at the bottom of the page, off-screen.
window.BilliForms = (() => {
  "use strict";

  function clear(form) {
    for (const old of form.querySelectorAll(".field-error")) old.remove();
    for (const input of form.querySelectorAll("[aria-invalid]")) {
      input.removeAttribute("aria-invalid");
      const rest = (input.getAttribute("aria-describedby") || "").split(" ").filter((id) => !id.endsWith("-error"));
      if (rest.length) input.setAttribute("aria-describedby", rest.join(" ")); else input.removeAttribute("aria-describedby");
    }
  }

  // ``field``: the input's name (the API's error.field); none or unknown: the message is about the whole form.
  function show(form, field, message) {
    clear(form);
    const box = document.createElement("p");
    box.className = "field-error";
    box.setAttribute("role", "alert");
    box.textContent = message;
    const input = field && form.elements.namedItem(field);
    if (input && input.focus) {
      box.id = `${form.id}-${field}-error`;
      (input.closest("label") || input).after(box);
      input.setAttribute("aria-invalid", "true");
      const before = input.getAttribute("aria-describedby");
      input.setAttribute("aria-describedby", before ? `${before} ${box.id}` : box.id);
      input.focus();
    } else {
      box.id = `${form.id}-error`;
      box.tabIndex = -1;
      const button = form.querySelector("button:not([type=button])") || form.lastElementChild;
      button.after(box);
      box.focus();
    }
    box.scrollIntoView({ block: "nearest" });
  }

  // An API answer's error, shown where it belongs (``fallback``: the field a field-less error is about).
  async function showAnswer(form, res, fallback) {
    const data = await res.json().catch(() => ({}));
    const error = data.error || {};
    show(form, error.field || fallback, error.message || "잠시 뒤 다시 시도해 주세요.");
    return data;
  }

  return { clear, show, showAnswer };
})();
