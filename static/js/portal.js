// A call plays a flow or an audio, never both: choosing one clears the other. Values typed for
// the flow's variables go with it, so that is asked first; "Cancel" keeps the flow as it was.
document.addEventListener("change", (event) => {
  const select = event.target;
  const otherId = select.dataset && select.dataset.exclusiveWith;
  if (!otherId || !select.value) return;
  const other = document.getElementById(otherId);
  if (!other || !other.value) return;
  const typed = [...document.querySelectorAll("#variables input")].filter((input) => input.value);
  const names = typed.map((input) => {
    const label = document.querySelector(`label[for="${CSS.escape(input.id)}"]`);
    return label ? label.textContent.trim() : input.name;
  });
  const question = `Play ${select.selectedOptions[0].text} instead of the flow? ` +
    `What you typed for ${names.join(", ")} is cleared.`;
  if (typed.length && !window.confirm(question)) {
    select.value = "";
    return;
  }
  other.value = "";
  other.dispatchEvent(new Event("change", { bubbles: true }));
});

// A flow chosen before htmx was listening (a quick hand, a slow network, a form the browser
// restored on Back) still shows its variables: #variables says which flow it was drawn for.
(function variablesFollowTheFlow() {
  const follow = () => {
    const flow = document.getElementById("id_flow");
    const variables = document.getElementById("variables");
    if (flow && variables && window.htmx && flow.value !== variables.dataset.flow) {
      window.htmx.trigger(flow, "change");
    }
  };
  document.addEventListener("DOMContentLoaded", follow);
  window.addEventListener("pageshow", (event) => { if (event.persisted) follow(); });
})();

// ---- Layout and accessibility (the phone menu, announcing status changes) ----
(function layoutAndAnnouncements() {
  // The phone menu: the button says whether the links are shown; CSS does the showing.
  document.addEventListener("click", (event) => {
    const toggle = event.target.closest && event.target.closest(".menu-toggle");
    if (!toggle) return;
    toggle.setAttribute("aria-expanded", String(toggle.getAttribute("aria-expanded") !== "true"));
  });
  document.addEventListener("keydown", (event) => {
    const toggle = document.querySelector(".menu-toggle[aria-expanded='true']");
    if (event.key !== "Escape" || !toggle) return;
    toggle.setAttribute("aria-expanded", "false");
    toggle.focus();
  });

  // Polled regions are swapped whole, so a live region inside them would be new each time and
  // say nothing (or everything). Instead, every [data-announce] element (a call's status) is
  // remembered by its key, and only a changed text is written to the page's one #announcer.
  const said = new Map();
  const remember = (root, announce) => {
    const changes = [];
    root.querySelectorAll("[data-announce][data-announce-key]").forEach((element) => {
      const key = element.dataset.announceKey;
      const text = element.dataset.announce;
      if (announce && said.has(key) && said.get(key) !== text) changes.push(text);
      said.set(key, text);
    });
    const announcer = document.getElementById("announcer");
    if (changes.length && announcer) announcer.textContent = changes.join(". ");
  };
  document.addEventListener("DOMContentLoaded", () => remember(document, false));
  document.addEventListener("htmx:afterSettle", () => remember(document, true));
})();

// A sandbox test number fills the field it names (and the form then shows its recent calls).
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-fill]");
  const field = button && document.getElementById(button.dataset.fill);
  if (!field) return;
  field.value = button.dataset.value;
  field.dispatchEvent(new Event("input", { bubbles: true }));
  field.focus();
});

// The eye beside a secret shows what the agent types, and hides it again.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-reveal]");
  const input = button && document.getElementById(button.dataset.reveal);
  if (!input) return;
  const shown = input.type === "password";
  input.type = shown ? "text" : "password";
  button.setAttribute("aria-pressed", String(shown));
  const label = button.querySelector(".visually-hidden");
  if (label) label.textContent = label.textContent.replace(/^(Show|Hide)/, shown ? "Hide" : "Show");
});

// A revealed secret is masked again once the form is sent (and on a page brought back by Back).
document.addEventListener("submit", (event) => {
  event.target.querySelectorAll("[data-reveal][aria-pressed=true]").forEach((button) => {
    button.click();
  });
});

// On a phone the call log's less-used filters start folded, unless one of them is in use.
if (window.matchMedia("(max-width: 640px)").matches) {
  document.querySelectorAll("details[data-fold-on-phone]:not([data-in-use])").forEach((details) => {
    details.open = false;
  });
}
