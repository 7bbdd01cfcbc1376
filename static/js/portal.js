// A call plays a flow or an audio, never both: choosing one clears the other.
document.addEventListener("change", (event) => {
  const select = event.target;
  const otherId = select.dataset && select.dataset.exclusiveWith;
  if (!otherId || !select.value) return;
  const other = document.getElementById(otherId);
  if (other && other.value) {
    other.value = "";
    other.dispatchEvent(new Event("change", { bubbles: true }));
  }
});
