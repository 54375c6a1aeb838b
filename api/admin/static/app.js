// Light progressive enhancement: every page works without this file.
"use strict";
document.addEventListener("submit", (event) => {
  // Forms that do something hard to undo ask first (data-confirm="...").
  const question = event.target.getAttribute("data-confirm");
  if (question && !window.confirm(question)) event.preventDefault();
});
document.addEventListener("change", (event) => {
  // Filter forms apply as soon as a choice changes.
  const form = event.target.form;
  if (form && form.hasAttribute("data-autosubmit")) form.requestSubmit();
});
// On a narrow screen a table's rows read as small cards (app.css): each cell is labelled with
// its column's heading, so nothing hides off to the side.
for (const table of document.querySelectorAll("table")) {
  const headings = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim());
  if (!headings.some(Boolean)) continue;
  table.classList.add("stackable");
  for (const row of table.querySelectorAll("tbody tr")) {
    [...row.children].forEach((cell, index) => {
      if (headings[index]) cell.setAttribute("data-label", headings[index]);
    });
  }
}
